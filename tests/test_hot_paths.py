"""The tuned hot paths (issue 8) keep every rule they were tuned under.

- the moving window is taken and read back in one Redis round trip, with the same counts and
  headers as limits' own two-step reading, and still falls back to per-process limits;
- a pooled PostgreSQL connection the server closed is replaced at checkout, without the
  per-request ping query;
- a key call never opens the cookie session, so it sends no cookie back;
- Retry-After is sent only with a refusal (the security headers have the last word).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.engine import make_url

from terminus_hub.api.rate_limit import OneTripMovingWindow
from terminus_hub.core.keyring import create_key
from terminus_hub.extensions import db
from terminus_hub.extensions import limiter
from terminus_hub.models import Account
from tests import factories
from tests.test_api_auth import bearer

REDIS_URL = os.environ.get("TEST_REDIS_URL")
DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL")
needs_postgresql = pytest.mark.skipif(
    not DATABASE_URL, reason="needs PostgreSQL (TEST_DATABASE_URL)"
)


@pytest.fixture
def token(app: Flask, user: factories.Person) -> str:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == user.account_slug))
        _, token = create_key(account, "hot paths", None)
        db.session.commit()
    return token


class RedisCommands:
    """Count the commands this process sends to Redis (every one is packed by a connection)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from redis.connection import AbstractConnection

        self.sent: list[str] = []
        original = AbstractConnection.pack_command

        def counting(connection: Any, *args: Any) -> Any:
            self.sent.append(str(args[0]))
            return original(connection, *args)

        monkeypatch.setattr(AbstractConnection, "pack_command", counting)


# one Redis round trip -------------------------------------------------------------------------


@needs_redis
@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(
    RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL, TERMINUS_API_RATE_LIMIT="4 per minute"
)
def test_each_api_call_takes_its_place_and_reads_the_window_in_one_round_trip(
    app: Flask, client: FlaskClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(limiter.limiter, OneTripMovingWindow)
    commands = RedisCommands(monkeypatch)
    for remaining in (3, 2, 1, 0):
        commands.sent.clear()
        response = client.get("/api/v1/account", headers=bearer(token))
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "4"
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
        assert int(response.headers["X-RateLimit-Reset"]) > time.time()
        assert "Retry-After" not in response.headers
        assert commands.sent == ["EVALSHA"]
    refused = client.get("/api/v1/account", headers=bearer(token))
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def _remaining(response: Any) -> int:
    assert response.status_code == 200, response.get_data(as_text=True)
    return int(response.headers["X-RateLimit-Remaining"])


@needs_redis
@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(
    RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL, TERMINUS_API_RATE_LIMIT="9 per minute"
)
def test_a_connection_redis_closed_is_replaced_and_the_count_stays_shared(
    client: FlaskClient, token: str
) -> None:
    import redis

    assert _remaining(client.get("/api/v1/account", headers=bearer(token))) == 8
    store = redis.Redis.from_url(REDIS_URL)
    try:
        # Redis drops every other client (as a restart or its idle timeout would).
        store.client_kill_filter(skipme=True, _type="normal")
    finally:
        store.close()
    assert _remaining(client.get("/api/v1/account", headers=bearer(token))) == 7
    assert not limiter._storage_dead  # not mistaken for an outage
    assert _remaining(client.get("/api/v1/account", headers=bearer(token))) == 6


@needs_redis
@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(
    RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL, TERMINUS_API_RATE_LIMIT="9 per minute"
)
def test_the_script_is_sent_again_when_redis_forgot_it(client: FlaskClient, token: str) -> None:
    import redis

    assert _remaining(client.get("/api/v1/account", headers=bearer(token))) == 8
    store = redis.Redis.from_url(REDIS_URL)
    try:
        store.script_flush()
    finally:
        store.close()
    assert _remaining(client.get("/api/v1/account", headers=bearer(token))) == 7
    assert not limiter._storage_dead
    assert _remaining(client.get("/api/v1/account", headers=bearer(token))) == 6


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, TERMINUS_API_RATE_LIMIT="1 per minute")
def test_retry_after_comes_only_with_a_refusal(client: FlaskClient, token: str) -> None:
    allowed = client.get("/api/v1/account", headers=bearer(token))
    assert allowed.status_code == 200
    assert allowed.headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in allowed.headers
    refused = client.get("/api/v1/account", headers=bearer(token))
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60


@needs_redis
@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL)
def test_the_window_read_with_the_hit_is_what_a_separate_read_finds(app: Flask) -> None:
    from limits import parse
    from limits.strategies import MovingWindowRateLimiter

    strategy = limiter.limiter
    assert isinstance(strategy, OneTripMovingWindow)
    item = parse("5 per minute")
    key = ("hot-paths", f"window-{time.time_ns()}")
    for _ in range(3):
        assert strategy.hit(item, *key)
    combined = strategy.get_window_stats(item, *key)
    separate = MovingWindowRateLimiter(limiter.storage).get_window_stats(item, *key)
    assert combined.remaining == separate.remaining == 2
    assert abs(combined.reset_time - separate.reset_time) < 1
    limiter.storage.clear(item.key_for(*key))


class _Interrupted(BaseException):
    """Something that stops a request between its send and its read (a signal, a timeout)."""


@needs_redis
@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL)
def test_a_request_stopped_between_send_and_read_never_hands_its_reply_to_the_next(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from limits import parse
    from redis.connection import AbstractConnection

    strategy = limiter.limiter
    assert isinstance(strategy, OneTripMovingWindow)
    item = parse("50 per minute")
    tag = time.time_ns()
    watched = {name: f"hot-paths-gen-{name}-{tag}" for name in ("a", "b")}
    store = limiter.storage.get_connection()  # type: ignore[attr-defined]
    for name, key in watched.items():
        store.set(key, f"generation-{name}", ex=60)
    assert strategy.hit_reading(item, watched["a"], "hot-paths", f"warm-{tag}")[1]
    real = AbstractConnection.read_response
    stopped = []

    def stop_once(connection: Any, *args: Any, **kwargs: Any) -> Any:
        if not stopped:
            stopped.append(True)
            raise _Interrupted()
        return real(connection, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "read_response", stop_once)
    try:
        with pytest.raises(_Interrupted):
            strategy.hit_reading(item, watched["a"], "hot-paths", f"a-{tag}")
        # The next request on this thread gets its own answer, not the one left unread.
        assert strategy.hit_reading(item, watched["b"], "hot-paths", f"b-{tag}")[1] == (
            "generation-b"
        )
    finally:
        store.delete(*watched.values())
        for name in ("warm", "a", "b"):
            limiter.storage.clear(item.key_for("hot-paths", f"{name}-{tag}"))


@needs_redis
@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL)
def test_a_made_up_key_leaves_nothing_in_redis_longer_than_a_minute(
    app: Flask, client: FlaskClient
) -> None:
    from terminus_hub import api_tokens
    from terminus_hub import key_state

    made_up = api_tokens.generate()  # well formed, checksum and all, but never issued
    assert client.get("/api/v1/account", headers=bearer(made_up)).status_code == 401
    store = limiter.storage.get_connection()  # type: ignore[attr-defined]
    with app.test_request_context():
        generation = key_state.generation_key(api_tokens.token_hash(made_up))
    try:
        assert 0 < store.ttl(generation) <= 60
    finally:
        store.delete(generation)


@needs_redis
@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL)
def test_api_calls_are_counted_once_in_redis_per_key_and_endpoint(
    app: Flask, client: FlaskClient, token: str
) -> None:
    import redis

    for _ in range(2):
        assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/workspaces", headers=bearer(token)).status_code == 200
    store = redis.Redis.from_url(REDIS_URL)
    prefix = app.config["RATELIMIT_KEY_PREFIX"]
    try:
        keys = {key.decode(): store.llen(key) for key in store.scan_iter(f"*{prefix}/*")}
        assert sorted(k.split("/")[3] for k in keys) == ["api.get_account", "api.list_workspaces"]
        assert all(k.split("/")[2].startswith("key:") for k in keys)
        assert sorted(keys.values()) == [1, 2]  # each call counted once, not twice
    finally:
        store.delete(*store.scan_iter(f"*{prefix}/*"))
        store.close()


@needs_redis
@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL)
def test_api_calls_alone_bring_the_shared_counters_back_after_an_outage(
    app: Flask, client: FlaskClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terminus_hub.api import rate_limit

    limiter._storage_dead = True  # as after an outage: counting per process
    monkeypatch.setattr(rate_limit._backoff, "last", 0.0)  # the next re-check of Redis is due
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    assert not limiter._storage_dead
    assert isinstance(limiter.limiter, OneTripMovingWindow)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unreachable_redis(request: pytest.FixtureRequest) -> str:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    request.node.add_marker(
        pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=url), append=False
    )
    return url


@pytest.mark.usefixtures("_fresh_limiter")
def test_with_redis_down_key_calls_go_on_under_per_process_limits(
    unreachable_redis: str, app: Flask, client: FlaskClient, token: str
) -> None:
    started = time.monotonic()
    response = client.get("/api/v1/account", headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "600"
    assert limiter._storage_dead  # counted by the in-memory fallback from now on
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    assert time.monotonic() - started < 5


# PostgreSQL connections ------------------------------------------------------------------------


@needs_postgresql
def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout(
    app: Flask, client: FlaskClient, token: str
) -> None:
    assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    with app.app_context(), db.engine.connect() as conn:
        before = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    # Every connection of this database, closed by the server (as a restart would).
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        closed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": url.database},
        ).scalar()
    admin.dispose()
    assert closed >= 1
    time.sleep(0.2)
    # The very next calls work: the dead connections are noticed and replaced, not used.
    for _ in range(3):
        assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
        assert client.get("/api/v1/workspaces", headers=bearer(token)).status_code == 200
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != before


@needs_postgresql
def test_a_key_check_sends_no_ping_before_its_lookup(
    app: Flask, client: FlaskClient, token: str
) -> None:
    client.get("/api/v1/account", headers=bearer(token))  # a pooled connection exists
    with app.app_context():
        engine = db.engine
    pings: list[Any] = []
    original = engine.dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return original(dbapi_connection)

    engine.dialect.do_ping = counting  # type: ignore[method-assign]
    try:
        assert client.get("/api/v1/account", headers=bearer(token)).status_code == 200
    finally:
        del engine.dialect.do_ping
    assert pings == []


# the cookie session ----------------------------------------------------------------------------


def test_a_key_call_with_a_browser_cookie_opens_no_session_and_sets_no_cookie(
    client: FlaskClient, user: factories.Person, token: str
) -> None:
    signed_in = client.post(
        "/sign_in/password", data={"email": user.email, "password": user.password}
    )
    assert signed_in.status_code == 303
    response = client.get("/api/v1/account", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["auth"] == "api_key"
    assert "Set-Cookie" not in response.headers
    # The browser's own session is untouched and still works.
    assert client.get("/api/v1/account").get_json()["auth"] == "session"
