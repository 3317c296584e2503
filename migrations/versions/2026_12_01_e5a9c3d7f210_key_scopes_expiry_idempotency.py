"""API keys get scopes, an optional expiry and a successor when rolled; POSTs may carry an
Idempotency-Key.

Existing keys keep every scope and never expire.

Revision ID: e5a9c3d7f210
Revises: d4f8a0b1c2e3
Create Date: 2026-12-01 15:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e5a9c3d7f210"
down_revision = "d4f8a0b1c2e3"
branch_labels = None
depends_on = None

# Every scope there was when scopes came in: what a key made before then could do.
ALL_SCOPES = "account:read workspaces:read workspaces:write records:read records:write"


def upgrade():
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("scopes", sa.String(length=200), nullable=False, server_default=ALL_SCOPES)
        )
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("expiry_notified_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("replaced_by_id", sa.String(length=32), nullable=True))
    # The default was only for the rows already there; new keys always name their scopes.
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("scopes", server_default=None)
    op.create_table(
        "idempotent_requests",
        sa.Column("caller_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("claim", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller_id", "account_id", "key"),
    )
    op.create_index("ix_idempotent_requests_created_at", "idempotent_requests", ["created_at"])


def downgrade():
    op.drop_index("ix_idempotent_requests_created_at", table_name="idempotent_requests")
    op.drop_table("idempotent_requests")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("replaced_by_id")
        batch.drop_column("expiry_notified_at")
        batch.drop_column("expires_at")
        batch.drop_column("scopes")
