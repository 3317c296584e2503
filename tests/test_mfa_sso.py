"""Second factors and sessions that came from an identity provider (attacker's cases)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.accounts.mfa_views import SIGN_IN_WITH_PASSWORD
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import RecoveryCode
from terminus_hub.models import User
from tests import factories
from tests.factories import Person
from tests.sso_helpers import DOMAIN
from tests.sso_helpers import make_sso
from tests.test_mfa import enrolled
from tests.test_mfa import password_step


def test_another_accounts_idp_cannot_change_a_persons_second_factor(
    app: Flask, client: FlaskClient, signer
) -> None:
    """Vic owns an account and uses an authenticator app; Acme's IdP (a verified domain,
    not enforced) can sign Vic in to Acme. That session must not make recovery codes or
    remove the app: with Vic's password, those would open Vic's own account."""
    sso = make_sso(app, client, signer)
    email = f"vic@{DOMAIN}"
    vic_user = factories.make_user(app, email=email)
    own = factories.make_account(app, email, name="Vic's own")
    vic = Person(vic_user.id, email, factories.PASSWORD, own)
    _, codes = enrolled(app, vic)
    assert sso.post(sso.respond(sso.start(), email)).status_code == 303

    made = client.post("/settings/mfa/recovery_codes", follow_redirects=True)
    assert SIGN_IN_WITH_PASSWORD in made.get_data(as_text=True)
    removed = client.post("/settings/mfa/totp/disable", follow_redirects=True)
    assert SIGN_IN_WITH_PASSWORD in removed.get_data(as_text=True)
    page = client.get("/settings/mfa/totp")
    assert page.status_code == 303 and page.location.endswith("/settings#second-factor")
    with app.app_context():
        assert db.session.get_one(User, vic.id).mfa_enabled_at is not None
        unused = (
            select(func.count()).select_from(RecoveryCode).where(RecoveryCode.used_at.is_(None))
        )
        assert db.session.scalar(unused) == 10
    other = app.test_client()
    assert password_step(other, vic).location == "/sign_in/mfa"
    assert other.post("/sign_in/mfa", data={"code": codes[0]}).status_code == 303


@pytest.mark.parametrize("verified", [True, False], ids=["verified", "unverified"])
def test_a_test_sign_in_does_not_let_an_unenrolled_admin_escape_the_policy(
    app: Flask, client: FlaskClient, signer, verified: bool
) -> None:
    sso = make_sso(app, client, signer, verified=verified)
    admin = f"lazy@{DOMAIN}"
    factories.make_user(app, email=admin)
    factories.make_membership(app, sso.slug, admin, "admin")
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == sso.slug))
        assert account is not None
        account.require_mfa_for_managers = True
        db.session.commit()
    factories.sign_in(client, admin)
    token = factories.csrf_token(client, "/settings")
    started = client.post(f"/sso/{sso.slug}/login?test=1", data={"csrf_token": token})
    assert started.status_code == 403
    gated = client.get(f"/a/{sso.slug}/")
    assert gated.status_code in (302, 303) and "/settings/mfa/totp" in gated.location
