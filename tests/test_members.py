"""Members of an account: roles, removal, leaving, renaming, the switcher and the members API.

Issue 6: an account always keeps at least one owner, admin-only endpoints give an API key
403 admin_only, and removal ends sessions' access at once (docs/security.md).
"""

from __future__ import annotations

import html
import re
import warnings
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from terminus_hub.accounts.member_views import LEFT
from terminus_hub.accounts.member_views import REMOVED
from terminus_hub.accounts.member_views import RENAMED
from terminus_hub.accounts.member_views import ROLE_CHANGED
from terminus_hub.api.auth import NO_ACCOUNT
from terminus_hub.api.members import ROLE_INVALID
from terminus_hub.core import invitations
from terminus_hub.core.invitations import ALREADY_MEMBER as INVITE_ALREADY_MEMBER
from terminus_hub.core.membership import CANNOT_MANAGE
from terminus_hub.core.membership import LAST_OWNER
from terminus_hub.core.membership import NAME_INVALID
from terminus_hub.core.membership import OWNERS_ONLY
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import Invitation
from terminus_hub.models import Membership
from terminus_hub.models import User
from tests import factories
from tests.factories import key_form
from tests.factories import make_api_key
from tests.factories import sign_in
from tests.test_api_auth import TOKEN_PATTERN
from tests.test_api_auth import assert_error
from tests.test_api_auth import bearer
from tests.test_api_auth import member_of
from tests.test_api_auth import open_account

MEMBER_FIELDS = {"id", "user_id", "email", "name", "role", "created_at"}


# helpers


def browser(app: Flask, email: str, slug: str | None = None) -> FlaskClient:
    """A separate browser signed in as this person (on this account, when given)."""
    client = app.test_client()
    sign_in(client, email)
    if slug is not None:
        open_account(client, slug)
    return client


def membership_id(app: Flask, slug: str, email: str) -> str:
    with app.app_context():
        return db.session.scalar(
            select(Membership.id)
            .join(Account, Account.id == Membership.account_id)
            .join(User, User.id == Membership.user_id)
            .where(Account.slug == slug, User.email == email)
        )


def role_of(app: Flask, slug: str, email: str) -> str | None:
    """The person's role in the account, or None when they are not a member."""
    with app.app_context():
        return db.session.scalar(
            select(Membership.role)
            .join(Account, Account.id == Membership.account_id)
            .join(User, User.id == Membership.user_id)
            .where(Account.slug == slug, User.email == email)
        )


def account_name(app: Flask, slug: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Account.name).where(Account.slug == slug))


def text_of(response: Any) -> str:
    """The page as a reader sees it: entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def set_role(client: FlaskClient, slug: str, member_id: str, role: str) -> Any:
    return client.post(f"/a/{slug}/members/{member_id}/role", data={"role": role})


def remove(client: FlaskClient, slug: str, member_id: str) -> Any:
    return client.post(f"/a/{slug}/members/{member_id}/remove")


def flashed(client: FlaskClient, response: Any) -> str:
    """Follow a 303 back to its page and return what the reader sees there."""
    assert response.status_code == 303, response.get_data(as_text=True)
    return text_of(client.get(response.location))


def csrf_of(client: FlaskClient, slug: str) -> dict[str, str]:
    """The X-CSRFToken header for session API writes on this account."""
    return {"X-CSRFToken": open_account(client, slug)}


@pytest.fixture
def team(app: Flask, user: factories.Person) -> dict[str, factories.Person]:
    """One account with its owner, an admin and a member."""
    slug = user.account_slug
    return {
        "owner": user,
        "admin": member_of(app, slug, "admin"),
        "member": member_of(app, slug, "member"),
    }


# the members page


def test_members_page_lists_everyone_with_their_role_for_members_too(app, team):
    member = team["member"]
    page = text_of(browser(app, member.email).get(f"/a/{member.account_slug}/members"))

    for person in team.values():
        assert person.email in page
    assert "Owner" in page and "Admin" in page and "Member" in page
    assert "Invite someone" not in page  # members see the list, they do not manage it
    assert "Remove member" not in page


def test_members_page_renders_with_warnings_as_errors(app, team):
    owner = team["owner"]
    client = browser(app, owner.email)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the project's setting, over this module's ignore
        assert client.get(f"/a/{owner.account_slug}/members").status_code == 200


def test_members_page_of_another_account_is_not_found(app, team):
    stranger = factories.make_person(app)
    client = browser(app, stranger.email)

    assert client.get(f"/a/{team['owner'].account_slug}/members").status_code == 404


def test_members_page_needs_sign_in(client, team):
    response = client.get(f"/a/{team['owner'].account_slug}/members")

    assert response.status_code == 302
    assert response.location.startswith("/sign_in")


def test_admin_sees_invite_form_but_no_owner_controls(app, team):
    admin = team["admin"]
    page = browser(app, admin.email).get(f"/a/{admin.account_slug}/members").get_data(as_text=True)

    assert "Invite someone" in page
    members_table = page.split('id="member-list"', 1)[1].split("</section>", 1)[0]
    assert '<option value="owner"' not in members_table  # admins cannot make owners
    owner_row = re.search(
        r'<tr id="member-[^"]+">(?:(?!</tr>).)*?' + re.escape(team["owner"].email), page, re.S
    )
    assert owner_row is not None and "<form" not in owner_row.group(0)


# roles: owners can, admins partly, members not at all


@pytest.mark.parametrize("role", ["admin", "owner", "member"])
def test_owner_can_give_any_role(app, team, role):
    owner, member = team["owner"], team["member"]
    client = browser(app, owner.email)
    slug = owner.account_slug

    response = set_role(client, slug, membership_id(app, slug, member.email), role)

    assert ROLE_CHANGED.format(email=member.email, role=role) in flashed(client, response)
    assert role_of(app, slug, member.email) == role


def test_owner_can_demote_another_owner_while_one_remains(app, team):
    owner, admin = team["owner"], team["admin"]
    slug = owner.account_slug
    client = browser(app, owner.email)
    set_role(client, slug, membership_id(app, slug, admin.email), "owner")

    response = set_role(client, slug, membership_id(app, slug, admin.email), "member")

    assert response.status_code == 303
    assert role_of(app, slug, admin.email) == "member"
    assert role_of(app, slug, owner.email) == "owner"


def test_last_owner_cannot_be_demoted(app, team):
    owner = team["owner"]
    slug = owner.account_slug
    client = browser(app, owner.email)

    response = set_role(client, slug, membership_id(app, slug, owner.email), "admin")

    assert LAST_OWNER in flashed(client, response)
    assert role_of(app, slug, owner.email) == "owner"


def test_last_owner_cannot_leave(app, team):
    owner = team["owner"]
    slug = owner.account_slug
    client = browser(app, owner.email)

    response = remove(client, slug, membership_id(app, slug, owner.email))

    assert LAST_OWNER in flashed(client, response)
    assert role_of(app, slug, owner.email) == "owner"


def test_last_owner_cannot_be_removed_by_an_admin(app, team):
    owner, admin = team["owner"], team["admin"]
    slug = owner.account_slug
    client = browser(app, admin.email)

    response = remove(client, slug, membership_id(app, slug, owner.email))

    assert OWNERS_ONLY in flashed(client, response)
    assert role_of(app, slug, owner.email) == "owner"


def test_one_of_two_owners_can_leave_but_then_the_other_cannot(app, team):
    owner, admin = team["owner"], team["admin"]
    slug = owner.account_slug
    set_role(browser(app, owner.email), slug, membership_id(app, slug, admin.email), "owner")
    second = browser(app, admin.email)

    assert remove(second, slug, membership_id(app, slug, admin.email)).status_code == 303
    assert role_of(app, slug, admin.email) is None

    first = browser(app, owner.email)
    response = remove(first, slug, membership_id(app, slug, owner.email))
    assert LAST_OWNER in flashed(first, response)
    assert role_of(app, slug, owner.email) == "owner"


def test_owner_can_remove_another_owner(app, team):
    owner, admin = team["owner"], team["admin"]
    slug = owner.account_slug
    client = browser(app, owner.email)
    set_role(client, slug, membership_id(app, slug, admin.email), "owner")

    response = remove(client, slug, membership_id(app, slug, admin.email))

    assert REMOVED.format(email=admin.email) in flashed(client, response)
    assert role_of(app, slug, admin.email) is None


def test_admin_cannot_make_an_owner(app, team):
    admin, member = team["admin"], team["member"]
    slug = admin.account_slug
    client = browser(app, admin.email)

    response = set_role(client, slug, membership_id(app, slug, member.email), "owner")

    assert OWNERS_ONLY in flashed(client, response)
    assert role_of(app, slug, member.email) == "member"


def test_admin_cannot_make_themselves_an_owner(app, team):
    admin = team["admin"]
    slug = admin.account_slug
    client = browser(app, admin.email)

    response = set_role(client, slug, membership_id(app, slug, admin.email), "owner")

    assert OWNERS_ONLY in flashed(client, response)
    assert role_of(app, slug, admin.email) == "admin"


@pytest.mark.parametrize("role", ["admin", "member"])
def test_admin_cannot_change_an_owners_role(app, team, role):
    admin, owner = team["admin"], team["owner"]
    slug = admin.account_slug
    set_role(
        browser(app, owner.email), slug, membership_id(app, slug, team["member"].email), "owner"
    )
    client = browser(app, admin.email)

    response = set_role(client, slug, membership_id(app, slug, owner.email), role)

    assert OWNERS_ONLY in flashed(client, response)
    assert role_of(app, slug, owner.email) == "owner"


def test_admin_cannot_remove_an_owner_even_when_another_remains(app, team):
    admin, owner, member = team["admin"], team["owner"], team["member"]
    slug = admin.account_slug
    set_role(browser(app, owner.email), slug, membership_id(app, slug, member.email), "owner")
    client = browser(app, admin.email)

    response = remove(client, slug, membership_id(app, slug, member.email))

    assert OWNERS_ONLY in flashed(client, response)
    assert role_of(app, slug, member.email) == "owner"


def test_admin_can_manage_members_and_admins(app, team):
    admin, member = team["admin"], team["member"]
    slug = admin.account_slug
    other_admin = member_of(app, slug, "admin")
    client = browser(app, admin.email)

    assert (
        set_role(client, slug, membership_id(app, slug, member.email), "admin").status_code == 303
    )
    assert role_of(app, slug, member.email) == "admin"
    assert remove(client, slug, membership_id(app, slug, other_admin.email)).status_code == 303
    assert role_of(app, slug, other_admin.email) is None


def test_an_unknown_role_changes_nothing(app, team):
    owner, member = team["owner"], team["member"]
    slug = owner.account_slug
    client = browser(app, owner.email)

    response = set_role(client, slug, membership_id(app, slug, member.email), "superuser")

    assert response.status_code == 400
    assert role_of(app, slug, member.email) == "member"


def test_members_of_another_account_cannot_be_reached_through_this_one(app, team):
    owner = team["owner"]
    other = factories.make_person(app)
    client = browser(app, owner.email)
    foreign = membership_id(app, other.account_slug, other.email)

    assert set_role(client, owner.account_slug, foreign, "member").status_code == 404
    assert remove(client, owner.account_slug, foreign).status_code == 404
    assert role_of(app, other.account_slug, other.email) == "owner"


def _pending_invitation(app: Flask, slug: str) -> str:
    """Invite someone as an operator would, and return the invitation id."""
    with app.test_request_context():
        account = db.session.scalar(select(Account).where(Account.slug == slug))
        row = invitations.invite(account, "invitee@example.com", "member", None, None)
        db.session.commit()
        return row.id


MEMBER_REFUSED_POSTS = [
    pytest.param("invite", id="invite"),
    pytest.param("resend", id="resend"),
    pytest.param("revoke", id="revoke"),
    pytest.param("rename", id="rename"),
    pytest.param("role", id="role"),
    pytest.param("remove", id="remove"),
]


def _manage_post(client, app, team, what):  # type: ignore[no-untyped-def]
    slug = team["owner"].account_slug
    other = membership_id(app, slug, team["admin"].email)
    if what == "invite":
        return client.post(
            f"/a/{slug}/members/invite", data={"email": "x@example.com", "role": "member"}
        )
    if what in ("resend", "revoke"):
        return client.post(f"/a/{slug}/invitations/{_pending_invitation(app, slug)}/{what}")
    if what == "rename":
        return client.post(f"/a/{slug}/rename", data={"name": "Taken over"})
    if what == "role":
        return set_role(client, slug, other, "member")
    return remove(client, slug, other)


@pytest.mark.parametrize("what", MEMBER_REFUSED_POSTS)
def test_members_change_nothing_through_any_manage_post(app, team, what):
    member = team["member"]
    slug = member.account_slug
    client = browser(app, member.email)
    name = account_name(app, slug)

    response = _manage_post(client, app, team, what)

    assert response.status_code in (303, 403)
    assert role_of(app, slug, team["admin"].email) == "admin"
    assert account_name(app, slug) == name
    with app.app_context():
        emails = set(db.session.scalars(select(Invitation.email)))
        revoked = db.session.scalars(select(Invitation.revoked_at)).all()
    assert "x@example.com" not in emails
    assert all(r is None for r in revoked)


@pytest.mark.parametrize(
    "what",
    [
        *MEMBER_REFUSED_POSTS[:4],
        pytest.param(
            "role",
            id="role",
        ),
        pytest.param(
            "remove",
            id="remove",
        ),
    ],
)
def test_members_get_403_on_every_manage_post(app, team, what):
    client = browser(app, team["member"].email)

    assert _manage_post(client, app, team, what).status_code == 403


def test_member_refused_role_change_says_why(app, team):
    member = team["member"]
    slug = member.account_slug
    client = browser(app, member.email)

    response = set_role(client, slug, membership_id(app, slug, team["admin"].email), "member")

    assert response.status_code in (303, 403)
    if response.status_code == 303:
        assert CANNOT_MANAGE in flashed(client, response)


# removal ends access at once; keys stay


def test_removed_member_loses_the_account_on_the_very_next_request(app, team):
    owner, member = team["owner"], team["member"]
    slug = owner.account_slug
    theirs = browser(app, member.email, slug)
    csrf = csrf_of(theirs, slug)
    assert theirs.get("/api/v1/account").status_code == 200

    remove(browser(app, owner.email), slug, membership_id(app, slug, member.email))

    assert theirs.get(f"/a/{slug}/").status_code == 404
    assert theirs.get(f"/a/{slug}/members").status_code == 404
    assert_error(theirs.get("/api/v1/account"), 403, "forbidden")
    assert_error(theirs.get("/api/v1/workspaces"), 403, "forbidden")
    refused = theirs.post("/api/v1/workspaces", json={"name": "Mine"}, headers=csrf)
    assert_error(refused, 403, "forbidden")
    assert theirs.get("/api/v1/account").get_json()["error"]["message"] == NO_ACCOUNT


def test_removed_person_stays_signed_in_to_their_other_accounts(app, team):
    owner = team["owner"]
    slug = owner.account_slug
    elsewhere = factories.make_account(app, team["member"].email, name="Their own")
    theirs = browser(app, team["member"].email, slug)

    remove(browser(app, owner.email), slug, membership_id(app, slug, team["member"].email))

    assert theirs.get(f"/a/{slug}/").status_code == 404
    assert theirs.get(f"/a/{elsewhere}/").status_code == 200


def test_keys_created_by_a_removed_admin_keep_working(app, team):
    owner, admin = team["owner"], team["admin"]
    slug = owner.account_slug
    theirs = browser(app, admin.email, slug)
    created = theirs.post(f"/a/{slug}/api_keys", data=key_form("Deploy"))
    assert created.status_code == 201
    token = TOKEN_PATTERN.search(created.get_data(as_text=True)).group(0)
    api_created = theirs.post(
        "/api/v1/api_keys", json={"name": "CI"}, headers=csrf_of(theirs, slug)
    )
    assert api_created.status_code == 201

    remove(browser(app, owner.email), slug, membership_id(app, slug, admin.email))

    client = app.test_client()
    for key in (token, api_created.get_json()["key"]):
        response = client.get("/api/v1/account", headers=bearer(key))
        assert response.status_code == 200
        assert response.get_json()["slug"] == slug
    assert theirs.get(f"/a/{slug}/").status_code == 404


def test_leaving_sends_you_to_your_accounts(app, team):
    member = team["member"]
    slug = member.account_slug
    client = browser(app, member.email, slug)
    name = account_name(app, slug)

    response = remove(client, slug, membership_id(app, slug, member.email))

    assert response.status_code == 303
    assert response.location == "/accounts"
    assert LEFT.format(name=name) in text_of(client.get("/accounts"))
    assert role_of(app, slug, member.email) is None
    assert client.get(f"/a/{slug}/").status_code == 404


def test_admin_can_leave(app, team):
    admin = team["admin"]
    slug = admin.account_slug
    client = browser(app, admin.email)

    response = remove(client, slug, membership_id(app, slug, admin.email))

    assert response.location == "/accounts"
    assert role_of(app, slug, admin.email) is None


# rename, switcher


def test_owner_renames_the_account_and_the_slug_stays(app, team):
    owner = team["owner"]
    slug = owner.account_slug
    client = browser(app, owner.email)

    response = client.post(f"/a/{slug}/rename", data={"name": "  Acme   Rockets  "})

    assert RENAMED.format(name="Acme Rockets") in flashed(client, response)
    assert account_name(app, slug) == "Acme Rockets"
    assert client.get(f"/a/{slug}/").status_code == 200


@pytest.mark.parametrize("role", ["admin", "member"])
def test_only_owners_rename(app, team, role):
    person = team[role]
    slug = person.account_slug
    name = account_name(app, slug)

    response = browser(app, person.email).post(f"/a/{slug}/rename", data={"name": "Mine now"})

    assert response.status_code == 403
    assert account_name(app, slug) == name


def test_rename_form_is_on_the_account_settings_owners_alone_open(app, team):
    slug = team["owner"].account_slug
    owner, admin = browser(app, team["owner"].email), browser(app, team["admin"].email)

    assert f'action="/a/{slug}/rename"' in owner.get(f"/a/{slug}/settings").get_data(as_text=True)
    assert admin.get(f"/a/{slug}/settings").status_code == 403
    for client in (owner, admin):
        members = client.get(f"/a/{slug}/members").get_data(as_text=True)
        assert f'action="/a/{slug}/rename"' not in members


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 121, "bell\x07", "zero\u200bwidth", "\x00"],
    ids=["empty", "blank", "too-long", "control", "zero-width", "nul"],
)
def test_bad_account_names_are_refused(app, team, name):
    owner = team["owner"]
    slug = owner.account_slug
    before = account_name(app, slug)
    client = browser(app, owner.email)

    response = client.post(f"/a/{slug}/rename", data={"name": name})

    if name == "\x00":
        assert response.status_code == 400  # NUL in form data is refused before any view
    else:
        assert NAME_INVALID in flashed(client, response)
    assert account_name(app, slug) == before


def test_switcher_appears_for_people_in_two_accounts(app, team):
    member = team["member"]
    own = factories.make_account(app, member.email, name="Second Co")
    client = browser(app, member.email)

    page = client.get(f"/a/{own}/").get_data(as_text=True)

    assert "Switch account" in page
    assert f'href="/a/{own}/"' in page
    assert f'href="/a/{member.account_slug}/"' in page
    assert "Second Co" in page and account_name(app, member.account_slug) in page


def test_no_switcher_for_people_in_one_account(app, user):
    client = browser(app, user.email)

    page = client.get(f"/a/{user.account_slug}/").get_data(as_text=True)

    assert "Switch account" not in page
    assert '<span class="current-account">' in page  # the account is named, nothing to switch


def test_switcher_shows_account_names_as_text(app, team):
    owner, member = team["owner"], team["member"]
    slug = owner.account_slug
    evil = '<img src=x onerror=alert(1)> & "Co"'
    client = browser(app, owner.email)
    client.post(f"/a/{slug}/rename", data={"name": evil})
    factories.make_account(app, member.email)

    page = browser(app, member.email).get("/accounts").get_data(as_text=True)

    assert "Switch account" in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &#34;Co&#34;" in page


# the members API (admin-only endpoints)


def _api_calls(app: Flask, slug: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    with app.app_context():
        member_id = db.session.scalar(
            select(Membership.id)
            .join(Account, Account.id == Membership.account_id)
            .where(Account.slug == slug, Membership.role == "member")
        )
    invitation_id = _pending_invitation(app, slug)
    return [
        ("GET", "/api/v1/members", None),
        ("PATCH", f"/api/v1/members/{member_id}", {"role": "admin"}),
        ("DELETE", f"/api/v1/members/{member_id}", None),
        ("GET", "/api/v1/invitations", None),
        ("POST", "/api/v1/invitations", {"email": "new@example.com", "role": "member"}),
        ("DELETE", f"/api/v1/invitations/{invitation_id}", None),
        ("GET", "/api/v1/audit_events", None),
    ]


ENDPOINTS = [
    "GET members",
    "PATCH member",
    "DELETE member",
    "GET invitations",
    "POST invitations",
    "DELETE invitation",
    "GET audit_events",
]


@pytest.mark.parametrize("index", range(len(ENDPOINTS)), ids=ENDPOINTS)
def test_api_keys_get_admin_only_on_member_endpoints(app, client, team, index):
    slug = team["owner"].account_slug
    _, token = make_api_key(app, slug)
    method, url, body = _api_calls(app, slug)[index]

    response = client.open(url, method=method, json=body, headers=bearer(token))

    assert_error(response, 403, "admin_only")
    assert role_of(app, slug, team["member"].email) == "member"
    with app.app_context():
        assert (
            db.session.scalar(select(Invitation).where(Invitation.email == "new@example.com"))
            is None
        )
        assert db.session.scalar(select(Invitation.revoked_at)) is None


@pytest.mark.parametrize("index", range(len(ENDPOINTS)), ids=ENDPOINTS)
def test_members_get_forbidden_on_member_endpoints(app, team, index):
    slug = team["owner"].account_slug
    client = browser(app, team["member"].email)
    headers = csrf_of(client, slug)
    method, url, body = _api_calls(app, slug)[index]

    response = client.open(url, method=method, json=body, headers=headers)

    assert_error(response, 403, "forbidden")
    assert role_of(app, slug, team["member"].email) == "member"


def test_api_lists_members_for_admins(app, team):
    slug = team["owner"].account_slug
    client = browser(app, team["admin"].email, slug)

    response = client.get("/api/v1/members")

    assert response.status_code == 200
    body = response.get_json()
    assert body["next_cursor"] is None
    assert [m["role"] for m in body["data"]] == ["owner", "admin", "member"]
    assert {m["email"] for m in body["data"]} == {p.email for p in team.values()}
    assert all(set(m) == MEMBER_FIELDS for m in body["data"])
    assert all(not m["id"].isdigit() for m in body["data"])


def _patch(client: FlaskClient, slug: str, member_id: str, body: Any) -> Any:
    return client.patch(f"/api/v1/members/{member_id}", json=body, headers=csrf_of(client, slug))


def test_api_owner_changes_a_role(app, team):
    slug = team["owner"].account_slug
    client = browser(app, team["owner"].email)

    response = _patch(
        client, slug, membership_id(app, slug, team["member"].email), {"role": "owner"}
    )

    assert response.status_code == 200
    assert response.get_json()["role"] == "owner"
    assert role_of(app, slug, team["member"].email) == "owner"


@pytest.mark.parametrize(
    ("actor", "target", "role", "message"),
    [
        ("admin", "member", "owner", OWNERS_ONLY),
        ("admin", "owner", "member", OWNERS_ONLY),
        ("admin", "admin", "owner", OWNERS_ONLY),
        ("owner", "owner", "admin", LAST_OWNER),
    ],
    ids=["admin-makes-owner", "admin-demotes-owner", "admin-promotes-self", "last-owner"],
)
def test_api_role_rules(app, team, actor, target, role, message):
    slug = team["owner"].account_slug
    client = browser(app, team[actor].email)
    before = role_of(app, slug, team[target].email)

    response = _patch(client, slug, membership_id(app, slug, team[target].email), {"role": role})

    body = assert_error(response, 403, "forbidden")
    assert body["error"]["message"] == message
    assert role_of(app, slug, team[target].email) == before


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"role": "boss"}, {"role": ROLE_INVALID}),
        ({}, {"role": ROLE_INVALID}),
        ({"role": None}, {"role": ROLE_INVALID}),
        ({"role": "admin", "email": "x@example.com"}, {"email": "Unknown field."}),
    ],
    ids=["bad-role", "missing", "null", "unknown-field"],
)
def test_api_patch_validation(app, team, body, fields):
    slug = team["owner"].account_slug
    client = browser(app, team["owner"].email)

    response = _patch(client, slug, membership_id(app, slug, team["member"].email), body)

    result = assert_error(response, 422, "validation_error")
    assert result["error"]["fields"] == fields
    assert role_of(app, slug, team["member"].email) == "member"


def test_api_patch_member_of_another_account_is_not_found(app, team):
    other = factories.make_person(app)
    slug = team["owner"].account_slug
    client = browser(app, team["owner"].email)

    response = _patch(
        client, slug, membership_id(app, other.account_slug, other.email), {"role": "member"}
    )

    assert_error(response, 404, "not_found")
    assert role_of(app, other.account_slug, other.email) == "owner"


def test_api_delete_member_ends_their_access(app, team):
    slug = team["owner"].account_slug
    theirs = browser(app, team["member"].email, slug)
    client = browser(app, team["admin"].email)
    member_id = membership_id(app, slug, team["member"].email)

    response = client.delete(f"/api/v1/members/{member_id}", headers=csrf_of(client, slug))

    assert response.status_code == 204
    assert role_of(app, slug, team["member"].email) is None
    assert_error(theirs.get("/api/v1/account"), 403, "forbidden")
    assert_error(
        client.delete(f"/api/v1/members/{member_id}", headers=csrf_of(client, slug)),
        404,
        "not_found",
    )


@pytest.mark.parametrize(
    ("actor", "target", "message"),
    [("admin", "owner", OWNERS_ONLY), ("owner", "owner", LAST_OWNER)],
    ids=["admin-removes-owner", "last-owner-leaves"],
)
def test_api_delete_member_rules(app, team, actor, target, message):
    slug = team["owner"].account_slug
    client = browser(app, team[actor].email)

    response = client.delete(
        f"/api/v1/members/{membership_id(app, slug, team[target].email)}",
        headers=csrf_of(client, slug),
    )

    assert assert_error(response, 403, "forbidden")["error"]["message"] == message
    assert role_of(app, slug, team[target].email) == "owner"


def test_api_invitation_create_list_and_withdraw(app, team, outbox):
    slug = team["owner"].account_slug
    client = browser(app, team["admin"].email)
    headers = csrf_of(client, slug)

    created = client.post(
        "/api/v1/invitations", json={"email": " New@Example.COM ", "role": "admin"}, headers=headers
    )

    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert set(body) == {"id", "email", "role", "created_at", "expires_at"}
    assert body["email"] == "new@example.com" and body["role"] == "admin"
    link = outbox.last_link("new@example.com")
    assert link.startswith("/invitations/")
    assert link.rsplit("/", 1)[1] not in created.get_data(as_text=True)
    listed = client.get("/api/v1/invitations").get_json()
    assert [i["id"] for i in listed["data"]] == [body["id"]]

    assert client.delete(f"/api/v1/invitations/{body['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/invitations").get_json()["data"] == []
    assert app.test_client().get(link).status_code == 400
    assert_error(
        client.delete(f"/api/v1/invitations/{body['id']}", headers=headers), 404, "not_found"
    )


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ({"email": "not-an-email", "role": "member"}, {"email"}),
        ({"email": "ok@example.com", "role": "boss"}, {"role"}),
        ({"email": "nope", "role": "boss"}, {"email", "role"}),
        ({}, {"email", "role"}),
        ({"email": 42, "role": ["admin"]}, {"email", "role"}),
        ({"email": "ok@example.com", "role": "member", "admin": True}, {"admin"}),
    ],
    ids=["bad-email", "bad-role", "both", "missing", "wrong-types", "unknown-field"],
)
def test_api_invitation_validation_names_each_field(app, team, outbox, body, bad):
    slug = team["owner"].account_slug
    client = browser(app, team["owner"].email)

    response = client.post("/api/v1/invitations", json=body, headers=csrf_of(client, slug))

    result = assert_error(response, 422, "validation_error")
    assert set(result["error"]["fields"]) == bad
    assert all(isinstance(m, str) and m for m in result["error"]["fields"].values())
    with app.app_context():
        assert db.session.scalars(select(Invitation)).all() == []
    assert [m for m in outbox.messages() if m.template == "invitation"] == []


def test_api_invitation_for_a_member_is_refused(app, team):
    slug = team["owner"].account_slug
    client = browser(app, team["owner"].email)

    response = client.post(
        "/api/v1/invitations",
        json={"email": team["member"].email, "role": "admin"},
        headers=csrf_of(client, slug),
    )

    result = assert_error(response, 422, "validation_error")
    assert result["error"]["fields"] == {
        "email": INVITE_ALREADY_MEMBER.format(email=team["member"].email)
    }


def test_api_invitation_body_must_be_a_json_object(app, team):
    slug = team["owner"].account_slug
    client = browser(app, team["owner"].email)

    response = client.post(
        "/api/v1/invitations",
        data="[]",
        content_type="application/json",
        headers=csrf_of(client, slug),
    )

    assert_error(response, 400, "bad_request")


def test_api_admin_cannot_invite_an_owner(app, team):
    slug = team["owner"].account_slug
    client = browser(app, team["admin"].email)

    response = client.post(
        "/api/v1/invitations",
        json={"email": "boss@example.com", "role": "owner"},
        headers=csrf_of(client, slug),
    )

    assert response.status_code in (403, 422)
    with app.app_context():
        assert db.session.scalars(select(Invitation)).all() == []


def test_api_admin_inviting_an_owner_is_forbidden_like_patch(app, team):
    slug = team["owner"].account_slug
    client = browser(app, team["admin"].email)

    response = client.post(
        "/api/v1/invitations",
        json={"email": "boss@example.com", "role": "owner"},
        headers=csrf_of(client, slug),
    )

    assert assert_error(response, 403, "forbidden")["error"]["message"] == OWNERS_ONLY


def test_member_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]

    assert {"get"} <= set(paths["/members"])
    assert {"patch", "delete"} <= set(paths["/members/{member_id}"])
    assert {"get", "post"} <= set(paths["/invitations"])
    assert {"delete"} <= set(paths["/invitations/{invitation_id}"])
    assert {"get"} <= set(paths["/audit_events"])
