"""Forgot password and reset links: same answer for all, single use, expiry, sessions ended."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from freezegun import freeze_time

from terminus_hub.core.recovery import PASSWORD_CHANGED
from terminus_hub.extensions import db
from terminus_hub.links import INVALID_LINK
from terminus_hub.models import User
from tests import factories

NEW = "a brand new passphrase, please"
COOKIE = "thub_session"


def _forgot(client, email):
    return client.post("/password/forgot", data={"email": email})


def _reset_link(client, outbox, email):
    _forgot(client, email)
    return outbox.last_link(email)


def test_forgot_page_has_an_email_field(client):
    page = client.get("/password/forgot").get_data(as_text=True)
    assert 'name="email"' in page and 'action="/password/forgot"' in page


def test_sign_in_pages_link_to_forgot_password(client):
    for path in ("/sign_in", "/sign_in/password"):
        assert 'href="/password/forgot"' in client.get(path).get_data(as_text=True)


def test_every_address_gets_the_same_answer(app, client, outbox, user):
    unconfirmed = factories.make_person(app, confirmed=False)
    answers = []
    for email in (user.email, "nobody@example.com", unconfirmed.email):
        response = _forgot(client, email)
        answers.append((response.status_code, response.location))
        page = client.get(response.location).get_data(as_text=True)
        assert "If that email address has an account" in page
    assert len(set(answers)) == 1
    assert outbox.messages("nobody@example.com") == []
    assert [m.template for m in outbox.messages(user.email)] == ["reset"]


def test_forgot_password_does_not_change_or_lock_the_account(app, auth, client, user):
    for _ in range(3):
        _forgot(client, user.email)
    assert auth.sign_in(user.email, user.password).status_code == 303


def test_reset_link_get_shows_a_form_and_changes_nothing(auth, client, outbox, user):
    link = _reset_link(client, outbox, user.email)
    page = client.get(link)
    assert page.status_code == 200
    assert 'autocomplete="new-password"' in page.get_data(as_text=True)
    assert client.get(link).status_code == 200  # not consumed by looking
    assert auth.sign_in(user.email, user.password).status_code == 303


def test_reset_sets_the_password_and_sends_a_notice(auth, client, outbox, user):
    link = _reset_link(client, outbox, user.email)
    response = client.post(link, data={"password": NEW})
    assert response.status_code == 303 and response.location == "/sign_in"
    assert PASSWORD_CHANGED in client.get("/sign_in").get_data(as_text=True)
    assert client.get("/accounts").status_code == 302  # no automatic sign-in
    assert auth.sign_in(user.email, user.password).status_code == 422
    assert auth.sign_in(user.email, NEW).status_code == 303
    assert outbox.messages(user.email)[-1].template == "password_changed"
    assert NEW not in outbox.messages(user.email)[-1].text_body


def test_a_reset_link_works_once(client, outbox, user):
    link = _reset_link(client, outbox, user.email)
    client.post(link, data={"password": NEW})
    again = client.post(link, data={"password": "yet another passphrase here"})
    assert again.status_code == 400
    assert INVALID_LINK in again.get_data(as_text=True)


def test_a_reset_link_expires(client, outbox, user):
    start = datetime.now(UTC)
    link = _reset_link(client, outbox, user.email)
    with freeze_time(start + timedelta(minutes=59)):
        assert client.get(link).status_code == 200
    with freeze_time(start + timedelta(minutes=61)):
        assert client.post(link, data={"password": NEW}).status_code == 400


def test_a_reset_link_dies_when_the_password_changes_another_way(client, outbox, user):
    first = _reset_link(client, outbox, user.email)
    second = _reset_link(client, outbox, user.email)
    assert client.post(second, data={"password": NEW}).status_code == 303
    assert client.post(first, data={"password": "yet another passphrase here"}).status_code == 400


def test_a_reset_link_dies_after_a_successful_sign_in(auth, client, outbox, user):
    link = _reset_link(client, outbox, user.email)
    with freeze_time(datetime.now(UTC) + timedelta(seconds=2)):
        auth.sign_in(user.email, user.password)
        auth.sign_out()
    assert client.get(link).status_code == 400


def test_reset_ends_every_other_session(app, client, outbox, user):
    others = [app.test_client() for _ in range(2)]
    for other in others:
        other.post("/sign_in/password", data={"email": user.email, "password": user.password})
        assert other.get("/accounts").status_code == 200
    link = _reset_link(client, outbox, user.email)
    client.post(link, data={"password": NEW})
    for other in others:
        assert other.get("/accounts").status_code == 302


def test_reset_confirms_the_email_and_clears_a_lock(app, auth, client, outbox):
    person = factories.make_person(app, confirmed=False)
    for _ in range(5):
        auth.sign_in(person.email, "wrong password entirely")
    link = _reset_link(client, outbox, person.email)
    assert client.post(link, data={"password": NEW}).status_code == 303
    assert auth.sign_in(person.email, NEW).status_code == 303
    with app.app_context():
        row = db.session.get(User, person.id)
        assert row.confirmed_at is not None and row.failed_attempts == 0


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "Enter your password."),
        ("short", "Use at least 12 characters."),
        ("password1234", "This password is too easy to guess."),
        ("x" * 1025, "Use at most 1024 characters."),
    ],
)
def test_a_weak_new_password_is_refused_and_the_link_still_works(
    auth, client, outbox, user, password, message
):
    link = _reset_link(client, outbox, user.email)
    response = client.post(link, data={"password": password})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert client.post(link, data={"password": NEW}).status_code == 303


def test_own_email_as_password_is_refused_at_reset(client, outbox, user):
    link = _reset_link(client, outbox, user.email)
    response = client.post(link, data={"password": user.email + user.email})
    assert response.status_code == 422


@pytest.mark.parametrize("token", ["junk", "x" * 5000, "' OR 1=1--"])
def test_tampered_reset_links_show_the_invalid_page(client, token):
    response = client.get(f"/password/reset/{token}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert INVALID_LINK in page and 'href="/password/forgot"' in page


def test_reset_link_uses_the_configured_origin_not_the_host_header(app, client, outbox, user):
    app.config["TERMINUS_BASE_URL"] = "https://hub.example.com"
    client.post(
        "/password/forgot",
        data={"email": user.email},
        headers={"X-Forwarded-Host": "evil.example"},
    )
    body = outbox.messages(user.email)[-1].text_body
    assert "https://hub.example.com/password/reset/" in body
    assert "evil.example" not in body
