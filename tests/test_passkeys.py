"""Passkeys through the pages' JSON endpoints, answered by a software authenticator that makes
real attestations and assertions (ES256 and RS256)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import cbor2
import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.core import passkeys
from terminus_hub.core import signin
from terminus_hub.core.sso_connections import configure
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import AuditEvent
from terminus_hub.models import Passkey
from terminus_hub.models import User
from terminus_hub.models import UserSession
from terminus_hub.models import WebAuthnChallenge
from terminus_hub.models import utcnow
from tests import factories
from tests.conftest import Outbox
from tests.factories import Person
from tests.factories import key_form
from tests.sso_helpers import DOMAIN
from tests.sso_helpers import make_sso
from tests.test_mfa import code_at
from tests.test_mfa import enrol
from tests.test_mfa import last_sign_in
from tests.webauthn_authenticator import ES256
from tests.webauthn_authenticator import RS256
from tests.webauthn_authenticator import Authenticator
from tests.webauthn_authenticator import Credential
from tests.webauthn_authenticator import b64url

ORIGIN = "http://localhost"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0"


def options(client: FlaskClient, path: str) -> dict[str, Any]:
    response = client.post(path, json={})
    assert response.status_code == 200, response.get_data(as_text=True)
    parsed: dict[str, Any] = json.loads(response.get_data(as_text=True))
    return parsed


def register(
    client: FlaskClient, authenticator: Authenticator, name: str | None = None, **create: Any
) -> Any:
    """Ask for options, let the authenticator make a credential, send it with a name."""
    opts = options(client, "/settings/passkeys/options")
    body = authenticator.create(opts, **create)
    if name is not None:
        body["name"] = name
    return client.post("/settings/passkeys", json=body, headers={"User-Agent": CHROME})


def signed_in(app: Flask, person: Person) -> FlaskClient:
    """Signed in with the password, then the password again at /reauth: adding a passkey
    asks for a proof given after the sign-in."""
    client = app.test_client()
    factories.sign_in(client, person.email)
    proved = client.post("/reauth", data={"password": person.password, "next": "/settings"})
    assert proved.status_code == 303
    return client


def with_passkey(app: Flask, person: Person, algorithm: int = ES256) -> Authenticator:
    """The person registers a passkey (signed in, then signed out again)."""
    authenticator = Authenticator(ORIGIN, algorithm)
    client = signed_in(app, person)
    assert register(client, authenticator).status_code == 201
    assert client.post("/sign_out").status_code == 303
    return authenticator


def sign_in_with(
    client: FlaskClient, authenticator: Authenticator, path: str = "/sign_in/passkey", **get: Any
) -> Any:
    opts = options(client, "/sign_in/passkey/options")
    return client.post(path, json=authenticator.get(opts, **get))


def error_code(response: Any) -> str:
    code: str = response.get_json()["error"]["code"]
    return code


def stored(app: Flask) -> list[Passkey]:
    with app.app_context():
        rows = list(db.session.scalars(select(Passkey)))
        db.session.expunge_all()
        return rows


def kinds(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent.kind).order_by(AuditEvent.created_at)))


def sessions(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(UserSession)) or 0


# Registering --------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [ES256, RS256], ids=["ES256", "RS256"])
def test_a_passkey_is_registered_and_listed(
    app: Flask, user: Person, outbox: Outbox, algorithm: int
) -> None:
    client = signed_in(app, user)
    opts = options(client, "/settings/passkeys/options")
    assert opts["rp"]["id"] == "localhost" and opts["attestation"] == "none"
    assert opts["authenticatorSelection"]["residentKey"] == "required"
    assert opts["authenticatorSelection"]["userVerification"] == "preferred"
    assert opts["user"]["name"] == user.email and user.email not in opts["user"]["id"]

    authenticator = Authenticator(ORIGIN, algorithm)
    body = authenticator.create(opts)
    made = client.post("/settings/passkeys", json={**body, "name": "Work laptop"})
    assert made.status_code == 201 and made.get_json()["name"] == "Work laptop"
    (passkey,) = stored(app)
    assert passkey.user_id == user.id and passkey.sign_count == 0
    page = client.get("/settings").get_data(as_text=True)
    assert "Work laptop" in page and "never used" in page
    assert "passkey.registered" in kinds(app)
    assert 'named "Work laptop" was added' in outbox.messages(user.email)[-1].text_body
    with app.app_context():
        assert db.session.get_one(User, user.id).mfa_enabled_at is not None

    # One authenticator is not registered twice: the options exclude it, and a second
    # registration of the same credential is refused.
    again = options(client, "/settings/passkeys/options")
    assert [c["id"] for c in again["excludeCredentials"]] == [body["id"]]
    twice = client.post(
        "/settings/passkeys",
        json=authenticator.create(again, reuse=authenticator.credentials[0]),
    )
    assert twice.status_code == 409 and error_code(twice) == "conflict"
    assert len(stored(app)) == 1


def test_an_unnamed_passkey_is_named_after_its_browser(app: Flask, user: Person) -> None:
    client = signed_in(app, user)
    assert register(client, Authenticator(ORIGIN)).get_json()["name"] == "Chrome on Linux"
    assert passkeys.default_name("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", CHROME) == (
        "iCloud Keychain"
    )
    assert passkeys.default_name("", "curl/8") == "Passkey"


def test_registering_needs_a_proof_given_after_the_sign_in(app: Flask, user: Person) -> None:
    """A passkey signs in on its own and outlives sessions: a cookie copied right after the
    sign-in must not add one without the password."""
    fresh = app.test_client()
    factories.sign_in(fresh, user.email)
    refused = fresh.post("/settings/passkeys/options", json={})
    assert refused.status_code == 403 and error_code(refused) == "reauthentication_required"
    assert fresh.post("/reauth", data={"password": user.password}).status_code == 303
    assert fresh.post("/settings/passkeys/options", json={}).status_code == 200


def test_registering_needs_a_recent_proof(app: Flask, user: Person) -> None:
    client = signed_in(app, user)
    with freeze_time(utcnow() + timedelta(minutes=11)):
        refused = client.post("/settings/passkeys/options", json={})
        assert refused.status_code == 403
        error = refused.get_json()["error"]
        assert error["code"] == "reauthentication_required"
        assert error["reauth_url"] == "/reauth?next=/settings%23passkeys"
    assert not stored(app)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"origin": "http://evil.example"}, "passkey_refused"),
        ({"origin": "http://localhost:8080"}, "passkey_refused"),
        ({"rp_id": "evil.example"}, "passkey_refused"),
        ({"challenge": "AAAA"}, "challenge_invalid"),
    ],
    ids=["other-origin", "other-port", "other-rp-id", "unknown-challenge"],
)
def test_a_registration_for_another_site_or_challenge_is_refused(
    app: Flask, user: Person, change: dict[str, str], code: str
) -> None:
    client = signed_in(app, user)
    refused = register(client, Authenticator(ORIGIN), **change)
    assert refused.status_code == 400 and error_code(refused) == code
    assert not stored(app)


def test_bad_bodies_get_clear_errors_and_write_nothing(app: Flask, user: Person) -> None:
    client = signed_in(app, user)
    options(client, "/settings/passkeys/options")
    cases = [
        (client.post("/settings/passkeys", data="{not json", content_type="application/json"), 400),
        (client.post("/settings/passkeys", json=["a", "list"]), 400),
        (client.post("/settings/passkeys", data="x=1"), 415),
        (client.post("/settings/passkeys", json={"response": {"clientDataJSON": "!!"}}), 400),
        (client.post("/settings/passkeys", json={"pad": "x" * (70 * 1024)}), 413),
    ]
    for response, status in cases:
        assert response.status_code == status, response.get_data(as_text=True)
        assert response.get_json()["error"]["message"]
    too_long = register(client, Authenticator(ORIGIN), name="n" * 65)
    assert too_long.status_code == 422 and error_code(too_long) == "validation_error"
    assert not stored(app)


def test_a_challenge_is_answered_once_by_the_browser_it_went_to_in_time(
    app: Flask, user: Person
) -> None:
    client = signed_in(app, user)
    authenticator = Authenticator(ORIGIN)
    opts = options(client, "/settings/passkeys/options")
    body = authenticator.create(opts)

    other_browser = signed_in(app, user)
    elsewhere = other_browser.post("/settings/passkeys", json=body)
    assert elsewhere.status_code == 400 and error_code(elsewhere) == "challenge_invalid"
    assert client.post("/settings/passkeys", json=body).status_code == 201  # its own browser
    replayed = client.post("/settings/passkeys", json=body)
    assert replayed.status_code == 400 and error_code(replayed) == "challenge_invalid"
    assert len(stored(app)) == 1

    late_opts = options(client, "/settings/passkeys/options")
    late_body = authenticator.create(late_opts)
    with freeze_time(utcnow() + passkeys.CHALLENGE_LIFETIME + timedelta(seconds=1)):
        factories.sign_in(client, user.email)  # a fresh proof, but the challenge has expired
        late = client.post("/settings/passkeys", json=late_body)
        assert late.status_code == 400 and error_code(late) == "challenge_invalid"
    assert len(stored(app)) == 1


def test_a_challenge_serves_only_its_own_ceremony(app: Flask, user: Person) -> None:
    client = signed_in(app, user)
    reauth_opts = options(client, "/sign_in/passkey/options")  # signed in: re-authentication
    body = Authenticator(ORIGIN).create(
        {**options(client, "/settings/passkeys/options"), "challenge": reauth_opts["challenge"]}
    )
    refused = client.post("/settings/passkeys", json=body)
    assert refused.status_code == 400 and error_code(refused) == "challenge_invalid"
    assert not stored(app)


# Passwordless sign-in -----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [ES256, RS256], ids=["ES256", "RS256"])
def test_a_passkey_signs_in_from_the_email_step(app: Flask, user: Person, algorithm: int) -> None:
    authenticator = with_passkey(app, user, algorithm)
    client = app.test_client()
    opts = options(client, "/sign_in/passkey/options")
    assert opts["userVerification"] == "required" and opts["allowCredentials"] == []
    answer = client.post("/sign_in/passkey?next=/settings", json=authenticator.get(opts))
    assert answer.status_code == 200 and answer.get_json()["redirect"] == "/settings"
    assert client.get("/settings").status_code == 200
    (passkey,) = stored(app)
    assert passkey.sign_count == 1 and passkey.last_used_at is not None
    assert last_sign_in(app) == {"method": "passkey", "passkey_id": passkey.id}


def test_the_sign_in_page_offers_passkeys_and_says_what_needs_javascript(
    client: FlaskClient,
) -> None:
    page = client.get("/sign_in").get_data(as_text=True)
    assert 'autocomplete="username webauthn"' in page
    assert "Sign in with a passkey" in page and 'data-passkey="sign-in"' in page
    assert "/static/passkeys.js" in page


def test_a_replayed_assertion_is_refused_and_a_counter_going_back_is_audited(
    app: Flask, user: Person
) -> None:
    authenticator = with_passkey(app, user)
    client = app.test_client()
    opts = options(client, "/sign_in/passkey/options")
    body = authenticator.get(opts)
    assert client.post("/sign_in/passkey", json=body).status_code == 200
    replay = app.test_client()
    replay.post("/sign_in/passkey/options", json={})
    again = replay.post("/sign_in/passkey", json=body)
    assert again.status_code == 400 and error_code(again) == "challenge_invalid"

    # A copy of the authenticator, behind the original's counter, answers a fresh challenge.
    cloned = app.test_client()
    refused = sign_in_with(cloned, authenticator, sign_count=1)
    assert refused.status_code == 400 and error_code(refused) == "passkey_cloned"
    assert "passkey.counter_regressed" in kinds(app)
    assert sessions(app) == 1


def test_a_passkey_without_user_verification_does_not_sign_in_alone(
    app: Flask, user: Person
) -> None:
    authenticator = with_passkey(app, user)
    refused = sign_in_with(app.test_client(), authenticator, user_verified=False)
    assert refused.status_code == 400 and "passkey.refused" in kinds(app)
    assert sessions(app) == 0


@pytest.mark.parametrize(
    "change",
    [{"origin": "http://evil.example"}, {"rp_id": "evil.example"}],
    ids=["other-origin", "other-rp-id"],
)
def test_an_assertion_for_another_site_is_refused_and_audited(
    app: Flask, user: Person, change: dict[str, str]
) -> None:
    authenticator = with_passkey(app, user)
    refused = sign_in_with(app.test_client(), authenticator, **change)
    assert refused.status_code == 400
    assert "passkey.refused" in kinds(app) and sessions(app) == 0


def test_a_deleted_or_unknown_passkey_is_refused(app: Flask, user: Person) -> None:
    authenticator = with_passkey(app, user)
    stranger = Authenticator(ORIGIN)
    stranger.credentials.append(
        Credential(
            id=b"unknown-credential",
            key=authenticator.credentials[0].key,
            algorithm=ES256,
            user_handle=user.id.encode(),
            rp_id="localhost",
        )
    )
    unknown = sign_in_with(app.test_client(), stranger)
    assert unknown.status_code == 400 and error_code(unknown) == "unknown_passkey"

    client = signed_in_with_passkey(app, user)
    (passkey,) = stored(app)
    removed = client.post(f"/settings/passkeys/{passkey.id}/delete", follow_redirects=True)
    assert "removed" in removed.get_data(as_text=True)
    gone = sign_in_with(app.test_client(), authenticator)
    assert gone.status_code == 400 and error_code(gone) == "unknown_passkey"


def test_a_passkey_cannot_claim_another_persons_handle(app: Flask, user: Person) -> None:
    authenticator = with_passkey(app, user)
    other = factories.make_person(app)
    refused = sign_in_with(app.test_client(), authenticator, user_handle=other.id.encode())
    assert refused.status_code == 400 and sessions(app) == 0


def test_a_passkey_sign_in_obeys_the_same_rules_as_a_password(app: Flask, user: Person) -> None:
    authenticator = with_passkey(app, user)
    with app.app_context():
        person = db.session.get_one(User, user.id)
        person.confirmed_at = None
        db.session.commit()
    unconfirmed = sign_in_with(app.test_client(), authenticator)
    assert unconfirmed.status_code == 403
    assert unconfirmed.get_json()["error"]["message"] == signin.UNCONFIRMED
    with app.app_context():
        person = db.session.get_one(User, user.id)
        person.confirmed_at = utcnow()
        person.failed_attempts = 9
        person.locked_until = utcnow() + timedelta(minutes=15)
        db.session.commit()
    locked = sign_in_with(app.test_client(), authenticator)
    assert locked.status_code == 403 and error_code(locked) == "locked"
    assert sessions(app) == 0


# The second factor and re-authentication ----------------------------------------------------


def test_a_passkey_is_the_second_factor_after_a_password(app: Flask, user: Person) -> None:
    authenticator = with_passkey(app, user)
    client = app.test_client()
    step = client.post(
        "/sign_in/password",
        data={"email": user.email, "password": user.password, "next": "/settings"},
    )
    assert step.location == "/sign_in/mfa"
    page = client.get("/sign_in/mfa").get_data(as_text=True)
    assert "Use a passkey" in page and "Passkeys need JavaScript" in page
    opts = options(client, "/sign_in/passkey/options")
    assert [c["id"] for c in opts["allowCredentials"]] == [stored(app)[0].credential_id]
    done = client.post("/sign_in/passkey", json=authenticator.get(opts))
    assert done.status_code == 200 and done.get_json()["redirect"] == "/settings"
    assert client.get("/settings").status_code == 200


def test_at_the_second_factor_only_that_persons_passkey_counts(app: Flask, user: Person) -> None:
    with_passkey(app, user)
    other = factories.make_person(app)
    theirs = with_passkey(app, other)
    client = app.test_client()
    client.post("/sign_in/password", data={"email": user.email, "password": user.password})
    refused = sign_in_with(client, theirs)
    assert refused.status_code == 400 and sessions(app) == 0


def test_a_passkey_confirms_it_is_you(app: Flask, user: Person) -> None:
    authenticator = with_passkey(app, user)
    client = app.test_client()
    assert sign_in_with(client, authenticator).status_code == 200
    with freeze_time(utcnow() + timedelta(minutes=11)):
        stale = client.post(f"/a/{user.account_slug}/api_keys", data=key_form("CI"))
        assert stale.status_code == 303 and stale.location.startswith("/reauth")
        assert 'data-passkey="reauth"' in client.get(stale.location).get_data(as_text=True)
        answer = sign_in_with(client, authenticator, path="/sign_in/passkey?next=/settings")
        assert answer.status_code == 200
        back = client.get(answer.get_json()["redirect"])
        assert back.status_code == 200 and "api_keys" in back.get_data(as_text=True)
        made = client.post(f"/a/{user.account_slug}/api_keys", data=key_form("CI"))
        assert made.status_code == 201


# Managing -----------------------------------------------------------------------------------


def test_rename_and_delete_need_a_recent_proof(app: Flask, user: Person, outbox: Outbox) -> None:
    with_passkey(app, user)
    (passkey,) = stored(app)
    at_code_step = app.test_client()
    at_code_step.post("/sign_in/password", data={"email": user.email, "password": user.password})
    assert at_code_step.get("/settings").status_code == 302  # the password alone is not enough
    stale = signed_in_with_passkey(app, user)
    with freeze_time(utcnow() + timedelta(minutes=11)):
        refused = stale.post(f"/settings/passkeys/{passkey.id}/delete")
        assert refused.status_code == 303 and refused.location.startswith("/reauth")
    assert len(stored(app)) == 1

    client = signed_in_with_passkey(app, user)
    renamed = client.post(f"/settings/passkeys/{passkey.id}/rename", data={"name": "Phone"})
    assert renamed.status_code == 303 and stored(app)[0].name == "Phone"
    blank = client.post(f"/settings/passkeys/{passkey.id}/rename", data={"name": " "})
    assert blank.status_code == 303 and stored(app)[0].name == "Phone"
    assert client.post(f"/settings/passkeys/{passkey.id}/delete").status_code == 303
    assert not stored(app)
    assert 'The passkey named "Phone" was removed' in outbox.messages(user.email)[-1].text_body
    with app.app_context():
        assert db.session.get_one(User, user.id).mfa_enabled_at is None


def test_another_persons_passkey_cannot_be_renamed_or_removed(app: Flask, user: Person) -> None:
    with_passkey(app, user)
    (theirs,) = stored(app)
    other = factories.make_person(app)
    client = signed_in(app, other)
    for action in ("rename", "delete"):
        refused = client.post(
            f"/settings/passkeys/{theirs.id}/{action}", data={"name": "x"}, follow_redirects=True
        )
        assert "No such passkey." in refused.get_data(as_text=True)
    assert stored(app)[0].name == theirs.name


def signed_in_with_passkey(app: Flask, person: Person) -> FlaskClient:
    """A browser signed in passwordless with the person's (only) registered passkey."""
    client = app.test_client()
    with app.app_context():
        passkey = db.session.scalars(select(Passkey).where(Passkey.user_id == person.id)).one()
        count = passkey.sign_count
    authenticator = AUTHENTICATORS[person.id]
    authenticator.credentials[0].sign_count = count
    assert sign_in_with(client, authenticator).status_code == 200
    return client


AUTHENTICATORS: dict[str, Authenticator] = {}


@pytest.fixture(autouse=True)
def _remember_authenticators(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let signed_in_with_passkey find the authenticator with_passkey made for a person."""
    AUTHENTICATORS.clear()
    original = Authenticator.create

    def create(self: Authenticator, opts: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        body = original(self, opts, **kwargs)
        AUTHENTICATORS[self.credentials[-1].user_handle.decode()] = self
        return body

    monkeypatch.setattr(Authenticator, "create", create)


def test_a_policy_keeps_the_last_passkey(app: Flask, user: Person) -> None:
    with_passkey(app, user)
    client = signed_in_with_passkey(app, user)
    path = f"/a/{user.account_slug}/settings"
    assert client.post(path, data={"require_mfa_for_managers": "y"}).status_code == 303
    (passkey,) = stored(app)
    kept = client.post(f"/settings/passkeys/{passkey.id}/delete", follow_redirects=True)
    assert "cannot remove your last one" in kept.get_data(as_text=True)
    assert len(stored(app)) == 1
    # With an authenticator app as well, the passkey may go.
    secret, _ = enrol(client)
    assert client.post(f"/settings/passkeys/{passkey.id}/delete").status_code == 303
    assert not stored(app)
    assert code_at(secret)  # the app stays the second factor


def test_an_operator_reset_removes_passkeys_too(app: Flask, runner, user: Person) -> None:
    with_passkey(app, user)
    result = runner.invoke(args=["users", "reset-mfa", user.email])
    assert result.exit_code == 0 and "Removed" in result.output
    assert not stored(app)


def test_without_javascript_the_settings_page_says_passkeys_need_it(
    app: Flask, user: Person
) -> None:
    page = signed_in(app, user).get("/settings").get_data(as_text=True)
    assert "Adding a passkey needs JavaScript" in page
    assert 'data-passkey="register"' in page and "No passkeys yet." in page


def test_housekeeping_deletes_unanswered_challenges(app: Flask, runner) -> None:
    for _ in range(3):
        app.test_client().post("/sign_in/passkey/options", json={})
    with app.app_context():
        for row in db.session.scalars(select(WebAuthnChallenge)).all()[:2]:
            row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    result = runner.invoke(args=["housekeeping"])
    assert result.exit_code == 0 and "2 webauthn_challenges" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebAuthnChallenge)) == 1


def _ada_at_the_sso_domain(app: Flask) -> tuple[Person, Authenticator]:
    """Ada, at the SSO account's domain but with her own account, and her passkey."""
    email = f"ada@{DOMAIN}"
    made = factories.make_user(app, email=email)
    person = Person(made.id, email, factories.PASSWORD, factories.make_account(app, email))
    return person, with_passkey(app, person)


def test_a_passkey_does_not_get_round_enforced_single_sign_on(
    app: Flask, client: FlaskClient, signer
) -> None:
    sso = make_sso(app, client, signer)
    _, authenticator = _ada_at_the_sso_domain(app)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == sso.slug))
        assert account is not None
        configure(account, metadata_xml=None, by_operator=True, enforce=True)
        db.session.commit()
    refused = sign_in_with(app.test_client(), authenticator)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["message"] == signin.SSO_ENFORCED
    assert sessions(app) == 0


def test_a_passkey_sign_in_gets_a_new_session_id(app: Flask, user: Person) -> None:
    authenticator = with_passkey(app, user)
    client = app.test_client()
    client.get("/sign_in")
    before = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert sign_in_with(client, authenticator).status_code == 200
    after = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert after is not None and (before is None or before.value != after.value)
    with app.app_context():
        (row,) = db.session.scalars(select(UserSession)).all()
        assert row.user_id == user.id


# Found by the attacker's review ---------------------------------------------------------------


def test_deeply_nested_json_is_a_clear_error_not_a_crash(app: Flask, user: Person) -> None:
    client = app.test_client()
    client.post("/sign_in/passkey/options", json={})
    deep = client.post("/sign_in/passkey", data="[" * 50000, content_type="application/json")
    assert deep.status_code == 400 and error_code(deep) == "bad_request"
    nested = b64url(("[" * 40000).encode())
    inner = client.post("/sign_in/passkey", json={"response": {"clientDataJSON": nested}})
    assert inner.status_code == 400 and error_code(inner) == "passkey_refused"


@pytest.mark.parametrize(
    "cose_key",
    [cbor2.dumps([1, 2]), cbor2.dumps("ab"), cbor2.dumps({1: 2, 3: -7, -1: 1, -2: b"", -3: b""})],
    ids=["array", "text", "empty-coordinates"],
)
def test_a_broken_public_key_is_refused_at_registration(
    app: Flask, user: Person, cose_key: bytes
) -> None:
    client = signed_in(app, user)
    refused = register(client, Authenticator(ORIGIN), cose_key=cose_key)
    assert refused.status_code == 400 and refused.get_json()["error"]["message"]
    assert not stored(app) and "passkey.refused" in kinds(app)


def test_a_lock_that_has_run_out_does_not_keep_a_passkey_out(app: Flask, user: Person) -> None:
    authenticator = with_passkey(app, user)
    with app.app_context():
        person = db.session.get_one(User, user.id)
        person.failed_attempts = 8  # attempts made while locked still counted
        person.locked_at = utcnow() - timedelta(hours=2)
        person.locked_until = utcnow() - timedelta(hours=1)
        db.session.commit()
    assert sign_in_with(app.test_client(), authenticator).status_code == 200
    with app.app_context():
        assert db.session.get_one(User, user.id).failed_attempts == 0


def test_refused_passkey_sign_ins_are_audited_like_passwords(app: Flask, user: Person) -> None:
    authenticator = with_passkey(app, user)
    with app.app_context():
        person = db.session.get_one(User, user.id)
        person.locked_at, person.locked_until = utcnow(), utcnow() + timedelta(minutes=15)
        db.session.commit()
    assert sign_in_with(app.test_client(), authenticator).status_code == 403
    with app.app_context():
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "sign_in.failed")
        ).one()
        assert event.detail["reason"] == "locked" and event.detail["method"] == "passkey"


def test_the_second_factor_step_checks_single_sign_on_again(
    app: Flask, client: FlaskClient, signer
) -> None:
    sso = make_sso(app, client, signer)
    person, authenticator = _ada_at_the_sso_domain(app)
    browser = app.test_client()
    step = browser.post(
        "/sign_in/password", data={"email": person.email, "password": person.password}
    )
    assert step.location == "/sign_in/mfa"
    with app.app_context():  # the organisation enforces single sign-on meanwhile
        account = db.session.scalar(select(Account).where(Account.slug == sso.slug))
        assert account is not None
        configure(account, metadata_xml=None, by_operator=True, enforce=True)
        db.session.commit()
    refused = sign_in_with(browser, authenticator)
    assert refused.status_code == 403 and sessions(app) == 0


def test_reauthentication_by_passkey_needs_user_verification_and_no_lock(
    app: Flask, user: Person
) -> None:
    authenticator = with_passkey(app, user)
    client = app.test_client()
    assert sign_in_with(client, authenticator).status_code == 200
    with freeze_time(utcnow() + timedelta(minutes=11)):
        opts = options(client, "/sign_in/passkey/options")
        assert opts["userVerification"] == "required"
        unverified = client.post(
            "/sign_in/passkey", json=authenticator.get(opts, user_verified=False)
        )
        assert unverified.status_code == 400
        with app.app_context():
            person = db.session.get_one(User, user.id)
            person.locked_at, person.locked_until = utcnow(), utcnow() + timedelta(minutes=15)
            db.session.commit()
        locked = sign_in_with(client, authenticator)
        assert locked.status_code == 403 and error_code(locked) == "locked"
        stale = client.post(f"/a/{user.account_slug}/api_keys", data=key_form("CI"))
        assert stale.status_code == 303 and stale.location.startswith("/reauth")


def test_an_unsigned_answer_does_not_raise_the_clone_alarm(app: Flask, user: Person) -> None:
    authenticator = with_passkey(app, user)
    assert sign_in_with(app.test_client(), authenticator).status_code == 200  # counter 1
    client = app.test_client()
    opts = options(client, "/sign_in/passkey/options")
    forged = authenticator.get(opts, sign_count=0)
    forged["response"]["signature"] = b64url(b"not a signature")
    refused = client.post("/sign_in/passkey", json=forged)
    assert refused.status_code == 400 and error_code(refused) == "passkey_refused"
    assert "passkey.counter_regressed" not in kinds(app)
    assert "passkey.refused" in kinds(app)


@pytest.mark.app_config(TERMINUS_BASE_URL="http://LOCALHOST:80/")
def test_a_base_url_typed_another_way_still_matches_the_browsers_origin(
    app: Flask, user: Person
) -> None:
    client = signed_in(app, user)
    assert register(client, Authenticator(ORIGIN)).status_code == 201
