"""Two instances behind one address behave as one: lockout, limits, keys and sessions hold."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from terminus_hub.core.signin import INCORRECT
from terminus_hub.models import User
from tests.faults.conftest import LOCKOUT_MAX_ATTEMPTS
from tests.faults.conftest import SIGN_IN_LIMIT
from tests.faults.conftest import Browser
from tests.faults.conftest import next_address
from tests.faults.conftest import wait_for
from tests.faults.conftest import wrong_sign_ins

pytestmark = pytest.mark.faults


def test_failures_spread_over_both_instances_lock_at_the_threshold(cluster, browsers):
    """Broke: nothing; a guesser spread wrong passwords over the two instances (3 on A, then 2
    on B), from five addresses so that no rate limit got in the way.

    Saw: the fifth failure locked the person (TERMINUS_LOCKOUT_MAX_ATTEMPTS = 5), whichever
    instance counted it: the right password then failed on A and on B with the same
    "Incorrect email or password.", and one unlock mail went out.

    Lost: nothing: the count lives in PostgreSQL, not in a worker.
    """
    person = cluster.person()
    plan = [cluster.a] * 3 + [cluster.b] * (LOCKOUT_MAX_ATTEMPTS - 3)
    for instance in plan:
        response = browsers(instance.url).sign_in(person.email, "not the password")
        assert response.status_code == 422
        assert INCORRECT in response.text

    user = cluster.scalar(select(User).where(User.email == person.email))
    assert user.failed_attempts == LOCKOUT_MAX_ATTEMPTS
    assert user.locked_until is not None
    for instance in cluster.instances:
        response = browsers(instance.url).sign_in(person.email)
        assert response.status_code == 422
        assert INCORRECT in response.text
    unlock_mail = wait_for(
        lambda: [m for m in cluster.mail.received if m.rcpt_tos == [person.email]], 10
    )
    assert len(unlock_mail) == 1


def test_rate_limit_spent_on_one_instance_is_spent_on_the_other(cluster):
    """Broke: nothing; one client address posted failed sign-ins to A and B in turn.

    Saw: exactly TERMINUS_SIGN_IN_RATE_LIMIT (5 per minute) attempts got an answer, 3 on A
    and 2 on B; the next ones were refused with 429 on both, with Retry-After.

    Lost: nothing: the counters live in Redis, shared by every worker of both instances.
    """
    address = next_address()
    statuses = wrong_sign_ins([cluster.a, cluster.b], address, SIGN_IN_LIMIT)
    assert statuses == [422] * SIGN_IN_LIMIT
    for instance in cluster.instances:
        browser = Browser(instance.url, address)
        try:
            data = {"email": "x@example.com", "password": "y", "csrf_token": browser.csrf_token()}
            refused = browser.post("/sign_in/password", data=data)
        finally:
            browser.close()
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0


def test_key_revoked_through_one_instance_fails_on_the_other_at_once(cluster, browsers):
    """Broke: nothing; an owner revoked one key through the API on A (a signed-in session
    with its CSRF token) and an operator revoked another with `flask keys revoke`.

    Saw: both keys worked on B just before (six requests each); B refused each with 401
    `invalid_token` on the very next request and the five after it (and so did A).

    Lost: nothing else: the owner's other key kept working.
    """
    person = cluster.person()
    revoked_id, revoked = cluster.api_key(person.account_slug, "to revoke through the API")
    cli_id, cli_revoked = cluster.api_key(person.account_slug, "to revoke from the CLI")
    _, kept = cluster.api_key(person.account_slug, "kept")

    def status_on(instance, token: str) -> int:  # type: ignore[no-untyped-def]
        bearer = {"Authorization": f"Bearer {token}"}
        return browsers(instance.url).get("/api/v1/account", headers=bearer).status_code

    for token in (revoked, cli_revoked, kept):
        assert [status_on(cluster.b, token) for _ in range(6)] == [200] * 6  # over B's workers

    owner = browsers(cluster.a.url)
    assert owner.sign_in(person.email).status_code == 303
    csrf = owner.csrf_token(f"/a/{person.account_slug}/")
    response = owner.delete(f"/api/v1/api_keys/{revoked_id}", headers={"X-CSRFToken": csrf})
    assert response.status_code == 204
    assert [status_on(cluster.b, revoked) for _ in range(6)] == [401] * 6
    assert status_on(cluster.a, revoked) == 401

    result = cluster.flask("keys", "revoke", cli_id)
    assert result.returncode == 0, result.stderr
    assert [status_on(cluster.b, cli_revoked) for _ in range(6)] == [401] * 6
    assert status_on(cluster.a, cli_revoked) == 401
    bearer = {"Authorization": f"Bearer {revoked}"}
    refusal = browsers(cluster.b.url).get("/api/v1/account", headers=bearer)
    assert refusal.json()["error"]["code"] == "invalid_token"

    assert [status_on(instance, kept) for instance in cluster.instances] == [200, 200]


def test_session_signed_out_on_one_instance_is_dead_on_the_other(cluster, browsers):
    """Broke: nothing; a person signed in on A, their session cookie was copied into a second
    client talking to B, and then they signed out on A.

    Saw: the copied cookie worked on B (the account page, the API) while the session lived;
    right after the sign-out on A, B sent it to sign in for the page and answered 401 for
    the API, on each of four tries.

    Lost: nothing: sessions are rows in PostgreSQL, signed with the one shared SECRET_KEY.
    """
    person = cluster.person()
    home = f"/a/{person.account_slug}/"
    on_a = browsers(cluster.a.url)
    assert on_a.sign_in(person.email).status_code == 303
    on_b = browsers(cluster.b.url)
    on_b.http.cookies.update(on_a.cookies())

    assert [on_b.get(home).status_code for _ in range(4)] == [200] * 4
    assert on_b.get("/api/v1/account").json()["auth"] == "session"

    signed_out = on_a.sign_out()
    assert signed_out.status_code == 303
    assert on_a.get(home).status_code in (302, 303)

    for _ in range(4):
        page = on_b.get(home)
        assert page.status_code in (302, 303)
        assert page.headers["Location"].startswith("/sign_in")
        assert on_b.get("/api/v1/account").status_code == 401
