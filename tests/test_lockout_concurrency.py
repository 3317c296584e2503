"""Lockout under parallel guessing (docs/security.md): real threads, real PostgreSQL connections.

Each thread drives its own test client; Flask-SQLAlchemy gives each request (one app context per
thread) its own session and pooled connection, so the counter is raced exactly as by gunicorn
workers. SQLite serialises writers, so these tests only mean something on PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub import passwords
from terminus_hub.extensions import db
from terminus_hub.models import User
from terminus_hub.models import UserSession

WRONG = "not the right password"
MAX_ATTEMPTS = 5

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
    ),
    pytest.mark.app_config(
        TERMINUS_LOCKOUT_MAX_ATTEMPTS=MAX_ATTEMPTS,
        # Enough connections for every thread at once (PostgreSQL here allows 100).
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 25, "max_overflow": 10},
    ),
]


class PasswordChecks:
    """Count bcrypt checks, telling real ones from the dummy check paid for timing."""

    def __init__(self, dummy_hash: bytes) -> None:
        self._dummy_hash = dummy_hash
        self._lock = threading.Lock()
        self.real = 0
        self.dummy = 0

    def wrap(self, checkpw):  # type: ignore[no-untyped-def]
        def counting(password: bytes, hashed: bytes) -> bool:
            with self._lock:
                if hashed == self._dummy_hash:
                    self.dummy += 1
                else:
                    self.real += 1
            return checkpw(password, hashed)

        return counting


@pytest.fixture
def checks(app, monkeypatch: pytest.MonkeyPatch) -> PasswordChecks:
    dummy_hash = passwords._dummy_hash(app.config["TERMINUS_BCRYPT_ROUNDS"])  # made once, cached
    counter = PasswordChecks(dummy_hash)
    monkeypatch.setattr(passwords.bcrypt, "checkpw", counter.wrap(passwords.bcrypt.checkpw))
    return counter


def _post_together(app, attempts: list[tuple[str, str]]) -> list[int]:
    """Post every (email, password) from its own thread and client, all released at once."""
    barrier = threading.Barrier(len(attempts))

    def attempt(email: str, password: str) -> int:
        client = app.test_client()
        barrier.wait(timeout=30)
        data = {"email": email, "password": password}
        return client.post("/sign_in/password", data=data).status_code

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        futures = [pool.submit(attempt, email, password) for email, password in attempts]
        return [future.result(timeout=60) for future in futures]


def _user_row(app, user_id: str) -> User:
    with app.app_context():
        row = db.session.get(User, user_id)
        db.session.expunge(row)
        return row


def _sessions_of(app, user_id: str) -> int:
    with app.app_context():
        query = select(func.count()).select_from(UserSession).where(UserSession.user_id == user_id)
        return db.session.scalar(query)


def _unlock_mails(outbox, email: str) -> list:
    return [m for m in outbox.messages(email) if m.template == "unlock"]


def test_parallel_wrong_passwords_lock_without_lost_updates(app, user, outbox, checks):
    statuses = _post_together(app, [(user.email, WRONG)] * 20)

    assert statuses == [422] * 20
    row = _user_row(app, user.id)
    assert row.failed_attempts == 20  # every attempt counted: no lost updates
    assert row.locked_until is not None
    assert len(_unlock_mails(outbox, user.email)) == 1
    # At most the threshold was ever judged; the rest paid the dummy check for equal timing.
    assert checks.real <= MAX_ATTEMPTS
    assert checks.real + checks.dummy == 20


def test_right_password_after_the_threshold_gets_no_session(app, user, outbox, checks):
    """30 wrong guesses race; the right password goes in once the count has passed N."""
    barrier = threading.Barrier(31)
    outcome: dict[str, object] = {}

    def wrong():  # type: ignore[no-untyped-def]
        client = app.test_client()
        barrier.wait(timeout=30)
        return client.post("/sign_in/password", data={"email": user.email, "password": WRONG})

    def right_after_threshold() -> None:
        client = app.test_client()
        barrier.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _user_row(app, user.id).failed_attempts < MAX_ATTEMPTS:
            assert time.monotonic() < deadline, "the wrong guesses never reached the threshold"
            time.sleep(0.001)
        data = {"email": user.email, "password": user.password}
        outcome["response"] = client.post("/sign_in/password", data=data)
        outcome["account_page"] = client.get("/accounts").status_code

    with ThreadPoolExecutor(max_workers=31) as pool:
        wrong_futures = [pool.submit(wrong) for _ in range(30)]
        right_future = pool.submit(right_after_threshold)
        right_future.result(timeout=60)
        wrong_responses = [future.result(timeout=60) for future in wrong_futures]

    response = outcome["response"]
    assert response.status_code == 422  # the generic failure, not a 303 to an account
    assert response.location is None
    assert outcome["account_page"] != 200
    assert _sessions_of(app, user.id) == 0
    assert [r.status_code for r in wrong_responses] == [422] * 30
    row = _user_row(app, user.id)
    assert row.failed_attempts == 31  # the right password, arriving locked, counted too
    assert row.locked_until is not None
    assert len(_unlock_mails(outbox, user.email)) == 1
    assert checks.real <= MAX_ATTEMPTS
    assert checks.real + checks.dummy == 31
