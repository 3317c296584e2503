"""The key check at one network round trip (docs/benchmarks.md, "The key path"): with Redis,
each worker keeps the keys it verified, and uses one only while the Redis call that counts
the request says the key is unchanged.

Across instances (revoke on A, the very next call on B fails) and with Redis down, the same
promises are tested on real gunicorn instances in tests/faults.
"""

from __future__ import annotations

import os
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy.orm import Session

from terminus_hub import api_tokens
from terminus_hub import key_state
from terminus_hub.core import keyring
from terminus_hub.core.keyring import create_key
from terminus_hub.extensions import db
from terminus_hub.extensions import limiter
from terminus_hub.models import Account
from terminus_hub.models import ApiKey
from terminus_hub.models import AuditEvent
from tests import factories
from tests.test_api_auth import recorded_queries

REDIS_URL = os.environ.get("TEST_REDIS_URL")
pytestmark = [
    pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL"),
    pytest.mark.usefixtures("_fresh_limiter"),
    pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def owner(app: Flask) -> factories.Person:
    return factories.make_person(app)


@pytest.fixture
def session(client: FlaskClient, owner: factories.Person) -> dict[str, str]:
    return factories.session_headers(client, owner)


def test_a_verified_key_costs_no_database_trip(app: Flask, owner: factories.Person) -> None:
    _, token = factories.make_api_key(app, owner.account_slug)
    caller = app.test_client()
    assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200
    with recorded_queries(app) as seen:
        for _ in range(5):
            response = caller.get("/api/v1/account", headers=bearer(token))
            assert response.status_code == 200
            assert response.get_json()["slug"] == owner.account_slug
    assert seen == []


def test_a_revoked_key_fails_on_the_very_next_request(
    app: Flask, client: FlaskClient, owner: factories.Person, session: dict[str, str]
) -> None:
    key_id, token = factories.make_api_key(app, owner.account_slug)
    caller = app.test_client()
    for _ in range(3):
        assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200
    assert client.delete(f"/api/v1/api_keys/{key_id}", headers=session).status_code == 204
    refused = caller.get("/api/v1/account", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "invalid_token"


def test_a_key_revoked_from_the_command_line_fails_at_once(
    app: Flask, runner: Any, owner: factories.Person
) -> None:
    key_id, token = factories.make_api_key(app, owner.account_slug)
    caller = app.test_client()
    assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200
    assert runner.invoke(args=["keys", "revoke", key_id]).exit_code == 0
    assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 401


def test_a_rolled_key_ends_when_its_grace_ends(
    app: Flask, client: FlaskClient, owner: factories.Person, session: dict[str, str]
) -> None:
    key_id, token = factories.make_api_key(app, owner.account_slug)
    caller = app.test_client()
    assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200
    rolled = client.post(
        f"/api/v1/api_keys/{key_id}/roll", json={"expires_in_hours": 0}, headers=session
    )
    assert rolled.status_code == 201
    refused = caller.get("/api/v1/account", headers=bearer(token))
    assert refused.status_code == 401 and "expired" in refused.get_json()["error"]["message"]


def test_a_cached_key_still_expires_on_time(app: Flask, owner: factories.Person) -> None:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == owner.account_slug))
        row, token = create_key(account, "short", None, expires_in_days=1)
        db.session.commit()
        expires = row.expires_at
    caller = app.test_client()
    assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200
    with freeze_time(expires + timedelta(seconds=1)):
        refused = caller.get("/api/v1/account", headers=bearer(token))
    assert refused.status_code == 401 and "expired" in refused.get_json()["error"]["message"]


def test_a_renamed_account_is_seen_at_once(
    app: Flask, client: FlaskClient, owner: factories.Person, session: dict[str, str]
) -> None:
    _, token = factories.make_api_key(app, owner.account_slug)
    caller = app.test_client()
    assert caller.get("/api/v1/account", headers=bearer(token)).get_json()["name"] != "Renamed"
    renamed = client.post(
        f"/a/{owner.account_slug}/rename",
        data={"name": "Renamed", "csrf_token": session["X-CSRFToken"]},
    )
    assert renamed.status_code in (302, 303), renamed.get_data(as_text=True)[:300]
    assert caller.get("/api/v1/account", headers=bearer(token)).get_json()["name"] == "Renamed"


def test_a_redis_that_lost_a_generation_is_not_trusted(app: Flask, owner: factories.Person) -> None:
    _, token = factories.make_api_key(app, owner.account_slug)
    caller = app.test_client()
    assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200
    with app.app_context():
        name = key_state.generation_key(api_tokens.token_hash(token))
    store = redis.Redis.from_url(REDIS_URL or "")
    try:
        # As after an eviction, a restart or a lapse: a change made meanwhile is unknown.
        assert store.delete(name) == 1
    finally:
        store.close()
    with recorded_queries(app) as seen:
        assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200
    assert any("api_keys" in statement for statement in seen)


def generation(app: Flask, token: str) -> bytes | None:
    with app.app_context():
        name = key_state.generation_key(api_tokens.token_hash(token))
    store = redis.Redis.from_url(REDIS_URL or "")
    try:
        value: bytes | None = store.get(name)
        return value
    finally:
        store.close()


def test_a_change_is_told_only_once_it_is_committed(app: Flask, owner: factories.Person) -> None:
    # Found by attacking it: the audit record's savepoint counted as the commit, so the news
    # went out before the change could be seen, and a check in between cached the old row.
    key_id, token = factories.make_api_key(app, owner.account_slug)
    assert app.test_client().get("/api/v1/account", headers=bearer(token)).status_code == 200
    before = generation(app, token)
    with app.app_context():
        keyring.revoke_key(db.session.get(ApiKey, key_id))
        assert generation(app, token) == before  # not committed yet: nothing told
        db.session.commit()
    assert generation(app, token) != before


def test_a_failed_audit_write_does_not_keep_the_news_from_other_workers(
    app: Flask, owner: factories.Person
) -> None:
    key_id, token = factories.make_api_key(app, owner.account_slug)
    caller = app.test_client()
    assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200

    def refuse_audit(session: Any, context: Any, instances: Any) -> None:
        if any(isinstance(row, AuditEvent) for row in session.new):
            raise RuntimeError("the audit table is full")

    event.listen(Session, "before_flush", refuse_audit)
    try:
        with app.app_context():
            keyring.revoke_key(db.session.get(ApiKey, key_id))
            db.session.commit()
    finally:
        event.remove(Session, "before_flush", refuse_audit)
    assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 401


def test_a_worker_that_found_redis_down_still_tells_the_others(
    app: Flask, owner: factories.Person
) -> None:
    key_id, token = factories.make_api_key(app, owner.account_slug)
    assert app.test_client().get("/api/v1/account", headers=bearer(token)).status_code == 200
    before = generation(app, token)
    with app.app_context():
        limiter._storage_dead = True  # this worker's last try failed; others reach Redis
        try:
            keyring.revoke_key(db.session.get(ApiKey, key_id))
            db.session.commit()
        finally:
            limiter._storage_dead = False
    assert generation(app, token) != before


def test_last_use_is_still_written_once_a_minute(app: Flask, owner: factories.Person) -> None:
    key_id, token = factories.make_api_key(app, owner.account_slug)
    caller = app.test_client()
    start = datetime.now(UTC)

    def last_used() -> datetime | None:
        with app.app_context():
            return db.session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))

    with freeze_time(start):
        assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200
    first = last_used()
    assert first is not None
    with freeze_time(start + timedelta(seconds=30)):
        assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200
    assert last_used() == first
    with freeze_time(start + timedelta(seconds=61)):
        assert caller.get("/api/v1/account", headers=bearer(token)).status_code == 200
    assert last_used() > first
