"""What the ACS accepts from real identity providers, and the profile rules it holds them to.

Every response here is written and signed by ``tests.saml_signer`` (not pysaml2, not signxml),
in the shapes Okta, Entra ID, Google Workspace, AD FS, OneLogin, Keycloak and Shibboleth send.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import select

from terminus_hub.core.idp_metadata import MetadataError
from terminus_hub.core.idp_metadata import inspect_idp_metadata
from terminus_hub.extensions import db
from terminus_hub.models import AuditEvent
from terminus_hub.models import SamlAssertion
from terminus_hub.models import SsoConnection
from terminus_hub.sso.assertion import NAME_CLAIM
from terminus_hub.sso.views import METADATA_EXPIRED
from tests.saml_signer import BASIC_FORMAT
from tests.saml_signer import C14N_10
from tests.saml_signer import EMAIL_FORMAT
from tests.saml_signer import PERSISTENT
from tests.saml_signer import SAML
from tests.saml_signer import SAMLP
from tests.saml_signer import SENDER_VOUCHES
from tests.saml_signer import TRANSIENT
from tests.saml_signer import UNSPECIFIED
from tests.saml_signer import URI_FORMAT
from tests.saml_signer import Shape
from tests.saml_signer import authn_request_from
from tests.saml_signer import new_id
from tests.saml_signer import request_id_from
from tests.sso_helpers import DOMAIN
from tests.sso_helpers import OWNER
from tests.sso_helpers import Sso
from tests.sso_helpers import assert_refused
from tests.sso_helpers import make_sso
from tests.sso_helpers import signed_in_emails

ANA = f"ana@{DOMAIN}"
A = f"{{{SAML}}}"
P = f"{{{SAMLP}}}"
CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"


def sign_in(sso: Sso, email: str = ANA, **kwargs: Any) -> Any:
    return sso.post(sso.respond(sso.start(), email, **kwargs))


# -- the shapes real IdPs send ----------------------------------------------------------------

VENDORS: dict[str, Shape] = {
    "Okta": Shape(samlp="saml2p", saml="saml2", attributes={"email": [ANA]}),
    "Entra ID, assertion signed": Shape(
        saml=None,
        fraction_digits=7,
        attribute_name_format=None,
        attributes={f"{CLAIMS}/emailaddress": [ANA], NAME_CLAIM: [ANA]},
    ),
    "Entra ID, response signed": Shape(
        saml=None, fraction_digits=7, sign_response=True, sign_assertion=False
    ),
    "Entra ID, both signed": Shape(
        saml=None, fraction_digits=7, sign_response=True, sign_assertion=True
    ),
    "Google Workspace": Shape(
        samlp="saml2p", saml="saml2", pretty=True, sign_response=True, sign_assertion=True
    ),
    "AD FS": Shape(
        saml=None,
        fraction_digits=3,
        name_id_format=UNSPECIFIED,
        name_id="ACME\\ana",
        attribute_name_format=None,
        attributes={f"{CLAIMS}/emailaddress": [ANA], f"{CLAIMS}/upn": [ANA]},
    ),
    "OneLogin": Shape(pretty=True, sign_response=True, sign_assertion=True),
    "Keycloak": Shape(
        ds="dsig",
        sign_response=True,
        sign_assertion=False,
        name_id_format=UNSPECIFIED,
        name_id="ana",
        attributes={"email": [ANA], "firstName": ["Ana"]},
    ),
    "Shibboleth": Shape(
        samlp="saml2p",
        saml="saml2",
        pretty=True,
        name_id_format=TRANSIENT,
        name_id=new_id(),
        attribute_name_format=URI_FORMAT,
        attributes={"urn:oid:0.9.2342.19200300.100.1.3": [ANA], "urn:oid:2.5.4.42": ["Ana"]},
    ),
    "signature after the Subject": Shape(assertion_signature_at="end"),
    "several AttributeStatements": Shape(
        name_id_format=PERSISTENT,
        name_id="00u1",
        attributes={"givenName": ["Ana"], "mail": [ANA], "sn": ["Lovelace"]},
        attribute_statements=3,
    ),
    "several AudienceRestrictions naming us": Shape(
        audience_restrictions=2, extra_audiences=["https://another-sp.example/"]
    ),
    "inclusive C14N 1.0 (custom .NET IdP)": Shape(c14n=C14N_10),
}


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_response_shaped_as_a_real_idp_sends_it_signs_in(sso, vendor):
    response = sign_in(sso, shape=VENDORS[vendor])

    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    assert response.location == f"/a/{sso.slug}/"
    assert signed_in_emails(sso.app) == [ANA]


def test_response_signature_must_cover_its_assertion(sso, caplog):
    request_id = sso.start()
    shape = Shape(sign_response=True, sign_assertion=False)
    xml = sso.respond(request_id, ANA, shape=shape).replace(ANA.encode(), OWNER.encode())

    assert_refused(sso, sso.post(xml), caplog, "Response signature does not verify")


# -- where the email comes from ---------------------------------------------------------------

EMAIL_SOURCES: dict[str, tuple[Shape, str | None]] = {
    "emailAddress NameID": (Shape(attributes={}), ANA),
    "emailAddress NameID before a different attribute": (
        Shape(attributes={"email": [f"other@{DOMAIN}"]}),
        ANA,
    ),
    "persistent NameID holding the owner's email, email attribute": (
        Shape(name_id_format=PERSISTENT, name_id=OWNER, attributes={"email": [ANA]}),
        ANA,
    ),
    "transient NameID holding the owner's email, mail attribute": (
        Shape(name_id_format=TRANSIENT, name_id=OWNER, attributes={"mail": [ANA]}),
        ANA,
    ),
    "unspecified NameID holding the owner's email, email attribute": (
        Shape(name_id_format=UNSPECIFIED, name_id=OWNER, attributes={"Email": [ANA]}),
        ANA,
    ),
    "email-shaped unspecified NameID, no email attribute": (
        Shape(name_id_format=UNSPECIFIED, attributes={}),
        ANA,
    ),
    "NameID without a Format, no email attribute": (
        Shape(name_id_format=None, attributes={}),
        ANA,
    ),
    "LDAP mail without a NameFormat": (
        Shape(name_id_format=TRANSIENT, attribute_name_format=None, attributes={"mail": [ANA]}),
        ANA,
    ),
    "X.500 mail OID": (
        Shape(
            name_id_format=PERSISTENT,
            attribute_name_format=URI_FORMAT,
            attributes={"urn:oid:0.9.2342.19200300.100.1.3": [ANA]},
        ),
        ANA,
    ),
    "PKCS #9 email OID": (
        Shape(
            name_id_format=PERSISTENT,
            attribute_name_format=URI_FORMAT,
            attributes={"urn:oid:1.2.840.113549.1.9.1": [ANA]},
        ),
        ANA,
    ),
    "emailaddress claim": (
        Shape(name_id_format=PERSISTENT, attributes={f"{CLAIMS}/emailaddress": [ANA]}),
        ANA,
    ),
    "Entra name claim holding an email": (
        Shape(name_id_format=PERSISTENT, attributes={NAME_CLAIM: [ANA]}),
        ANA,
    ),
    "Entra name claim holding a user name": (
        Shape(name_id_format=PERSISTENT, attributes={NAME_CLAIM: ["ana"]}),
        None,
    ),
    "persistent NameID alone": (
        Shape(name_id_format=PERSISTENT, name_id=ANA, attributes={}),
        None,
    ),
    "email attribute with a basic NameFormat and upper case": (
        Shape(
            name_id_format=TRANSIENT,
            attribute_name_format=BASIC_FORMAT,
            attributes={"EMAIL": [ANA.upper()]},
        ),
        ANA,
    ),
}


@pytest.mark.parametrize("case", list(EMAIL_SOURCES))
def test_email_comes_from_the_contracts_sources_only(sso, caplog, case):
    shape, expected = EMAIL_SOURCES[case]

    response = sign_in(sso, shape=shape)

    if expected is None:
        assert_refused(sso, response, caplog, "no email in the assertion")
    else:
        assert response.status_code == 303, response.get_data(as_text=True)[:300]
        assert signed_in_emails(sso.app) == [expected]


def test_authn_request_asks_for_an_email_nameid(sso):
    location = sso.client.get(f"/sso/{sso.slug}/login").location

    policy = authn_request_from(location).find(f"{P}NameIDPolicy")

    assert policy is not None
    assert policy.get("Format") == EMAIL_FORMAT


# -- profile rules: each needs the IdP's own signature, and still fails -----------------------


def _edit_assertion(change: Callable[[Any], None]) -> Callable[[Any], None]:
    return lambda root: change(root.find(f"{A}Assertion"))


def _second_subject(assertion: Any) -> None:
    subject = assertion.find(f"{A}Subject")
    twin = etree.fromstring(etree.tostring(subject))
    twin.find(f"{A}NameID").text = OWNER
    subject.addnext(twin)


def _drop(path: str) -> Callable[[Any], None]:
    def drop(assertion: Any) -> None:
        element = assertion.find(path)
        element.getparent().remove(element)

    return drop


def _foreign_restriction(assertion: Any) -> None:
    conditions = assertion.find(f"{A}Conditions")
    restriction = etree.SubElement(conditions, f"{A}AudienceRestriction")
    etree.SubElement(restriction, f"{A}Audience").text = "https://another-sp.example/"


def _drop_scd_attribute(name: str) -> Callable[[Any], None]:
    def drop(assertion: Any) -> None:
        data = assertion.find(f"{A}Subject/{A}SubjectConfirmation/{A}SubjectConfirmationData")
        del data.attrib[name]

    return drop


def _response_issuer(root: Any) -> None:
    root.find(f"{A}Issuer").text = "https://another-idp.example/"


def _status(root: Any) -> None:
    root.find(f"{P}Status/{P}StatusCode").set(
        "Value", "urn:oasis:names:tc:SAML:2.0:status:Requester"
    )


def _unknown_condition(assertion: Any) -> None:
    etree.SubElement(assertion.find(f"{A}Conditions"), "{urn:example:custom}OnlyOnTuesdays")


PROFILE: dict[str, tuple[dict[str, Any], str]] = {
    "two Subjects": ({"edit": _edit_assertion(_second_subject)}, "2 Subject elements"),
    "Response Issuer of another IdP": (
        {"edit": _response_issuer, "shape": Shape(sign_response=True)},
        "response Issuer",
    ),
    "assertion Issuer of another IdP": (
        {"issuer": "https://another-idp.example/"},
        "Issuer 'https://another-idp.example/' is not this connection's IdP",
    ),
    "an AudienceRestriction without us": (
        {"edit": _edit_assertion(_foreign_restriction)},
        "an AudienceRestriction does not name us",
    ),
    "no Conditions": ({"conditions": False}, "0 Conditions elements"),
    "unknown condition": (
        {"edit": _edit_assertion(_unknown_condition)},
        "unknown condition",
    ),
    "bearer confirmation without NotOnOrAfter": (
        {"scd_not_on_or_after": False},
        "no NotOnOrAfter",
    ),
    "bearer confirmation without InResponseTo": (
        {"edit": _edit_assertion(_drop_scd_attribute("InResponseTo"))},
        "InResponseTo names another request",
    ),
    "sender-vouches is not bearer": (
        {"method": SENDER_VOUCHES},
        "is not bearer",
    ),
    "no AuthnStatement": (
        {"edit": _edit_assertion(_drop(f"{A}AuthnStatement"))},
        "no AuthnStatement",
    ),
    "IdP status not Success": ({"edit": _status}, "status"),
    "issued before our request": (
        {"issued": datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)},
        "not issued between our request and now",
    ),
}


@pytest.mark.parametrize("case", list(PROFILE))
def test_profile_rule_refuses_a_signed_response(sso, caplog, case):
    kwargs, reason = PROFILE[case]

    response = sign_in(sso, **kwargs)

    assert_refused(sso, response, caplog, reason)


def test_assertion_lifetime_is_capped_at_24_hours_past_issue(sso):
    response = sign_in(sso, lifetime=datetime.timedelta(days=75 * 365))

    assert response.status_code == 303
    with sso.app.app_context():
        remembered = db.session.scalars(select(SamlAssertion)).one()
        assert remembered.expires_at < datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            hours=24, minutes=2
        )


def test_sha1_signature_is_refused(sso, caplog):
    request_id = sso.start()
    root = etree.fromstring(sso.respond(request_id, ANA, shape=Shape(sign_assertion=False)))
    sso.signer.sign(
        root.find(f"{A}Assertion"),
        sig_alg="http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        digest_alg="http://www.w3.org/2000/09/xmldsig#sha1",
    )

    assert_refused(sso, sso.post(etree.tostring(root)), caplog, "signature algorithm refused")


# -- login CSRF: the sign-in belongs to the browser that started it ---------------------------


def test_response_posted_from_another_browser_signs_no_one_in(sso, caplog):
    attacker_browser = sso.client
    request_id = sso.start(attacker_browser)  # the attacker starts, and gets, a response
    victim = sso.app.test_client()

    response = sso.post(sso.respond(request_id, ANA), client=victim)

    assert_refused(sso, response, caplog, "started in another browser")


def test_attackers_response_in_a_browser_with_its_own_pending_sign_in_is_refused(sso, caplog):
    victim = sso.app.test_client()
    sso.start(victim)  # the victim's own, unrelated sign-in
    attackers_request = sso.start(sso.app.test_client())

    response = sso.post(sso.respond(attackers_request, ANA), client=victim)

    assert_refused(sso, response, caplog, "started in another browser")


@pytest.mark.app_config(SESSION_COOKIE_SECURE=True)
def test_binding_cookie_is_short_lived_cross_site_and_cleared_after_use(sso):
    started = sso.client.get(f"/sso/{sso.slug}/login")
    cookie = started.headers["Set-Cookie"]
    assert cookie.startswith("thub_sso=")
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Max-Age=600", "Path=/sso/"):
        assert attribute in cookie

    request_id = sso.start()  # a second tab: both stay bound
    first = request_id_from(started.location)
    finished = sso.post(sso.respond(first, ANA))

    assert finished.status_code == 303
    assert "thub_sso=" in finished.headers.get("Set-Cookie", "")
    second = sso.post(sso.respond(request_id, ANA))
    assert second.status_code == 303  # the other tab's binding survived the first


# -- expired metadata -------------------------------------------------------------------------


def _expire_metadata(sso: Sso) -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    with sso.app.app_context():
        connection = db.session.scalars(select(SsoConnection)).one()
        connection.idp_metadata_xml = sso.signer.metadata(valid_until=past)
        db.session.commit()


def test_expired_metadata_at_sign_in_says_so_and_is_audited(sso, caplog):
    _expire_metadata(sso)

    response = sso.client.get(f"/sso/{sso.slug}/login")

    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert METADATA_EXPIRED in page
    assert "expired on" in page
    assert "Traceback" not in page
    assert any("metadata expired" in r.getMessage() for r in caplog.records)
    with sso.app.app_context():
        kinds = db.session.scalars(select(AuditEvent.kind)).all()
    assert "sso.metadata_expired" in kinds


def test_metadata_that_expires_during_a_sign_in_is_refused_at_the_acs(sso):
    request_id = sso.start()
    _expire_metadata(sso)

    response = sso.post(sso.respond(request_id, ANA))

    assert response.status_code == 409
    assert METADATA_EXPIRED in response.get_data(as_text=True)
    assert signed_in_emails(sso.app) == []


def test_metadata_with_a_future_valid_until_works(app, client, signer):
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    sso = make_sso(app, client, signer, metadata=signer.metadata(valid_until=future))

    assert sign_in(sso).status_code == 303


# -- what we advertise ------------------------------------------------------------------------


def test_sp_metadata_advertises_only_accepted_algorithms(sso):
    xml = sso.client.get(f"/sso/{sso.slug}/metadata").get_data()

    # The algorithms are the Algorithm attributes (DigestMethod, SigningMethod): the rest of
    # the text includes the certificate's base64, where "md5" turns up by chance.
    algorithms = {str(uri) for uri in etree.fromstring(xml).xpath("//@Algorithm")}
    for weak in ("md5", "sha1", "#dsa", "ripemd"):
        assert not [uri for uri in algorithms if weak in uri.lower()]
    assert "http://www.w3.org/2001/04/xmlenc#sha256" in algorithms
    assert "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" in algorithms


def test_settings_page_says_the_metadata_expired(sso, auth):
    _expire_metadata(sso)
    auth.sign_in(OWNER)

    page = sso.client.get(f"/a/{sso.slug}/sso").get_data(as_text=True)

    assert "Sign-in through your identity provider is unavailable." in page
    assert "expired on" in page
    assert "Download fresh metadata from your identity provider." in page


@pytest.mark.parametrize(
    "look_alike",
    ["owner@ａｃｍｅ.example", "owner@acme．example", "owner@acme。example", "ｏwner@acme.example"],
)
def test_email_that_only_canonicalises_to_someone_elses_is_refused(sso, caplog, look_alike):
    shape = Shape(name_id_format=PERSISTENT, name_id="00u1", attributes={"email": [look_alike]})

    response = sign_in(sso, shape=shape)

    assert_refused(sso, response, caplog, "no email in the assertion")
    assert signed_in_emails(sso.app) == []


def test_upper_case_email_is_the_same_person(sso):
    assert sign_in(sso, shape=Shape(attributes={}, name_id=ANA.upper())).status_code == 303
    assert signed_in_emails(sso.app) == [ANA]


def test_metadata_valid_until_past_the_calendar_is_a_clear_error(signer):
    xml = signer.metadata().replace(
        'entityID="', 'validUntil="9999-12-31T23:59:59-01:00" entityID="', 1
    )

    with pytest.raises(MetadataError, match="not SAML metadata"):
        inspect_idp_metadata(xml)
