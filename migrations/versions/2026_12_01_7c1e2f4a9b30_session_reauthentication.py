"""Sessions remember when their person last proved who they are (re-authentication).

Revision ID: 7c1e2f4a9b30
Revises: 5b0c3d7e9a21
Create Date: 2026-12-01 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "7c1e2f4a9b30"
down_revision = "5b0c3d7e9a21"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("reauthenticated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("reauthenticated_at")
