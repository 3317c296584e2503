"""SAML single sign-on (issue 5, docs/security.md) against a real in-test IdP.

The identity provider is ``tests.saml_idp.TestIdp``: pysaml2's own IdP with a key made at test
time. Every test drives the app as a browser would: the email step, the redirect to the IdP,
the IdP's signed answer posted to the assertion consumer service (ACS), and what the person
sees afterwards. Every attack must end on the same 403 page, with nobody signed in and the
reason in the security log.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
import pathlib
import re
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from defusedxml import ElementTree
from flask import Flask
from flask.testing import FlaskClient
from saml2 import BINDING_HTTP_POST
from saml2.xmldsig import DIGEST_SHA1
from saml2.xmldsig import SIG_RSA_SHA1
from saml2.xmldsig import SIG_RSA_SHA256
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub.core.signin import INCORRECT
from terminus_hub.core.signin import SSO_ENFORCED
from terminus_hub.core.sso_connections import configure
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import Membership
from terminus_hub.models import SamlRequest
from terminus_hub.models import User
from terminus_hub.models import UserSession
from terminus_hub.sso.views import SSO_FAILED
from tests import factories
from tests.saml_idp import ParsedRequest
from tests.saml_idp import TestIdp
from tests.sso_helpers import go_to_idp
from tests.sso_helpers import sso_failure_reasons

DOMAIN = "acme.example"  # email-validator refuses the reserved .test names
EMAIL = f"ana@{DOMAIN}"
COOKIE = "thub_session"
MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
FIVE_MINUTES = timedelta(minutes=5)
SECURITY_LOG = "terminus_hub.security"


# -- the identity provider and the SP key, shared by the module --------------------------------


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> TestIdp:
    """The IdP every SSO connection here trusts (respond keeps no state between responses)."""
    return TestIdp(tmp_path_factory.mktemp("idp"))


@pytest.fixture(scope="module")
def attacker(tmp_path_factory: pytest.TempPathFactory, idp: TestIdp) -> TestIdp:
    """Same entity id as ``idp``, another key: it signs, but no connection trusts its key."""
    return TestIdp(tmp_path_factory.mktemp("attacker"), entity_id=idp.entity_id)


@pytest.fixture(autouse=True)
def _shared_sp_key(shared_sp_key: None) -> None:
    """Every test here uses the run's SP key pair."""


# -- helpers ----------------------------------------------------------------------------------


def sp_urls(slug: str) -> tuple[str, str]:
    """The SP entity id (its metadata URL) and ACS URL of an account, as the IdP knows them."""
    return f"http://localhost/sso/{slug}/metadata", f"http://localhost/sso/{slug}/acs"


def configure_sso(
    app: Flask,
    client: FlaskClient,
    idp: TestIdp,
    *,
    domains: tuple[str, ...] = (DOMAIN,),
    enforce: bool = False,
    name: str = "Acme",
    owner_email: str | None = None,
) -> str:
    """Make an account (slug: ``name`` lower-cased) with SSO through ``idp``, as an operator would.

    The IdP is then told about the account's SP, from the SP metadata the app serves. Each test
    has a fresh database but the module shares the SP key, so an account's SP metadata is the
    same in every test and the IdP fetches it once per slug.
    """
    owner = factories.make_user(app, email=owner_email)
    slug = factories.make_account(app, owner.email, name=name)
    assert slug == name.lower()
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == slug))
        configure(
            account,
            metadata_xml=idp.metadata_xml,
            by_operator=True,
            add=list(domains),
            enforce=enforce,
            vouch=True,
        )
        db.session.commit()
    trust(client, idp, slug)
    return slug


_TRUSTED: weakref.WeakKeyDictionary[TestIdp, set[str]] = weakref.WeakKeyDictionary()


def trust(client: FlaskClient, idp: TestIdp, slug: str) -> None:
    """Load the account's SP metadata into the IdP, once per IdP and slug."""
    trusted = _TRUSTED.setdefault(idp, set())
    if slug not in trusted:
        response = client.get(f"/sso/{slug}/metadata")
        assert response.status_code == 200
        idp.trust_sp(response.get_data(as_text=True))
        trusted.add(slug)


def start_login(client: FlaskClient, idp: TestIdp, slug: str, **query: str) -> ParsedRequest:
    """Follow /sso/<slug>/login to the IdP and return the (verified) AuthnRequest."""
    return idp.parse_request(go_to_idp(client, slug, **query).location)


def post_acs(client: FlaskClient, slug: str, saml_response: str | None, **extra: str) -> Any:
    data = dict(extra)
    if saml_response is not None:
        data["SAMLResponse"] = saml_response
    return client.post(f"/sso/{slug}/acs", data=data)


def sign_in_through_idp(
    client: FlaskClient, idp: TestIdp, slug: str, email: str = EMAIL, **query: str
) -> Any:
    """A whole SP-initiated sign-in; returns the ACS answer."""
    request = start_login(client, idp, slug, **query)
    return post_acs(client, slug, idp.respond(request, email))


def is_signed_in(client: FlaskClient) -> bool:
    response = client.get("/accounts")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def count(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def user_by_email(app: Flask, email: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def role_of(app: Flask, slug: str, email: str) -> str | None:
    with app.app_context():
        return db.session.scalar(
            select(Membership.role)
            .join(Account, Account.id == Membership.account_id)
            .join(User, User.id == Membership.user_id)
            .where(Account.slug == slug, User.email == email)
        )


def sso_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return sso_failure_reasons(caplog)


def assert_refused(
    app: Flask,
    client: FlaskClient,
    response: Any,
    caplog: pytest.LogCaptureFixture,
    reason: str,
    *,
    users_before: int | None = None,
) -> None:
    """The failure page (403), nobody signed in, and the reason in the security log."""
    page = response.get_data(as_text=True)
    assert response.status_code == 403, page[:500]
    assert SSO_FAILED in page
    assert 'href="/sign_in"' in page
    assert "Traceback" not in page
    assert not is_signed_in(client)
    assert count(app, UserSession) == 0
    if users_before is not None:
        assert count(app, User) == users_before  # nobody was created just in time either
    failures = sso_failures(caplog)
    assert len(failures) == 1, failures
    assert re.search(reason, failures[0]), failures[0]


# -- SP metadata ------------------------------------------------------------------------------


def pem_body(path: str) -> str:
    """The base64 of a PEM certificate, on one line."""
    return "".join(pathlib.Path(path).read_text().strip().splitlines()[1:-1])


def test_sp_metadata_names_this_url_the_acs_and_a_signing_certificate(
    app, client, user, sp_key_files
):
    factories.sign_in(client, user.email)  # the owner, setting SSO up
    response = client.get(f"/sso/{user.account_slug}/metadata")

    assert response.status_code == 200
    assert response.mimetype == "application/samlmetadata+xml"
    root = ElementTree.fromstring(response.data)
    entity_id, acs_url = sp_urls(user.account_slug)
    assert root.tag == f"{MD}EntityDescriptor"
    assert root.get("entityID") == entity_id
    [sp] = root.findall(f"{MD}SPSSODescriptor")
    assert sp.get("AuthnRequestsSigned") == "true"
    [acs] = sp.findall(f"{MD}AssertionConsumerService")
    assert acs.get("Location") == acs_url
    assert acs.get("Binding") == BINDING_HTTP_POST
    signing = [
        k.find(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
        for k in sp.findall(f"{MD}KeyDescriptor")
        if k.get("use") in (None, "signing")
    ]
    assert signing and signing[0] is not None
    assert "".join(signing[0].text.split()) == pem_body(sp_key_files[1])


def test_sp_metadata_of_an_unknown_account_is_404(client):
    assert client.get("/sso/no-such-account/metadata").status_code == 404
    assert client.get(f"/sso/{'x' * 300}/metadata").status_code == 404


def _without_csrf_token(page: bytes) -> bytes:
    return re.sub(rb'(name="csrf-token" content=)"[^"]*"', rb"\1", page)


def test_sp_metadata_cannot_tell_which_accounts_exist(app, user):
    # Without SSO an account's metadata URL answers a stranger exactly as an unknown slug does.
    stranger = app.test_client()
    known = stranger.get(f"/sso/{user.account_slug}/metadata")
    unknown = stranger.get("/sso/no-such-account/metadata")
    assert known.status_code == unknown.status_code == 404
    # The same page; only the CSRF token's timestamp may differ (it counts seconds).
    assert _without_csrf_token(known.get_data()) == _without_csrf_token(unknown.get_data())
    # Its owner, setting SSO up, sees it.
    owner = app.test_client()
    factories.sign_in(owner, user.email)
    assert owner.get(f"/sso/{user.account_slug}/metadata").status_code == 200


def test_sp_key_is_made_once_under_instance_with_mode_0600(app, client, user):
    key = pathlib.Path(app.instance_path) / "saml_sp.key"
    cert = pathlib.Path(app.instance_path) / "saml_sp.crt"
    app.config["TERMINUS_SAML_SP_KEY_FILE"], app.config["TERMINUS_SAML_SP_CERT_FILE"] = (
        str(key),
        str(cert),
    )
    factories.sign_in(client, user.email)

    first = client.get(f"/sso/{user.account_slug}/metadata").get_data(as_text=True)
    second = client.get(f"/sso/{user.account_slug}/metadata").get_data(as_text=True)

    assert key.stat().st_mode & 0o777 == 0o600
    assert pem_body(str(cert)) in first.replace("\n", "")
    assert first == second  # the same key, not a new one per request


# -- the redirect to the IdP ------------------------------------------------------------------


def test_login_redirects_to_the_idp_with_a_signed_sha256_authn_request(app, client, idp):
    slug = configure_sso(app, client, idp)

    response = client.get(f"/sso/{slug}/login")

    assert response.status_code == 303
    assert response.location.startswith(idp.sso_url + "?")
    query = parse_qs(urlsplit(response.location).query)
    assert query["SigAlg"] == [SIG_RSA_SHA256]
    assert query["Signature"][0]
    request = idp.parse_request(response.location)  # raises unless the signature verifies
    assert request.signed
    entity_id, acs_url = sp_urls(slug)
    assert request.sp_entity_id == entity_id
    assert request.acs_url == acs_url
    with app.app_context():
        pending = db.session.get(SamlRequest, request.id)
        assert pending is not None
        account = db.session.scalar(select(Account).where(Account.slug == slug))
        assert pending.account_id == account.id
        assert not pending.is_test
        assert pending.next_path is None


def test_each_login_stores_its_own_pending_request(app, client, idp):
    slug = configure_sso(app, client, idp)

    first = start_login(client, idp, slug)
    second = start_login(client, idp, slug)

    assert first.id != second.id
    with app.app_context():
        ids = set(db.session.scalars(select(SamlRequest.id)))
    assert ids == {first.id, second.id}


def test_login_of_an_account_without_sso_is_404(app, client, user):
    assert client.get(f"/sso/{user.account_slug}/login").status_code == 404
    assert client.get("/sso/no-such-account/login").status_code == 404
    assert count(app, SamlRequest) == 0


# -- the email step ---------------------------------------------------------------------------


def test_email_step_sends_an_enforced_domain_to_its_idp(app, client, idp):
    slug = configure_sso(app, client, idp, enforce=True)

    response = client.post("/sign_in/email", data={"email": EMAIL})

    assert response.status_code == 303
    assert urlsplit(response.location).path == f"/sso/{slug}/login"


SSO_CONTINUE = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)">')


def test_email_step_sends_a_browser_form_submission_on_by_a_page(app, client, idp):
    """A browser posting the form itself (JavaScript off) would block the 303 chain to the
    IdP under the page's CSP form-action 'self': it gets a page that moves on by itself."""
    slug = configure_sso(app, client, idp, enforce=True)

    response = client.post(
        "/sign_in/email", data={"email": EMAIL}, headers={"Sec-Fetch-Mode": "navigate"}
    )

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    [url] = SSO_CONTINUE.findall(page)
    assert f'href="{url}"' in page
    assert urlsplit(html.unescape(url)).path == f"/sso/{slug}/login"
    to_idp = client.get(html.unescape(url))
    assert to_idp.status_code == 303
    assert to_idp.location.startswith(idp.sso_url + "?")


def test_email_step_answers_htmx_with_hx_redirect_to_the_idp(app, client, idp, hx):
    slug = configure_sso(app, client, idp, enforce=True)

    response = client.post("/sign_in/email", data={"email": EMAIL}, headers=hx)

    assert response.status_code == 200
    assert urlsplit(response.headers["HX-Redirect"]).path == f"/sso/{slug}/login"


def test_email_step_decides_by_the_domain_alone(app, client, idp):
    configure_sso(app, client, idp, enforce=True)
    factories.make_user(app, email="registered@acme.example")

    registered = client.post("/sign_in/email", data={"email": "registered@acme.example"})
    unknown = client.post("/sign_in/email", data={"email": "Nobody@ACME.example"})

    assert registered.status_code == unknown.status_code == 303
    assert registered.location == unknown.location


def test_email_step_keeps_the_password_step_when_sso_is_not_enforced(app, client, idp):
    configure_sso(app, client, idp, enforce=False)

    response = client.post("/sign_in/email", data={"email": EMAIL})

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'action="/sign_in/password"' in page and 'name="password"' in page


# -- the round trip ---------------------------------------------------------------------------


def test_round_trip_from_the_email_step_signs_in_with_a_new_session(app, client, idp, caplog):
    caplog.set_level(logging.INFO, logger=SECURITY_LOG)
    slug = configure_sso(app, client, idp, enforce=True)
    client.get("/sign_in")
    step = client.post("/sign_in/email", data={"email": EMAIL})
    assert not is_signed_in(client)
    before = client.get_cookie(COOKIE)

    to_idp = client.get(step.location)
    assert to_idp.status_code == 303
    request = idp.parse_request(to_idp.location)
    response = post_acs(client, slug, idp.respond(request, EMAIL))

    assert response.status_code == 303
    assert response.location == f"/a/{slug}/"
    assert is_signed_in(client)
    assert client.get(f"/a/{slug}/").status_code == 200
    after = client.get_cookie(COOKIE)
    assert after is not None and (before is None or before.value != after.value)
    if before is not None:  # the cookie from before the sign-in stays anonymous
        old = app.test_client()
        old.set_cookie(COOKIE, before.value)
        assert not is_signed_in(old)
    assert any("authn_login_success method=saml" in r.getMessage() for r in caplog.records)
    assert sso_failures(caplog) == []


def test_first_sso_sign_in_creates_a_confirmed_member(app, client, idp):
    slug = configure_sso(app, client, idp)
    assert user_by_email(app, EMAIL) is None

    response = sign_in_through_idp(client, idp, slug)

    assert response.status_code == 303
    user = user_by_email(app, EMAIL)
    assert user is not None and user.confirmed_at is not None
    assert user.password_hash is None  # no password until they set one
    assert role_of(app, slug, EMAIL) == "member"
    assert is_signed_in(client)


def test_second_sso_sign_in_reuses_the_person(app, client, idp):
    slug = configure_sso(app, client, idp)
    sign_in_through_idp(client, idp, slug)
    client.post("/sign_out")
    users = count(app, User)

    response = sign_in_through_idp(client, idp, slug)

    assert response.status_code == 303
    assert count(app, User) == users
    assert role_of(app, slug, EMAIL) == "member"


def test_sso_confirms_an_existing_unconfirmed_user(app, client, idp):
    slug = configure_sso(app, client, idp)
    factories.make_user(app, email=EMAIL, confirmed=False)

    response = sign_in_through_idp(client, idp, slug)

    assert response.status_code == 303
    assert user_by_email(app, EMAIL).confirmed_at is not None
    assert role_of(app, slug, EMAIL) == "member"
    assert is_signed_in(client)


def test_sso_keeps_the_role_of_an_existing_admin(app, client, idp):
    slug = configure_sso(app, client, idp)
    factories.make_user(app, email=EMAIL)
    factories.make_membership(app, slug, EMAIL, "admin")

    assert sign_in_through_idp(client, idp, slug).status_code == 303

    assert role_of(app, slug, EMAIL) == "admin"


def test_local_next_survives_the_round_trip(app, client, idp):
    slug = configure_sso(app, client, idp, enforce=True)
    step = client.post("/sign_in/email", data={"email": EMAIL, "next": "/accounts"})
    assert parse_qs(urlsplit(step.location).query) == {"next": ["/accounts"]}

    request = idp.parse_request(client.get(step.location).location)
    response = post_acs(client, slug, idp.respond(request, EMAIL))

    assert response.status_code == 303
    assert response.location == "/accounts"


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example", "https://evil.example/", "/\\evil.example"],
)
def test_off_site_next_ends_at_the_account_home(app, client, idp, next_path):
    slug = configure_sso(app, client, idp, enforce=True)
    step = client.post("/sign_in/email", data={"email": EMAIL, "next": next_path})
    assert "evil" not in step.location

    response = sign_in_through_idp(client, idp, slug, next=next_path)

    assert response.status_code == 303
    assert response.location == f"/a/{slug}/"


def test_off_site_relay_state_is_ignored(app, client, idp):
    slug = configure_sso(app, client, idp)
    request = start_login(client, idp, slug, next="https://evil.example/")

    response = post_acs(
        client, slug, idp.respond(request, EMAIL), RelayState="https://evil.example/"
    )

    assert response.status_code == 303
    assert response.location == f"/a/{slug}/"


def test_assertion_inside_the_allowed_clock_skew_is_accepted(app, client, idp):
    slug = configure_sso(app, client, idp)
    request = start_login(client, idp, slug)

    response = post_acs(
        client, slug, idp.respond(request, EMAIL, not_before_delta=timedelta(seconds=20))
    )

    assert response.status_code == 303
    assert is_signed_in(client)


# -- attacks at the ACS -----------------------------------------------------------------------


OTHER_ACS = "http://localhost/sso/someone-else/acs"
Attack = Callable[[TestIdp, TestIdp, ParsedRequest], str]
ATTACKS: dict[str, tuple[Attack, str]] = {
    "tampered after signing": (
        lambda idp, _, req: idp.tamper(idp.respond(req, EMAIL), EMAIL, f"eve@{DOMAIN}"),
        r"signature does not verify: InvalidDigest",
    ),
    "signed by another key": (
        lambda idp, attacker, req: idp.respond(req, EMAIL, signer=attacker),
        r"signature does not verify: InvalidSignature",
    ),
    "unsigned": (
        lambda idp, _, req: idp.respond(req, EMAIL, sign_response=False, sign_assertion=False),
        r"neither the Response nor its assertion is signed",
    ),
    "unsolicited": (
        lambda idp, _, req: idp.respond(req, EMAIL, in_response_to=None),
        r"no pending request None",
    ),
    "unknown request id": (
        lambda idp, _, req: idp.respond(req, EMAIL, in_response_to="id-made-up-by-the-attacker"),
        r"no pending request 'id-made-up-by-the-attacker'",
    ),
    "expired": (
        lambda idp, _, req: idp.respond(req, EMAIL, not_on_or_after_delta=-FIVE_MINUTES),
        r"bearer SubjectConfirmation: it has expired",
    ),
    "not yet valid": (
        lambda idp, _, req: idp.respond(req, EMAIL, not_before_delta=FIVE_MINUTES),
        r"the assertion is not valid yet",
    ),
    "wrong audience": (
        lambda idp, _, req: idp.respond(req, EMAIL, audience="https://other-sp.example/metadata"),
        r"an AudienceRestriction does not name us",
    ),
    "wrong destination": (
        lambda idp, _, req: idp.respond(req, EMAIL, destination=OTHER_ACS, recipient=req.acs_url),
        r"the response is for '.*/someone-else/acs', not this ACS",
    ),
    "wrong recipient": (
        lambda idp, _, req: idp.respond(req, EMAIL, recipient=OTHER_ACS),
        r"bearer SubjectConfirmation: Recipient '.*/someone-else/acs' is not this ACS",
    ),
    "email outside the connection's domains": (
        lambda idp, _, req: idp.respond(req, "ana@other.example"),
        r"email domain 'other.example' is not one of this connection's",
    ),
    "no email at all": (
        lambda idp, _, req: idp.respond(req, "", name_id="not-an-email", attributes={}),
        r"no email in the assertion",
    ),
    "SHA-1 signature and digest": (
        lambda idp, _, req: idp.respond(req, EMAIL, sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1),
        r"signature algorithm refused: '.*rsa-sha1'",
    ),
    "SHA-1 digest": (
        lambda idp, _, req: idp.respond(req, EMAIL, digest_alg=DIGEST_SHA1),
        r"digest algorithm refused: '.*#sha1'",
    ),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused_with_the_failure_page(app, client, idp, attacker, caplog, name):
    build, reason = ATTACKS[name]
    slug = configure_sso(app, client, idp)
    request = start_login(client, idp, slug)
    saml_response = build(idp, attacker, request)
    users = count(app, User)

    response = post_acs(client, slug, saml_response)

    assert_refused(app, client, response, caplog, reason, users_before=users)


def test_replayed_response_is_refused(app, client, idp, caplog):
    slug = configure_sso(app, client, idp)
    request = start_login(client, idp, slug)
    saml_response = idp.respond(request, EMAIL)
    assert post_acs(client, slug, saml_response).status_code == 303
    thief = app.test_client()  # another browser, a moment later
    client.post("/sign_out")

    again = post_acs(client, slug, saml_response)
    stolen = post_acs(thief, slug, saml_response)

    for response, browser in ((again, client), (stolen, thief)):
        assert response.status_code == 403
        assert SSO_FAILED in response.get_data(as_text=True)
        assert not is_signed_in(browser)
    assert count(app, UserSession) == 0
    failures = sso_failures(caplog)
    assert len(failures) == 2
    assert all(re.search(r"no pending request|replay", f) for f in failures)


def test_another_accounts_request_is_refused(app, client, idp, caplog):
    a = configure_sso(app, client, idp)
    b = configure_sso(app, client, idp, domains=("beta.example",), name="Beta")
    request_at_b = start_login(client, idp, b)
    a_entity_id, a_acs = sp_urls(a)
    # Everything else points at A: only the request id is B's.
    saml_response = idp.respond(request_at_b, EMAIL, audience=a_entity_id, destination=a_acs)

    response = post_acs(client, a, saml_response)

    assert_refused(app, client, response, caplog, rf"no pending request '{request_at_b.id}'")
    with app.app_context():
        assert db.session.get(SamlRequest, request_at_b.id) is not None  # B's is not consumed


def test_response_from_another_accounts_idp_is_refused(app, client, idp, tmp_path, caplog):
    a = configure_sso(app, client, idp)
    other_idp = TestIdp(tmp_path, entity_id="https://beta-idp.example.test/metadata")
    configure_sso(app, client, other_idp, domains=("beta.example",), name="Beta")
    request_at_a = start_login(client, idp, a)

    # B's IdP, trusted by B's connection only, answers A's request with its own Issuer and key.
    response = post_acs(client, a, idp.respond(request_at_a, EMAIL, signer=other_idp))

    assert_refused(app, client, response, caplog, r"signature does not verify: InvalidSignature")


def test_response_to_one_account_posted_to_another_is_refused(app, client, idp, caplog):
    a = configure_sso(app, client, idp)
    b = configure_sso(app, client, idp, domains=("beta.example",), name="Beta")
    request_at_a = start_login(client, idp, a)

    response = post_acs(client, b, idp.respond(request_at_a, EMAIL))

    assert_refused(app, client, response, caplog, r"no pending request")


def test_expired_pending_request_is_refused(app, client, idp, caplog):
    slug = configure_sso(app, client, idp)
    request = start_login(client, idp, slug)
    saml_response = idp.respond(request, EMAIL)
    with app.app_context():
        pending = db.session.get(SamlRequest, request.id)
        pending.expires_at = pending.expires_at - timedelta(hours=1)
        db.session.commit()

    response = post_acs(client, slug, saml_response)

    assert_refused(app, client, response, caplog, r"no pending request")


def test_acs_of_an_account_without_sso_is_refused(app, client, user, caplog):
    response = post_acs(client, user.account_slug, base64.b64encode(b"<x/>").decode())

    assert_refused(app, client, response, caplog, r"no SSO connection")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


GARBAGE: dict[str, tuple[str | None, str]] = {
    "missing": (None, r"empty"),
    "empty": ("", r"empty"),
    "not base64": ("this is not base64!", r"not base64"),
    "base64 of text": (_b64(b"hello, identity provider"), r"not XML"),
    "truncated XML": (_b64(b'<samlp:Response xmlns:samlp="urn:x" ID="a"><sa'), r"not XML"),
    "1 MB": ("A" * 1_000_000, r"oversized"),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_saml_response_is_refused(app, client, idp, caplog, name):
    value, reason = GARBAGE[name]
    slug = configure_sso(app, client, idp)

    response = post_acs(client, slug, value)

    assert_refused(app, client, response, caplog, reason)


def test_body_over_the_request_limit_is_413_and_signs_nobody_in(app, client, idp):
    slug = configure_sso(app, client, idp)

    response = post_acs(client, slug, "A" * (app.config["MAX_CONTENT_LENGTH"] + 1))

    assert response.status_code == 413
    assert "Traceback" not in response.get_data(as_text=True)
    assert not is_signed_in(client)


def _with_doctype(request: ParsedRequest, doctype: str, body: str) -> str:
    xml = (
        f'<?xml version="1.0"?>\n{doctype}\n'
        '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" '
        f'Version="2.0" InResponseTo="{request.id}">{body}</samlp:Response>'
    )
    return _b64(xml.encode())


def test_billion_laughs_is_refused_quickly(app, client, idp, caplog):
    slug = configure_sso(app, client, idp)
    request = start_login(client, idp, slug)
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    doctype = "<!DOCTYPE lolz [" + "".join(entities) + "]>"

    started = time.monotonic()
    response = post_acs(client, slug, _with_doctype(request, doctype, "&lol9;"))

    assert time.monotonic() - started < 5  # expanding it would take minutes and gigabytes
    assert_refused(app, client, response, caplog, r"not XML")


def test_external_entity_is_refused(app, client, idp, caplog):
    slug = configure_sso(app, client, idp)
    request = start_login(client, idp, slug)
    doctype = '<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'

    response = post_acs(client, slug, _with_doctype(request, doctype, "&xxe;"))

    assert_refused(app, client, response, caplog, r"not XML")
    assert "root:" not in response.get_data(as_text=True)


def test_signed_response_with_a_doctype_is_refused(app, client, idp, caplog):
    slug = configure_sso(app, client, idp)
    request = start_login(client, idp, slug)
    xml = idp.decode(idp.respond(request, EMAIL))
    xml = re.sub(r"^(<\?xml[^>]*\?>)?", r'\1<!DOCTYPE r [<!ENTITY e "x">]>', xml, count=1)

    response = post_acs(client, slug, idp.encode(xml))

    assert_refused(app, client, response, caplog, r"not XML")


# -- enforcement: passwords -------------------------------------------------------------------


def _person_in(app: Flask, slug: str, email: str, role: str) -> None:
    factories.make_user(app, email=email)
    factories.make_membership(app, slug, email, role)


def test_enforced_member_gets_the_sso_message_after_a_correct_password(app, client, idp, auth):
    slug = configure_sso(app, client, idp, enforce=True)
    _person_in(app, slug, EMAIL, "member")

    response = auth.sign_in(EMAIL)

    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert SSO_ENFORCED == (
        "Your account’s domain enforces single sign-on. "
        "Sign in through your identity provider instead."
    )
    assert SSO_ENFORCED in page
    assert INCORRECT not in page
    assert not is_signed_in(client)
    assert count(app, UserSession) == 0


def test_enforced_member_with_a_wrong_password_gets_the_generic_message(app, client, idp, auth):
    slug = configure_sso(app, client, idp, enforce=True)
    _person_in(app, slug, EMAIL, "member")

    response = auth.sign_in(EMAIL, "not the password at all")

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert INCORRECT in page
    assert SSO_ENFORCED not in page
    assert not is_signed_in(client)


def test_enforced_domain_blocks_a_password_for_people_outside_the_account(app, client, idp, auth):
    configure_sso(app, client, idp, enforce=True)
    factories.make_person(app, email=f"solo@{DOMAIN}")  # owns only an account of their own

    response = auth.sign_in(f"solo@{DOMAIN}")

    assert response.status_code == 403
    assert SSO_ENFORCED in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_still_sign_in_with_a_password(app, client, idp, auth, role):
    slug = configure_sso(app, client, idp, enforce=True)
    _person_in(app, slug, EMAIL, role)

    response = auth.sign_in(EMAIL)

    assert response.status_code == 303
    assert is_signed_in(client)


def test_password_form_is_reachable_from_the_sign_in_pages(app, client, idp, hx):
    configure_sso(app, client, idp, enforce=True)

    page = client.get("/sign_in").get_data(as_text=True)
    partial = client.get("/sign_in", headers=hx).get_data(as_text=True)
    form = client.get("/sign_in/password")

    assert 'href="/sign_in/password"' in page
    assert 'href="/sign_in/password"' in partial
    assert form.status_code == 200
    assert 'action="/sign_in/password"' in form.get_data(as_text=True)


def test_without_enforcement_members_use_passwords(app, client, idp, auth):
    slug = configure_sso(app, client, idp, enforce=False)
    _person_in(app, slug, EMAIL, "member")

    step = client.post("/sign_in/email", data={"email": EMAIL})
    response = auth.sign_in(EMAIL)

    assert step.status_code == 200 and 'name="password"' in step.get_data(as_text=True)
    assert response.status_code == 303
    assert is_signed_in(client)


def test_enforcement_is_per_domain(app, client, idp, auth):
    slug = configure_sso(app, client, idp, enforce=True)
    _person_in(app, slug, "bo@elsewhere.example", "member")

    step = client.post("/sign_in/email", data={"email": "bo@elsewhere.example"})
    response = auth.sign_in("bo@elsewhere.example")

    assert step.status_code == 200
    assert response.status_code == 303


# -- whose identity an IdP may assert -----------------------------------------------------


def test_an_accounts_idp_cannot_open_another_account_of_an_existing_user(app, client, idp):
    victim = factories.make_person(app, email="vic@mail.example")  # owns an account, password
    eve = factories.make_person(app, email="eve@mail.example")  # same mail provider
    client.post("/sign_in/password", data={"email": eve.email, "password": eve.password})
    # Eve claims her own email's domain from the web, with an IdP she runs.
    saved = client.post(
        f"/a/{eve.account_slug}/sso",
        data={"domains": "mail.example", "metadata": (io.BytesIO(idp.metadata_xml.encode()), "x")},
        content_type="multipart/form-data",
    )
    assert saved.status_code == 303
    trust(client, idp, eve.account_slug)

    request = start_login(client, idp, eve.account_slug, test="1")  # Eve's own test sign-in
    response = post_acs(client, eve.account_slug, idp.respond(request, victim.email))

    # Refusing the assertion (403) or keeping the session to Eve's account would both do.
    assert response.status_code in (303, 403)
    assert client.get(f"/a/{victim.account_slug}/").status_code != 200
    assert victim.account_slug not in client.get("/accounts").get_data(as_text=True)
    assert victim.account_slug not in client.get("/api/v1/account").get_data(as_text=True)


def test_an_sso_session_reaches_no_other_account_through_the_api(app, client, idp):
    person = factories.make_person(app, email="ada@acme.example")  # owns a password account
    slug = configure_sso(app, client, idp)
    with app.app_context():
        sso_account_id = db.session.scalar(select(Account.id).where(Account.slug == slug))
        db.session.add(Membership(account_id=sso_account_id, user_id=person.id, role="member"))
        db.session.commit()
    response = post_acs(client, slug, idp.respond(start_login(client, idp, slug), person.email))
    assert response.status_code == 303

    assert client.get("/api/v1/account").get_json()["slug"] == slug
    # Even if the session were pointed at the person's other account, the API refuses it.
    with app.app_context():
        own = db.session.scalar(select(Account).where(Account.slug == person.account_slug))
        row = db.session.scalar(select(UserSession).where(UserSession.user_id == person.id))
        assert row.sso_account_id == sso_account_id
        row.account_id = own.id
        db.session.commit()
    refused = client.get("/api/v1/account")
    assert refused.status_code == 403
    assert person.account_slug not in refused.get_data(as_text=True)


# -- replay under concurrency (PostgreSQL: SQLite serialises writers) -------------------------


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)
@pytest.mark.app_config(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 12, "max_overflow": 4})
def test_one_response_posted_at_once_from_many_browsers_signs_in_once(app, client, idp):
    slug = configure_sso(app, client, idp)
    saml_response = idp.respond(start_login(client, idp, slug), EMAIL)
    browsers = 8
    barrier = threading.Barrier(browsers)

    binding = client.get_cookie("thub_sso", path="/sso/")
    assert binding is not None

    def post(_: int) -> int:
        browser = app.test_client()  # each holds the binding cookie, as copies of one browser
        browser.set_cookie("thub_sso", binding.value, path="/sso/")
        barrier.wait()
        return post_acs(browser, slug, saml_response).status_code

    with ThreadPoolExecutor(max_workers=browsers) as pool:
        statuses = sorted(pool.map(post, range(browsers)))

    assert statuses == [303] + [403] * (browsers - 1)
    assert count(app, UserSession) == 1
    assert count(app, User) == 2  # the owner and the one person created just in time
