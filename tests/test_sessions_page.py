"""Your sessions page /sessions: each signed-in browser, signing out one or every other (issue 6).

docs/security.md: sessions are server-side rows; signing one out ends it for real, so the
signed-out browser's cookie stops working on its next request. No raw session ids are shown.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from terminus_hub.accounts.session_views import SIGNED_OUT_ONE
from terminus_hub.accounts.session_views import SIGNED_OUT_OTHERS
from terminus_hub.accounts.session_views import describe_device
from terminus_hub.extensions import db
from terminus_hub.models import UserSession
from tests import factories
from tests.test_members import text_of

COOKIE = "thub_session"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
SESSION_ROW_ID = re.compile(r"/sessions/(ses_[a-z2-7]+)/sign_out")


# helpers


def signed_in(
    app: Flask, email: str, agent: str = FIREFOX_LINUX, address: str = "198.51.100.7"
) -> FlaskClient:
    """A browser with its own user agent and address, signed in as this person."""
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": address, "HTTP_USER_AGENT": agent})
    response = client.post(
        "/sign_in/password", data={"email": email, "password": factories.PASSWORD}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def is_signed_in(client: FlaskClient, slug: str) -> bool:
    """Whether the browser's cookie still reaches its account (sign-in redirect otherwise)."""
    response = client.get(f"/a/{slug}/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def session_rows(app: Flask, user_id: str) -> list[UserSession]:
    with app.app_context():
        rows = list(db.session.scalars(select(UserSession).where(UserSession.user_id == user_id)))
        db.session.expunge_all()
        return rows


def row_id_of(app: Flask, client: FlaskClient, user_id: str) -> str:
    """The public id of the session row behind this browser's cookie."""
    with client.session_transaction() as saved:
        token = saved["sid"]
    digest = hashlib.sha256(token.encode("ascii")).hexdigest()
    [row] = [r for r in session_rows(app, user_id) if r.token_hash == digest]
    return row.id


# the page


def test_page_lists_each_browser_with_device_address_and_times(app, user):
    laptop = signed_in(app, user.email, FIREFOX_LINUX, "198.51.100.7")
    signed_in(app, user.email, CHROME_WINDOWS, "203.0.113.9")

    response = laptop.get("/sessions")

    assert response.status_code == 200
    page = text_of(response)
    assert "Firefox on Linux" in page and "198.51.100.7" in page
    assert "Chrome on Windows" in page and "203.0.113.9" in page
    times = re.findall(r'<time datetime="([^"]+)"', response.get_data(as_text=True))
    assert len(times) == 4  # signed in and last active, for each of the two
    assert page.count("UTC") >= 4


def test_page_marks_the_current_browser_and_offers_no_sign_out_for_it(app, user):
    laptop = signed_in(app, user.email, FIREFOX_LINUX)
    signed_in(app, user.email, CHROME_WINDOWS)

    page = laptop.get("/sessions").get_data(as_text=True)

    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    current = [r for r in rows if "This browser" in r]
    assert len(current) == 1
    assert "Firefox on Linux" in current[0]
    assert "/sign_out" not in current[0]
    assert page.index("Firefox on Linux") < page.index("Chrome on Windows")  # current first
    other = [r for r in rows if "Chrome on Windows" in r]
    assert SESSION_ROW_ID.search(other[0])


def test_page_shows_no_session_secret(app, user):
    laptop = signed_in(app, user.email, FIREFOX_LINUX)
    phone = signed_in(app, user.email, SAFARI_IPHONE)

    page = laptop.get("/sessions").get_data(as_text=True)

    for client in (laptop, phone):
        cookie = client.get_cookie(COOKIE).value
        with client.session_transaction() as saved:
            token = saved["sid"]
        assert cookie not in page
        assert token not in page
        assert hashlib.sha256(token.encode("ascii")).hexdigest() not in page
    for row in session_rows(app, user.id):
        assert row.token_hash not in page
    shown = SESSION_ROW_ID.findall(page)
    assert shown and all(s in {r.id for r in session_rows(app, user.id)} for s in shown)


def test_page_lists_only_your_own_sessions(app, user):
    other = factories.make_person(app)
    signed_in(app, other.email, SAFARI_IPHONE, "192.0.2.44")
    mine = signed_in(app, user.email, FIREFOX_LINUX)

    page = text_of(mine.get("/sessions"))

    assert "iPhone" not in page and "192.0.2.44" not in page


def test_one_session_has_no_sign_out_others_button(app, user):
    page = signed_in(app, user.email).get("/sessions").get_data(as_text=True)

    assert "Sign out every other session" not in page


def test_page_needs_sign_in(client):
    response = client.get("/sessions")

    assert response.status_code == 302
    assert response.location.startswith("/sign_in")


def test_header_links_to_the_sessions_page(app, user):
    page = signed_in(app, user.email).get(f"/a/{user.account_slug}/").get_data(as_text=True)

    assert 'href="/sessions"' in page


@pytest.mark.parametrize(
    ("agent", "words"),
    [
        (FIREFOX_LINUX, "Firefox on Linux"),
        (CHROME_WINDOWS, "Chrome on Windows"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.56",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.5 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("curl/8.5.0", "curl"),
        ("python-requests/2.32", "python-requests"),
        ("", "Unknown device"),
    ],
    ids=["firefox", "chrome", "iphone", "edge", "mac", "android", "curl", "requests", "empty"],
)
def test_device_is_described_from_the_user_agent(agent, words):
    assert describe_device(agent) == words


def test_device_text_is_escaped(app, user):
    laptop = signed_in(app, user.email, "<script>alert(1)</script>")

    page = laptop.get("/sessions").get_data(as_text=True)

    assert "<script>alert(1)" not in page


# signing out


def test_signing_out_another_session_kills_its_cookie_on_the_next_request(app, user):
    laptop = signed_in(app, user.email, FIREFOX_LINUX)
    phone = signed_in(app, user.email, SAFARI_IPHONE)
    assert is_signed_in(phone, user.account_slug)
    copied = phone.get_cookie(COOKIE).value

    response = laptop.post(f"/sessions/{row_id_of(app, phone, user.id)}/sign_out")

    assert response.status_code == 303
    assert response.location == "/sessions"
    assert SIGNED_OUT_ONE in text_of(laptop.get("/sessions"))
    assert not is_signed_in(phone, user.account_slug)
    assert phone.get("/api/v1/account").status_code == 401
    thief = app.test_client()
    thief.set_cookie(COOKIE, copied)
    assert not is_signed_in(thief, user.account_slug)
    assert is_signed_in(laptop, user.account_slug)
    assert len(session_rows(app, user.id)) == 1


def test_signing_out_every_other_session_keeps_this_one(app, user):
    laptop = signed_in(app, user.email, FIREFOX_LINUX)
    phone = signed_in(app, user.email, SAFARI_IPHONE)
    desktop = signed_in(app, user.email, CHROME_WINDOWS)
    bystander = factories.make_person(app)
    theirs = signed_in(app, bystander.email)

    response = laptop.post("/sessions/sign_out_others")

    assert response.status_code == 303
    assert response.location == "/sessions"
    page = text_of(laptop.get("/sessions"))
    assert SIGNED_OUT_OTHERS in page
    assert "iPhone" not in page and "Chrome on Windows" not in page
    assert is_signed_in(laptop, user.account_slug)
    assert not is_signed_in(phone, user.account_slug)
    assert not is_signed_in(desktop, user.account_slug)
    assert is_signed_in(theirs, bystander.account_slug)  # other people's sessions untouched
    assert len(session_rows(app, user.id)) == 1


def test_you_cannot_sign_out_someone_elses_session(app, user):
    other = factories.make_person(app)
    theirs = signed_in(app, other.email)
    mine = signed_in(app, user.email)

    response = mine.post(f"/sessions/{row_id_of(app, theirs, other.id)}/sign_out")

    assert response.status_code == 404
    assert is_signed_in(theirs, other.account_slug)


def test_the_current_session_is_not_signed_out_through_the_row_button(app, user):
    laptop = signed_in(app, user.email)

    response = laptop.post(f"/sessions/{row_id_of(app, laptop, user.id)}/sign_out")

    assert response.status_code == 404
    assert is_signed_in(laptop, user.account_slug)


@pytest.mark.parametrize("session_id", ["ses_nosuchsession", "1", "x" * 300])
def test_unknown_session_ids_are_not_found(app, user, session_id):
    laptop = signed_in(app, user.email)

    assert laptop.post(f"/sessions/{session_id}/sign_out").status_code == 404


@pytest.mark.parametrize("path", ["/sessions/sign_out_others", "/sessions/ses_abc/sign_out"])
def test_sign_out_endpoints_only_accept_post(app, user, path):
    laptop = signed_in(app, user.email)

    assert laptop.get(path).status_code == 405


@pytest.mark.parametrize("path", ["/sessions/sign_out_others", "/sessions/ses_abc/sign_out"])
def test_sign_out_endpoints_need_sign_in(client, path):
    response: Any = client.post(path)

    assert response.status_code == 302
    assert response.location.startswith("/sign_in")


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def signed_in_with_csrf(app: Flask, email: str) -> FlaskClient:
    """Sign in through the real form, CSRF token included (for apps with CSRF on)."""
    client = app.test_client()
    token = CSRF_META.search(client.get("/sign_in/password").get_data(as_text=True)).group(1)
    response = client.post(
        "/sign_in/password",
        data={"email": email, "password": factories.PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    return client


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_signing_out_sessions_needs_the_csrf_token(app, user):
    laptop = signed_in_with_csrf(app, user.email)
    phone = signed_in_with_csrf(app, user.email)
    phone_row = row_id_of(app, phone, user.id)

    assert laptop.post("/sessions/sign_out_others").status_code == 400
    assert laptop.post(f"/sessions/{phone_row}/sign_out").status_code == 400
    assert is_signed_in(phone, user.account_slug)

    csrf = CSRF_META.search(laptop.get("/sessions").get_data(as_text=True)).group(1)
    assert laptop.post("/sessions/sign_out_others", data={"csrf_token": csrf}).status_code == 303
    assert not is_signed_in(phone, user.account_slug)
