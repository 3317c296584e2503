"""Audit events remember the X-Request-ID of the request that wrote them.

Revision ID: d4f8a0b1c2e3
Revises: b7e3f1a2c904
Create Date: 2026-12-01 14:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d4f8a0b1c2e3"
down_revision = "b7e3f1a2c904"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("audit_events", sa.Column("request_id", sa.String(length=64), nullable=True))


def downgrade():
    op.drop_column("audit_events", "request_id")
