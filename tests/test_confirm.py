"""Email confirmation links and resend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from terminus_hub.auth.views import CONFIRMED
from terminus_hub.auth.views import RESENT
from terminus_hub.links import INVALID_LINK
from tests import factories

SIGN_UP = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "password": "correct horse battery staple",
}


@pytest.fixture
def link(client, outbox):
    client.post("/sign_up", data=SIGN_UP)
    return outbox.last_link("ada@example.com")


def test_get_shows_a_button_and_changes_nothing(client, auth, link):
    response = client.get(link)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Confirm my email" in page and f'action="{link}"' in page
    assert auth.sign_in("ada@example.com", SIGN_UP["password"]).status_code == 403


def test_post_confirms_and_sends_to_sign_in_with_a_notice(client, auth, link):
    response = client.post(link)
    assert response.status_code == 303
    assert response.location == "/sign_in"
    assert CONFIRMED in client.get("/sign_in").get_data(as_text=True)
    assert auth.sign_in("ada@example.com", SIGN_UP["password"]).status_code == 303


def test_confirming_does_not_sign_anyone_in(client, link):
    client.post(link)
    assert client.get("/accounts").status_code == 302


def test_a_link_works_once(client, link):
    client.post(link)
    again = client.post(link)
    assert again.status_code == 400
    assert INVALID_LINK in again.get_data(as_text=True)


def test_a_link_expires_after_the_configured_hours(client, link):
    with freeze_time(timedelta(hours=72, seconds=1)):
        response = client.post(link)
    assert response.status_code == 400


def test_a_link_just_before_expiry_still_works(client, link):
    with freeze_time(timedelta(hours=71, minutes=59)):
        response = client.post(link)
    assert response.status_code == 303


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-3],
        lambda t: t[:20],
        lambda t: "junk",
        lambda t: "x" * 10_000,
        # A changed signature character. Not the last one: its low bits are padding, so some
        # changes there decode to the same signature (about one link in twenty).
        lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],
        lambda t: "' OR 1=1--",
    ],
)
def test_tampered_links_show_the_invalid_page_with_resend(client, link, mangle):
    token = link.rsplit("/", 1)[1]
    response = client.get(f"/confirm/{mangle(token)}")
    assert response.status_code in (400, 404)
    if response.status_code == 400:
        page = response.get_data(as_text=True)
        assert INVALID_LINK in page and 'action="/confirm/resend"' in page


def test_another_users_link_confirms_only_that_user(app, client, auth, outbox, link):
    other = factories.make_person(app, confirmed=False)
    client.post(link)
    assert auth.sign_in(other.email, other.password).status_code == 403


def test_resend_sends_a_fresh_link_to_an_unconfirmed_user(client, outbox, link):
    response = client.post("/confirm/resend", data={"email": "ADA@example.com"})
    assert response.status_code == 303
    assert response.location == "/sign_up/check_email"
    assert RESENT in client.get("/sign_up/check_email").get_data(as_text=True)
    assert len(outbox.messages("ada@example.com")) == 2
    assert client.post(outbox.last_link("ada@example.com")).status_code == 303


@pytest.mark.parametrize("who", ["unknown", "confirmed"])
def test_resend_answers_the_same_and_sends_nothing_otherwise(app, client, outbox, who):
    email = "nobody@example.com" if who == "unknown" else factories.make_person(app).email
    response = client.post("/confirm/resend", data={"email": email})
    assert response.status_code == 303
    assert response.location == "/sign_up/check_email"
    assert outbox.messages(email) == []


@pytest.mark.parametrize("email", ["", "not-an-email", "x" * 300])
def test_resend_rejects_malformed_emails_next_to_the_field(client, email):
    response = client.post("/confirm/resend", data={"email": email})
    assert response.status_code == 422
    assert 'id="email-error"' in response.get_data(as_text=True)
