"""What an identity provider signed in a SAML Response, and nothing else.

Signature wrapping works when the verifier and the reader look at different elements: the
verifier checks one signed element while the code that reads the identity finds another,
forged one. Two rules close that for good:

1. ``check_structure`` refuses every shape a wrapping attack needs before any signature is
   looked at: a DOCTYPE, a second or encrypted assertion, an assertion that is not a direct
   child of the Response, a signature anywhere but directly in the Response or its assertion,
   a signature whose one Reference is not its parent's ID, duplicate IDs, a Response
   signature after the assertion.
2. ``verify`` checks each signature with the certificates from the IdP's metadata (signxml)
   and returns the elements parsed from the very bytes that were digested. Everything the
   ACS reads about the person comes from those elements; the document as posted is never
   read again, except for the Response's own unsigned fields when only the assertion is signed.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

from cryptography import x509
from defusedxml import ElementTree
from lxml import etree
from signxml.algorithms import DigestAlgorithm
from signxml.algorithms import SignatureMethod
from signxml.exceptions import SignXMLException
from signxml.verifier import SignatureConfiguration
from signxml.verifier import XMLVerifier

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XML_NS = "http://www.w3.org/XML/1998/namespace"

RESPONSE = f"{{{SAMLP}}}Response"
ASSERTION = f"{{{SAML}}}Assertion"
ENCRYPTED_ASSERTION = f"{{{SAML}}}EncryptedAssertion"
SIGNATURE = f"{{{DS}}}Signature"

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"  # inclusive, some .NET IdPs
CANONICALIZATIONS = frozenset({EXC_C14N, C14N_10})
SIGNATURE_METHODS = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
    }
)
DIGEST_ALGORITHMS = frozenset(
    {DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}
)
SIGNATURE_METHOD_URIS = frozenset(method.value for method in SIGNATURE_METHODS)
DIGEST_ALGORITHM_URIS = frozenset(algorithm.value for algorithm in DIGEST_ALGORITHMS)
# Attribute names xmlsec1 and signxml treat as IDs, with or without a namespace prefix.
_ID_NAMES = frozenset({"ID", "Id", "id"})
# IDs are xs:ID, an NCName; anything else ("#x", " x") could resolve differently elsewhere.
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,199}")


class Refused(Exception):
    """A response that must not sign anyone in; the message is the reason, for the log only."""


@dataclass(frozen=True)
class Shape:
    """What the structural check found: the request answered and which elements are signed."""

    in_response_to: str | None
    response_signed: bool
    assertion_signed: bool


@dataclass(frozen=True)
class Verified:
    """The Response and its one assertion, each as far as a verified signature reaches.

    ``assertion`` always comes from signed bytes. ``response`` does too when
    ``response_signed``; otherwise it is the Response as posted, whose own fields (Status,
    Destination, InResponseTo) are then only a cross-check of what the assertion says.
    """

    response: Any
    response_signed: bool
    assertion: Any


def check_structure(xml: bytes) -> Shape:
    """Refuse every shape that lets a signature vouch for an element other than the one read."""
    root = _parse(xml)
    if root.tag != RESPONSE:
        raise Refused(f"the document is a {_local(root.tag)!r}, not a samlp:Response")
    parents = {child: parent for parent in root.iter() for child in parent}
    if any(True for _ in root.iter(ENCRYPTED_ASSERTION)):
        raise Refused("encrypted assertions are not accepted")
    assertions = list(root.iter(ASSERTION))
    if len(assertions) != 1:
        raise Refused(f"the response holds {len(assertions)} assertions, not exactly one")
    assertion = assertions[0]
    if parents[assertion] is not root:
        raise Refused("the assertion is not a direct child of the Response")
    _check_unique_ids(root)
    signed: dict[Any, Any] = {}
    for signature in root.iter(SIGNATURE):
        parent = parents[signature]
        if parent is not root and parent is not assertion:
            raise Refused(f"a signature sits inside {_local(parent.tag)!r}")
        if parent in signed:
            raise Refused(f"the {_local(parent.tag)} carries two signatures")
        _check_signature(signature, parent)
        signed[parent] = signature
    if not signed:
        raise Refused("neither the Response nor its assertion is signed")
    if root in signed:
        children = list(root)
        if children.index(signed[root]) > children.index(assertion):
            raise Refused("the Response signature comes after the assertion")
    in_response_to = root.get("InResponseTo")
    return Shape(
        in_response_to=in_response_to if in_response_to and len(in_response_to) <= 100 else None,
        response_signed=root in signed,
        assertion_signed=assertion in signed,
    )


def verify(xml: bytes, shape: Shape, certificates: Sequence[x509.Certificate]) -> Verified:
    """Check each signature against the IdP's certificates and return the signed elements."""
    response = None
    assertion = None
    if shape.response_signed:
        response = _verified_element(xml, "./", RESPONSE, certificates)
        inner = [child for child in response if child.tag == ASSERTION]
        if len(inner) != 1:
            raise Refused("the signed Response does not hold exactly one assertion")
        assertion = inner[0]
    if shape.assertion_signed:
        assertion = _verified_element(xml, f"./{ASSERTION}/", ASSERTION, certificates)
    if response is None:
        try:
            response = etree.fromstring(xml, parser=_parser())
        except etree.LxmlError:
            raise Refused("the Response cannot be parsed by the verifier") from None
    assert assertion is not None  # check_structure found at least one signature
    return Verified(response=response, response_signed=shape.response_signed, assertion=assertion)


def _parser() -> Any:
    # A new parser per call: an lxml parser object must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_pis=True
    )


def _parse(xml: bytes) -> Any:
    try:
        return ElementTree.fromstring(xml, forbid_dtd=True)
    except Exception:  # defusedxml refuses DTDs and entities; anything else is not XML
        raise Refused("SAMLResponse is not XML, or has a DOCTYPE") from None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _check_unique_ids(root: Any) -> None:
    seen: set[str] = set()
    for element in root.iter():
        for name, value in element.attrib.items():
            if _local(name) in _ID_NAMES or name == f"{{{XML_NS}}}id":
                if not _NCNAME.fullmatch(value):
                    raise Refused(f"the ID {value[:80]!r} is not an XML name")
                if value in seen:
                    raise Refused(f"the ID {value[:80]!r} occurs twice")
                seen.add(value)


def _check_signature(signature: Any, parent: Any) -> None:
    references = signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    if len(references) != 1:
        raise Refused(f"a signature has {len(references)} references, not one")
    parent_id = parent.get("ID")
    if not parent_id or references[0].get("URI") != f"#{parent_id}":
        raise Refused(f"the {_local(parent.tag)} signature does not reference its own ID")
    method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}CanonicalizationMethod")
    if method is None or method.get("Algorithm") not in CANONICALIZATIONS:
        raise Refused("signature canonicalization refused")
    algorithm = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
    if algorithm is None or algorithm.get("Algorithm") not in SIGNATURE_METHOD_URIS:
        raise Refused(f"signature algorithm refused: {_algorithm(algorithm)!r}")
    digest = references[0].find(f"{{{DS}}}DigestMethod")
    if digest is None or digest.get("Algorithm") not in DIGEST_ALGORITHM_URIS:
        raise Refused(f"digest algorithm refused: {_algorithm(digest)!r}")
    transforms = [
        t.get("Algorithm") for t in references[0].iterfind(f"{{{DS}}}Transforms/{{{DS}}}Transform")
    ]
    if ENVELOPED not in transforms or not set(transforms) <= {ENVELOPED, *CANONICALIZATIONS}:
        raise Refused(f"signature transforms refused: {transforms!r}")


def _algorithm(element: Any) -> str | None:
    return None if element is None else element.get("Algorithm")


def _verified_element(
    xml: bytes, location: str, tag: str, certificates: Sequence[x509.Certificate]
) -> Any:
    config = SignatureConfiguration(
        location=location,
        expect_references=1,
        signature_methods=SIGNATURE_METHODS,
        digest_algorithms=DIGEST_ALGORITHMS,
    )
    failure = "the IdP's metadata has no signing certificate"
    for certificate in certificates:
        # The metadata pins the key; the certificate's own dates carry no meaning in SAML.
        pinned = replace(config, verification_time=_within_validity(certificate))
        try:
            result = XMLVerifier().verify(xml, x509_cert=certificate, expect_config=pinned)
        except (SignXMLException, etree.LxmlError, ValueError, TypeError) as exc:
            # signxml also raises lxml's schema and syntax errors and plain ValueError or
            # TypeError on malformed signatures: every one of them means "not verified".
            failure = f"{type(exc).__name__}: {exc}"
            continue
        # One reference is expected, so signxml answers with one result, never a list.
        signed = None if isinstance(result, list) else result.signed_xml
        if signed is None or signed.tag != tag:
            raise Refused(f"the {_local(tag)} signature covers something else")
        return signed
    raise Refused(f"the {_local(tag)} signature does not verify: {failure[:200]}")


def _within_validity(certificate: x509.Certificate) -> datetime.datetime:
    now = datetime.datetime.now(datetime.UTC)
    return min(max(now, certificate.not_valid_before_utc), certificate.not_valid_after_utc)
