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
from terminus_hub.models import Passkey
from terminus_hub.models import RecoveryCode
from terminus_hub.models import User
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


def test_removing_every_factor_at_once_turns_two_step_sign_in_off(app: Flask, user: Person) -> None:
    """The app and two passkeys removed by three requests at the same moment: each sees the
    others' work (the person's row is taken first), so the last one turns it off."""
    secret, _ = enrolled(app, user)
    clients = []
    for step in (-1, 0, 1):
        client = app.test_client()
        assert password_step(client, user).location == "/sign_in/mfa"
        assert client.post("/sign_in/mfa", data={"code": code_at(secret, step)}).status_code == 303
        clients.append(client)
    with app.app_context():
        keys = [
            Passkey(user_id=user.id, credential_id=f"cred-{n}", public_key=b"k", name=f"K{n}")
            for n in range(2)
        ]
        db.session.add_all(keys)
        db.session.commit()
        paths = [f"/settings/passkeys/{k.id}/delete" for k in keys] + ["/settings/mfa/totp/disable"]
    barrier = threading.Barrier(len(clients))

    def remove(client: FlaskClient, path: str) -> int:
        barrier.wait(timeout=30)
        return client.post(path).status_code

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        statuses = list(pool.map(remove, clients, paths, timeout=60))
    assert statuses == [303, 303, 303]
    with app.app_context():
        person = db.session.get_one(User, user.id)
        assert person.mfa_enabled_at is None
        assert db.session.scalar(select(func.count()).select_from(Passkey)) == 0
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
