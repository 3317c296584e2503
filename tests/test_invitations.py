"""Invitations: emailed links to join an account with a role (issue 6).

An invitation is for its email; its link is single-use, expires after
TERMINUS_INVITATION_DAYS (7), can be withdrawn and resent; a new person signing up through it
proves the address, so their email is confirmed.
"""

from __future__ import annotations

import hashlib
import html
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from terminus_hub.accounts.member_views import INVITATION_INVALID
from terminus_hub.accounts.member_views import INVITED
from terminus_hub.accounts.member_views import JOINED
from terminus_hub.accounts.member_views import RESENT
from terminus_hub.accounts.member_views import REVOKED
from terminus_hub.core.invitations import ALREADY_INVITED
from terminus_hub.core.invitations import ALREADY_MEMBER
from terminus_hub.core.invitations import NOT_FOR_YOU
from terminus_hub.core.membership import OWNERS_ONLY
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import Invitation
from terminus_hub.models import Membership
from terminus_hub.models import User
from tests import factories
from tests.test_api_auth import member_of
from tests.test_members import account_name
from tests.test_members import browser
from tests.test_members import role_of
from tests.test_members import text_of

# See tests/test_members.py: the invite form's tuple choices warn on every page build.

NEW_PASSWORD = "a long and private passphrase 42"
INVITEE = "invitee@example.com"


# helpers


def invite(client: FlaskClient, slug: str, email: str = INVITEE, role: str = "member") -> Any:
    return client.post(f"/a/{slug}/members/invite", data={"email": email, "role": role})


def invitation_id(app: Flask, email: str = INVITEE) -> str:
    with app.app_context():
        return db.session.scalar(select(Invitation.id).where(Invitation.email == email))


def memberships_of(app: Flask, email: str) -> list[tuple[str, str]]:
    """(slug, role) for every account the person belongs to."""
    with app.app_context():
        return [
            tuple(row)
            for row in db.session.execute(
                select(Account.slug, Membership.role)
                .join(Membership, Membership.account_id == Account.id)
                .join(User, User.id == Membership.user_id)
                .where(User.email == email)
            )
        ]


@pytest.fixture
def owner(app: Flask, user: factories.Person) -> FlaskClient:
    """The account owner's browser."""
    return browser(app, user.email)


@pytest.fixture
def link(app, owner, user, outbox) -> str:  # type: ignore[no-untyped-def]
    """An invitation for INVITEE as a member of the user's account; the emailed link's path."""
    response = invite(owner, user.account_slug)
    assert response.status_code == 303, response.get_data(as_text=True)
    return outbox.last_link(INVITEE)


def assert_invalid(response: Any) -> None:
    assert response.status_code == 400
    assert INVITATION_INVALID in text_of(response)


# sending


def test_owner_invites_by_email_and_the_link_goes_out(app, owner, user, outbox):
    response = invite(owner, user.account_slug, email="  Invitee@Example.COM ", role="admin")

    assert response.status_code == 303
    assert response.location == f"/a/{user.account_slug}/members"
    page = text_of(owner.get(response.location))
    assert INVITED.format(email=INVITEE) in page
    assert INVITEE in page and "as admin" in page  # listed as pending
    [mail] = [m for m in outbox.messages(INVITEE) if m.template == "invitation"]
    assert account_name(app, user.account_slug) in mail.text_body
    assert outbox.last_link(INVITEE).startswith("/invitations/")


def test_the_token_is_stored_only_as_its_hash(app, link):
    token = link.rsplit("/", 1)[1]

    with app.app_context():
        row = db.session.scalar(select(Invitation))
        columns = [str(getattr(row, c.key)) for c in Invitation.__table__.columns]
    assert row.token_hash == hashlib.sha256(token.encode("ascii")).hexdigest()
    assert not any(token in value for value in columns)


def test_invitation_expires_after_seven_days(app, link):
    with app.app_context():
        expires_at = db.session.scalar(select(Invitation.expires_at))
        created_at = db.session.scalar(select(Invitation.created_at))
    assert abs(expires_at - created_at - timedelta(days=7)) < timedelta(seconds=5)


def test_admin_can_invite_members_and_admins_but_not_owners(app, user, outbox):
    admin = member_of(app, user.account_slug, "admin")
    client = browser(app, admin.email)

    assert invite(client, user.account_slug, "a@example.com", "admin").status_code == 303
    assert invite(client, user.account_slug, "m@example.com", "member").status_code == 303
    response = invite(client, user.account_slug, "o@example.com", "owner")

    assert response.status_code == 422
    assert OWNERS_ONLY in text_of(response)
    assert outbox.messages("o@example.com") == []
    assert invitation_id(app, "o@example.com") is None


def test_owner_can_invite_an_owner(app, owner, user, outbox):
    assert invite(owner, user.account_slug, role="owner").status_code == 303
    link = outbox.last_link(INVITEE)
    factories.make_user(app, email=INVITEE)
    client = browser(app, INVITEE)

    client.post(link)

    assert role_of(app, user.account_slug, INVITEE) == "owner"


def test_inviting_someone_who_is_already_a_member_is_refused(app, owner, user, outbox):
    member = member_of(app, user.account_slug, "member")

    response = invite(owner, user.account_slug, email=member.email.upper())

    assert response.status_code == 422
    assert ALREADY_MEMBER.format(email=member.email) in text_of(response)
    assert [m for m in outbox.messages(member.email) if m.template == "invitation"] == []


def test_inviting_an_address_twice_asks_to_resend_instead(app, owner, user, link, outbox):
    response = invite(owner, user.account_slug)

    assert response.status_code == 422
    assert ALREADY_INVITED.format(email=INVITEE) in text_of(response)
    assert len([m for m in outbox.messages(INVITEE) if m.template == "invitation"]) == 1


@pytest.mark.parametrize(
    ("email", "role"),
    [("not-an-email", "member"), ("", "member"), (INVITEE, "boss")],
    ids=["bad-email", "no-email", "bad-role"],
)
def test_bad_invitation_input_is_refused(app, owner, user, outbox, email, role):
    response = invite(owner, user.account_slug, email=email, role=role)

    assert response.status_code == 422
    with app.app_context():
        assert db.session.scalars(select(Invitation)).all() == []
    assert outbox.messages(INVITEE) == []


# accepting: existing person


def test_existing_user_signed_in_as_the_email_joins(app, user, link):
    factories.make_user(app, email=INVITEE)
    client = browser(app, INVITEE)

    page = client.get(link)
    assert page.status_code == 200
    assert f"Join {account_name(app, user.account_slug)}" in text_of(page)

    response = client.post(link)

    assert response.status_code == 303
    assert response.location == f"/a/{user.account_slug}/"
    assert JOINED.format(name=account_name(app, user.account_slug)) in text_of(
        client.get(response.location)
    )
    assert role_of(app, user.account_slug, INVITEE) == "member"


def test_get_alone_never_joins(app, user, link):
    factories.make_user(app, email=INVITEE)
    client = browser(app, INVITEE)

    client.get(link)

    assert role_of(app, user.account_slug, INVITEE) is None


def test_existing_user_not_signed_in_is_sent_to_sign_in_and_back(app, client, user, link):
    factories.make_user(app, email=INVITEE)

    page = client.get(link)
    assert page.status_code == 200
    assert "Sign in to accept" in text_of(page)
    response = client.post(link)
    assert response.status_code == 303
    assert response.location.startswith("/sign_in")
    assert "next=" in response.location
    assert role_of(app, user.account_slug, INVITEE) is None

    signed_in = client.post(
        "/sign_in/password", data={"email": INVITEE, "password": factories.PASSWORD, "next": link}
    )
    assert signed_in.status_code == 303
    assert signed_in.location == link
    assert client.post(link).location == f"/a/{user.account_slug}/"
    assert role_of(app, user.account_slug, INVITEE) == "member"


# accepting: new person


def test_new_person_signs_up_through_the_link(app, client, user, link):
    page = client.get(link)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'name="name"' in body and 'name="password"' in body

    response = client.post(link, data={"name": "Ivy Invitee", "password": NEW_PASSWORD})

    assert response.status_code == 303
    assert response.location == f"/a/{user.account_slug}/"
    home = client.get(response.location)
    assert home.status_code == 200  # signed in
    assert JOINED.format(name=account_name(app, user.account_slug)) in text_of(home)
    assert memberships_of(app, INVITEE) == [(user.account_slug, "member")]
    with app.app_context():
        person = db.session.scalar(select(User).where(User.email == INVITEE))
        assert person.name == "Ivy Invitee"
        assert person.confirmed_at is not None  # the link proved the address
        assert person.password_hash and NEW_PASSWORD not in person.password_hash


def test_new_person_gets_the_invited_role_and_no_account_of_their_own(app, owner, user, outbox):
    invite(owner, user.account_slug, role="admin")
    client = app.test_client()

    client.post(outbox.last_link(INVITEE), data={"name": "Ada", "password": NEW_PASSWORD})

    assert memberships_of(app, INVITEE) == [(user.account_slug, "admin")]
    assert client.get(f"/a/{user.account_slug}/members").status_code == 200


def test_new_person_can_sign_in_later_with_the_chosen_password(app, client, user, link):
    client.post(link, data={"name": "Ivy", "password": NEW_PASSWORD})
    client.post("/sign_out")

    response = client.post("/sign_in/password", data={"email": INVITEE, "password": NEW_PASSWORD})

    assert response.status_code == 303
    assert response.location == f"/a/{user.account_slug}/"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"name": "Ivy", "password": "short"}, "password"),
        ({"name": "Ivy", "password": ""}, "password"),
        ({"name": "", "password": NEW_PASSWORD}, "name"),
        ({"name": "Ivy", "password": INVITEE + "1234"}, "password"),
    ],
    ids=["short-password", "no-password", "no-name", "password-is-email"],
)
def test_new_person_sign_up_is_validated(app, client, user, link, form, field):
    response = client.post(link, data=form)

    assert response.status_code == 422
    assert f'id="{field}-error"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == INVITEE)) is None
    assert client.get(link).status_code == 200  # still usable


def test_sign_up_through_the_link_never_echoes_the_password(app, client, user, link):
    response = client.post(link, data={"name": "Ivy", "password": "tiny secret"})

    assert response.status_code == 422
    assert "tiny secret" not in response.get_data(as_text=True)


# the wrong person


def test_someone_signed_in_as_another_email_is_told_so(app, user, link):
    stranger = factories.make_person(app)
    client = browser(app, stranger.email)

    page = client.get(link)

    assert page.status_code == 200
    assert NOT_FOR_YOU.format(email=INVITEE) in text_of(page)
    assert "Join " + account_name(app, user.account_slug) not in text_of(page).split("</h1>", 1)[1]


def test_someone_signed_in_as_another_email_cannot_join(app, user, link):
    stranger = factories.make_person(app)
    client = browser(app, stranger.email)

    response = client.post(link)

    assert response.status_code == 303
    assert NOT_FOR_YOU.format(email=INVITEE) in text_of(client.get(response.location))
    assert role_of(app, user.account_slug, stranger.email) is None
    assert memberships_of(app, stranger.email) == [(stranger.account_slug, "owner")]
    # The invitation is still there for its owner.
    factories.make_user(app, email=INVITEE)
    assert browser(app, INVITEE).post(link).location == f"/a/{user.account_slug}/"


def test_someone_signed_in_cannot_create_the_invited_user_either(app, user, link):
    stranger = factories.make_person(app)
    client = browser(app, stranger.email)

    client.post(link, data={"name": "Mallory", "password": NEW_PASSWORD})

    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == INVITEE)) is None
    assert role_of(app, user.account_slug, stranger.email) is None


# single use, expiry, revoke, resend


def test_link_works_once(app, client, user, link):
    client.post(link, data={"name": "Ivy", "password": NEW_PASSWORD})

    assert_invalid(client.get(link))
    assert_invalid(app.test_client().post(link, data={"name": "Again", "password": NEW_PASSWORD}))
    assert memberships_of(app, INVITEE) == [(user.account_slug, "member")]


def test_used_link_is_dead_for_an_existing_user_too(app, user, link):
    factories.make_user(app, email=INVITEE)
    client = browser(app, INVITEE)
    client.post(link)

    assert_invalid(client.get(link))
    assert_invalid(client.post(link))


def test_link_expires_after_seven_days(app, user, link):
    now = datetime.now(UTC)
    with freeze_time(now + timedelta(days=6, hours=23)):
        assert app.test_client().get(link).status_code == 200
    with freeze_time(now + timedelta(days=7, minutes=1)):
        client = app.test_client()
        assert_invalid(client.get(link))
        assert_invalid(client.post(link, data={"name": "Late", "password": NEW_PASSWORD}))
    assert memberships_of(app, INVITEE) == []


@pytest.mark.app_config(TERMINUS_INVITATION_DAYS=1)
def test_expiry_follows_the_setting(app, user, link):
    with freeze_time(datetime.now(UTC) + timedelta(days=1, minutes=1)):
        assert_invalid(app.test_client().get(link))


def test_expired_invitation_is_no_longer_pending_and_can_be_sent_again(
    app, owner, user, link, outbox
):
    with freeze_time(datetime.now(UTC) + timedelta(days=8)):
        client = browser(app, user.email)
        assert INVITEE not in client.get(f"/a/{user.account_slug}/members").get_data(as_text=True)
        assert invite(client, user.account_slug).status_code == 303
        fresh = outbox.last_link(INVITEE)
        assert fresh != link
        assert app.test_client().get(fresh).status_code == 200


def test_revoked_link_is_dead(app, owner, user, link):
    response = owner.post(f"/a/{user.account_slug}/invitations/{invitation_id(app)}/revoke")

    assert REVOKED.format(email=INVITEE) in text_of(owner.get(response.location))
    assert_invalid(app.test_client().get(link))
    assert_invalid(app.test_client().post(link, data={"name": "Ivy", "password": NEW_PASSWORD}))
    assert INVITEE not in owner.get(f"/a/{user.account_slug}/members").get_data(as_text=True)


def test_resend_kills_the_old_link_and_the_new_one_works(app, owner, user, link, outbox):
    response = owner.post(f"/a/{user.account_slug}/invitations/{invitation_id(app)}/resend")

    assert RESENT.format(email=INVITEE) in text_of(owner.get(response.location))
    fresh = outbox.last_link(INVITEE)
    assert fresh != link
    assert_invalid(app.test_client().get(link))
    client = app.test_client()
    assert client.post(fresh, data={"name": "Ivy", "password": NEW_PASSWORD}).status_code == 303
    assert memberships_of(app, INVITEE) == [(user.account_slug, "member")]


def test_resend_restarts_the_expiry(app, user, link, outbox):
    start = datetime.now(UTC)
    with freeze_time(start + timedelta(days=5)):
        client = browser(app, user.email)
        client.post(f"/a/{user.account_slug}/invitations/{invitation_id(app)}/resend")
        fresh = outbox.last_link(INVITEE)
    with freeze_time(start + timedelta(days=10)):
        assert app.test_client().get(fresh).status_code == 200


@pytest.mark.parametrize("action", ["resend", "revoke"])
def test_revoked_or_used_invitations_cannot_be_acted_on(app, owner, user, link, action):
    owner.post(f"/a/{user.account_slug}/invitations/{invitation_id(app)}/revoke")

    response = owner.post(f"/a/{user.account_slug}/invitations/{invitation_id(app)}/{action}")

    assert response.status_code == 404


def test_invitation_actions_stay_inside_their_account(app, user, link):
    other = factories.make_person(app)
    client = browser(app, other.email)

    for action in ("resend", "revoke"):
        response = client.post(f"/a/{other.account_slug}/invitations/{invitation_id(app)}/{action}")
        assert response.status_code == 404
    assert app.test_client().get(link).status_code == 200


def test_unknown_invitation_action_is_not_found(app, owner, user, link):
    response = owner.post(f"/a/{user.account_slug}/invitations/{invitation_id(app)}/accept")

    assert response.status_code == 404


@pytest.mark.parametrize(
    "token",
    [
        "nope",
        "x" * 101,
        "a" * 43,
        pytest.param(
            "\u00e9t\u00e9",
            id="non-ascii",
        ),
    ],
)
def test_made_up_links_are_invalid(client, token):
    assert_invalid(client.get(f"/invitations/{token}"))


def test_invitation_page_shows_the_account_name_as_text(app, owner, user, outbox):
    owner.post(f"/a/{user.account_slug}/rename", data={"name": "<b>Bold</b> Co"})
    invite(owner, user.account_slug)

    body = app.test_client().get(outbox.last_link(INVITEE)).get_data(as_text=True)

    assert "<b>Bold</b>" not in body
    assert html.escape("<b>Bold</b> Co", quote=False) in body
