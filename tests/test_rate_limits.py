"""Rate limits (issue 3, docs/security.md): friendly 429s, per-address budgets, proxies, Redis."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time

import pytest
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub import create_app
from terminus_hub import passwords
from terminus_hub.core.recovery import FORGOT_SENT
from terminus_hub.extensions import db
from terminus_hub.models import User
from tests import factories
from tests.conftest import BASE_CONFIG

REDIS_URL = os.environ.get("TEST_REDIS_URL")
WRONG = "not the right password"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
CSRF_ANYWHERE = re.compile(
    rb'(<meta name="csrf-token" content=|name="csrf_token" type="hidden" value=)"[^"]*"'
)
FLASHES = re.compile(r'<div id="flashes".*?</div>', re.DOTALL)

pytestmark = pytest.mark.app_config(
    RATELIMIT_ENABLED=True,
    TERMINUS_SIGN_IN_RATE_LIMIT="3 per minute",
    TERMINUS_SIGN_UP_RATE_LIMIT="2 per minute",
    TERMINUS_RECOVERY_RATE_LIMIT="2 per minute",
    TERMINUS_LINK_RATE_LIMIT="2 per minute",
)


def _sign_in(client, email="nobody@example.com", password=WRONG, **kwargs):
    return client.post("/sign_in/password", data={"email": email, "password": password}, **kwargs)


def _assert_friendly_429(response, limit: int) -> None:
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "<html" in page and "Too many requests" in page
    said = re.search(r"Too many attempts\. Try again in (\d+) seconds?\.", page)
    assert said and 0 < int(said.group(1)) <= 60
    assert "Traceback" not in page
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and 0 < int(retry_after) <= 60
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) > time.time()


def _count_users(app, email: str | None = None) -> int:
    query = select(func.count()).select_from(User)
    if email is not None:
        query = query.where(User.email == email)
    with app.app_context():
        return db.session.scalar(query)


@pytest.fixture
def bcrypt_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every bcrypt check (the hash it was checked against), calling through."""
    checks: list[bytes] = []
    original = passwords.bcrypt.checkpw
    lock = threading.Lock()

    def counting(password: bytes, hashed: bytes) -> bool:
        with lock:
            checks.append(hashed)
        return original(password, hashed)

    monkeypatch.setattr(passwords.bcrypt, "checkpw", counting)
    return checks


# Sign-in ------------------------------------------------------------------------------------


def test_sign_in_posts_past_the_limit_get_a_friendly_429(client, bcrypt_checks, caplog):
    caplog.set_level(logging.INFO, logger="flask-limiter")
    for _ in range(3):
        response = _sign_in(client)
        assert response.status_code == 422
        assert int(response.headers["X-RateLimit-Remaining"]) >= 0
    checks_before = len(bcrypt_checks)

    response = _sign_in(client)

    _assert_friendly_429(response, limit=3)
    # Refused before any password work, so a flood costs the server next to nothing.
    assert len(bcrypt_checks) == checks_before
    assert "exceeded" in caplog.text


def test_sign_in_page_itself_is_not_limited(client):
    for _ in range(4):
        _sign_in(client)
    for _ in range(5):
        assert client.get("/sign_in").status_code == 200
    assert client.get("/sign_in/password").status_code == 200
    assert _sign_in(client).status_code == 429


def test_email_and_password_steps_draw_on_one_budget(client):
    assert client.post("/sign_in/email", data={"email": "a@example.com"}).status_code == 200
    assert _sign_in(client).status_code == 422
    assert client.post("/sign_in/email", data={"email": "b@example.com"}).status_code == 200

    _assert_friendly_429(client.post("/sign_in/email", data={"email": "c@example.com"}), limit=3)
    _assert_friendly_429(_sign_in(client), limit=3)


def test_limit_answers_the_same_for_known_and_unknown_emails(app, client, user):
    for _ in range(3):
        assert _sign_in(client, user.email).status_code == 422

    known = _sign_in(client, user.email, user.password)
    unknown = _sign_in(client, "nobody@example.com", user.password)

    assert known.status_code == unknown.status_code == 429
    assert CSRF_ANYWHERE.sub(b"", known.data) == CSRF_ANYWHERE.sub(b"", unknown.data)
    assert known.headers.get("Set-Cookie") == unknown.headers.get("Set-Cookie")
    # The refused attempts never reached the lockout counter either.
    with app.app_context():
        assert db.session.get(User, user.id).failed_attempts == 3


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_sign_in_limit_holds_with_csrf_on(client, user):
    page = client.get("/sign_in/password").get_data(as_text=True)
    token = CSRF_META.search(page).group(1)
    data = {"email": user.email, "password": WRONG, "csrf_token": token}
    # 422 (not 400) shows the forms were accepted: these are real, judged sign-in attempts.
    assert [client.post("/sign_in/password", data=data).status_code for _ in range(3)] == [422] * 3

    response = client.post("/sign_in/password", data={**data, "password": user.password})

    _assert_friendly_429(response, limit=3)
    assert client.get("/accounts").status_code != 200  # the right password did not sign in


# Sign-up, resend, forgot password, emailed links --------------------------------------------


def test_sign_up_past_the_limit_creates_no_user(app, client):
    def sign_up(n):
        data = {"name": "Ada", "email": f"ada{n}@example.com", "password": factories.PASSWORD}
        return client.post("/sign_up", data=data)

    assert [sign_up(n).status_code for n in (1, 2)] == [303, 303]

    _assert_friendly_429(sign_up(3), limit=2)
    assert _count_users(app) == 2
    assert _count_users(app, "ada3@example.com") == 0
    assert client.get("/sign_up").status_code == 200


@pytest.mark.parametrize("path", ["/confirm/resend", "/password/forgot"])
def test_recovery_mail_requests_are_limited_per_address(client, path):
    responses = [client.post(path, data={"email": f"p{n}@example.com"}) for n in range(3)]

    assert [r.status_code for r in responses[:2]] == [303, 303]
    _assert_friendly_429(responses[2], limit=2)


@pytest.mark.parametrize("path", ["/confirm/not-a-token", "/password/reset/x", "/unlock/x"])
def test_emailed_link_posts_are_limited_per_address(client, path):
    responses = [client.post(path) for _ in range(3)]

    assert [r.status_code for r in responses[:2]] == [400, 400]
    _assert_friendly_429(responses[2], limit=2)
    assert client.get(path).status_code == 400  # opening a link is not counted


@pytest.mark.app_config(TERMINUS_MAILS_PER_ADDRESS_PER_HOUR=2)
def test_forgot_password_throttles_mail_per_email_silently(app, user, outbox):
    answers = set()
    for n, email in enumerate([user.email] * 5 + ["nobody@example.com"]):
        client = app.test_client()
        response = client.post(
            "/password/forgot",
            data={"email": email},
            environ_base={"REMOTE_ADDR": f"198.51.100.{n + 1}"},
        )
        page = client.get(response.location).get_data(as_text=True)
        flashes = FLASHES.search(page).group(0)
        answers.add((response.status_code, response.location, response.data, flashes))

    assert len(answers) == 1
    status, location, _, flashes = answers.pop()
    assert (status, location) == (303, "/password/forgot")
    assert FORGOT_SENT.format(minutes=app.config["TERMINUS_RESET_TOKEN_MINUTES"]) in flashes
    resets = [m for m in outbox.messages(user.email) if m.template == "reset"]
    assert len(resets) == 2


# Client address behind proxies ---------------------------------------------------------------


@pytest.mark.app_config(TERMINUS_TRUSTED_PROXIES=0)
def test_forged_forwarded_for_does_not_reset_the_limit(client):
    def forged(n):
        headers = {"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"203.0.113.{n}"}
        return _sign_in(client, headers=headers)

    assert [forged(n).status_code for n in range(3)] == [422] * 3
    _assert_friendly_429(forged(99), limit=3)


@pytest.mark.app_config(TERMINUS_TRUSTED_PROXIES=1)
def test_behind_one_proxy_each_client_has_its_own_budget(client):
    proxy = {"REMOTE_ADDR": "10.0.0.1"}

    def via_proxy(forwarded_for):
        return _sign_in(client, headers={"X-Forwarded-For": forwarded_for}, environ_base=proxy)

    assert [via_proxy("198.51.100.1").status_code for _ in range(3)] == [422] * 3
    _assert_friendly_429(via_proxy("198.51.100.1"), limit=3)
    # Another client behind the same proxy is counted on its own.
    assert via_proxy("198.51.100.2").status_code == 422
    # The proxy appends the address it saw; a client prepending a fake one is not believed.
    _assert_friendly_429(via_proxy("192.0.2.77, 198.51.100.1"), limit=3)
    _assert_friendly_429(via_proxy("192.0.2.78, 10.9.9.9, 198.51.100.1"), limit=3)


# Rate-limit storage faults and sharing --------------------------------------------------------


def _closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unreachable_redis(request: pytest.FixtureRequest) -> str:
    """Point this test's app at a Redis that is down; request it before ``app``."""
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    request.node.add_marker(pytest.mark.app_config(RATELIMIT_STORAGE_URI=url), append=False)
    return url


def test_redis_down_falls_back_to_per_process_limits(unreachable_redis, app, client, caplog):
    assert app.config["RATELIMIT_STORAGE_URI"] == unreachable_redis
    caplog.set_level(logging.INFO, logger="flask-limiter")
    started = time.monotonic()

    statuses = [_sign_in(client).status_code for _ in range(3)]
    limited = _sign_in(client)

    assert statuses == [422] * 3  # no 500: requests go on
    _assert_friendly_429(limited, limit=3)  # and the limit still holds
    assert client.get("/sign_in").status_code == 200
    assert "falling back to in-memory storage" in caplog.text
    assert time.monotonic() - started < 5


@pytest.mark.app_config(TERMINUS_SIGN_IN_RATE_LIMIT="20 per minute")
def test_redis_down_leaves_lockout_working(unreachable_redis, app, client, user):
    for _ in range(5):
        assert _sign_in(client, user.email).status_code == 422

    assert _sign_in(client, user.email, user.password).status_code == 422
    with app.app_context():
        row = db.session.get(User, user.id)
        assert row.locked_until is not None


def _second_instance(first, tmp_path):
    """Build another app with the first one's database and rate-limit settings."""
    keys = (
        "SQLALCHEMY_DATABASE_URI",
        "RATELIMIT_STORAGE_URI",
        "RATELIMIT_KEY_PREFIX",
        "TERMINUS_SIGN_IN_RATE_LIMIT",
    )
    config = {**BASE_CONFIG, "RATELIMIT_ENABLED": True}
    config.update({key: first.config[key] for key in keys})
    second = create_app(config, instance_path=str(tmp_path / "second"))
    with second.app_context():
        if config["SQLALCHEMY_DATABASE_URI"] == "sqlite://":
            db.create_all()  # in-memory SQLite: each app has its own database
    return second


def _requests_across_two_instances(first, tmp_path):
    """Sign in twice on one instance, then start a second and alternate between them.

    ``limiter`` is one object per process, re-initialised by each create_app: once the second
    app exists, both apps count through the storage object it made. So round-robin alone would
    pass even with memory://. The first two requests therefore go through the first app's own
    storage object (its own Redis connection pool) before the second app replaces it; the
    limit can only be reached at the fourth request if those counts live in the shared store,
    which is exactly what two worker processes pointing at one Redis rely on.
    """
    client_a = first.test_client()
    statuses = [_sign_in(client_a).status_code for _ in range(2)]
    second = _second_instance(first, tmp_path)
    client_b = second.test_client()
    for client in (client_b, client_a, client_b, client_a):
        statuses.append(_sign_in(client).status_code)
    with second.app_context():
        db.engine.dispose()
    return statuses


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL")
@pytest.mark.app_config(RATELIMIT_STORAGE_URI=REDIS_URL)
def test_two_instances_share_one_limit_through_redis(app, tmp_path):
    import redis

    statuses = _requests_across_two_instances(app, tmp_path)

    assert statuses == [422, 422, 422, 429, 429, 429]
    store = redis.Redis.from_url(REDIS_URL)
    keys = store.keys(f"*LIMITER/{app.config['RATELIMIT_KEY_PREFIX']}/*")
    assert keys  # the counters are in Redis, under this test's prefix
    store.delete(*keys)
    store.close()


@pytest.mark.app_config(RATELIMIT_STORAGE_URI="memory://")
def test_per_process_memory_would_not_share_the_limit(app, tmp_path):
    """The control for the Redis test: with memory:// the same requests pass the limit."""
    statuses = _requests_across_two_instances(app, tmp_path)

    assert statuses == [422, 422, 422, 422, 422, 429]
