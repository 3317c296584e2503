"""Second factors: authenticator apps, recovery codes and the owners-and-admins policy; SAML
requests remember whether they asked the IdP to check the person again (ForceAuthn).

Revision ID: 9d4a6b2c8e17
Revises: 7c1e2f4a9b30
Create Date: 2026-12-01 12:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "9d4a6b2c8e17"
down_revision = "7c1e2f4a9b30"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN, never a batch copy: on SQLite a batch operation recreates the table, and
    # dropping users or accounts would cascade into every row that points at them.
    op.add_column("users", sa.Column("mfa_enabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "accounts",
        sa.Column(
            "require_mfa_for_managers", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    op.add_column(
        "saml_requests",
        sa.Column("force_authn", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "totp_factors",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_step", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "code_hash"),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])


def downgrade():
    op.drop_index("ix_recovery_codes_user_id", table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_table("totp_factors")
    op.drop_column("saml_requests", "force_authn")
    op.drop_column("accounts", "require_mfa_for_managers")
    op.drop_column("users", "mfa_enabled_at")
