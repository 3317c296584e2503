"""Re-authentication: sensitive actions need the password entered within TERMINUS_REAUTH_MINUTES."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.auth.reauth_views import WRONG_PASSWORD
from terminus_hub.extensions import db
from terminus_hub.models import ApiKey
from terminus_hub.models import AuditEvent
from terminus_hub.models import utcnow
from tests import factories
from tests.factories import Person
from tests.factories import key_form
from tests.saml_signer import SAML
from tests.saml_signer import authn_request_from
from tests.saml_signer import saml_time
from tests.sso_helpers import DOMAIN
from tests.sso_helpers import go_to_idp
from tests.sso_helpers import make_sso

LATER = timedelta(minutes=11)  # past the 10-minute default


def _keys(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ApiKey)) or 0


def _create_key(client: FlaskClient, person: Person) -> object:
    page = f"http://localhost/a/{person.account_slug}/api_keys"
    return client.post(
        f"/a/{person.account_slug}/api_keys", data=key_form("CI"), headers={"Referer": page}
    )


def test_a_fresh_sign_in_needs_no_second_proof(app: Flask, client: FlaskClient, user) -> None:
    factories.sign_in(client, user.email)
    assert _create_key(client, user).status_code == 201
    assert _keys(app) == 1


def test_a_stale_session_is_sent_to_reauth_and_back_to_its_page(
    app: Flask, client: FlaskClient, user
) -> None:
    factories.sign_in(client, user.email)
    with freeze_time(utcnow() + LATER):
        refused = _create_key(client, user)
        assert refused.status_code == 303
        assert refused.location == f"/reauth?next=/a/{user.account_slug}/api_keys"
        assert _keys(app) == 0

        page = client.get(refused.location).get_data(as_text=True)
        assert 'name="password"' in page and f'value="/a/{user.account_slug}/api_keys"' in page
        wrong = client.post("/reauth", data={"password": "not it", "next": "/accounts"})
        assert wrong.status_code == 422 and WRONG_PASSWORD in wrong.get_data(as_text=True)
        assert "not it" not in wrong.get_data(as_text=True)

        back = client.post(
            "/reauth", data={"password": user.password, "next": f"/a/{user.account_slug}/api_keys"}
        )
        assert back.status_code == 200  # Continue: the interrupted form, ready to send again
        assert f'href="/a/{user.account_slug}/api_keys"' in back.get_data(as_text=True)
        assert _create_key(client, user).status_code == 201
    with app.app_context():
        kinds = db.session.scalars(select(AuditEvent.kind)).all()
    assert "reauthentication.failed" in kinds and "reauthentication.succeeded" in kinds


@pytest.mark.app_config(TERMINUS_LOCKOUT_MAX_ATTEMPTS=3)
def test_guessing_the_password_at_reauth_locks_like_sign_in(
    app: Flask, client: FlaskClient, user
) -> None:
    factories.sign_in(client, user.email)
    for _ in range(3):
        client.post("/reauth", data={"password": "a guess", "next": "/accounts"})
    right = client.post("/reauth", data={"password": user.password, "next": "/accounts"})
    assert right.status_code == 422  # locked: not even the right password passes now
    with app.app_context():
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.kind == "account.locked"))


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/sso/x/acs"])
def test_reauth_goes_back_only_to_a_page_of_this_site(
    client: FlaskClient, user, target: str
) -> None:
    factories.sign_in(client, user.email)
    back = client.post("/reauth", data={"password": user.password, "next": target})
    assert back.status_code == 303
    assert back.location == "/accounts"


def test_reauth_needs_a_signed_in_person(client: FlaskClient) -> None:
    assert client.get("/reauth").status_code in (302, 303)


def test_an_api_call_with_a_stale_session_gets_reauthentication_required(
    app: Flask, client: FlaskClient, user
) -> None:
    factories.sign_in(client, user.email)
    csrf = factories.csrf_token(client)
    with freeze_time(utcnow() + LATER):
        response = client.post(
            "/api/v1/api_keys", json={"name": "CI"}, headers={"X-CSRFToken": csrf}
        )
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "reauthentication_required"
        assert client.get("/api/v1/api_keys").status_code == 200  # reading needs nothing more
    assert _keys(app) == 0


def test_member_role_changes_need_a_recent_proof(app: Flask, client: FlaskClient, user) -> None:
    other = factories.make_user(app)
    with app.app_context():
        from terminus_hub.core.membership import account_by_slug
        from terminus_hub.core.membership import add_member
        from terminus_hub.models import User

        member = add_member(
            account_by_slug(user.account_slug), db.session.get_one(User, other.id), "member"
        )
        db.session.commit()
        member_id = member.id
    factories.sign_in(client, user.email)
    with freeze_time(utcnow() + LATER):
        response = client.post(
            f"/a/{user.account_slug}/members/{member_id}/role", data={"role": "admin"}
        )
        assert response.status_code == 303 and response.location.startswith("/reauth?")


def test_a_session_from_the_idp_proves_itself_again_at_the_idp(app, client, signer) -> None:
    sso = make_sso(app, client, signer)
    person = f"vic@{DOMAIN}"
    assert sso.post(sso.respond(sso.start(), person)).status_code == 303
    page = client.get("/reauth?next=/accounts").get_data(as_text=True)
    assert f"/sso/{sso.slug}/login?next=/accounts&amp;reauth=1" in page
    assert 'name="password"' not in page


def test_the_idp_is_asked_to_check_the_person_again(app, client, signer) -> None:
    sso = make_sso(app, client, signer)
    assert sso.post(sso.respond(sso.start(), f"vic@{DOMAIN}")).status_code == 303
    again = go_to_idp(client, sso.slug, next="/accounts", reauth="1")
    assert authn_request_from(again.location).get("ForceAuthn") == "true"
    plain = go_to_idp(app.test_client(), sso.slug)
    assert authn_request_from(plain.location).get("ForceAuthn") in (None, "false")


def _from_an_old_idp_session(root) -> None:  # type: ignore[no-untyped-def]
    """The IdP answers from a session it opened an hour ago, as if ForceAuthn were not sent."""
    statement = root.find(f".//{{{SAML}}}AuthnStatement")
    statement.set("AuthnInstant", saml_time(utcnow() - timedelta(hours=1)))


def test_an_idp_that_ignores_force_authn_does_not_confirm_it_is_you(
    app: Flask, client: FlaskClient, signer
) -> None:
    sso = make_sso(app, client, signer)
    person = f"vic@{DOMAIN}"
    assert sso.post(sso.respond(sso.start(), person)).status_code == 303
    again = sso.start(next="/accounts", reauth="1")
    refused = sso.post(sso.respond(again, person, edit=_from_an_old_idp_session))
    assert refused.status_code == 403
    with app.app_context():
        failed = db.session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "sso.sign_in_failed")
        ).one()
        assert "ForceAuthn ignored" in failed.detail["reason"]
    # A fresh sign-in at the IdP does count; an ordinary sign-in may reuse the IdP's session.
    assert sso.post(sso.respond(sso.start(next="/accounts", reauth="1"), person)).status_code == 303
    other = app.test_client()
    plain = sso.respond(sso.start(other), person, edit=_from_an_old_idp_session)
    assert sso.post(plain, client=other).status_code == 303


def test_a_sign_in_from_an_old_idp_session_is_not_a_recent_proof(
    app: Flask, client: FlaskClient, signer
) -> None:
    """Instead of the ForceAuthn path, start an ordinary SSO sign-in: the IdP answers from its
    session of an hour ago. The new session counts from then, so the action still asks."""
    sso = make_sso(app, client, signer)
    person = f"vic@{DOMAIN}"
    factories.make_user(app, email=person)
    factories.make_membership(app, sso.slug, person, "admin")
    old = sso.respond(sso.start(), person, edit=_from_an_old_idp_session)
    assert sso.post(old).status_code == 303
    made = client.post(f"/a/{sso.slug}/api_keys", data=key_form("x"))
    assert made.status_code == 303 and made.location.startswith("/reauth")
    assert _keys(app) == 0
    fresh = app.test_client()
    assert sso.post(sso.respond(sso.start(fresh), person), client=fresh).status_code == 303
    assert fresh.post(f"/a/{sso.slug}/api_keys", data=key_form("x")).status_code == 201


def test_after_the_password_the_interrupted_form_is_sent_again_as_it_was(
    app: Flask, client: FlaskClient, user
) -> None:
    factories.sign_in(client, user.email)
    page = f"http://localhost/a/{user.account_slug}/api_keys"
    with freeze_time(utcnow() + LATER):
        refused = client.post(
            f"/a/{user.account_slug}/api_keys",
            data={"name": "Deploy <bot>", "password": "never kept", "pin": "1234"},
            headers={"Referer": page},
        )
        assert refused.status_code == 303 and _keys(app) == 0
        confirmed = client.post(
            "/reauth", data={"password": user.password, "next": f"/a/{user.account_slug}/api_keys"}
        )
        resume = confirmed.get_data(as_text=True)
        assert confirmed.status_code == 200
        assert f'action="/a/{user.account_slug}/api_keys"' in resume
        assert 'value="Deploy &lt;bot&gt;"' in resume
        assert "never kept" not in resume and "1234" not in resume
        sent = client.post(f"/a/{user.account_slug}/api_keys", data=key_form("Deploy <bot>"))
        assert sent.status_code == 201 and _keys(app) == 1
        # Kept once: the next re-authentication goes straight back.
        again = client.post("/reauth", data={"password": user.password, "next": "/accounts"})
        assert again.status_code == 303


def test_htmx_is_told_to_navigate_to_reauth(app: Flask, client: FlaskClient, user, hx) -> None:
    factories.sign_in(client, user.email)
    with freeze_time(utcnow() + LATER):
        response = client.post(f"/a/{user.account_slug}/api_keys", data=key_form("x"), headers=hx)
        assert response.status_code == 200
        assert response.headers["HX-Redirect"].startswith("/reauth?next=")


def test_inviting_people_needs_a_recent_proof(app: Flask, client: FlaskClient, user) -> None:
    factories.sign_in(client, user.email)
    csrf = factories.csrf_token(client)
    with freeze_time(utcnow() + LATER):
        page = client.post(
            f"/a/{user.account_slug}/members/invite",
            data={"email": "new.owner@example.com", "role": "owner"},
        )
        assert page.status_code == 303 and page.location.startswith("/reauth?")
        api = client.post(
            "/api/v1/invitations",
            json={"email": "new.admin@example.com", "role": "admin"},
            headers={"X-CSRFToken": csrf},
        )
        assert api.status_code == 403
        assert api.get_json()["error"]["code"] == "reauthentication_required"
    with app.app_context():
        from terminus_hub.models import Invitation

        assert db.session.scalar(select(func.count()).select_from(Invitation)) == 0


def test_renaming_the_account_needs_a_fresh_password_like_its_settings_page(
    app: Flask, client: FlaskClient, user
) -> None:
    factories.sign_in(client, user.email)
    settings = f"/a/{user.account_slug}/settings"
    token = factories.csrf_token(client, settings)
    with freeze_time(utcnow() + LATER):
        refused = client.post(
            f"/a/{user.account_slug}/rename", data={"name": "Renamed", "csrf_token": token}
        )
        assert refused.status_code == 303 and refused.location.startswith("/reauth?next=")
    with app.app_context():
        names = db.session.scalars(select(AuditEvent.kind)).all()
    assert "account.renamed" not in names
