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


def test_upgrade_from_nothing_matches_the_models(empty_database_url, tmp_path):
    app = create_app(
        {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": empty_database_url},
        instance_path=str(tmp_path / "instance"),
    )
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"accounts", "users", "memberships", "workspaces", "sessions", "outbox"} <= tables
        check()  # exits non-zero when models and migrations disagree
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
