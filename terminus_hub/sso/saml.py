"""SAML for one account: its SP metadata, AuthnRequests out, and checked responses in.

pysaml2 makes the SP metadata and the signed AuthnRequest. Responses are checked by our own
code over signxml (``signed`` then ``assertion``), because pysaml2 reads the identity from a
re-parse of the whole document while xmlsec1 verifies whichever signature it meets first:
the gap signature wrapping lives in. What a response must also answer to is kept here: a
request this app sent for this account, from this browser (consumed atomically, so a second
post fails on any instance), an assertion id accepted once, an email in the connection's
domains.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from flask import current_app
from flask import url_for
from saml2 import BINDING_HTTP_POST
from saml2 import BINDING_HTTP_REDIRECT
from saml2 import md
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.extension import algsupport
from saml2.metadata import entity_descriptor
from saml2.metadata import metadata_tostring_fix
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
from saml2.xmldsig import DIGEST_SHA256
from saml2.xmldsig import SIG_RSA_SHA256
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from terminus_hub.core.idp_metadata import IdpInfo
from terminus_hub.core.idp_metadata import MetadataError
from terminus_hub.core.idp_metadata import inspect_idp_metadata
from terminus_hub.core.sso_connections import email_domain
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import SamlAssertion
from terminus_hub.models import SamlRequest
from terminus_hub.models import SsoConnection
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.sso import assertion
from terminus_hub.sso import signed
from terminus_hub.sso.credentials import ensure_keypair

log = logging.getLogger(__name__)

REQUEST_LIFETIME = timedelta(minutes=10)
MAX_RESPONSE_BYTES = 256 * 1024
# The cookie that ties a pending sign-in to the browser that started it (login CSRF).
BINDING_COOKIE = "thub_sso"
_BINDINGS_KEPT = 4  # sign-ins one browser may have under way at once (tabs)
_CLIENTS: OrderedDict[tuple[str, int, str], Saml2Client] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
_CLIENTS_MAX = 256


class SsoFailure(Exception):
    """A response that must not sign anyone in; the message is the reason, for the log only."""


class MetadataUnusable(Exception):
    """The stored IdP metadata can no longer serve sign-ins; the message says why."""


class MetadataExpired(MetadataUnusable):
    """The connection's IdP metadata is past its validUntil; the message says what to do."""


@dataclass(frozen=True)
class Asserted:
    email: str
    request_id: str
    next_path: str | None
    is_test: bool
    started_by_id: str | None
    # When the IdP last checked the person (AuthnInstant); None when it did not say.
    authenticated_at: datetime | None = None


def _base_url() -> str:
    return str(current_app.config["TERMINUS_BASE_URL"])


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
                    # Asked of the IdP in our metadata; a signed Response is accepted too.
                    "want_assertions_signed": True,
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
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
    """Return this account's SP metadata, advertising only the algorithms we accept."""
    descriptor = entity_descriptor(_config(account, None))
    descriptor.extensions = md.Extensions()
    for digest in sorted(signed.DIGEST_ALGORITHM_URIS):
        descriptor.extensions.add_extension_element(algsupport.DigestMethod(algorithm=digest))
    for method in sorted(signed.SIGNATURE_METHOD_URIS):
        descriptor.extensions.add_extension_element(algsupport.SigningMethod(algorithm=method))
    xml = metadata_tostring_fix(descriptor, None)
    return xml.decode("utf-8") if isinstance(xml, bytes) else xml


def current_idp(connection: SsoConnection) -> IdpInfo:
    """Return the connection's IdP, or raise MetadataUnusable (MetadataExpired if it expired).

    Metadata stored before a rule was tightened (an http:// sign-on URL) fails here too.
    """
    try:
        idp = inspect_idp_metadata(connection.idp_metadata_xml)
    except MetadataError as exc:
        raise MetadataUnusable(str(exc)) from None
    if idp.expired(utcnow()):
        raise MetadataExpired(idp.expiry_message())
    return idp


def start_login(
    account: Account,
    connection: SsoConnection,
    next_path: str | None,
    started_by: User | None = None,
    force_authn: bool = False,
) -> tuple[str, str]:
    """Record a signed AuthnRequest; return the IdP URL to redirect to and the request id.

    ``started_by`` makes it a test sign-in by that owner or admin (from the settings page).
    ``force_authn`` asks the IdP to check the person again rather than reuse its own session
    (re-authentication before a sensitive action).
    """
    idp = current_idp(connection)
    request_id, info = _client(account, connection).prepare_for_authenticate(
        entityid=idp.entity_id,
        binding=BINDING_HTTP_REDIRECT,
        sigalg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
        nameid_format=NAMEID_FORMAT_EMAILADDRESS,
        force_authn="true" if force_authn else None,
    )
    db.session.add(
        SamlRequest(
            id=request_id,
            account_id=account.id,
            next_path=next_path,
            is_test=started_by is not None,
            started_by_id=started_by.id if started_by is not None else None,
            force_authn=force_authn,
            expires_at=utcnow() + REQUEST_LIFETIME,
        )
    )
    db.session.flush()
    return dict(info["headers"])["Location"], request_id


def bind_to_browser(cookie: str | None, request_id: str) -> str:
    """Return the binding cookie's new value: this request's hash added to the latest few."""
    kept = [h for h in (cookie or "").split(".") if len(h) == 32][-(_BINDINGS_KEPT - 1) :]
    return ".".join([*kept, _binding(request_id)])


def release_binding(cookie: str | None, request_id: str | None) -> str:
    """Return the binding cookie's value without this request (empty when none is left)."""
    mine = _binding(request_id) if request_id else ""
    return ".".join(h for h in (cookie or "").split(".") if len(h) == 32 and h != mine)


def _binding(request_id: str) -> str:
    return hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:32]


def finish_login(
    account: Account, connection: SsoConnection, saml_response: str, binding: str | None
) -> Asserted:
    """Check an IdP's response end to end and return who it asserts, or raise SsoFailure.

    ``binding`` is the browser's binding cookie. Raises MetadataExpired before any signature
    is checked when the connection's metadata has expired.
    """
    xml = _decode(saml_response)
    now = utcnow()
    try:
        shape = signed.check_structure(xml)
        request_id = shape.in_response_to
        pending = db.session.get(SamlRequest, request_id) if request_id else None
        if pending is None or pending.account_id != account.id or pending.expires_at < now:
            raise signed.Refused(f"no pending request {request_id!r} for this account")
        if _binding(pending.id) not in (binding or "").split("."):
            raise signed.Refused("the sign-in was started in another browser (login CSRF)")
        idp = current_idp(connection)
        verified = signed.verify(xml, shape, idp.certificates)
        entity_id, acs_url = sp_urls(account)
        expected = assertion.Expected(
            idp_entity_id=idp.entity_id,
            sp_entity_id=entity_id,
            acs_url=acs_url,
            request_id=pending.id,
            requested_at=pending.expires_at - REQUEST_LIFETIME,
            now=now,
            force_authn=pending.force_authn,
        )
        identity = assertion.read(verified, expected)
    except signed.Refused as exc:
        raise SsoFailure(str(exc)) from None
    # Consume the request atomically: of two posts of one response, one wins.
    consumed = db.session.execute(
        delete(SamlRequest).where(
            SamlRequest.id == pending.id, SamlRequest.account_id == account.id
        )
    )
    if affected(consumed) != 1:
        db.session.rollback()
        raise SsoFailure("request already answered (replay)")
    _remember_assertion(identity.assertion_id, identity.remember_until)
    if email_domain(identity.email) not in {d.domain for d in connection.domains}:
        domain = email_domain(identity.email)
        raise SsoFailure(f"email domain {domain!r} is not one of this connection's")
    return Asserted(
        email=identity.email,
        request_id=pending.id,
        next_path=pending.next_path,
        is_test=pending.is_test,
        started_by_id=pending.started_by_id,
        authenticated_at=identity.authenticated_at,
    )


def _decode(saml_response: str) -> bytes:
    if not saml_response or len(saml_response) > MAX_RESPONSE_BYTES:
        raise SsoFailure("empty or oversized SAMLResponse")
    try:
        return base64.b64decode(saml_response, validate=True)
    except (binascii.Error, ValueError):
        raise SsoFailure("SAMLResponse is not base64") from None


def _remember_assertion(assertion_id: str, until: datetime) -> None:
    # A deliberate commit inside the service: the consumed request and the assertion id must
    # be on record even when the sign-in is refused a moment later, or it could be replayed.
    db.session.execute(delete(SamlAssertion).where(SamlAssertion.expires_at < utcnow()))
    db.session.add(SamlAssertion(id=assertion_id, expires_at=until))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise SsoFailure("assertion seen before (replay)") from None
