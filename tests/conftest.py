"""Fixtures: app, client, runner, auth, hx, outbox; one suite for SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import select

from terminus_hub import create_app
from terminus_hub import key_state
from terminus_hub.extensions import db
from terminus_hub.extensions import limiter
from terminus_hub.models import OutboxMessage
from tests import factories
from tests import processes

# SSO fixtures (SP key, independent IdP, an account with SSO) live in their own module.
pytest_plugins = ["tests.sso_fixtures", "tests.dns_server"]

BASE_CONFIG: dict[str, Any] = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-" + "x" * 32,
    "TERMINUS_BCRYPT_ROUNDS": 4,
    "WTF_CSRF_ENABLED": False,
    "RATELIMIT_ENABLED": False,
    "SERVER_NAME": "localhost",
    "TERMINUS_BASE_URL": "http://localhost",
    "SESSION_COOKIE_SECURE": False,
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep FLASK_* and DATABASE_URL from the developer's shell out of the tests.

    Every app needs a base URL: apps made without BASE_CONFIG get the test client's.
    """
    for name in list(os.environ):
        if name.startswith("FLASK_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLASK_TERMINUS_BASE_URL", "http://localhost")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str | None]:
    """Make a PostgreSQL database for this run (schema by migrations) and drop it after."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield None
        return
    with processes.postgres_database(base, "thub_test") as url:
        app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade()
            db.engine.dispose()
        yield url


def _config_for(request: pytest.FixtureRequest, database_url: str | None) -> dict[str, Any]:
    config = dict(BASE_CONFIG)
    config["SQLALCHEMY_DATABASE_URI"] = database_url or "sqlite://"
    if os.environ.get("TEST_REDIS_URL"):
        config["RATELIMIT_STORAGE_URI"] = os.environ["TEST_REDIS_URL"]
        config["RATELIMIT_KEY_PREFIX"] = f"thub-test-{secrets.token_hex(4)}"
    for marker in reversed(list(request.node.iter_markers("app_config"))):
        config.update(marker.kwargs)
    return config


@pytest.fixture
def app(request: pytest.FixtureRequest, database_url: str | None, tmp_path: Any) -> Iterator[Flask]:
    """A fresh app per test on an empty database."""
    app = create_app(_config_for(request, database_url), instance_path=str(tmp_path / "instance"))
    key_state.CACHE.clear()  # keys verified by an earlier test's app are not this one's
    with app.app_context():
        if database_url is None:
            db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        if database_url is not None:
            with db.engine.begin() as conn:
                for table in reversed(db.metadata.sorted_tables):
                    conn.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def hx() -> dict[str, str]:
    """Headers htmx sends with its requests."""
    return {"HX-Request": "true"}


class AuthActions:
    """Drive the real sign-in and sign-out forms."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def sign_in(self, email: str, password: str = factories.PASSWORD, **extra: str) -> Any:
        return self._client.post(
            "/sign_in/password", data={"email": email, "password": password, **extra}
        )

    def sign_out(self) -> Any:
        return self._client.post("/sign_out")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


class Outbox:
    """The mail the app wrote, read from the outbox table."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    def messages(self, to: str | None = None) -> list[OutboxMessage]:
        with self._app.app_context():
            query = select(OutboxMessage).order_by(OutboxMessage.created_at)
            if to is not None:
                query = query.where(OutboxMessage.recipient == to)
            rows = list(db.session.scalars(query))
            db.session.expunge_all()
            return rows

    def last_link(self, to: str) -> str:
        """Return the path of the main (first) link in the last mail to an address."""
        body = self.messages(to)[-1].text_body
        urls = re.findall(r"https?://[^\s]+", body)
        return re.sub(r"^https?://[^/]+", "", urls[0])


@pytest.fixture
def outbox(app: Flask) -> Outbox:
    return Outbox(app)


@pytest.fixture
def user(app: Flask) -> factories.Person:
    """A signed-up, confirmed person who owns one account."""
    return factories.make_person(app)


@pytest.fixture
def _fresh_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let this test's app choose its own key prefix and start with live storage.

    The module-level limiter keeps the first app's key prefix and "storage is down" flag
    across init_app calls (see tests/test_rate_limits.py); monkeypatch restores it afterwards.
    """
    monkeypatch.setattr(limiter, "_key_prefix", "")
    monkeypatch.setattr(limiter, "_storage_dead", False)
