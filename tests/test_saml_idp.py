"""Self-check of tests/saml_idp.py: a bare pysaml2 SP (no app) talks to the test IdP.

A round trip must work, and each bent response the IdP makes must be bent the way its option
says: pysaml2's SP refuses it (raises, or returns a response without an assertion), or, where
pysaml2 alone does not, the XML shows the bend so the app's own check can be tested.
"""

from __future__ import annotations

import base64
import functools
import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from saml2 import BINDING_HTTP_POST
from saml2 import BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.response import UnsolicitedResponse
from saml2.response import VerificationError
from saml2.sigver import SignatureError
from saml2.sigver import get_xmlsec_binary
from saml2.validate import ResponseLifetimeExceed
from saml2.validate import ToEarly
from saml2.xmldsig import DIGEST_SHA1
from saml2.xmldsig import DIGEST_SHA256
from saml2.xmldsig import SIG_RSA_SHA1
from saml2.xmldsig import SIG_RSA_SHA256

from tests.saml_idp import ParsedRequest
from tests.saml_idp import TestIdp
from tests.saml_idp import make_key_and_cert

SP_ENTITY_ID = "https://sp.example.test/sso/acme/metadata"
SP_ACS_URL = "https://sp.example.test/sso/acme/acs"
EMAIL = "ada@acme.example"
FIVE_MINUTES = timedelta(minutes=5)
SIGNATURE = re.compile(r"<(?:\w+:)?Signature[ >]")  # whatever prefix ElementTree picked


@dataclass
class World:
    workdir: pathlib.Path
    idp: TestIdp
    attacker: TestIdp  # same entity id, another key
    sp: Saml2Client
    sp_metadata: str

    @functools.cached_property
    def other_idp(self) -> TestIdp:
        """An IdP with another entity id, which the SP does not know (made when first used)."""
        return TestIdp(self.workdir, entity_id="https://other-idp.example.test/metadata")


def make_sp(workdir: pathlib.Path, idp: TestIdp) -> tuple[Saml2Client, str]:
    """A pysaml2 SP set up as the app's: signed SHA-256 requests, signed assertions required."""
    key_path, cert_path = make_key_and_cert(workdir, "sp", SP_ENTITY_ID)
    config = SPConfig()
    config.load(
        {
            "entityid": SP_ENTITY_ID,
            "xmlsec_binary": get_xmlsec_binary(),
            "key_file": str(key_path),
            "cert_file": str(cert_path),
            "metadata": {"inline": [idp.metadata_xml]},
            "accepted_time_diff": 60,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(SP_ACS_URL, BINDING_HTTP_POST)]},
                    "signing_algorithm": SIG_RSA_SHA256,
                    "digest_algorithm": DIGEST_SHA256,
                    "authn_requests_signed": True,
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                    "want_assertions_or_response_signed": True,
                    "allow_unsolicited": False,
                    "allow_unknown_attributes": True,
                }
            },
        }
    )
    metadata = create_metadata_string(None, config=config).decode()
    return Saml2Client(config=config), metadata


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    workdir = tmp_path_factory.mktemp("saml")
    idp = TestIdp(workdir)
    sp, sp_metadata = make_sp(workdir, idp)
    idp.trust_sp(sp_metadata)
    return World(
        workdir=workdir,
        idp=idp,
        attacker=TestIdp(workdir, entity_id=idp.entity_id),
        sp=sp,
        sp_metadata=sp_metadata,
    )


def login_redirect(world: World, **kwargs: Any) -> tuple[str, str]:
    """Have the SP make an AuthnRequest; return its id and the Location it redirects to."""
    options: dict[str, Any] = {"sigalg": SIG_RSA_SHA256, "digest_alg": DIGEST_SHA256}
    options.update(kwargs)
    request_id, info = world.sp.prepare_for_authenticate(
        entityid=world.idp.entity_id,
        relay_state="/a/acme",
        binding=BINDING_HTTP_REDIRECT,
        **options,
    )
    return request_id, dict(info["headers"])["Location"]


def sp_accepts(world: World, request_id: str, saml_response: str, **kwargs: Any) -> Any:
    """The SP's verdict: the parsed response if it has an assertion, else None (or it raises)."""
    response = world.sp.parse_authn_request_response(
        saml_response, BINDING_HTTP_POST, outstanding={request_id: "/"}, **kwargs
    )
    if response is None or response.assertion is None:
        return None
    return response


def xml_of(saml_response: str) -> str:
    return base64.b64decode(saml_response).decode()


def test_metadata_describes_one_signing_idp_with_a_redirect_sso_url(world: World) -> None:
    idp = world.idp
    assert idp.metadata_xml.count("IDPSSODescriptor ") == 1
    assert 'use="signing"' in idp.metadata_xml
    mds = world.sp.metadata
    assert list(mds.identity_providers()) == [idp.entity_id]
    cert_body = "".join(line for line in idp.cert_pem.splitlines() if "CERTIFICATE" not in line)
    certs = mds.certs(idp.entity_id, "idpsso", use="signing")
    assert ["".join(cert.split()) for _, cert in certs] == [cert_body]
    services = mds.single_sign_on_service(idp.entity_id, BINDING_HTTP_REDIRECT)
    assert [service["location"] for service in services] == [idp.sso_url]
    assert oct(idp.key_path.stat().st_mode & 0o777) == "0o600"


def test_round_trip_signs_in_the_asserted_email(world: World) -> None:
    request_id, location = login_redirect(world)
    assert location.startswith(world.idp.sso_url + "?")

    request = world.idp.parse_request(location)

    assert request.id == request_id
    assert request.sp_entity_id == SP_ENTITY_ID
    assert request.acs_url == SP_ACS_URL
    assert request.relay_state == "/a/acme"
    assert request.signed
    assert request.sig_alg == SIG_RSA_SHA256
    assert request_id in request.xml

    saml_response = world.idp.respond(request, EMAIL)
    xml = xml_of(saml_response)
    assert len(SIGNATURE.findall(xml)) == 2  # the response's and the assertion's
    assert xml.count(SIG_RSA_SHA256) == 2
    assert xml.count(DIGEST_SHA256) == 2

    response = sp_accepts(world, request_id, saml_response)
    assert response is not None
    assert response.name_id.text == EMAIL
    assert response.in_response_to == request_id
    assert response.ava["email"] == [EMAIL]
    assert response.ava["mail"] == [EMAIL]
    assert response.assertion.issuer.text == world.idp.entity_id


def test_assertion_signed_only_is_enough_for_an_sp_that_wants_signed_assertions(
    world: World,
) -> None:
    request_id, location = login_redirect(world)
    request = world.idp.parse_request(location)
    saml_response = world.idp.respond(request, EMAIL, sign_response=False)
    assert len(SIGNATURE.findall(xml_of(saml_response))) == 1
    assert sp_accepts(world, request_id, saml_response).name_id.text == EMAIL


def test_name_id_and_attributes_can_be_chosen(world: World) -> None:
    request_id, location = login_redirect(world)
    request = world.idp.parse_request(location)
    persistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    saml_response = world.idp.respond(
        request,
        EMAIL,
        name_id_format=persistent,
        name_id="opaque-17",
        attributes={"mail": ["grace@acme.example"]},
    )
    response = sp_accepts(world, request_id, saml_response)
    assert response.name_id.format == persistent
    assert response.name_id.text == "opaque-17"
    assert response.ava == {"mail": ["grace@acme.example"]}


# -- the AuthnRequest side ---------------------------------------------------------------------


def _with_query(location: str, change: Callable[[dict[str, str]], None]) -> str:
    parts = urlsplit(location)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    change(query)
    return parts._replace(query=urlencode(query)).geturl()


def test_unsigned_request_is_refused_unless_allowed(world: World) -> None:
    request_id, location = login_redirect(world, sign=False)
    assert "Signature=" not in location
    with pytest.raises(ValueError, match="not signed"):
        world.idp.parse_request(location)
    request = world.idp.parse_request(location, require_signed=False)
    assert (request.id, request.signed, request.sig_alg) == (request_id, False, None)


def test_request_with_a_forged_signature_or_relay_state_is_refused(world: World) -> None:
    _, location = login_redirect(world)

    def forge_signature(query: dict[str, str]) -> None:
        signature = bytearray(base64.b64decode(query["Signature"]))
        signature[10] ^= 1
        query["Signature"] = base64.b64encode(bytes(signature)).decode()

    def change_relay_state(query: dict[str, str]) -> None:
        query["RelayState"] = "https://evil.example/"

    for change in (forge_signature, change_relay_state):
        with pytest.raises(Exception, match="not signed correctly"):
            world.idp.parse_request(_with_query(location, change))


def test_request_signed_with_sha1_is_refused(world: World) -> None:
    _, location = login_redirect(world, sigalg=SIG_RSA_SHA1)
    with pytest.raises(ValueError, match="not RSA-SHA256"):
        world.idp.parse_request(location)
    assert world.idp.parse_request(location, require_signed=False).sig_alg == SIG_RSA_SHA1


# -- attacks: what the IdP makes, and that pysaml2's SP refuses it -----------------------------


def _tampered(world: World, request: ParsedRequest) -> str:
    signed = world.idp.respond(request, EMAIL)
    return world.idp.tamper(signed, EMAIL, "eve@acme.example")


ATTACKS: dict[str, tuple[Callable[[World, ParsedRequest], str], type[Exception] | None]] = {
    # name: (make the response, what pysaml2 raises; None: no assertion comes back)
    "tampered after signing": (_tampered, SignatureError),
    "signed by another key": (
        lambda w, r: w.idp.respond(r, EMAIL, signer=w.attacker),
        SignatureError,
    ),
    "assertion signed by another key": (
        lambda w, r: w.idp.respond(r, EMAIL, signer=w.attacker, sign_response=False),
        SignatureError,
    ),
    "unsigned": (
        lambda w, r: w.idp.respond(r, EMAIL, sign_response=False, sign_assertion=False),
        SignatureError,
    ),
    "only the response signed": (
        lambda w, r: w.idp.respond(r, EMAIL, sign_assertion=False),
        SignatureError,
    ),
    "issued by an unknown IdP": (
        lambda w, r: w.idp.respond(r, EMAIL, signer=w.other_idp),
        Exception,  # saml2.sigver.MissingKey
    ),
    "unsolicited": (
        lambda w, r: w.idp.respond(r, EMAIL, in_response_to=None),
        UnsolicitedResponse,
    ),
    "answering another request": (
        lambda w, r: w.idp.respond(r, EMAIL, in_response_to="id-not-ours"),
        UnsolicitedResponse,
    ),
    "wrong audience": (
        lambda w, r: w.idp.respond(r, EMAIL, audience="https://other-sp.example/metadata"),
        Exception,  # a bare Exception: "AudienceRestrictions conditions not satisfied!"
    ),
    "wrong destination": (
        lambda w, r: w.idp.respond(r, EMAIL, destination="https://other-sp.example/acs"),
        None,
    ),
    "expired": (
        lambda w, r: w.idp.respond(r, EMAIL, not_on_or_after_delta=-FIVE_MINUTES),
        ResponseLifetimeExceed,
    ),
    "not yet valid": (
        lambda w, r: w.idp.respond(r, EMAIL, not_before_delta=FIVE_MINUTES),
        ToEarly,
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_pysaml2_sp_refuses(world: World, attack: str) -> None:
    make, refusal = ATTACKS[attack]
    request_id, location = login_redirect(world)
    saml_response = make(world, world.idp.parse_request(location))
    if refusal is None:
        assert sp_accepts(world, request_id, saml_response) is None
    else:
        with pytest.raises(refusal):
            sp_accepts(world, request_id, saml_response)


def test_validity_window_moves_one_bound_and_keeps_the_other_consistent(world: World) -> None:
    request_id, location = login_redirect(world)
    request = world.idp.parse_request(location)
    time = r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"'
    conditions = re.compile(f"<(?:\\w+:)?Conditions NotBefore={time} NotOnOrAfter={time}>")
    windows = []
    # Just outside the window but inside pysaml2's accepted_time_diff (60 s): still taken.
    for delta in (
        {"not_on_or_after_delta": -timedelta(seconds=20)},
        {"not_before_delta": timedelta(seconds=20)},
    ):
        saml_response = world.idp.respond(request, EMAIL, **delta)
        found = conditions.search(xml_of(saml_response))
        assert found is not None
        windows.append(found.groups())
        assert sp_accepts(world, request_id, saml_response) is not None
    (expired_from, expired_until), (early_from, early_until) = windows
    assert expired_from < expired_until < early_from < early_until


def test_wrong_recipient_is_only_refused_when_the_sp_passes_conv_info(world: World) -> None:
    """pysaml2 7.5 checks SubjectConfirmationData/@Recipient only given ``conv_info``."""
    request_id, location = login_redirect(world)
    request = world.idp.parse_request(location)
    saml_response = world.idp.respond(request, EMAIL, recipient="https://other-sp.example/acs")
    xml = xml_of(saml_response)
    assert 'Recipient="https://other-sp.example/acs"' in xml
    assert f'Destination="{SP_ACS_URL}"' in xml
    assert sp_accepts(world, request_id, saml_response) is not None
    with pytest.raises(VerificationError, match="No valid recipient"):
        sp_accepts(world, request_id, saml_response, conv_info={"entity_id": SP_ENTITY_ID})


def test_sha1_signed_response_is_made_and_pysaml2_alone_accepts_it(world: World) -> None:
    """The app must refuse SHA-1 itself; pysaml2 7.5 + xmlsec1 do not."""
    request_id, location = login_redirect(world)
    request = world.idp.parse_request(location)
    saml_response = world.idp.respond(request, EMAIL, sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1)
    xml = xml_of(saml_response)
    assert SIG_RSA_SHA256 not in xml
    assert xml.count(SIG_RSA_SHA1) == 2
    assert xml.count(DIGEST_SHA1) == 2
    assert sp_accepts(world, request_id, saml_response) is not None


def test_tamper_refuses_a_find_that_does_not_occur(world: World) -> None:
    _, location = login_redirect(world)
    saml_response = world.idp.respond(world.idp.parse_request(location), EMAIL)
    with pytest.raises(ValueError, match="does not occur"):
        world.idp.tamper(saml_response, "nobody@acme.example", "eve@acme.example")
