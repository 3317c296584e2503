"""pysaml2 glue: one service provider per account, AuthnRequests out, checked responses in.

pysaml2 checks signatures, audience, destination and validity windows; what it leaves to us
(SECURITY.md §1.5) is done here: a response must answer a request this app sent for this
account (kept in the database and consumed atomically, so a second post fails on any
instance), an assertion id is accepted once, and the email must be in the connection's domains.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from defusedxml import ElementTree
from flask import current_app
from flask import request
from flask import url_for
from saml2 import BINDING_HTTP_POST
from saml2 import BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
from saml2.xmldsig import DIGEST_SHA256
from saml2.xmldsig import SIG_RSA_SHA256
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from terminus_hub.emails import try_canonical_email
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import SamlAssertion
from terminus_hub.models import SamlRequest
from terminus_hub.models import SsoConnection
from terminus_hub.models import utcnow
from terminus_hub.sso.connections import email_domain
from terminus_hub.sso.credentials import ensure_keypair
from terminus_hub.sso.metadata import inspect_idp_metadata

log = logging.getLogger(__name__)

REQUEST_LIFETIME = timedelta(minutes=10)
MAX_RESPONSE_BYTES = 256 * 1024
_EMAIL_ATTRIBUTES = (
    "email",
    "mail",
    "emailAddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
)
_DSIG = "http://www.w3.org/2000/09/xmldsig#"
_SIGNATURE_ALGORITHMS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
}
_DIGEST_ALGORITHMS = {
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
}
_CLIENTS: OrderedDict[tuple[str, int, str], Saml2Client] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
_CLIENTS_MAX = 256


class SsoFailure(Exception):
    """A response that must not sign anyone in; the message is the reason, for the log only."""


@dataclass(frozen=True)
class Asserted:
    email: str
    next_path: str | None
    is_test: bool


def _base_url() -> str:
    return (current_app.config.get("TERMINUS_BASE_URL") or request.host_url).rstrip("/")


def sp_urls(account: Account) -> tuple[str, str]:
    """Return this account's SP entity id (its metadata URL) and ACS URL."""
    base = _base_url()
    return (
        base + url_for("sso.metadata", slug=account.slug),
        base + url_for("sso.acs", slug=account.slug),
    )


def _config(account: Account, idp_metadata_xml: str | None) -> SPConfig:
    app_config = current_app.config
    key_file = app_config["TERMINUS_SAML_SP_KEY_FILE"]
    cert_file = app_config["TERMINUS_SAML_SP_CERT_FILE"]
    ensure_keypair(key_file, cert_file)
    entity_id, acs_url = sp_urls(account)
    config = SPConfig()
    config.load(
        {
            "entityid": entity_id,
            "key_file": key_file,
            "cert_file": cert_file,
            "xmlsec_binary": app_config["TERMINUS_XMLSEC_BINARY"],
            "metadata": {"inline": [idp_metadata_xml]} if idp_metadata_xml else {},
            "accepted_time_diff": 60,  # seconds of clock skew between us and the IdP
            "service": {
                "sp": {
                    "name": f"Terminus Hub · {account.name}",
                    "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
                    # pysaml2 reads the algorithms only here, not at the top level.
                    "signing_algorithm": SIG_RSA_SHA256,
                    "digest_algorithm": DIGEST_SHA256,
                    "authn_requests_signed": True,
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                    "want_assertions_or_response_signed": True,
                    "allow_unsolicited": False,
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "allow_unknown_attributes": True,
                }
            },
        }
    )
    return config


def _client(account: Account, connection: SsoConnection) -> Saml2Client:
    # Building a client costs ~60 ms: keep one per account, metadata version and origin.
    cache_key = (account.id, connection.metadata_version, _base_url())
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(cache_key)
        if client is not None:
            _CLIENTS.move_to_end(cache_key)
            return client
    client = Saml2Client(config=_config(account, connection.idp_metadata_xml))
    with _CLIENTS_LOCK:
        _CLIENTS[cache_key] = client
        while len(_CLIENTS) > _CLIENTS_MAX:
            _CLIENTS.popitem(last=False)
    return client


def sp_metadata_xml(account: Account) -> str:
    """Return this account's SP metadata (entity id, ACS, signing certificate)."""
    return create_metadata_string(None, config=_config(account, None), valid=None).decode("utf-8")


def start_login(
    account: Account, connection: SsoConnection, next_path: str | None, is_test: bool
) -> str:
    """Record a signed AuthnRequest for this account and return the IdP URL to redirect to."""
    idp = inspect_idp_metadata(connection.idp_metadata_xml)
    request_id, info = _client(account, connection).prepare_for_authenticate(
        entityid=idp.entity_id,
        binding=BINDING_HTTP_REDIRECT,
        sigalg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    db.session.add(
        SamlRequest(
            id=request_id,
            account_id=account.id,
            next_path=next_path,
            is_test=is_test,
            expires_at=utcnow() + REQUEST_LIFETIME,
        )
    )
    db.session.commit()
    return dict(info["headers"])["Location"]


def finish_login(account: Account, connection: SsoConnection, saml_response: str) -> Asserted:
    """Check an IdP's response end to end and return who it asserts, or raise SsoFailure."""
    root = _parse(_decode(saml_response))
    _check_algorithms(root)
    request_id = _in_response_to(root)
    pending = db.session.get(SamlRequest, request_id) if request_id else None
    now = utcnow()
    if pending is None or pending.account_id != account.id or pending.expires_at < now:
        raise SsoFailure(f"no pending request {request_id!r} for this account")
    entity_id, acs_url = sp_urls(account)
    try:
        # conv_info makes pysaml2 check the SubjectConfirmation Recipient against our ACS.
        response = _client(account, connection).parse_authn_request_response(
            saml_response,
            BINDING_HTTP_POST,
            outstanding={request_id: acs_url},
            conv_info={"entity_id": entity_id},
        )
    except Exception as exc:  # pysaml2 raises bare Exception, ParseError, SignatureError, …
        raise SsoFailure(f"response refused by pysaml2: {type(exc).__name__}: {exc}") from None
    if response is None or response.assertion is None or response.name_id is None:
        raise SsoFailure("response has no usable assertion (wrong destination or unsigned)")
    if response.in_response_to != request_id:
        raise SsoFailure("response answers another request")
    # Consume the request atomically: of two posts of one response, one wins.
    consumed = db.session.execute(
        delete(SamlRequest).where(
            SamlRequest.id == request_id, SamlRequest.account_id == account.id
        )
    )
    if consumed.rowcount != 1:
        db.session.rollback()
        raise SsoFailure("request already answered (replay)")
    _remember_assertion(response.assertion.id, _not_on_or_after(response, now))
    email = _asserted_email(response)
    if email is None:
        raise SsoFailure("no email in the assertion")
    if email_domain(email) not in {d.domain for d in connection.domains}:
        raise SsoFailure(f"email domain {email_domain(email)!r} is not one of this connection's")
    return Asserted(email=email, next_path=pending.next_path, is_test=pending.is_test)


def _decode(saml_response: str) -> bytes:
    if not saml_response or len(saml_response) > MAX_RESPONSE_BYTES:
        raise SsoFailure("empty or oversized SAMLResponse")
    try:
        return base64.b64decode(saml_response, validate=True)
    except (binascii.Error, ValueError):
        raise SsoFailure("SAMLResponse is not base64") from None


def _parse(xml: bytes) -> Any:
    try:
        return ElementTree.fromstring(xml)
    except Exception:  # defusedxml refuses entities and DTDs; anything else is garbage
        raise SsoFailure("SAMLResponse is not XML") from None


def _check_algorithms(root: Any) -> None:
    # pysaml2 with xmlsec1 still verifies SHA-1 signatures; we accept only SHA-2.
    for element in root.iter(f"{{{_DSIG}}}SignatureMethod"):
        if element.get("Algorithm") not in _SIGNATURE_ALGORITHMS:
            raise SsoFailure(f"signature algorithm refused: {element.get('Algorithm')!r}")
    for element in root.iter(f"{{{_DSIG}}}DigestMethod"):
        if element.get("Algorithm") not in _DIGEST_ALGORITHMS:
            raise SsoFailure(f"digest algorithm refused: {element.get('Algorithm')!r}")


def _in_response_to(root: Any) -> str | None:
    value = root.get("InResponseTo")
    return value if value and len(value) <= 100 else None


def _not_on_or_after(response: object, now: datetime) -> datetime:
    # Keep the assertion id at least as long as the assertion could be valid.
    try:
        conditions = response.assertion.conditions  # type: ignore[attr-defined]
        return datetime.fromisoformat(conditions.not_on_or_after.replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        return now + timedelta(hours=1)


def _remember_assertion(assertion_id: str, until: datetime) -> None:
    db.session.execute(delete(SamlAssertion).where(SamlAssertion.expires_at < utcnow()))
    db.session.add(SamlAssertion(id=assertion_id, expires_at=until))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise SsoFailure("assertion seen before (replay)") from None


def _asserted_email(response: object) -> str | None:
    name_id = response.name_id  # type: ignore[attr-defined]
    candidates = []
    if name_id is not None and name_id.text:
        candidates.append(name_id.text)
    identity = response.get_identity() or {}  # type: ignore[attr-defined]
    for attribute in _EMAIL_ATTRIBUTES:
        candidates.extend(identity.get(attribute, []))
    for candidate in candidates:
        email = try_canonical_email(str(candidate))
        if email:
            return email
    return None
