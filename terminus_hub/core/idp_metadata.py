"""Read and check an identity provider's SAML metadata before it is stored."""

from __future__ import annotations

import base64
import ipaddress
import textwrap
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from defusedxml import ElementTree

from terminus_hub.core.saml_times import parse_time

# pysaml2 (with xmlschema, about 20 MiB) and cryptography are imported by the functions that
# use them: a worker that never reads an identity provider's metadata never loads them.
if TYPE_CHECKING:
    from cryptography import x509

MAX_METADATA_BYTES = 512 * 1024

NOT_METADATA = "This is not SAML metadata (an EntityDescriptor in XML)."
NOT_ONE_IDP = "The metadata must describe exactly one identity provider."
NO_SIGNING_CERT = "The metadata has no signing certificate for the identity provider."
NO_REDIRECT_SSO = "The metadata has no single sign-on URL with the HTTP-Redirect binding."
TOO_LARGE = "The metadata file is too large."
INSECURE_SSO_URL = (
    "The single sign-on URL must start with https:// (plain http:// only for a development "
    "identity provider on this machine: localhost, 127.0.0.1 or ::1)."
)
BAD_CERT = "Paste the certificate in PEM form (-----BEGIN CERTIFICATE----- …)."
NOT_UTF8 = "The metadata file must be XML text (UTF-8)."
EXPIRED = (
    "This metadata expired on {date} (its validUntil). "
    "Download fresh metadata from your identity provider."
)
_MD = "urn:oasis:names:tc:SAML:2.0:metadata"


class MetadataError(ValueError):
    """Metadata that cannot serve as an account's identity provider."""


@dataclass(frozen=True)
class IdpInfo:
    entity_id: str
    sso_url: str
    # Every signing certificate the metadata lists (two while an IdP rolls its key over).
    certificates: tuple[x509.Certificate, ...]
    valid_until: datetime | None

    def expired(self, now: datetime) -> bool:
        """Say whether the metadata's validUntil has passed."""
        return self.valid_until is not None and self.valid_until <= now

    def expiry_message(self) -> str:
        """Say when the metadata expired and what to do about it."""
        date = self.valid_until.strftime("%Y-%m-%d %H:%M UTC") if self.valid_until else "?"
        return EXPIRED.format(date=date)


def decode_metadata(raw: bytes) -> str:
    """Return uploaded metadata as text (a UTF-8 byte order mark is dropped) or raise."""
    if len(raw) > MAX_METADATA_BYTES:
        raise MetadataError(TOO_LARGE)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MetadataError(NOT_UTF8) from None


def inspect_idp_metadata(xml: str) -> IdpInfo:
    """Return the IdP's entity id, redirect SSO URL, certificates and expiry, or raise why."""
    xml = xml.removeprefix("\ufeff")
    if len(xml.encode("utf-8")) > MAX_METADATA_BYTES:
        raise MetadataError(TOO_LARGE)
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.attribute_converter import ac_factory
    from saml2.config import SPConfig
    from saml2.mdstore import InMemoryMetaData
    from saml2.mdstore import MetadataStore
    from saml2.s_utils import UnsupportedBinding

    store = MetadataStore(ac_factory(), SPConfig(), check_validity=False)
    # MetadataStore.load("inline") drops the store's check_validity, so expired metadata
    # would vanish; expiry is ours to report (IdpInfo.expired), so load it ourselves.
    inline = InMemoryMetaData(store.attrc, xml, check_validity=False)
    try:
        inline.load()
        store.metadata["inline"] = inline
    except Exception:  # pysaml2 raises many kinds for bad XML
        raise MetadataError(NOT_METADATA) from None
    idps = list(store.identity_providers())
    if len(idps) != 1:
        raise MetadataError(NOT_ONE_IDP if idps or store.keys() else NOT_METADATA)
    entity_id = idps[0]
    certificates = _certificates(store.certs(entity_id, "idpsso", use="signing"))
    if not certificates:
        raise MetadataError(NO_SIGNING_CERT)
    try:
        services = store.single_sign_on_service(entity_id, BINDING_HTTP_REDIRECT)
    except UnsupportedBinding:
        services = []
    if not services:
        raise MetadataError(NO_REDIRECT_SSO)
    sso_url = services[0]["location"]
    if not secure_sso_url(sso_url):
        raise MetadataError(INSECURE_SSO_URL)
    return IdpInfo(
        entity_id=entity_id,
        sso_url=sso_url,
        certificates=certificates,
        valid_until=_valid_until(xml),
    )


def secure_sso_url(url: str) -> bool:
    """Say whether people may be sent to this IdP URL: https, or http on a loopback host."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme == "https" and host:
        return True
    if parts.scheme != "http":
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _certificates(listed: list[tuple[str | None, str]]) -> tuple[x509.Certificate, ...]:
    from cryptography import x509

    certificates = []
    for _name, body in listed:
        try:
            certificates.append(x509.load_der_x509_certificate(base64.b64decode(body)))
        except ValueError:
            raise MetadataError(BAD_CERT) from None
    return tuple(certificates)


def _valid_until(xml: str) -> datetime | None:
    """Return the earliest validUntil of the metadata's root and entity descriptors."""
    root: Any = ElementTree.fromstring(xml.encode("utf-8"), forbid_dtd=True)
    elements = [root, *root.iter(f"{{{_MD}}}EntityDescriptor")]
    moments = []
    for element in elements:
        value = (element.get("validUntil") or "").strip()
        if value:
            try:
                moments.append(parse_time(value))
            except ValueError:
                raise MetadataError(NOT_METADATA) from None
    return min(moments) if moments else None


def build_idp_metadata(entity_id: str, sso_url: str, certificate_pem: str) -> str:
    """Turn an entity id, a redirect SSO URL and a signing certificate into IdP metadata."""
    from cryptography import x509
    from saml2 import BINDING_HTTP_REDIRECT

    body = "".join(
        line.strip()
        for line in certificate_pem.strip().splitlines()
        if line.strip() and "CERTIFICATE" not in line
    )
    try:
        der = base64.b64decode(body, validate=True)
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise MetadataError(BAD_CERT) from None
    cert = "\n".join(textwrap.wrap(body, 64))
    xml = (
        '<?xml version="1.0"?>\n'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(entity_id)}>\n'
        '  <md:IDPSSODescriptor WantAuthnRequestsSigned="true" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\n'
        '    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n'
        f"{cert}\n"
        "    </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n"
        f'    <md:SingleSignOnService Binding="{BINDING_HTTP_REDIRECT}" '
        f"Location={quoteattr(sso_url)}/>\n"
        "  </md:IDPSSODescriptor>\n"
        "</md:EntityDescriptor>\n"
    )
    inspect_idp_metadata(xml)
    return xml
