"""Read and check an identity provider's SAML metadata before it is stored."""

from __future__ import annotations

import base64
import textwrap
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from cryptography import x509
from saml2 import BINDING_HTTP_REDIRECT
from saml2.attribute_converter import ac_factory
from saml2.config import SPConfig
from saml2.mdstore import MetadataStore
from saml2.s_utils import UnsupportedBinding

MAX_METADATA_BYTES = 512 * 1024

NOT_METADATA = "This is not SAML metadata (an EntityDescriptor in XML)."
NOT_ONE_IDP = "The metadata must describe exactly one identity provider."
NO_SIGNING_CERT = "The metadata has no signing certificate for the identity provider."
NO_REDIRECT_SSO = "The metadata has no single sign-on URL with the HTTP-Redirect binding."
TOO_LARGE = "The metadata file is too large."
BAD_CERT = "Paste the certificate in PEM form (-----BEGIN CERTIFICATE----- …)."


class MetadataError(ValueError):
    """Metadata that cannot serve as an account's identity provider."""


@dataclass(frozen=True)
class IdpInfo:
    entity_id: str
    sso_url: str


def inspect_idp_metadata(xml: str) -> IdpInfo:
    """Return the IdP's entity id and redirect SSO URL, or raise MetadataError saying why."""
    if len(xml.encode("utf-8")) > MAX_METADATA_BYTES:
        raise MetadataError(TOO_LARGE)
    store = MetadataStore(ac_factory(), SPConfig(), check_validity=False)
    try:
        store.load("inline", xml)
    except Exception:  # pysaml2 raises many kinds for bad XML
        raise MetadataError(NOT_METADATA) from None
    idps = list(store.identity_providers())
    if len(idps) != 1:
        raise MetadataError(NOT_ONE_IDP if idps or store.keys() else NOT_METADATA)
    entity_id = idps[0]
    if not store.certs(entity_id, "idpsso", use="signing"):
        raise MetadataError(NO_SIGNING_CERT)
    try:
        services = store.single_sign_on_service(entity_id, BINDING_HTTP_REDIRECT)
    except UnsupportedBinding:
        services = []
    if not services:
        raise MetadataError(NO_REDIRECT_SSO)
    return IdpInfo(entity_id=entity_id, sso_url=services[0]["location"])


def build_idp_metadata(entity_id: str, sso_url: str, certificate_pem: str) -> str:
    """Turn an entity id, a redirect SSO URL and a signing certificate into IdP metadata."""
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
