"""One code, many parallel sign-ins: real threads on real PostgreSQL connections.

Each thread has its own client that has passed the password step; all post the same code at
once. A code works once: exactly one of them gets a session. SQLite serialises writers, so
these tests only mean something on PostgreSQL.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.extensions import db
from terminus_hub.models import UserSession
from tests.factories import Person
from tests.test_mfa import code_at
from tests.test_mfa import enrolled
from tests.test_mfa import password_step

PARALLEL = 8

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
    ),
    pytest.mark.app_config(
        # Enough attempts that the lockout does not decide: the code's single use must.
        TERMINUS_LOCKOUT_MAX_ATTEMPTS=100,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 20, "max_overflow": 10},
    ),
]


def _waiting_clients(app: Flask, person: Person) -> list[FlaskClient]:
    clients = [app.test_client() for _ in range(PARALLEL)]
    for client in clients:
        assert password_step(client, person).location == "/sign_in/mfa"
    return clients


def _post_together(clients: list[FlaskClient], code: str) -> list[int]:
    barrier = threading.Barrier(len(clients))

    def attempt(client: FlaskClient) -> int:
        barrier.wait(timeout=30)
        return client.post("/sign_in/mfa", data={"code": code}).status_code

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        return list(pool.map(attempt, clients, timeout=60))


def _sessions(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(UserSession)) or 0


def test_one_authenticator_code_signs_in_one_of_many_parallel_attempts(
    app: Flask, user: Person
) -> None:
    secret, _ = enrolled(app, user)
    clients = _waiting_clients(app, user)
    statuses = _post_together(clients, code_at(secret))
    assert sorted(statuses) == [303] + [422] * (PARALLEL - 1)
    assert _sessions(app) == 1


def test_one_recovery_code_signs_in_one_of_many_parallel_attempts(app: Flask, user: Person) -> None:
    _, codes = enrolled(app, user)
    clients = _waiting_clients(app, user)
    statuses = _post_together(clients, codes[0])
    assert sorted(statuses) == [303] + [422] * (PARALLEL - 1)
    assert _sessions(app) == 1
