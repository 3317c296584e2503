"""SSO domains are claims proven by DNS: several accounts may claim, one holds it verified.

Test sign-ins remember who started them; a connection remembers the role of whoever gave its
metadata (existing metadata counts as the operator's). A downgrade keeps only verified domains: the old
schema would trust an unverified claim fully.

Existing domains become unverified claims with a fresh token each: until their owners publish
the TXT record (or an operator vouches with `sso configure --verified`), they no longer route
or enforce. That is the point of the change: nothing proved them.

Revision ID: 5b0c3d7e9a21
Revises: 44188a920f33
Create Date: 2026-12-01 03:40:00.000000

"""

import base64
import secrets
from datetime import UTC
from datetime import datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5b0c3d7e9a21"
down_revision = "44188a920f33"
branch_labels = None
depends_on = None


def _public_id() -> str:
    return "dom_" + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def upgrade():
    bind = op.get_bind()
    # Read first: a batch rebuild of a parent table on SQLite would cascade to these rows.
    old = bind.execute(sa.text("SELECT domain, connection_id FROM sso_domains")).all()
    with op.batch_alter_table("sso_connections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "metadata_set_by_role",
                sa.String(length=16),
                server_default="operator",
                nullable=False,
            )
        )
    with op.batch_alter_table("saml_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_by_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_saml_requests_started_by_id_users"),
            "users",
            ["started_by_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("sso_domains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_domains_connection_id"))
    op.drop_table("sso_domains")
    table = op.create_table(
        "sso_domains",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.Column("verification_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_by", sa.String(length=16), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("check_message", sa.String(length=300), nullable=True),
        sa.Column("check_failures", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sso_connections.id"],
            name=op.f("fk_sso_domains_connection_id_sso_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_domains")),
        sa.UniqueConstraint("connection_id", "domain", name=op.f("uq_sso_domains_connection_id")),
    )
    with op.batch_alter_table("sso_domains", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sso_domains_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sso_domains_domain"), ["domain"], unique=False)
        batch_op.create_index(
            "ux_sso_domains_verified_domain",
            ["domain"],
            unique=True,
            sqlite_where=sa.text("verified_at IS NOT NULL"),
            postgresql_where=sa.text("verified_at IS NOT NULL"),
        )
    now = datetime.now(UTC)
    if old:
        op.bulk_insert(
            table,
            [
                {
                    "id": _public_id(),
                    "domain": domain,
                    "connection_id": connection_id,
                    "verification_token": secrets.token_urlsafe(24),
                    "created_at": now,
                    "check_failures": 0,
                }
                for domain, connection_id in old
            ],
        )


def downgrade():
    bind = op.get_bind()
    # The old schema trusts every domain row fully (routing, enforcement, creating people):
    # only verified claims may go back. Unverified claims are lost.
    rows = bind.execute(
        sa.text("SELECT domain, connection_id FROM sso_domains WHERE verified_at IS NOT NULL")
    ).all()
    with op.batch_alter_table("sso_connections", schema=None) as batch_op:
        batch_op.drop_column("metadata_set_by_role")
    with op.batch_alter_table("sso_domains", schema=None) as batch_op:
        batch_op.drop_index("ux_sso_domains_verified_domain")
        batch_op.drop_index(batch_op.f("ix_sso_domains_domain"))
        batch_op.drop_index(batch_op.f("ix_sso_domains_connection_id"))
    op.drop_table("sso_domains")
    table = op.create_table(
        "sso_domains",
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("connection_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sso_connections.id"],
            name=op.f("fk_sso_domains_connection_id_sso_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_sso_domains")),
    )
    with op.batch_alter_table("sso_domains", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sso_domains_connection_id"), ["connection_id"], unique=False
        )
    if rows:
        op.bulk_insert(table, [{"domain": d, "connection_id": c} for d, c in rows])
    with op.batch_alter_table("saml_requests", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_saml_requests_started_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("started_by_id")
