"""Server-side sessions: rotation at sign-in, real sign-out, idle and absolute expiry."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.auth.views import SIGNED_OUT
from terminus_hub.extensions import db
from terminus_hub.models import UserSession

COOKIE = "thub_session"


def _session_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(UserSession))


def test_sign_in_records_one_session_with_address_and_agent(app, auth, user):
    auth.sign_in(user.email, user.password)
    with app.app_context():
        [row] = db.session.scalars(select(UserSession)).all()
        assert row.user_id == user.id
        assert row.ip_address == "127.0.0.1"
        assert row.user_agent.startswith("Werkzeug")


def test_sign_in_starts_a_new_session_and_the_old_cookie_stays_anonymous(app, client, auth, user):
    client.get("/sign_in")
    client.post("/sign_in/email", data={"email": user.email})
    before = client.get_cookie(COOKIE)
    auth.sign_in(user.email, user.password)
    after = client.get_cookie(COOKIE)
    assert after is not None and (before is None or before.value != after.value)
    if before is not None:
        replay = app.test_client()
        replay.set_cookie(COOKIE, before.value)
        assert replay.get("/accounts").status_code == 302


def test_sign_out_ends_the_session_and_a_copied_cookie_stops_working(app, client, auth, user):
    auth.sign_in(user.email, user.password)
    copied = client.get_cookie(COOKIE).value
    response = auth.sign_out()
    assert response.status_code == 303 and response.location == "/sign_in"
    assert SIGNED_OUT in client.get("/sign_in").get_data(as_text=True)
    assert _session_count(app) == 0
    thief = app.test_client()
    thief.set_cookie(COOKIE, copied)
    assert thief.get(f"/a/{user.account_slug}/").status_code == 302


def test_sign_out_only_accepts_post(auth, client, user):
    auth.sign_in(user.email, user.password)
    assert client.get("/sign_out").status_code == 405
    assert client.get("/accounts").status_code == 200


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_sign_out_without_a_csrf_token_signs_nobody_out(app, client, user):
    page = client.get("/sign_in/password").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    client.post(
        "/sign_in/password",
        data={"email": user.email, "password": user.password, "csrf_token": token},
    )
    assert client.get("/accounts").status_code == 200
    assert client.post("/sign_out").status_code == 400
    assert client.get("/accounts").status_code == 200


def test_sessions_end_after_idle_hours(client, auth, user):
    auth.sign_in(user.email, user.password)
    with freeze_time(timedelta(hours=12, minutes=1)):
        assert client.get("/accounts").status_code == 302


def test_activity_keeps_a_session_alive_until_its_maximum_age(client, auth, user):
    start = datetime.now(UTC)
    auth.sign_in(user.email, user.password)
    # Visits every eight hours keep it from going idle, but not past fourteen days.
    for hours in range(8, 14 * 24, 8):
        with freeze_time(start + timedelta(hours=hours)):
            assert client.get("/accounts").status_code == 200
    with freeze_time(start + timedelta(days=14, minutes=1)):
        assert client.get("/accounts").status_code == 302


@pytest.mark.app_config(TERMINUS_SESSION_IDLE_HOURS=1)
def test_idle_setting_is_honoured(client, auth, user):
    auth.sign_in(user.email, user.password)
    with freeze_time(timedelta(minutes=59)):
        assert client.get("/accounts").status_code == 200
    with freeze_time(timedelta(minutes=59 + 61)):
        assert client.get("/accounts").status_code == 302


def test_session_tokens_are_unique_and_not_stored_in_the_clear(app, auth, client, user):
    auth.sign_in(user.email, user.password)
    auth.sign_out()
    auth.sign_in(user.email, user.password)
    with app.app_context():
        hashes = db.session.scalars(select(UserSession.token_hash)).all()
    assert len(hashes) == 1 and len(hashes[0]) == 64


def test_authenticated_pages_are_not_cached(auth, client, user):
    auth.sign_in(user.email, user.password)
    response = client.get(f"/a/{user.account_slug}/")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cookie" in response.headers["Vary"]


@pytest.mark.app_config(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_NAME=None)
def test_production_cookie_is_secure_httponly_lax_host_prefixed(client, user):
    response = client.post(
        "/sign_in/password",
        data={"email": user.email, "password": user.password},
        base_url="https://localhost",
    )
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-thub_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/" in cookie and "Domain" not in cookie
