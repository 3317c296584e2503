"""An identity provider written from the specifications, independent of pysaml2 and signxml.

It signs with lxml's canonicalization and cryptography's RSA, so a test that passes here does
not merely agree with the verifier the app uses. ``Signer.response`` builds a SAML Response
the way a named IdP shapes it (namespace prefixes, pretty-printing, where the signature goes,
which element is signed); the wrapping tests then rearrange genuinely signed elements.

    signer = Signer("https://idp.vendor.example/")
    xml = signer.response(request_id, acs_url=..., audience=..., email="ana@acme.example")
    client.post(acs, data={"SAMLResponse": encode(xml)})
"""

from __future__ import annotations

import base64
import datetime
import secrets
import textwrap
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SENDER_VOUCHES = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"
URI_FORMAT = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
BASIC_FORMAT = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
# SHA-1 only so that tests can show it is refused.
_HASHES = {RSA_SHA256: hashes.SHA256(), RSA_SHA1: hashes.SHA1()}  # noqa: S303
_DIGESTS = {SHA256: hashes.SHA256(), SHA1: hashes.SHA1()}  # noqa: S303


def saml_time(moment: datetime.datetime, fraction_digits: int = 0) -> str:
    """Format a moment as SAML does, optionally with Entra's seven fractional digits."""
    text = moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction_digits:
        text += "." + f"{moment.microsecond:06d}{'0' * fraction_digits}"[:fraction_digits]
    return text + "Z"


def new_id() -> str:
    return "_" + secrets.token_hex(16)


def encode(xml: str | bytes) -> str:
    """The SAMLResponse form value for this XML."""
    return base64.b64encode(xml.encode() if isinstance(xml, str) else xml).decode("ascii")


def request_id_from(location: str) -> str:
    """The ID of the AuthnRequest in an HTTP-Redirect binding URL."""
    saml_request = parse_qs(urlsplit(location).query)["SAMLRequest"][0]
    xml = zlib.decompress(base64.b64decode(saml_request), -15)
    return etree.fromstring(xml).get("ID")


def authn_request_from(location: str) -> Any:
    """The AuthnRequest element in an HTTP-Redirect binding URL."""
    saml_request = parse_qs(urlsplit(location).query)["SAMLRequest"][0]
    return etree.fromstring(zlib.decompress(base64.b64decode(saml_request), -15))


@dataclass
class Shape:
    """How one IdP writes a response; every field has the common default."""

    samlp: str | None = "samlp"  # prefix of the protocol namespace (None: default namespace)
    saml: str | None = "saml"  # prefix of the assertion namespace (None: default namespace)
    ds: str = "ds"
    pretty: bool = False  # newlines and indentation inside the signed content
    sign_response: bool = False
    sign_assertion: bool = True
    assertion_signature_at: str = "after_issuer"  # or "end" (some IdPs), both are verified
    c14n: str = EXC_C14N
    fraction_digits: int = 0
    response_issuer: bool = True
    name_id_format: str | None = EMAIL_FORMAT
    name_id: str | None = None  # default: the email
    attributes: dict[str, list[str]] | None = None  # default: {"email": [email]}
    attribute_name_format: str | None = BASIC_FORMAT
    attribute_statements: int = 1  # the attributes split over this many statements
    audience_restrictions: int = 1  # each names us (some IdPs repeat it)
    extra_audiences: list[str] = field(default_factory=list)
    key_info: bool = True


class Signer:
    """An IdP with its own RSA key that writes and signs responses and its metadata."""

    def __init__(self, entity_id: str = "https://idp.independent.example/") -> None:
        self.entity_id = entity_id
        self.sso_url = entity_id.rstrip("/") + "/sso"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "independent test IdP")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_b64(self) -> str:
        return base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def metadata(self, *, valid_until: datetime.datetime | None = None) -> str:
        """A plain IdP EntityDescriptor with this key and a redirect SSO URL."""
        until = f' validUntil="{saml_time(valid_until)}"' if valid_until else ""
        return (
            f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" '
            f'entityID="{self.entity_id}"{until}>'
            f'<md:IDPSSODescriptor protocolSupportEnumeration="{SAMLP}">'
            '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
            f"{self.cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            f'<md:SingleSignOnService Binding="{REDIRECT}" Location="{self.sso_url}"/>'
            "</md:IDPSSODescriptor></md:EntityDescriptor>"
        )

    # -- responses ------------------------------------------------------------------------------

    def response(
        self,
        request_id: str | None,
        *,
        acs_url: str,
        audience: str,
        email: str,
        shape: Shape | None = None,
        issued: datetime.datetime | None = None,
        lifetime: datetime.timedelta = datetime.timedelta(minutes=5),
        method: str = BEARER,
        scd_not_on_or_after: bool = True,
        conditions: bool = True,
        issuer: str | None = None,
        edit: Callable[[Any], None] | None = None,
    ) -> bytes:
        """A response for ``email`` answering ``request_id``, signed as ``shape`` says.

        ``edit`` changes the Response element before it is signed (the IdP itself wrote it so).
        """
        shape = shape or Shape()
        issued = issued or datetime.datetime.now(datetime.UTC)
        root = etree.fromstring(
            self._response_xml(
                request_id,
                acs_url=acs_url,
                audience=audience,
                email=email,
                shape=shape,
                issued=issued,
                until=issued + lifetime,
                method=method,
                scd_not_on_or_after=scd_not_on_or_after,
                conditions=conditions,
                issuer=issuer or self.entity_id,
            ).encode()
        )
        if edit is not None:
            edit(root)
        assertion = root.find(f"{{{SAML}}}Assertion")
        if shape.sign_assertion:
            self.sign(assertion, shape, at=shape.assertion_signature_at)
        if shape.sign_response:
            self.sign(root, shape, at="after_issuer")
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def assertion_element(self, request_id: str | None, **kwargs: Any) -> Any:
        """A signed assertion on its own (for nesting it inside other documents)."""
        root = etree.fromstring(self.response(request_id, **kwargs))
        return root.find(f"{{{SAML}}}Assertion")

    def sign(
        self,
        element: Any,
        shape: Shape | None = None,
        *,
        at: str = "after_issuer",
        sig_alg: str = RSA_SHA256,
        digest_alg: str = SHA256,
    ) -> Any:
        """Sign ``element`` with an enveloped signature over its ID; return the Signature."""
        shape = shape or Shape()
        ds = shape.ds
        reference_c14n = shape.c14n
        digest = _digest(_c14n(element, reference_c14n), digest_alg)
        signature = etree.Element(f"{{{DS}}}Signature", nsmap={ds: DS})
        signed_info = etree.SubElement(signature, f"{{{DS}}}SignedInfo")
        etree.SubElement(signed_info, f"{{{DS}}}CanonicalizationMethod", Algorithm=shape.c14n)
        etree.SubElement(signed_info, f"{{{DS}}}SignatureMethod", Algorithm=sig_alg)
        reference = etree.SubElement(signed_info, f"{{{DS}}}Reference", URI="#" + element.get("ID"))
        transforms = etree.SubElement(reference, f"{{{DS}}}Transforms")
        etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=ENVELOPED)
        etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=reference_c14n)
        etree.SubElement(reference, f"{{{DS}}}DigestMethod", Algorithm=digest_alg)
        etree.SubElement(reference, f"{{{DS}}}DigestValue").text = digest
        value = etree.SubElement(signature, f"{{{DS}}}SignatureValue")
        if shape.key_info:
            key_info = etree.SubElement(signature, f"{{{DS}}}KeyInfo")
            x509_data = etree.SubElement(key_info, f"{{{DS}}}X509Data")
            etree.SubElement(x509_data, f"{{{DS}}}X509Certificate").text = self.cert_b64
        if at == "end":
            element.append(signature)
        else:  # right after the Issuer, where the schema puts it
            issuer = element.find(f"{{{SAML}}}Issuer")
            element.insert(0 if issuer is None else list(element).index(issuer) + 1, signature)
        raw = self.key.sign(_c14n(signed_info, shape.c14n), padding.PKCS1v15(), _HASHES[sig_alg])
        value.text = base64.b64encode(raw).decode()
        return signature

    def _response_xml(
        self,
        request_id: str | None,
        *,
        acs_url: str,
        audience: str,
        email: str,
        shape: Shape,
        issued: datetime.datetime,
        until: datetime.datetime,
        method: str,
        scd_not_on_or_after: bool,
        conditions: bool,
        issuer: str,
    ) -> str:
        p = f"{shape.samlp}:" if shape.samlp else ""
        a = f"{shape.saml}:" if shape.saml else ""
        samlp_ns = f'xmlns{":" + shape.samlp if shape.samlp else ""}="{SAMLP}"'
        saml_ns = f'xmlns{":" + shape.saml if shape.saml else ""}="{SAML}"'
        t = lambda m: saml_time(m, shape.fraction_digits)  # noqa: E731
        answer = f' InResponseTo="{request_id}"' if request_id else ""
        name_id_format = f' Format="{shape.name_id_format}"' if shape.name_id_format else ""
        name_id = shape.name_id if shape.name_id is not None else email
        scd_until = f' NotOnOrAfter="{t(until)}"' if scd_not_on_or_after else ""
        attributes = shape.attributes if shape.attributes is not None else {"email": [email]}
        statements = _attribute_statements(a, attributes, shape)
        audiences = "".join(
            f"<{a}AudienceRestriction><{a}Audience>{audience}</{a}Audience>"
            + "".join(f"<{a}Audience>{x}</{a}Audience>" for x in shape.extra_audiences)
            + f"</{a}AudienceRestriction>"
            for _ in range(shape.audience_restrictions)
        )
        conditions_xml = (
            f'<{a}Conditions NotBefore="{t(issued)}" NotOnOrAfter="{t(until)}">'
            f"{audiences}</{a}Conditions>"
            if conditions
            else ""
        )
        response_issuer = (
            f"<{a}Issuer {saml_ns}>{issuer}</{a}Issuer>" if shape.response_issuer else ""
        )
        xml = (
            f'<{p}Response {samlp_ns} ID="{new_id()}" Version="2.0" IssueInstant="{t(issued)}" '
            f'Destination="{acs_url}"{answer}>'
            f"{response_issuer}"
            f'<{p}Status><{p}StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
            f"</{p}Status>"
            f'<{a}Assertion {saml_ns} ID="{new_id()}" Version="2.0" IssueInstant="{t(issued)}">'
            f"<{a}Issuer>{issuer}</{a}Issuer>"
            f"<{a}Subject><{a}NameID{name_id_format}>{name_id}</{a}NameID>"
            f'<{a}SubjectConfirmation Method="{method}">'
            f'<{a}SubjectConfirmationData{answer}{scd_until} Recipient="{acs_url}"/>'
            f"</{a}SubjectConfirmation></{a}Subject>"
            f"{conditions_xml}"
            f'<{a}AuthnStatement AuthnInstant="{t(issued)}" SessionIndex="{new_id()}">'
            f"<{a}AuthnContext><{a}AuthnContextClassRef>"
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            f"</{a}AuthnContextClassRef></{a}AuthnContext></{a}AuthnStatement>"
            f"{statements}"
            f"</{a}Assertion></{p}Response>"
        )
        if shape.pretty:
            root = etree.fromstring(xml.encode())
            etree.indent(root, space="  ")
            xml = etree.tostring(root).decode()
        return xml


def _attribute_statements(a: str, attributes: dict[str, list[str]], shape: Shape) -> str:
    if not attributes:
        return ""
    name_format = shape.attribute_name_format
    name_format = f' NameFormat="{name_format}"' if name_format else ""
    items = [
        f'<{a}Attribute Name="{name}"{name_format}>'
        + "".join(f"<{a}AttributeValue>{v}</{a}AttributeValue>" for v in values)
        + f"</{a}Attribute>"
        for name, values in attributes.items()
    ]
    groups = max(1, min(shape.attribute_statements, len(items)))
    return "".join(
        f"<{a}AttributeStatement>{''.join(items[i::groups])}</{a}AttributeStatement>"
        for i in range(groups)
    )


def _c14n(element: Any, algorithm: str) -> bytes:
    """Canonicalize ``element`` in its document, as the enveloped-signature transform sees it."""
    copy = etree.fromstring(etree.tostring(element))
    for signature in copy.findall(f"{{{DS}}}Signature"):
        copy.remove(signature)
    # Canonicalize the element in its own document context: exclusive c14n carries only the
    # namespaces it uses, inclusive c14n the ones in scope, which tostring() already copied.
    return etree.tostring(copy, method="c14n", exclusive=algorithm == EXC_C14N, with_comments=False)


def _digest(data: bytes, algorithm: str) -> str:
    digest = hashes.Hash(_DIGESTS[algorithm])
    digest.update(data)
    return base64.b64encode(digest.finalize()).decode()


def pem_lines(b64: str) -> str:
    return "\n".join(textwrap.wrap(b64, 64))
