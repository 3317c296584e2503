"""The account picker and account home."""

from __future__ import annotations

import re

from sqlalchemy import select

from terminus_hub.extensions import db
from terminus_hub.models import UserSession
from tests import factories


def test_account_home_lists_its_workspaces(auth, client, user):
    auth.sign_in(user.email, user.password)
    response = client.get(f"/a/{user.account_slug}/")
    assert response.status_code == 200
    assert "Main" in response.get_data(as_text=True)


def test_account_home_becomes_the_sessions_current_account(app, auth, client, user):
    auth.sign_in(user.email, user.password)
    client.get(f"/a/{user.account_slug}/")
    with app.app_context():
        row = db.session.scalar(select(UserSession))
        assert row.account_id is not None
        assert db.session.get(type(row), row.id).account_id == row.account_id


def test_non_member_gets_404_like_a_missing_account(app, auth, client, user):
    stranger = factories.make_person(app)
    auth.sign_in(user.email, user.password)
    other = client.get(f"/a/{stranger.account_slug}/")
    missing = client.get("/a/no-such-account/")
    assert other.status_code == missing.status_code == 404
    # The same page, byte for byte, but for the CSRF token (signed with the current second).
    assert without_csrf_token(other.data) == without_csrf_token(missing.data)


def without_csrf_token(page: bytes) -> bytes:
    return re.sub(rb'(name="csrf-token" content=")[^"]*"', rb'\1"', page)


def test_weird_slugs_are_simply_not_found(auth, client, user):
    auth.sign_in(user.email, user.password)
    for slug in ["' OR 1=1--", "x" * 500, "..%2F..%2Fetc", "UPPER"]:
        assert client.get(f"/a/{slug}/").status_code == 404
    assert client.get("/a/%00/").status_code == 400


def test_picker_shows_names_as_text_not_markup(app, auth, client, user):
    evil = factories.make_account(app, user.email, name="<img src=x onerror=alert(1)>")
    auth.sign_in(user.email, user.password)
    page = client.get("/accounts").get_data(as_text=True)
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert f"/a/{evil}/" in page


def test_picker_needs_sign_in(client):
    response = client.get("/accounts")
    assert response.status_code == 302
    assert response.location == "/sign_in?next=%2Faccounts"


def test_member_added_later_sees_both_accounts(app, auth, client, user):
    owner = factories.make_person(app)
    factories.make_membership(app, owner.account_slug, user.email, role="member")
    auth.sign_in(user.email, user.password)
    page = client.get("/accounts").get_data(as_text=True)
    assert f"/a/{owner.account_slug}/" in page and f"/a/{user.account_slug}/" in page
    home = client.get(f"/a/{owner.account_slug}/").get_data(as_text=True)
    assert "Member" in home
