"""Proven domains and safe linking: a claim takes over nobody's sign-in (docs/security.md).

Each test is an attack from the issue, played through the pages a browser uses: Eve owns an
account, runs her own IdP (the independent signer) and claims a domain she does not control.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.core.idp_metadata import INSECURE_SSO_URL
from terminus_hub.core.sso_connections import configure
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import AuditEvent
from terminus_hub.models import SamlRequest
from terminus_hub.models import SsoConnection
from terminus_hub.models import SsoDomain
from terminus_hub.models import User
from terminus_hub.models import UserSession
from terminus_hub.models import utcnow
from terminus_hub.redirects import safe_next
from tests import factories
from tests.conftest import Outbox
from tests.saml_signer import Signer
from tests.saml_signer import request_id_from
from tests.sso_helpers import DOMAIN
from tests.sso_helpers import OWNER
from tests.sso_helpers import Sso
from tests.sso_helpers import make_sso
from tests.sso_helpers import signed_in_emails
from tests.sso_helpers import vouch

EVE = f"eve@{DOMAIN}"  # signed up herself at the shared domain
VIC = f"vic@{DOMAIN}"  # owns an unrelated account with a password


@pytest.fixture(autouse=True)
def _shared_key(shared_sp_key: None) -> None:
    """Every test here uses the run's SP key pair."""


def sign_in(client: FlaskClient, email: str, password: str = factories.PASSWORD) -> Any:
    return client.post("/sign_in/password", data={"email": email, "password": password})


def save_sso(client: FlaskClient, slug: str, domains: str, idp: Signer) -> Any:
    """Save domains and the IdP's metadata on the account's single sign-on page."""
    return client.post(
        f"/a/{slug}/sso",
        data={"domains": domains, "metadata": (io.BytesIO(idp.metadata().encode()), "idp.xml")},
        content_type="multipart/form-data",
    )


def eve_claims_and_enforces(app: Flask, client: FlaskClient, signer: Signer) -> Sso:
    """Eve claims DOMAIN from the web with her IdP, passes the test sign-in and enforces."""
    factories.make_user(app, email=EVE)
    slug = factories.make_account(app, EVE, name="Eve")
    assert sign_in(client, EVE).status_code == 303
    saved = save_sso(client, slug, DOMAIN, signer)
    assert saved.status_code == 303, saved.get_data(as_text=True)[:500]
    sso = Sso(app=app, client=client, signer=signer, slug=slug)
    tested = client.post(f"/sso/{slug}/login?test=1")
    assert tested.status_code == 303  # her own test sign-in, as an owner
    answer = sso.post(sso.respond(request_id_from(tested.location), EVE))
    assert answer.status_code == 303 and answer.location == f"/a/{slug}/sso"
    enforced = client.post(f"/a/{slug}/sso", data={"domains": DOMAIN, "enforced": "y"})
    assert enforced.status_code == 303
    client.post("/sign_out")
    return sso


def memberships(app: Flask, email: str) -> list[str]:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        return sorted(m.account.slug for m in user.memberships) if user else []


# -- an unverified claim changes nothing for anyone outside the account ----------------------


def test_an_unverified_claim_does_not_route_or_block_anyone(app, client, signer):
    victim = factories.make_person(app, email=VIC)
    eve_claims_and_enforces(app, client, signer)

    step = client.post("/sign_in/email", data={"email": VIC})
    password = sign_in(client, VIC)

    assert step.status_code == 200  # the password step, not Eve's IdP
    assert 'name="password"' in step.get_data(as_text=True)
    assert password.status_code == 303
    assert password.location == f"/a/{victim.account_slug}/"


def test_an_unverified_idp_cannot_sign_in_or_add_a_non_member(app, client, signer, caplog):
    factories.make_person(app, email=VIC)
    eve = eve_claims_and_enforces(app, client, signer)
    assert sign_in(client, EVE).status_code == 303

    answer = eve.post(eve.respond(eve.start(test="1"), VIC))  # her test sign-in, as Vic

    assert answer.status_code == 403
    assert "not verified" in caplog.text
    assert "eve" not in memberships(app, VIC)
    assert VIC not in signed_in_emails(app)


def test_an_unverified_idp_cannot_create_people(app, client, signer):
    eve = eve_claims_and_enforces(app, client, signer)
    assert sign_in(client, EVE).status_code == 303

    answer = eve.post(eve.respond(eve.start(test="1"), f"new@{DOMAIN}"))

    assert answer.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == f"new@{DOMAIN}")) is None


def test_an_unverified_idp_is_used_only_for_the_managers_own_test(app, client, signer):
    eve = eve_claims_and_enforces(app, client, signer)
    factories.make_user(app, email=f"bob@{DOMAIN}")
    factories.make_membership(app, eve.slug, f"bob@{DOMAIN}", "member")

    bare = client.get(f"/sso/{eve.slug}/login")
    assert sign_in(client, EVE).status_code == 303
    as_bob = eve.post(eve.respond(eve.start(test="1"), f"bob@{DOMAIN}"))

    assert bare.status_code == 409
    assert "not active yet" in bare.get_data(as_text=True)
    assert as_bob.status_code == 403  # an existing member, but not the one testing


def test_an_admin_cannot_sign_in_as_the_owner_through_an_unverified_claim(app, client, signer):
    owner = factories.make_person(app, email="olivia@ownerco.example")
    factories.make_user(app, email=f"adam@{DOMAIN}")
    factories.make_membership(app, owner.account_slug, f"adam@{DOMAIN}", "admin")
    assert sign_in(client, f"adam@{DOMAIN}").status_code == 303
    saved = save_sso(client, owner.account_slug, "ownerco.example", signer)
    assert saved.status_code == 303  # claiming is harmless now
    sso = Sso(app=app, client=client, signer=signer, slug=owner.account_slug)

    answer = sso.post(sso.respond(sso.start(test="1"), owner.email))

    assert answer.status_code == 403
    assert owner.email not in signed_in_emails(app)
    assert memberships(app, owner.email) == [owner.account_slug]


def test_the_real_company_can_claim_and_verify_and_the_squatter_loses(app, client, signer):
    eve = eve_claims_and_enforces(app, client, signer)
    factories.make_user(app, email=f"boss@{DOMAIN}")
    company = factories.make_account(app, f"boss@{DOMAIN}", name="Acme Inc")
    assert sign_in(client, f"boss@{DOMAIN}").status_code == 303
    other = Signer("https://idp.acme-inc.example/")

    saved = save_sso(client, company, DOMAIN, other)
    assert saved.status_code == 303, saved.get_data(as_text=True)[:500]
    vouch(app, company, DOMAIN)  # the DNS path is in test_sso_domain_dns.py
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == company))
        configure(account, metadata_xml=None, by_operator=True, enforce=True)
        db.session.commit()

    with app.app_context():
        holders = db.session.scalars(
            select(Account.slug)
            .join(SsoConnection, SsoConnection.account_id == Account.id)
            .join(SsoDomain, SsoDomain.connection_id == SsoConnection.id)
            .where(SsoDomain.domain == DOMAIN)
        ).all()
    assert holders == [company]  # Eve's claim was dropped
    client.post("/sign_out")
    step = client.post("/sign_in/email", data={"email": VIC})
    assert step.status_code == 303 and step.location.startswith(f"/sso/{company}/login")
    assert eve.slug not in step.location


def test_a_domain_verified_elsewhere_cannot_be_vouched_for_again(
    app, client, signer, runner, tmp_path
):
    make_sso(app, client, signer)  # acme holds DOMAIN verified
    factories.make_user(app, email="eve@other.example")
    slug = factories.make_account(app, "eve@other.example", name="Eve")
    path = tmp_path / "idp.xml"
    path.write_text(signer.metadata())

    result = runner.invoke(
        args=["sso", "configure", slug, "--domain", DOMAIN, "--metadata", str(path), "--verified"]
    )

    assert result.exit_code != 0
    assert "is verified by another account" in result.output


@pytest.mark.parametrize("domain", ["gmail.com", "outlook.com", "sub.hotmail.com"])
def test_the_cli_refuses_public_mail_domains(app, client, signer, runner, domain):
    slug = make_sso(app, client, signer).slug

    result = runner.invoke(args=["sso", "configure", slug, "--domain", domain, "--verified"])

    assert result.exit_code != 0
    assert "public email provider" in result.output
    with app.app_context():
        assert db.session.scalar(select(SsoDomain).where(SsoDomain.domain == domain)) is None


# -- a session through an account's IdP sees only itself ---------------------------------------


def test_an_sso_session_does_not_list_or_end_the_persons_other_sessions(app, client, signer):
    sso = make_sso(app, client, signer)
    factories.make_user(app, email=VIC)
    factories.make_account(app, VIC, name="Vic")
    laptop = app.test_client()
    assert sign_in(laptop, VIC).status_code == 303
    with app.app_context():
        laptop_session = db.session.scalar(select(UserSession.id))

    assert sso.post(sso.respond(sso.start(), VIC)).status_code == 303
    page = client.get("/sessions").get_data(as_text=True)
    one = client.post(f"/sessions/{laptop_session}/sign_out")
    others = client.post("/sessions/sign_out_others")

    assert laptop_session not in page
    assert "shows only itself" in page
    assert one.status_code == 404
    assert others.status_code == 403
    assert laptop.get("/accounts").status_code == 200  # the laptop is still signed in


# -- the audit log shows what happened in the account ------------------------------------------


def test_the_audit_log_shows_a_members_personal_events_only_since_they_joined(app, client):
    owner = factories.make_person(app, email="owner@acme.example")
    vic = factories.make_person(app, email=VIC)
    outsider = app.test_client()
    assert sign_in(outsider, VIC, "wrong password!!").status_code == 422  # before joining
    factories.make_membership(app, owner.account_slug, VIC, "member")
    assert sign_in(outsider, VIC).status_code == 303  # after joining: a personal event
    vic_account_rename = outsider.post(f"/a/{vic.account_slug}/rename", data={"name": "Vic Ltd"})
    assert vic_account_rename.status_code == 303  # an event in Vic's other account

    assert sign_in(client, owner.email).status_code == 303
    events = client.get("/api/v1/audit_events?limit=100").get_json()["data"]

    mine = [(e["kind"], e["account_id"]) for e in events if e["user_id"] == vic.id]
    kinds = [kind for kind, _ in mine]
    assert "sign_in.failed" not in kinds
    assert "sign_in.succeeded" in kinds
    assert "account.renamed" not in [e["kind"] for e in events]
    with app.app_context():
        vic_account_id = db.session.scalar(
            select(Account.id).where(Account.slug == vic.account_slug)
        )
    assert all(e["account_id"] != vic_account_id for e in events)


# -- pre-registered passwords die when the real owner proves the address ---------------------


def pre_register(app: Flask, email: str) -> None:
    """Eve signs up the victim's address with her password and never confirms."""
    factories.make_person(app, email=email, confirmed=False)


def test_sso_proof_discards_a_pre_registered_password(app, client, signer):
    sso = make_sso(app, client, signer)
    pre_register(app, VIC)

    answer = sso.post(sso.respond(sso.start(), VIC))

    assert answer.status_code == 303
    with app.app_context():
        vic = db.session.scalar(select(User).where(User.email == VIC))
        assert vic.confirmed_at is not None and vic.password_hash is None
    eve = app.test_client()
    response = sign_in(eve, VIC)  # Eve's password
    assert response.status_code != 303
    assert "Incorrect email or password." in response.get_data(as_text=True)


def test_proof_ends_the_unconfirmed_users_sessions(app, client, signer):
    sso = make_sso(app, client, signer)
    pre_register(app, VIC)
    factories.make_membership(app, sso.slug, VIC, "member")
    # A session held as the unconfirmed VIC before the real owner arrives (however it was got).
    eve = app.test_client()
    token = secrets.token_urlsafe(32)
    with app.app_context():
        vic = db.session.scalar(select(User).where(User.email == VIC))
        db.session.add(
            UserSession(token_hash=hashlib.sha256(token.encode()).hexdigest(), user_id=vic.id)
        )
        db.session.commit()
        vic_id = vic.id
    with eve.session_transaction() as cookie:
        cookie["sid"] = token
        cookie["_user_id"] = vic_id
    assert eve.get(f"/a/{sso.slug}/").status_code == 200

    answer = sso.post(sso.respond(sso.start(), VIC))

    assert answer.status_code == 303
    assert eve.get(f"/a/{sso.slug}/").status_code == 302  # that session is gone
    assert client.get(f"/a/{sso.slug}/").status_code == 200


def invite(app: Flask, slug: str, email: str, role: str = "member") -> str:
    """An owner of ``slug`` invites ``email`` from the members page; return the link path."""
    inviter = app.test_client()
    with app.app_context():
        owner = db.session.scalar(
            select(User).join(User.memberships).join(Account).where(Account.slug == slug)
        )
    assert sign_in(inviter, owner.email).status_code == 303
    response = inviter.post(f"/a/{slug}/members/invite", data={"email": email, "role": role})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return Outbox(app).last_link(email)


def test_an_accepted_invitation_discards_a_pre_registered_password(app, client):
    owner = factories.make_person(app, email="owner@company.example")
    pre_register(app, VIC)
    link = invite(app, owner.account_slug, VIC)

    page = client.get(link)
    joined = client.post(link, data={"name": "Vic", "password": "a brand new passphrase 42"})

    assert 'name="password"' in page.get_data(as_text=True)  # not "sign in to accept"
    assert joined.status_code == 303 and joined.location == f"/a/{owner.account_slug}/"
    eve = app.test_client()
    assert sign_in(eve, VIC).status_code != 303  # Eve's password no longer works
    assert sign_in(eve, VIC, "a brand new passphrase 42").status_code == 303


def test_a_reset_link_ends_the_unconfirmed_users_sessions_and_password(app, client, outbox):
    pre_register(app, VIC)
    client.post("/password/forgot", data={"email": VIC})
    link = outbox.last_link(VIC)

    reset = client.post(link, data={"password": "the real owner's passphrase"})

    assert reset.status_code == 303
    assert sign_in(app.test_client(), VIC).status_code != 303


# -- invitations --------------------------------------------------------------------------------


def enforced_company(app: Flask, client: FlaskClient, signer: Signer) -> Sso:
    sso = make_sso(app, client, signer)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == sso.slug))
        configure(account, metadata_xml=None, by_operator=True, enforce=True)
        db.session.commit()
    return sso


def test_an_invitee_at_an_enforced_domain_cannot_choose_a_password(app, client, signer):
    sso = enforced_company(app, client, signer)
    link = invite(app, sso.slug, VIC)

    page = client.get(link).get_data(as_text=True)
    refused = client.post(link, data={"name": "Vic", "password": "a brand new passphrase 42"})

    assert 'name="password"' not in page
    assert f"/sso/{sso.slug}/login?next=" in page
    assert refused.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == VIC)) is None


def test_an_invitee_at_an_enforced_domain_joins_through_the_idp(app, client, signer):
    sso = enforced_company(app, client, signer)
    link = invite(app, sso.slug, VIC, role="admin")

    start = client.get(f"/sso/{sso.slug}/login", query_string={"next": link})
    assert start.status_code == 303
    back = sso.post(sso.respond(request_id_from(start.location), VIC))
    assert back.status_code == 303 and back.location == link
    joined = client.post(link)

    assert joined.status_code == 303
    with app.app_context():
        vic = db.session.scalar(select(User).where(User.email == VIC))
        assert [m.role for m in vic.memberships] == ["admin"]
        assert vic.password_hash is None


def test_an_admin_invitee_at_an_enforced_domain_may_still_choose_a_password(app, client, signer):
    sso = enforced_company(app, client, signer)
    link = invite(app, sso.slug, VIC, role="admin")

    joined = client.post(link, data={"name": "Vic", "password": "a brand new passphrase 42"})

    assert joined.status_code == 303


def test_an_invitation_to_another_account_at_an_enforced_domain_is_a_clear_dead_end(
    app, client, signer
):
    enforced_company(app, client, signer)
    other = factories.make_person(app, email="owner@other.example")
    link = invite(app, other.account_slug, VIC)

    page = client.get(link).get_data(as_text=True)
    refused = client.post(link, data={"name": "Vic", "password": "a brand new passphrase 42"})

    assert "sign in only through their organisation’s identity provider" in page
    assert refused.status_code == 403


@pytest.mark.parametrize("change", ["removed", "demoted"])
def test_an_invitation_dies_with_the_inviters_authority(app, client, change):
    first = factories.make_person(app, email="first@company.example")
    factories.make_user(app, email="second@company.example")
    factories.make_membership(app, first.account_slug, "second@company.example", "owner")
    inviter = app.test_client()
    assert sign_in(inviter, "second@company.example").status_code == 303
    sent = inviter.post(
        f"/a/{first.account_slug}/members/invite", data={"email": VIC, "role": "owner"}
    )
    assert sent.status_code == 303
    link = Outbox(app).last_link(VIC)
    with app.app_context():
        second = db.session.scalar(select(User).where(User.email == "second@company.example"))
        membership = second.memberships[0]
        member_id = membership.id
    assert sign_in(client, first.email).status_code == 303
    if change == "removed":
        done = client.post(f"/a/{first.account_slug}/members/{member_id}/remove")
    else:
        done = client.post(
            f"/a/{first.account_slug}/members/{member_id}/role", data={"role": "admin"}
        )
    assert done.status_code == 303
    client.post("/sign_out")

    page = client.get(link)
    joined = client.post(link, data={"name": "Vic", "password": "a brand new passphrase 42"})

    assert page.status_code == 400
    assert joined.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == VIC)) is None


# -- the sign-in start and redirects -------------------------------------------------------------


def test_a_bare_get_without_a_verified_domain_redirects_nowhere(app, client, signer):
    sso = make_sso(app, client, signer, verified=False)

    response = client.get(f"/sso/{sso.slug}/login")
    posted = client.post(f"/sso/{sso.slug}/login")

    assert response.status_code == 409
    assert "Location" not in response.headers
    assert "not active yet" in response.get_data(as_text=True)
    assert posted.status_code == 403  # a POST is only the test sign-in
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SamlRequest)) == 0


def test_a_bare_get_with_a_verified_domain_goes_to_the_idp(app, client, signer):
    sso = make_sso(app, client, signer)

    response = client.get(f"/sso/{sso.slug}/login")

    assert response.status_code == 303
    assert response.location.startswith(signer.sso_url + "?")


@pytest.mark.parametrize(
    "target",
    ["/sso/acme/login", "/sso/acme/login?test=1", "/%73so/acme/login", "/a/../sso/acme/login"],
)
def test_next_never_points_into_sso(target):
    assert safe_next(target) is None


def test_the_email_step_does_not_chain_into_another_sso_login(app, client, signer):
    sso = make_sso(app, client, signer)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == sso.slug))
        configure(account, metadata_xml=None, by_operator=True, enforce=True)
        db.session.commit()

    step = client.post("/sign_in/email", data={"email": VIC, "next": "/sso/other/login"})

    assert step.status_code == 303
    assert "next=" not in step.location


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://idp.example/sso", True),
        ("http://idp.example/sso", False),
        ("http://127.0.0.1:8080/sso", True),
        ("http://localhost:8080/sso", True),
        ("http://[::1]/sso", True),
        ("http://127.0.0.1.evil.example/sso", False),
        ("javascript:alert(1)", False),
        ("ftp://idp.example/sso", False),
    ],
)
def test_the_idp_sign_on_url_must_be_https(app, client, signer, url, accepted):
    factories.make_user(app, email=OWNER)
    slug = factories.make_account(app, OWNER, name="Acme")
    assert sign_in(client, OWNER).status_code == 303
    certificate = signer.cert_pem

    response = client.post(
        f"/a/{slug}/sso",
        data={
            "domains": DOMAIN,
            "entity_id": "https://idp.example/",
            "sso_url": url,
            "certificate": certificate,
        },
    )

    if accepted:
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
    else:
        assert response.status_code == 422
        assert "must start with https://" in response.get_data(as_text=True)


def test_stored_http_metadata_no_longer_sends_anyone(app, client, signer):
    sso = make_sso(app, client, signer)
    with app.app_context():
        connection = db.session.scalar(select(SsoConnection))
        connection.idp_metadata_xml = signer.metadata().replace(
            signer.sso_url, "http://idp.example/sso"
        )
        db.session.commit()

    response = client.get(f"/sso/{sso.slug}/login")

    assert response.status_code == 409
    assert INSECURE_SSO_URL.split(" (")[0] in response.get_data(as_text=True)


# -- sso configure changes only what its flags name ------------------------------------------------


def test_configure_changes_only_what_its_flags_name(app, client, signer, runner):
    sso = make_sso(app, client, signer)
    assert runner.invoke(args=["sso", "configure", sso.slug, "--enforce"]).exit_code == 0

    added = runner.invoke(args=["sso", "configure", sso.slug, "--domain", "beta.example"])
    removed = runner.invoke(args=["sso", "configure", sso.slug, "--remove-domain", DOMAIN])

    assert added.exit_code == 0 and removed.exit_code == 0, added.output + removed.output
    with app.app_context():
        connection = db.session.scalar(select(SsoConnection))
        assert connection.enforced is True
        assert [(d.domain, d.is_verified) for d in connection.domains] == [("beta.example", False)]


# -- housekeeping ---------------------------------------------------------------------------------


def test_housekeeping_deletes_expired_rows(app, client, signer, runner):
    sso = make_sso(app, client, signer)
    for _ in range(3):
        sso.start(app.test_client())
    with app.app_context():
        for row in db.session.scalars(select(SamlRequest)).all()[:2]:
            row.expires_at = utcnow().replace(year=2020)
        db.session.commit()

    result = runner.invoke(args=["housekeeping"])

    assert result.exit_code == 0, result.output
    assert "2 saml_requests" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SamlRequest)) == 1


def test_housekeeping_deletes_month_old_sign_ins_to_unknown_addresses(app, runner):
    client = app.test_client()
    for _ in range(3):
        client.post("/sign_in/password", data={"email": "nobody@x.example", "password": "p"})
    person = factories.make_person(app)
    client.post("/sign_in/password", data={"email": person.email, "password": "wrong"})
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.created_at)).all()
        for event in events[:2] + events[3:]:  # two unknown ones and the known one: old
            event.created_at = utcnow() - timedelta(days=31)
        db.session.commit()

    result = runner.invoke(args=["housekeeping"])

    assert "2 unknown_sign_ins" in result.output
    with app.app_context():
        left = db.session.scalars(select(AuditEvent)).all()
        assert sorted(e.user_id or "" for e in left) == ["", person.id]  # a person's stays


def test_removing_a_domain_that_is_not_claimed_is_a_clear_error(app, client, signer, runner):
    sso = make_sso(app, client, signer)

    result = runner.invoke(args=["sso", "configure", sso.slug, "--remove-domain", "beta.example"])

    assert result.exit_code == 1
    assert "--remove-domain: beta.example is not one of this account’s domains." in result.stderr


def test_a_signed_in_person_cannot_accept_an_invitation_the_page_calls_a_dead_end(
    app, client, signer
):
    sso = enforced_company(app, client, signer)
    assert sso.post(sso.respond(sso.start(), VIC)).status_code == 303  # Vic, through the IdP
    other = factories.make_person(app, email="owner@other.example")
    link = invite(app, other.account_slug, VIC, role="admin")

    page = client.get(link).get_data(as_text=True)
    joined = client.post(link)

    assert "sign in only through their organisation’s identity provider" in page
    assert joined.status_code == 403
    assert memberships(app, VIC) == [sso.slug]


def test_a_session_through_one_idp_cannot_accept_another_accounts_invitation(app, client, signer):
    sso = make_sso(app, client, signer)  # verified, not enforced
    assert sso.post(sso.respond(sso.start(), VIC)).status_code == 303
    other = factories.make_person(app, email="owner@other.example")
    link = invite(app, other.account_slug, VIC)

    joined = client.post(link, follow_redirects=True)

    assert "Sign in with your password to accept this invitation." in joined.get_data(as_text=True)
    assert memberships(app, VIC) == [sso.slug]


def test_an_over_long_domain_is_refused_before_it_can_never_verify(app, client, signer, runner):
    sso = make_sso(app, client, signer)
    domain = ("a" * 60 + ".") * 3 + "b" * 50 + ".example"  # 241 characters

    result = runner.invoke(args=["sso", "configure", sso.slug, "--domain", domain])

    assert result.exit_code == 1
    assert "is not a domain name" in result.stderr


@pytest.mark.parametrize("flag", ["--domain", "--remove-domain"])
def test_a_domain_with_spaces_is_named_whole_in_the_error(app, client, signer, runner, flag):
    sso = make_sso(app, client, signer)

    result = runner.invoke(args=["sso", "configure", sso.slug, flag, "not a domain"])

    assert result.exit_code == 1
    assert f"Error: {flag}: “not a domain” is not a domain name" in result.stderr


# -- an admin cannot make an IdP that signs in an owner ------------------------------------------


def test_an_idp_an_admin_configured_cannot_sign_in_an_owner(app, client, signer):
    sso = make_sso(app, client, signer)  # acme.example verified; OWNER is its owner
    factories.make_user(app, email=f"adam@{DOMAIN}")
    factories.make_membership(app, sso.slug, f"adam@{DOMAIN}", "admin")
    assert sign_in(client, f"adam@{DOMAIN}").status_code == 303
    own_idp = Signer("https://idp.adam.example/")
    saved = save_sso(client, sso.slug, DOMAIN, own_idp)
    assert saved.status_code == 303
    browser = app.test_client()
    adams = Sso(app=app, client=browser, signer=own_idp, slug=sso.slug)

    as_owner = adams.post(adams.respond(adams.start(), OWNER))
    as_member = adams.post(adams.respond(adams.start(), f"ana@{DOMAIN}"))

    assert as_owner.status_code == 403
    assert as_member.status_code == 303  # the IdP still serves the people an admin manages
    assert OWNER not in signed_in_emails(app)


def test_an_idp_an_owner_configured_signs_in_an_owner(app, client, signer):
    sso = make_sso(app, client, signer)
    assert sign_in(client, OWNER).status_code == 303
    saved = save_sso(client, sso.slug, DOMAIN, signer)
    assert saved.status_code == 303
    browser = app.test_client()

    answer = sso.post(sso.respond(sso.start(browser), OWNER), client=browser)

    assert answer.status_code == 303


def test_a_link_cannot_start_a_test_sign_in(app, client, signer):
    sso = make_sso(app, client, signer, verified=False)
    assert sign_in(client, OWNER).status_code == 303

    response = client.get(f"/sso/{sso.slug}/login?test=1")  # a link from anywhere

    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SamlRequest)) == 0


def test_a_test_started_by_an_admin_who_was_then_demoted_signs_in_no_one(app, client, signer):
    sso = make_sso(app, client, signer, verified=False)
    factories.make_user(app, email=f"adam@{DOMAIN}")
    factories.make_membership(app, sso.slug, f"adam@{DOMAIN}", "admin")
    assert sign_in(client, f"adam@{DOMAIN}").status_code == 303
    request_id = sso.start(test="1")
    with app.app_context():
        adam = db.session.scalar(select(User).where(User.email == f"adam@{DOMAIN}"))
        next(m for m in adam.memberships).role = "member"
        db.session.commit()

    answer = sso.post(sso.respond(request_id, f"adam@{DOMAIN}"))

    assert answer.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(SsoConnection.tested_at)) is None


@pytest.mark.parametrize("change", ["demoted", "removed"])
def test_an_older_invitation_does_not_undo_a_demotion_or_removal(app, client, signer, change):
    sso = make_sso(app, client, signer)
    link = invite(app, sso.slug, VIC, role="admin")
    assert sso.post(sso.respond(sso.start(), VIC)).status_code == 303  # joins as a member
    owner = app.test_client()
    assert sign_in(owner, OWNER).status_code == 303
    with app.app_context():
        vic = db.session.scalar(select(User).where(User.email == VIC))
        member_id = vic.memberships[0].id
    if change == "demoted":
        owner.post(f"/a/{sso.slug}/members/{member_id}/role", data={"role": "admin"})
        done = owner.post(f"/a/{sso.slug}/members/{member_id}/role", data={"role": "member"})
    else:
        done = owner.post(f"/a/{sso.slug}/members/{member_id}/remove")
    assert done.status_code == 303

    joined = client.post(link)

    assert joined.status_code == 400  # the invitation was withdrawn
    assert memberships_with_roles(app, VIC) == (
        [(sso.slug, "member")] if change == "demoted" else []
    )


def memberships_with_roles(app: Flask, email: str) -> list[tuple[str, str]]:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        return sorted((m.account.slug, m.role) for m in user.memberships)
