"""The security audit log (issue 6): who did what, when, from where — never a secret.

Each event is written by the action it records, with time, actor (user, API key, operator or
anonymous), client address and user agent. Owners and admins read their account's events at
/a/<slug>/audit and GET /api/v1/audit_events (admin-only: a key gets 403 admin_only);
`flask audit export SLUG` writes JSON lines. Writing an event never breaks the action.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask import g
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy import update

from terminus_hub import api_tokens
from terminus_hub import audit
from terminus_hub.accounts.audit_views import PAGE_SIZE
from terminus_hub.api.auth import Caller
from terminus_hub.core.keyring import SCOPES
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import ApiKey
from terminus_hub.models import AuditEvent
from terminus_hub.models import Invitation
from terminus_hub.models import User
from terminus_hub.models import UserSession
from terminus_hub.models import utcnow
from tests import factories
from tests.factories import key_form
from tests.factories import make_api_key
from tests.saml_idp import TestIdp
from tests.test_api_auth import TOKEN_PATTERN
from tests.test_api_auth import assert_error
from tests.test_api_auth import bearer
from tests.test_api_auth import member_of
from tests.test_members import browser
from tests.test_members import csrf_of
from tests.test_members import membership_id
from tests.test_members import role_of

# See tests/test_members.py: the members forms' tuple choices warn on every form built.

AGENT = "AuditTest/1.0 (X11; Linux x86_64)"
ADDRESS = "203.0.113.50"
WRONG = "definitely not the password"
NEW_PASSWORD = "a brand new long passphrase 77"


# helpers


def events(app: Flask, kind: str | None = None) -> list[dict[str, Any]]:
    """Every stored event (of one kind), oldest first, as the API would show it."""
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.created_at, AuditEvent.id)
        if kind is not None:
            query = query.where(AuditEvent.kind == kind)
        return [audit.serialize(row) for row in db.session.scalars(query)]


def one(app: Flask, kind: str) -> dict[str, Any]:
    found = events(app, kind)
    assert len(found) == 1, found
    return found[0]


def account_id(app: Flask, slug: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Account.id).where(Account.slug == slug))


def visitor(app: Flask) -> FlaskClient:
    """A browser with a recognisable address and user agent."""
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": ADDRESS, "HTTP_USER_AGENT": AGENT})
    return client


def signed_in(app: Flask, email: str, password: str = factories.PASSWORD) -> FlaskClient:
    client = visitor(app)
    response = client.post("/sign_in/password", data={"email": email, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def assert_from_visitor(event_: dict[str, Any]) -> None:
    """Time, client address and user agent of a request made by visitor()."""
    assert event_["ip_address"] == ADDRESS
    assert event_["user_agent"] == AGENT
    created = datetime.fromisoformat(event_["created_at"])
    assert created.tzinfo is not None
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)


def user_actor(user_id: str) -> dict[str, Any]:
    return {"type": "user", "id": user_id}


OPERATOR = {"type": "operator", "id": None}
ANONYMOUS = {"type": "anonymous", "id": None}


def seed(
    app: Flask, slug: str, count: int, when: datetime, kind: str = "account.renamed", **extra: Any
) -> None:
    """Store events for an account at a given time, each tagged t000, t001, ..."""
    with freeze_time(when), app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == slug))
        for i in range(count):
            audit.record(kind, account=account, user=extra.get("user"), detail={"tag": f"t{i:03d}"})
        db.session.commit()


def tags_on_page(body: str) -> list[str]:
    return re.findall(r"<dt>Tag</dt><dd>(t\d{3})</dd>", body)


# sign-in


def test_successful_sign_in_is_recorded_with_time_address_and_agent(app, user):
    signed_in(app, user.email)

    recorded = one(app, "sign_in.succeeded")
    assert recorded["user_id"] == user.id
    assert recorded["account_id"] is None  # personal: shown to each account the person is in
    assert recorded["detail"] == {"method": "password"}
    assert_from_visitor(recorded)


def test_successful_sign_in_names_the_person_as_actor(app, user):
    signed_in(app, user.email)

    assert one(app, "sign_in.succeeded")["actor"] == user_actor(user.id)


def test_wrong_password_is_recorded_with_its_reason(app, user):
    visitor(app).post("/sign_in/password", data={"email": user.email.upper(), "password": WRONG})

    recorded = one(app, "sign_in.failed")
    assert recorded["user_id"] == user.id
    assert recorded["detail"]["reason"] == "wrong_password"
    assert recorded["detail"]["email_hash"] == audit.email_fingerprint(user.email)
    assert recorded["actor"] == ANONYMOUS
    assert_from_visitor(recorded)


@pytest.mark.parametrize("email", ["nobody@example.com", "not an email"])
def test_unknown_emails_are_recorded_for_no_person_and_no_account(app, user, email):
    # Written like a known person's failure, so the two answers take the same time; no
    # account's audit log shows it, and housekeeping deletes it after 30 days.
    response = visitor(app).post("/sign_in/password", data={"email": email, "password": WRONG})

    assert response.status_code == 422
    recorded = one(app, "sign_in.failed")
    assert recorded["user_id"] is None and recorded["account_id"] is None
    assert recorded["detail"]["reason"] == "unknown_email"
    assert email not in str(recorded)
    assert events(app, "account.locked") == []


def test_a_right_password_that_loses_the_race_to_a_lock_is_recorded_as_failed(
    app, user, monkeypatch
):
    # A parallel attempt locks the person while this one checks the right password.
    from terminus_hub.core import signin

    checked = signin.verify_password

    def lock_meanwhile(password, stored):
        result = checked(password, stored)
        db.session.execute(
            update(User)
            .where(User.id == user.id)
            .values(failed_attempts=99, locked_until=utcnow() + timedelta(minutes=15))
        )
        return result

    monkeypatch.setattr(signin, "verify_password", lock_meanwhile)
    response = visitor(app).post(
        "/sign_in/password", data={"email": user.email, "password": user.password}
    )

    assert response.status_code == 422
    assert events(app, "sign_in.succeeded") == []
    assert one(app, "sign_in.failed")["detail"]["reason"] == "locked"


def test_an_over_long_email_is_refused_by_the_form_before_any_attempt(app, user):
    email = "x" * 300 + "@example.com"
    response = visitor(app).post("/sign_in/password", data={"email": email, "password": WRONG})

    assert response.status_code == 422
    assert events(app) == []


def test_lockout_records_the_lock_and_then_locked_failures(app, user):
    client = visitor(app)
    for _ in range(5):
        client.post("/sign_in/password", data={"email": user.email, "password": WRONG})

    locked = one(app, "account.locked")
    assert locked["user_id"] == user.id
    assert locked["detail"] == {"minutes": 15}
    assert_from_visitor(locked)
    assert [e["detail"]["reason"] for e in events(app, "sign_in.failed")] == ["wrong_password"] * 5

    client.post("/sign_in/password", data={"email": user.email, "password": factories.PASSWORD})

    reasons = [e["detail"]["reason"] for e in events(app, "sign_in.failed")]
    assert reasons == ["wrong_password"] * 5 + ["locked"]
    assert events(app, "sign_in.succeeded") == []


def _lock(app: Flask, email: str) -> None:
    client = visitor(app)
    for _ in range(5):
        client.post("/sign_in/password", data={"email": email, "password": WRONG})


def test_unlock_link_records_the_unlock(app, user, outbox):
    _lock(app, user.email)
    link = [m for m in outbox.messages(user.email) if m.template == "unlock"][-1]
    path = re.sub(r"^https?://[^/]+", "", re.findall(r"https?://[^\s]+", link.text_body)[0])

    visitor(app).get(path)
    assert events(app, "account.unlocked") == []  # the GET only shows a button
    visitor(app).post(path)

    unlocked = one(app, "account.unlocked")
    assert unlocked["user_id"] == user.id
    assert unlocked["detail"] == {"by": "link"}
    assert_from_visitor(unlocked)


def test_operator_unlock_records_the_operator(app, runner, user):
    _lock(app, user.email)

    result = runner.invoke(args=["users", "unlock", user.email])

    assert result.exit_code == 0, result.output
    unlocked = one(app, "account.unlocked")
    assert unlocked["user_id"] == user.id
    assert unlocked["actor"] == OPERATOR
    assert unlocked["detail"] == {"by": "operator"}
    assert unlocked["ip_address"] == "" and unlocked["user_agent"] == ""


# password reset


def test_password_reset_request_and_change_are_recorded(app, user, outbox):
    client = visitor(app)
    client.post("/password/forgot", data={"email": user.email})

    requested = one(app, "password.reset_requested")
    assert requested["user_id"] == user.id
    assert_from_visitor(requested)

    response = client.post(outbox.last_link(user.email), data={"password": NEW_PASSWORD})

    assert response.status_code == 303
    changed = one(app, "password.changed")
    assert changed["user_id"] == user.id
    assert changed["actor"] == user_actor(user.id)
    assert changed["detail"] == {"by": "reset_link"}
    assert_from_visitor(changed)


def test_reset_request_for_an_unknown_email_stores_nothing(app, user):
    visitor(app).post("/password/forgot", data={"email": "nobody@example.com"})

    assert events(app) == []


# SSO settings


def test_sso_configure_command_records_the_settings_change(app, runner, user, tmp_path):
    metadata = tmp_path / "idp.xml"
    metadata.write_text(TestIdp(tmp_path).metadata_xml)

    result = runner.invoke(
        args=[
            "sso",
            "configure",
            user.account_slug,
            "--domain",
            "acme.example",
            "--metadata",
            str(metadata),
            "--enforce",
        ]
    )

    assert result.exit_code == 0, result.output
    changed = one(app, "sso.settings_changed")
    assert changed["account_id"] == account_id(app, user.account_slug)
    assert changed["actor"] == OPERATOR
    assert changed["detail"] == {
        "domains": ["acme.example"],
        "enforced": True,
        "metadata_replaced": True,
        "vouched": [],
    }


def test_failed_sso_configure_records_nothing(app, runner, user, tmp_path):
    metadata = tmp_path / "idp.xml"
    metadata.write_text("<not-metadata/>")

    result = runner.invoke(
        args=[
            "sso",
            "configure",
            user.account_slug,
            "--domain",
            "acme.example",
            "--metadata",
            str(metadata),
        ]
    )

    assert result.exit_code != 0
    assert events(app, "sso.settings_changed") == []


# API keys


def test_key_created_and_revoked_on_the_web_name_the_person(app, user):
    client = signed_in(app, user.email)
    slug = user.account_slug
    created = client.post(f"/a/{slug}/api_keys", data=key_form("Deploy"))
    assert created.status_code == 201
    with app.app_context():
        key_id = db.session.scalar(select(ApiKey.id))

    client.post(f"/a/{slug}/api_keys/{key_id}/delete")

    made, revoked = one(app, "api_key.created"), one(app, "api_key.revoked")
    for recorded in (made, revoked):
        assert recorded["account_id"] == account_id(app, slug)
        assert recorded["actor"] == user_actor(user.id)
        assert_from_visitor(recorded)
    assert made["detail"] == {
        "key_id": key_id,
        "name": "Deploy",
        "scopes": list(SCOPES),
        "expires_at": None,
    }
    assert revoked["detail"] == {"key_id": key_id, "name": "Deploy"}


def test_key_created_and_revoked_through_the_session_api_name_the_person(app, user):
    client = signed_in(app, user.email)
    headers = csrf_of(client, user.account_slug)

    key_id = client.post("/api/v1/api_keys", json={"name": "CI"}, headers=headers).get_json()["id"]
    assert client.delete(f"/api/v1/api_keys/{key_id}", headers=headers).status_code == 204

    assert one(app, "api_key.created")["actor"] == user_actor(user.id)
    assert one(app, "api_key.revoked")["actor"] == user_actor(user.id)


def test_key_created_and_revoked_by_the_operator(app, runner, user):
    created = runner.invoke(args=["keys", "create", user.account_slug, "Cron"])
    assert created.exit_code == 0
    with app.app_context():
        key_id = db.session.scalar(select(ApiKey.id))
    assert runner.invoke(args=["keys", "revoke", key_id]).exit_code == 0

    assert one(app, "api_key.created")["actor"] == OPERATOR
    assert one(app, "api_key.revoked")["actor"] == OPERATOR


def test_keys_cannot_manage_keys_so_write_no_key_events(app, client, user):
    key_id, token = make_api_key(app, user.account_slug)
    before = events(app)

    assert_error(
        client.post("/api/v1/api_keys", json={"name": "x"}, headers=bearer(token)),
        403,
        "admin_only",
    )
    assert_error(
        client.delete(f"/api/v1/api_keys/{key_id}", headers=bearer(token)), 403, "admin_only"
    )

    assert events(app) == before


def test_an_event_recorded_during_a_key_request_names_the_key(app, user):
    key_id, _ = make_api_key(app, user.account_slug)
    with app.test_request_context(
        "/api/v1/account", environ_base={"REMOTE_ADDR": ADDRESS}, headers={"User-Agent": AGENT}
    ):
        account = db.session.scalar(select(Account).where(Account.slug == user.account_slug))
        g.api_caller = Caller(account=account, auth="api_key", key=db.session.get(ApiKey, key_id))
        audit.record("api_key.revoked", account=account, detail={"key_id": key_id})
        db.session.commit()

    assert one(app, "api_key.revoked")["actor"] == {"type": "api_key", "id": key_id}


# members


@pytest.fixture
def owner_client(app: Flask, user: factories.Person) -> FlaskClient:
    return signed_in(app, user.email)


def test_invitation_and_joining_are_recorded(app, user, owner_client, outbox):
    slug = user.account_slug
    owner_client.post(
        f"/a/{slug}/members/invite", data={"email": "ivy@example.com", "role": "admin"}
    )

    invited = one(app, "member.invited")
    assert invited["account_id"] == account_id(app, slug)
    assert invited["actor"] == user_actor(user.id)
    assert invited["detail"] == {"email": "ivy@example.com", "role": "admin"}
    assert_from_visitor(invited)

    factories.make_user(app, email="ivy@example.com")
    ivy = signed_in(app, "ivy@example.com")
    ivy.post(outbox.last_link("ivy@example.com"))

    joined = one(app, "member.joined")
    assert joined["account_id"] == account_id(app, slug)
    assert joined["user_id"] == user_id_of(app, "ivy@example.com")
    assert joined["actor"] == user_actor(joined["user_id"])
    assert joined["detail"] == {"role": "admin"}
    assert_from_visitor(joined)


def user_id_of(app: Flask, email: str) -> str:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


def test_new_person_joining_through_the_link_is_recorded(app, user, owner_client, outbox):
    owner_client.post(
        f"/a/{user.account_slug}/members/invite",
        data={"email": "new@example.com", "role": "member"},
    )

    visitor(app).post(
        outbox.last_link("new@example.com"), data={"name": "New", "password": NEW_PASSWORD}
    )

    joined = one(app, "member.joined")
    assert joined["user_id"] == user_id_of(app, "new@example.com")
    assert joined["detail"] == {"role": "member"}
    assert_from_visitor(joined)


def test_new_person_joining_through_the_link_is_the_actor(app, user, owner_client, outbox):
    owner_client.post(
        f"/a/{user.account_slug}/members/invite",
        data={"email": "new@example.com", "role": "member"},
    )

    visitor(app).post(
        outbox.last_link("new@example.com"), data={"name": "New", "password": NEW_PASSWORD}
    )

    joined = one(app, "member.joined")
    assert joined["actor"] == user_actor(joined["user_id"])


def test_withdrawn_invitation_is_recorded(app, user, owner_client):
    slug = user.account_slug
    owner_client.post(
        f"/a/{slug}/members/invite", data={"email": "ivy@example.com", "role": "member"}
    )
    with app.app_context():
        invitation_id = db.session.scalar(select(Invitation.id))

    owner_client.post(f"/a/{slug}/invitations/{invitation_id}/revoke")

    withdrawn = one(app, "member.invitation_revoked")
    assert withdrawn["actor"] == user_actor(user.id)
    assert withdrawn["detail"] == {"email": "ivy@example.com", "role": "member"}


def test_role_change_and_removal_are_recorded(app, user, owner_client):
    slug = user.account_slug
    member = member_of(app, slug, "member")
    target = membership_id(app, slug, member.email)

    owner_client.post(f"/a/{slug}/members/{target}/role", data={"role": "admin"})
    owner_client.post(f"/a/{slug}/members/{target}/remove")

    changed, removed = one(app, "member.role_changed"), one(app, "member.removed")
    assert changed["user_id"] == removed["user_id"] == member.id
    assert changed["account_id"] == removed["account_id"] == account_id(app, slug)
    assert changed["actor"] == removed["actor"] == user_actor(user.id)
    assert changed["detail"] == {"from": "member", "to": "admin"}
    assert removed["detail"] == {"role": "admin", "left": False}
    assert_from_visitor(changed)
    assert_from_visitor(removed)


def test_leaving_is_recorded_as_left(app, user):
    member = member_of(app, user.account_slug, "member")
    client = signed_in(app, member.email)
    own = membership_id(app, user.account_slug, member.email)

    client.post(f"/a/{user.account_slug}/members/{own}/remove")

    removed = one(app, "member.removed")
    assert removed["actor"] == user_actor(member.id)
    assert removed["detail"] == {"role": "member", "left": True}


def test_refused_role_changes_record_nothing(app, user, owner_client):
    slug = user.account_slug
    owner_client.post(
        f"/a/{slug}/members/{membership_id(app, slug, user.email)}/role", data={"role": "member"}
    )

    assert events(app, "member.role_changed") == []


def test_role_change_through_the_api_is_recorded(app, user, owner_client):
    slug = user.account_slug
    member = member_of(app, slug, "member")

    response = owner_client.patch(
        f"/api/v1/members/{membership_id(app, slug, member.email)}",
        json={"role": "admin"},
        headers=csrf_of(owner_client, slug),
    )

    assert response.status_code == 200
    assert one(app, "member.role_changed")["actor"] == user_actor(user.id)


def test_rename_is_recorded(app, user, owner_client):
    with app.app_context():
        old = db.session.scalar(select(Account.name).where(Account.slug == user.account_slug))

    owner_client.post(f"/a/{user.account_slug}/rename", data={"name": "New Name"})

    renamed = one(app, "account.renamed")
    assert renamed["account_id"] == account_id(app, user.account_slug)
    assert renamed["actor"] == user_actor(user.id)
    assert renamed["detail"] == {"from": old, "to": "New Name"}
    assert_from_visitor(renamed)


def test_signing_out_sessions_is_recorded(app, user):
    laptop = signed_in(app, user.email)
    phone = signed_in(app, user.email)
    signed_in(app, user.email)
    with phone.session_transaction() as saved:
        digest = hashlib.sha256(saved["sid"].encode("ascii")).hexdigest()
    with app.app_context():
        phone_row = db.session.scalar(
            select(UserSession.id).where(UserSession.token_hash == digest)
        )

    laptop.post(f"/sessions/{phone_row}/sign_out")
    laptop.post("/sessions/sign_out_others")

    revoked = events(app, "session.revoked")
    assert [e["detail"] for e in revoked] == [{"which": "one"}, {"which": "others"}]
    for recorded in revoked:
        assert recorded["user_id"] == user.id
        assert recorded["actor"] == user_actor(user.id)
        assert_from_visitor(recorded)


# never a secret


def test_no_event_holds_a_secret(app, runner, user, outbox, tmp_path):
    slug = user.account_slug
    secrets: dict[str, str] = {"password": factories.PASSWORD, "wrong password": WRONG}

    # failures, lockout, unlock link
    _lock(app, user.email)
    unlock = [m for m in outbox.messages(user.email) if m.template == "unlock"][-1]
    unlock_path = re.sub(
        r"^https?://[^/]+", "", re.findall(r"https?://[^\s]+", unlock.text_body)[0]
    )
    secrets["unlock token"] = unlock_path.rsplit("/", 1)[1]
    visitor(app).post(unlock_path)
    # a session, keys through the web and the API
    owner = signed_in(app, user.email)
    with owner.session_transaction() as saved:
        secrets["session token"] = saved["sid"]
    secrets["session hash"] = hashlib.sha256(secrets["session token"].encode()).hexdigest()
    secrets["cookie"] = owner.get_cookie("thub_session").value
    web_key = owner.post(f"/a/{slug}/api_keys", data=key_form("Web")).get_data(as_text=True)
    secrets["web key"] = TOKEN_PATTERN.search(web_key).group(0)
    api_key = owner.post("/api/v1/api_keys", json={"name": "Api"}, headers=csrf_of(owner, slug))
    secrets["api key"] = api_key.get_json()["key"]
    cli_key = runner.invoke(args=["keys", "create", slug, "Cli"])
    secrets["cli key"] = cli_key.stdout.strip().splitlines()[-1]
    for name in ("web key", "api key", "cli key"):
        secrets[name + " hash"] = api_tokens.token_hash(secrets[name])
    owner.delete(f"/api/v1/api_keys/{api_key.get_json()['id']}", headers=csrf_of(owner, slug))
    # invitation, joining as a new person with a password
    owner.post(f"/a/{slug}/members/invite", data={"email": "new@example.com", "role": "member"})
    invite_path = outbox.last_link("new@example.com")
    secrets["invitation token"] = invite_path.rsplit("/", 1)[1]
    secrets["invitation hash"] = hashlib.sha256(secrets["invitation token"].encode()).hexdigest()
    secrets["new person's password"] = "a secret for the newcomer 99"
    visitor(app).post(
        invite_path, data={"name": "New", "password": secrets["new person's password"]}
    )
    # password reset
    visitor(app).post("/password/forgot", data={"email": user.email})
    reset_path = outbox.last_link(user.email)
    secrets["reset token"] = reset_path.rsplit("/", 1)[1]
    visitor(app).post(reset_path, data={"password": NEW_PASSWORD})
    secrets["new password"] = NEW_PASSWORD
    # SSO settings (the IdP's key file must never be copied anywhere)
    idp = TestIdp(tmp_path)
    metadata = tmp_path / "idp.xml"
    metadata.write_text(idp.metadata_xml)
    runner.invoke(
        args=["sso", "configure", slug, "--domain", "acme.example", "--metadata", str(metadata)]
    )
    key_pem = idp.key_path.read_text()
    secrets["idp private key"] = "".join(key_pem.splitlines()[1:3])
    # password hashes
    with app.app_context():
        for n, hashed in enumerate(db.session.scalars(select(User.password_hash))):
            secrets[f"password hash {n}"] = hashed

    dump = json.dumps(events(app))

    kinds = {e["kind"] for e in events(app)}
    assert {
        "sign_in.failed",
        "account.locked",
        "account.unlocked",
        "sign_in.succeeded",
        "api_key.created",
        "api_key.revoked",
        "member.invited",
        "member.joined",
        "password.reset_requested",
        "password.changed",
        "sso.settings_changed",
    } <= kinds
    for name, secret in secrets.items():
        assert secret and secret not in dump, f"{name} is in the audit log"
    assert "password" not in {k for e in events(app) for k in e["detail"]}


# who may read the log


@pytest.fixture
def two_accounts(app: Flask, user: factories.Person) -> dict[str, Any]:
    """Account A (the user's: an admin, a member, some events) and B (its own people)."""
    a = user.account_slug
    people = {
        "owner": user,
        "admin": member_of(app, a, "admin"),
        "member": member_of(app, a, "member"),
        "other_owner": factories.make_person(app),
    }
    b = people["other_owner"].account_slug
    people["other_admin"] = member_of(app, b, "admin")
    owner = signed_in(app, user.email)
    owner.post(f"/a/{a}/rename", data={"name": "Account A renamed"})
    owner.post(f"/a/{a}/members/invite", data={"email": "ivy@example.com", "role": "member"})
    visitor(app).post(
        "/sign_in/password", data={"email": people["member"].email, "password": WRONG}
    )
    signed_in(app, people["other_owner"].email).post(
        f"/a/{b}/rename", data={"name": "Account B renamed"}
    )
    return {"a": a, "b": b, "people": people}


def test_owner_and_admin_read_the_audit_page(app, two_accounts):
    a, people = two_accounts["a"], two_accounts["people"]

    for role in ("owner", "admin"):
        response = browser(app, people[role].email).get(f"/a/{a}/audit")
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert "account.renamed" in body and "member.invited" in body and "sign_in.failed" in body
        assert ADDRESS in body
        assert "Account B renamed" not in html.unescape(body)


def test_members_cannot_read_the_audit_log(app, two_accounts):
    a, member = two_accounts["a"], two_accounts["people"]["member"]
    client = browser(app, member.email, a)

    assert client.get(f"/a/{a}/audit").status_code == 403
    assert_error(client.get("/api/v1/audit_events"), 403, "forbidden")


def test_other_accounts_admins_see_none_of_it(app, two_accounts):
    a, b, people = two_accounts["a"], two_accounts["b"], two_accounts["people"]
    a_ids = {
        e["id"]
        for e in events(app)
        if e["account_id"] == account_id(app, a)
        or e["user_id"] in {people[r].id for r in ("owner", "admin", "member")}
    }
    assert a_ids
    client = browser(app, people["other_admin"].email, b)

    assert client.get(f"/a/{a}/audit").status_code == 404
    page = html.unescape(client.get(f"/a/{b}/audit").get_data(as_text=True))
    listed = client.get("/api/v1/audit_events?limit=100").get_json()["data"]

    assert "Account A renamed" not in page and "ivy@example.com" not in page
    assert "Account B renamed" in page
    assert {e["id"] for e in listed}.isdisjoint(a_ids)
    assert {e["account_id"] for e in listed} <= {account_id(app, b), None}
    assert any(e["kind"] == "account.renamed" for e in listed)


def test_api_keys_cannot_read_the_audit_log(app, client, two_accounts):
    _, token = make_api_key(app, two_accounts["a"])

    assert_error(client.get("/api/v1/audit_events", headers=bearer(token)), 403, "admin_only")


def test_audit_page_needs_sign_in(client, two_accounts):
    response = client.get(f"/a/{two_accounts['a']}/audit")

    assert response.status_code == 302
    assert response.location.startswith("/sign_in")


def test_api_lists_the_accounts_events_oldest_first(app, two_accounts):
    a, owner = two_accounts["a"], two_accounts["people"]["owner"]
    client = browser(app, owner.email, a)

    body = client.get("/api/v1/audit_events").get_json()

    assert body["next_cursor"] is None
    kinds = [e["kind"] for e in body["data"]]
    assert {"account.renamed", "member.invited", "sign_in.failed"} <= set(kinds)
    assert [e["created_at"] for e in body["data"]] == sorted(e["created_at"] for e in body["data"])
    for e in body["data"]:
        assert set(e) == {
            "id",
            "created_at",
            "kind",
            "account_id",
            "user_id",
            "actor",
            "ip_address",
            "user_agent",
            "request_id",
            "detail",
        }
        assert e["id"].startswith("evt_")


# filters and pagination: the page


def test_page_filters_by_kind(app, two_accounts):
    a, owner = two_accounts["a"], two_accounts["people"]["owner"]
    client = browser(app, owner.email)

    body = client.get(f"/a/{a}/audit?kind=member.invited").get_data(as_text=True)

    rows = re.findall(r"<dt>Event</dt><dd>([a-z_]+\.[a-z_]+)</dd>", body)
    assert rows == ["member.invited"]


def test_page_filters_by_person(app, two_accounts):
    a, people = two_accounts["a"], two_accounts["people"]
    client = browser(app, people["owner"].email)

    body = client.get(
        f"/a/{a}/audit", query_string={"person": people["member"].email.upper()}
    ).get_data(as_text=True)
    kinds = re.findall(r"<dt>Event</dt><dd>([a-z_]+\.[a-z_]+)</dd>", body)
    assert "sign_in.failed" in kinds and "account.renamed" not in kinds

    nobody = client.get(f"/a/{a}/audit", query_string={"person": "nobody@example.com"}).get_data(
        as_text=True
    )
    assert "No events match these filters." in nobody


def test_page_filters_by_dates_inclusively(app, user):
    slug = user.account_slug
    seed(app, slug, 1, datetime(2025, 1, 5, 12, tzinfo=UTC))
    seed(app, slug, 2, datetime(2025, 1, 10, 23, 59, tzinfo=UTC))
    seed(app, slug, 3, datetime(2025, 1, 15, 0, 0, tzinfo=UTC))
    client = signed_in(app, user.email)

    body = client.get(
        f"/a/{slug}/audit?kind=account.renamed&since=2025-01-06&until=2025-01-10"
    ).get_data(as_text=True)
    assert sorted(tags_on_page(body)) == ["t000", "t001"]
    body = client.get(f"/a/{slug}/audit?kind=account.renamed&since=2025-01-11").get_data(
        as_text=True
    )
    assert sorted(tags_on_page(body)) == ["t000", "t001", "t002"]
    body = client.get(f"/a/{slug}/audit?kind=account.renamed&until=2025-01-05").get_data(
        as_text=True
    )
    assert tags_on_page(body) == ["t000"]


def test_page_ignores_filters_it_does_not_understand(app, user):
    seed(app, user.account_slug, 1, datetime(2025, 1, 5, tzinfo=UTC))
    client = signed_in(app, user.email)

    response = client.get(
        f"/a/{user.account_slug}/audit?kind=rm+-rf&since=yesterday&until=31/12/2025&before=zzz"
    )

    assert response.status_code == 200
    assert tags_on_page(response.get_data(as_text=True)) == ["t000"]


def test_page_is_paginated_without_gaps_or_repeats(app, user):
    slug = user.account_slug
    # All at one instant: the pager must break ties by id.
    seed(app, slug, PAGE_SIZE + 10, datetime(2025, 3, 1, tzinfo=UTC))
    client = signed_in(app, user.email)

    first = client.get(f"/a/{slug}/audit?kind=account.renamed").get_data(as_text=True)
    older = re.search(r'<a class="button" href="([^"]+)">Older events</a>', first)
    assert older is not None
    assert "kind=account.renamed" in html.unescape(older.group(1))  # filters carried along
    second = client.get(html.unescape(older.group(1))).get_data(as_text=True)

    one_tags, two_tags = tags_on_page(first), tags_on_page(second)
    assert len(one_tags) == PAGE_SIZE and len(two_tags) == 10
    assert set(one_tags).isdisjoint(two_tags)
    assert sorted(one_tags + two_tags) == [f"t{i:03d}" for i in range(PAGE_SIZE + 10)]
    assert "Older events" not in second


def test_page_shows_newest_first(app, user):
    slug = user.account_slug
    seed(app, slug, 1, datetime(2025, 1, 1, tzinfo=UTC))
    seed(app, slug, 1, datetime(2025, 2, 1, tzinfo=UTC))
    client = signed_in(app, user.email)

    body = client.get(f"/a/{slug}/audit?kind=account.renamed").get_data(as_text=True)

    assert len(tags_on_page(body)) == 2
    assert body.index("2025-02-01") < body.index("2025-01-01")


# filters and pagination: the API


def _api(app: Flask, user: factories.Person) -> FlaskClient:
    return browser(app, user.email, user.account_slug)


def test_api_filters_by_kind_user_and_time(app, user):
    slug = user.account_slug
    member = member_of(app, slug, "member")
    seed(app, slug, 2, datetime(2025, 1, 5, tzinfo=UTC))
    seed(
        app, slug, 1, datetime(2025, 1, 20, tzinfo=UTC), kind="member.role_changed", user=member.id
    )
    client = _api(app, user)

    by_kind = client.get("/api/v1/audit_events?kind=member.role_changed").get_json()["data"]
    assert [e["detail"]["tag"] for e in by_kind] == ["t000"]
    by_user = client.get("/api/v1/audit_events", query_string={"user_id": member.id}).get_json()[
        "data"
    ]
    assert {e["kind"] for e in by_user} == {"member.role_changed", "member.joined"}
    assert all(member.id in (e["user_id"], e["actor"]["id"]) for e in by_user)
    window = client.get(
        "/api/v1/audit_events",
        query_string={"since": "2025-01-01T00:00:00Z", "until": "2025-01-10T00:00:00+00:00"},
    ).get_json()["data"]
    assert sorted(e["detail"]["tag"] for e in window) == ["t000", "t001"]
    later = client.get(
        "/api/v1/audit_events",
        query_string={"since": "2025-01-10T00:00:00Z", "kind": "account.renamed"},
    )
    assert later.get_json()["data"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"kind": "nope"}, "kind"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2025-01-10T00:00:00"}, "until"),  # no zone
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
    ids=["kind", "since", "naive-until", "limit-0", "limit-101", "cursor"],
)
def test_api_refuses_bad_filters_naming_the_field(app, user, query, field):
    response = _api(app, user).get("/api/v1/audit_events", query_string=query)

    assert field in assert_error(response, 422, "validation_error")["error"]["fields"]


def test_api_pages_through_every_event_once(app, user):
    slug = user.account_slug
    seed(app, slug, 45, datetime(2025, 3, 1, tzinfo=UTC))  # one instant: ties broken by id
    client = _api(app, user)

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query = {"kind": "account.renamed", "limit": "20", **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/audit_events", query_string=query).get_json()
        seen += [e["detail"]["tag"] for e in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == [f"t{i:03d}" for i in range(45)]
    assert len(seen) == 45


# export


def test_export_prints_one_parseable_json_line_per_event(app, runner, two_accounts):
    a = two_accounts["a"]

    result = runner.invoke(args=["audit", "export", a])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    exported = [json.loads(line) for line in lines]
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == a))
        expected = [audit.serialize(e) for e in db.session.scalars(audit.account_events(account))]
    assert len(exported) == len(expected) > 0
    assert {e["id"] for e in exported} == {e["id"] for e in expected}
    assert [e["created_at"] for e in exported] == sorted(e["created_at"] for e in exported)
    assert "Account B renamed" not in result.stdout
    assert all(
        {"kind", "created_at", "actor", "ip_address", "user_agent", "detail"} <= set(e)
        for e in exported
    )


def test_export_of_an_unknown_account_fails_cleanly(runner, user):
    result = runner.invoke(args=["audit", "export", "no-such-account"])

    assert result.exit_code != 0
    assert "no-such-account" in result.output
    assert "Traceback" not in result.output


def test_export_of_an_empty_log_prints_nothing(app, runner):
    factories.make_user(app, email="lonely@example.com")
    slug = factories.make_account(app, "lonely@example.com")

    result = runner.invoke(args=["audit", "export", slug])

    assert result.exit_code == 0
    assert result.stdout == ""


# a failing audit write never breaks the action


@pytest.fixture
def broken_audit_table(app: Flask) -> Iterator[None]:
    """Make every INSERT into audit_events fail in the database itself."""

    def redirect(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS"):
            statement = re.sub(
                "audit_events", "audit_events_missing", statement, count=1, flags=re.I
            )
        return statement, parameters

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", redirect, retval=True)
    yield
    event.remove(engine, "before_cursor_execute", redirect)


def test_key_creation_succeeds_when_the_audit_write_fails(app, user, broken_audit_table, caplog):
    client = signed_in(app, user.email)

    response = client.post(f"/a/{user.account_slug}/api_keys", data=key_form("Still works"))

    assert response.status_code == 201
    token = TOKEN_PATTERN.search(response.get_data(as_text=True)).group(0)
    assert app.test_client().get("/api/v1/account", headers=bearer(token)).status_code == 200
    assert events(app) == []
    assert "audit event api_key.created could not be written" in caplog.text


def test_sign_in_and_member_changes_succeed_when_the_audit_write_fails(
    app, user, broken_audit_table
):
    member = member_of(app, user.account_slug, "member")
    client = signed_in(app, user.email)

    target = membership_id(app, user.account_slug, member.email)

    response = client.post(f"/a/{user.account_slug}/members/{target}/role", data={"role": "admin"})

    assert response.status_code == 303
    assert client.get(f"/a/{user.account_slug}/").status_code == 200
    assert role_of(app, user.account_slug, member.email) == "admin"
    assert events(app) == []


def test_record_never_raises(app, user, broken_audit_table):
    with app.app_context():
        audit.record("account.renamed", detail={"x": 1})
        db.session.commit()

    assert events(app) == []


def test_page_shows_event_details_as_text(app, user):
    client = signed_in(app, user.email)
    client.post(f"/a/{user.account_slug}/rename", data={"name": "<script>alert(1)</script>"})

    body = client.get(f"/a/{user.account_slug}/audit?kind=account.renamed").get_data(as_text=True)

    assert "account.renamed" in body
    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
