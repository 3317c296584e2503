"""Migrations build the schema from nothing and agree with the models."""

from __future__ import annotations

import os
import secrets

import pytest
from flask_migrate import check
from flask_migrate import downgrade
from flask_migrate import upgrade
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.engine import make_url

from terminus_hub import create_app
from terminus_hub.core.keyring import SCOPES
from terminus_hub.extensions import db
from tests.conftest import BASE_CONFIG


@pytest.fixture
def empty_database_url(tmp_path):
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path}/migrations.sqlite"
        return
    name = f"thub_migrations_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _app_on(database_url, tmp_path):
    return create_app(
        {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url},
        instance_path=str(tmp_path / "instance"),
    )


def test_upgrade_from_nothing_matches_the_models(empty_database_url, tmp_path):
    app = _app_on(empty_database_url, tmp_path)
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"accounts", "users", "memberships", "workspaces", "sessions", "outbox"} <= tables
        check()  # exits non-zero when models and migrations disagree
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


def test_existing_sso_domains_become_unverified_claims_and_only_proven_ones_go_back(
    empty_database_url, tmp_path
):
    app = _app_on(empty_database_url, tmp_path)
    with app.app_context():
        upgrade(revision="44188a920f33")
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO accounts (id, slug, name, created_at) "
                    "VALUES ('acc_1', 'acme', 'Acme', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO sso_connections (id, account_id, idp_metadata_xml, "
                    "metadata_version, enforced, updated_at) "
                    "VALUES ('sso_1', 'acc_1', '<x/>', 1, true, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO sso_domains (domain, connection_id) "
                    "VALUES ('acme.example', 'sso_1'), ('acme.io', 'sso_1')"
                )
            )

        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT domain, verified_at, verification_token, id FROM sso_domains "
                    "ORDER BY domain"
                )
            ).all()
        assert [(r[0], r[1]) for r in rows] == [("acme.example", None), ("acme.io", None)]
        assert all(len(r[2]) >= 32 for r in rows) and rows[0][2] != rows[1][2]
        assert all(r[3].startswith("dom_") for r in rows)

        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE sso_domains SET verified_at = CURRENT_TIMESTAMP "
                    "WHERE domain = 'acme.io'"
                )
            )
        downgrade(revision="44188a920f33")
        with db.engine.connect() as conn:
            kept = conn.execute(text("SELECT domain, connection_id FROM sso_domains")).all()
        # The old schema trusts every row: only the verified claim may go back.
        assert kept == [("acme.io", "sso_1")]
        db.engine.dispose()


def test_keys_made_before_scopes_keep_every_scope_and_never_expire(empty_database_url, tmp_path):
    app = _app_on(empty_database_url, tmp_path)
    with app.app_context():
        upgrade(revision="d4f8a0b1c2e3")
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO accounts (id, slug, name, created_at) "
                    "VALUES ('acc_1', 'acme', 'Acme', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, account_id, name, token_hash, prefix, created_at) "
                    "VALUES ('key_1', 'acc_1', 'CI', :hash, 'thub_abc', CURRENT_TIMESTAMP)"
                ),
                {"hash": "0" * 64},
            )
        upgrade()
        with db.engine.connect() as conn:
            row = conn.execute(text("SELECT scopes, expires_at FROM api_keys")).one()
        assert row[0].split() == list(SCOPES)
        assert row[1] is None
        db.engine.dispose()
