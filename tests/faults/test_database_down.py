"""PostgreSQL down: every answer is a clear 503, nobody signs in, and the app comes back alone."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.models import User
from terminus_hub.models import UserSession
from tests.faults.conftest import Cluster
from tests.faults.conftest import assert_unavailable_api
from tests.faults.conftest import assert_unavailable_page
from tests.faults.conftest import page_text

pytestmark = pytest.mark.faults


def sessions_of(cluster: Cluster, user_id: str) -> int:
    return cluster.scalar(
        select(func.count()).select_from(UserSession).where(UserSession.user_id == user_id)
    )


def test_database_down_answers_503_everywhere_and_recovers_by_itself(cluster, browsers):
    """Broke: PostgreSQL. The proxy between both instances and the database closed every
    connection and refused new ones (the database host is down).

    Saw: on both instances, /healthz 503 naming "database"; sign-in (right password of a real
    person and an unknown email: the same page, CSRF token aside), the email step, sign-up and
    forgot-password answered the friendly 503 page within a few seconds, with no traceback,
    driver name or connection string; the API answered 503 `unavailable`. Nobody was signed
    in. After the proxy listened again, the very next requests on both instances worked
    (health, sign-in, the API, sign-up of the address tried during the outage), served by the
    same workers: nothing restarted.

    Lost: nothing. No session, no half-made user; the failed-attempt counter was not touched.
    """
    person = cluster.person()
    _, token = cluster.api_key(person.account_slug)
    bearer = {"Authorization": f"Bearer {token}"}
    new_email = "during-outage@example.com"
    visitors = {}
    for instance in cluster.instances:
        visitor = browsers(instance.url)
        forms = {path: visitor.csrf_token(path) for path in ("/sign_in", "/sign_up")}
        visitors[instance.name] = (visitor, forms)
    workers = {instance.name: instance.worker_pids() for instance in cluster.instances}
    sessions_before = sessions_of(cluster, person.id)

    cluster.proxy.cut()
    try:
        for instance in cluster.instances:
            visitor, forms = visitors[instance.name]
            started = time.monotonic()

            health = visitor.health()
            assert health.status_code == 503
            assert health.json()["failing"] == ["database"]
            assert health.json()["checks"]["database"] == "unavailable"
            assert cluster.leaks(health.text) == []

            known = visitor.post(
                "/sign_in/password",
                data={
                    "email": person.email,
                    "password": person.password,
                    "csrf_token": forms["/sign_in"],
                },
            )
            unknown = visitor.post(
                "/sign_in/password",
                data={
                    "email": "nobody-here@example.com",
                    "password": person.password,
                    "csrf_token": forms["/sign_in"],
                },
            )
            assert_unavailable_page(cluster, known)
            assert_unavailable_page(cluster, unknown)
            assert page_text(known) == page_text(unknown)

            email_step = visitor.post(
                "/sign_in/email", data={"email": person.email, "csrf_token": forms["/sign_in"]}
            )
            assert_unavailable_page(cluster, email_step)
            sign_up = visitor.post(
                "/sign_up",
                data={
                    "name": "Outage Tester",
                    "email": new_email,
                    "password": person.password,
                    "csrf_token": forms["/sign_up"],
                },
            )
            assert_unavailable_page(cluster, sign_up)
            forgot = visitor.post(
                "/password/forgot", data={"email": person.email, "csrf_token": forms["/sign_in"]}
            )
            assert_unavailable_page(cluster, forgot)

            assert_unavailable_api(cluster, visitor.get("/api/v1/account", headers=bearer))
            assert_unavailable_api(cluster, visitor.get("/api/v1/workspaces", headers=bearer))
            assert time.monotonic() - started < 5  # a refused connection fails at once
    finally:
        cluster.proxy.restore()

    # Recovery by itself: no retries, no restart; the first request of each worker reconnects.
    for instance in cluster.instances:
        visitor, _ = visitors[instance.name]
        for _ in range(3):
            assert visitor.get("/healthz").status_code == 200
            assert visitor.get("/api/v1/account", headers=bearer).status_code == 200
        assert visitor.sign_in(person.email).status_code == 303
        assert instance.worker_pids() == workers[instance.name]
    assert sessions_of(cluster, person.id) == sessions_before + 2  # only the two made after
    user = cluster.scalar(select(User).where(User.email == person.email))
    assert user.failed_attempts == 0
    assert user.locked_until is None
    assert cluster.scalar(select(User).where(User.email == new_email)) is None
    retry = browsers(cluster.b.url).sign_up(new_email)
    assert retry.status_code == 303
    assert cluster.scalar(select(User).where(User.email == new_email)) is not None


def test_signed_in_page_while_database_down_is_the_503_page(cluster, browsers):
    """Broke: PostgreSQL (proxy cut) while a person was signed in on instance A.

    Saw (expected): the friendly 503 page for their next page view, on A and B, and their
    session still valid once the database is back. Seen today: a bare 500 from gunicorn with
    an empty body.

    Lost: nothing (the session works again after the restore).
    """
    person = cluster.person()
    home = f"/a/{person.account_slug}/"
    signed_in = browsers(cluster.a.url)
    assert signed_in.sign_in(person.email).status_code == 303
    assert signed_in.get(home).status_code == 200

    cluster.proxy.cut()
    try:
        answers = [signed_in.get(home), signed_in.get(cluster.b.url + home)]
    finally:
        cluster.proxy.restore()

    assert signed_in.get(home).status_code == 200
    for response in answers:
        assert_unavailable_page(cluster, response)
