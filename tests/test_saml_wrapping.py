"""XML signature wrapping at the ACS: every shape signs nobody in.

The responses are signed by ``tests.saml_signer`` (lxml canonicalization and cryptography's
RSA, neither pysaml2 nor signxml). Each case starts from a genuine response the IdP signed
for Eve, a real member, and rearranges it so that a forged assertion for the account's owner
sits where a careless reader would look, while the genuine signature still verifies somewhere
in the document: XSW1–XSW8 of Somorovsky et al. ("On Breaking SAML", 2012), and the variants
that opened this product before (a genuine assertion in Advice or SubjectConfirmationData of a
forged one, and a DOCTYPE that declares an ID on the IdP's signed metadata).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from lxml import etree

from terminus_hub.sso import signed
from tests.saml_signer import DS
from tests.saml_signer import ENVELOPED
from tests.saml_signer import SAML
from tests.saml_signer import SAMLP
from tests.saml_signer import Shape
from tests.saml_signer import Signer
from tests.saml_signer import new_id
from tests.sso_helpers import DOMAIN
from tests.sso_helpers import OWNER
from tests.sso_helpers import Sso
from tests.sso_helpers import assert_refused
from tests.sso_helpers import signed_in_emails

EVE = f"eve@{DOMAIN}"
A = f"{{{SAML}}}"
SIG = f"{{{DS}}}Signature"


def _forge(assertion: Any) -> Any:
    """A copy of an assertion, unsigned, with a new ID, naming the owner instead."""
    forged = copy.deepcopy(assertion)
    for signature in forged.findall(SIG):
        forged.remove(signature)
    forged.set("ID", new_id())
    forged.find(f"{A}Subject/{A}NameID").text = OWNER
    for value in forged.iter(f"{A}AttributeValue"):
        value.text = OWNER
    return forged


def _unsigned(element: Any) -> Any:
    copied = copy.deepcopy(element)
    for signature in copied.findall(SIG):
        copied.remove(signature)
    return copied


def _object(signature: Any) -> Any:
    return etree.SubElement(signature, f"{{{DS}}}Object")


def _fake_signature(element_id: str) -> Any:
    """A Signature that names the forged element but is not a real signature of it."""
    signature = etree.Element(SIG, nsmap={"ds": DS})
    info = etree.SubElement(signature, f"{{{DS}}}SignedInfo")
    etree.SubElement(info, f"{{{DS}}}CanonicalizationMethod", Algorithm=Shape().c14n)
    etree.SubElement(
        info,
        f"{{{DS}}}SignatureMethod",
        Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    )
    reference = etree.SubElement(info, f"{{{DS}}}Reference", URI=f"#{element_id}")
    transforms = etree.SubElement(reference, f"{{{DS}}}Transforms")
    for algorithm in (ENVELOPED, Shape().c14n):
        etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=algorithm)
    etree.SubElement(
        reference, f"{{{DS}}}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"
    )
    etree.SubElement(reference, f"{{{DS}}}DigestValue").text = "AAAA"
    etree.SubElement(signature, f"{{{DS}}}SignatureValue").text = "AAAA"
    return signature


# Each case takes the genuine signed response (as an lxml root) and returns the attack.
Wrap = Callable[[Any, Signer], Any]


def xsw1(root: Any, _: Signer) -> Any:
    """Response signature: a forged Response around it, the original inside its Signature."""
    evil = copy.deepcopy(root)
    evil.set("ID", new_id())
    old = evil.find(f"{A}Assertion")
    evil.replace(old, _forge(old))
    _object(evil.find(SIG)).append(_unsigned(root))
    return evil


def xsw2(root: Any, _: Signer) -> Any:
    """Response signature: the original Response beside its (detached) Signature."""
    evil = copy.deepcopy(root)
    evil.set("ID", new_id())
    old = evil.find(f"{A}Assertion")
    evil.replace(old, _forge(old))
    signature = evil.find(SIG)
    evil.insert(list(evil).index(signature), _unsigned(root))
    return evil


def xsw3(root: Any, _: Signer) -> Any:
    """Assertion signature: a forged assertion before the signed one."""
    signed = root.find(f"{A}Assertion")
    root.insert(list(root).index(signed), _forge(signed))
    return root


def xsw4(root: Any, _: Signer) -> Any:
    """Assertion signature: a forged assertion wrapping the signed one."""
    signed = root.find(f"{A}Assertion")
    forged = _forge(signed)
    root.replace(signed, forged)
    forged.append(signed)
    return root


def xsw5(root: Any, _: Signer) -> Any:
    """Assertion signature kept in the forged assertion; the original, unsigned, at the end."""
    signed = root.find(f"{A}Assertion")
    forged = _forge(signed)
    forged.insert(1, copy.deepcopy(signed.find(SIG)))
    root.replace(signed, forged)
    root.append(_unsigned(signed))
    return root


def xsw6(root: Any, _: Signer) -> Any:
    """Assertion signature in the forged assertion, the original inside that Signature."""
    signed = root.find(f"{A}Assertion")
    forged = _forge(signed)
    signature = copy.deepcopy(signed.find(SIG))
    forged.insert(1, signature)
    _object(signature).append(_unsigned(signed))
    root.replace(signed, forged)
    return root


def xsw7(root: Any, _: Signer) -> Any:
    """The signed assertion hidden in Extensions; the forged one where it was."""
    signed = root.find(f"{A}Assertion")
    root.replace(signed, _forge(signed))
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    root.insert(1, extensions)
    extensions.append(signed)
    return root


def xsw8(root: Any, _: Signer) -> Any:
    """The forged assertion carries the Signature; the original, unsigned, in its Object."""
    signed = root.find(f"{A}Assertion")
    forged = _forge(signed)
    signature = copy.deepcopy(signed.find(SIG))
    _object(signature).append(_unsigned(signed))
    forged.insert(1, signature)
    root.replace(signed, forged)
    return root


def genuine_in_advice(root: Any, _: Signer) -> Any:
    """A forged assertion with the genuine one in its Advice, before its own fake Signature."""
    signed = root.find(f"{A}Assertion")
    forged = _forge(signed)
    advice = etree.Element(f"{A}Advice")
    advice.append(copy.deepcopy(signed))
    forged.find(f"{A}Issuer").addnext(advice)
    advice.addnext(_fake_signature(forged.get("ID")))
    root.replace(signed, forged)
    return root


def genuine_in_subject_confirmation_data(root: Any, _: Signer) -> Any:
    """The genuine assertion inside the forged one's SubjectConfirmationData."""
    signed = root.find(f"{A}Assertion")
    forged = _forge(signed)
    data = forged.find(f"{A}Subject/{A}SubjectConfirmation/{A}SubjectConfirmationData")
    data.append(copy.deepcopy(signed))
    forged.find(f"{A}Subject").addnext(_fake_signature(forged.get("ID")))
    root.replace(signed, forged)
    return root


def genuine_in_advice_after_fake_signature(root: Any, _: Signer) -> Any:
    """The forged assertion's fake Signature first, the genuine assertion in Advice after."""
    signed = root.find(f"{A}Assertion")
    forged = _forge(signed)
    forged.insert(1, _fake_signature(forged.get("ID")))
    advice = etree.SubElement(forged, f"{A}Advice")
    advice.append(copy.deepcopy(signed))
    root.replace(signed, forged)
    return root


def signed_assertion_and_forged_sibling_response_signed(root: Any, signer: Signer) -> Any:
    """Response-signed answer with a forged assertion added after the signed one."""
    signed = root.find(f"{A}Assertion")
    root.append(_forge(signed))
    return root


def assertion_swapped_under_response_signature(root: Any, _: Signer) -> Any:
    """Response signature kept while its assertion is replaced by a forged one."""
    signed = root.find(f"{A}Assertion")
    root.replace(signed, _forge(signed))
    return root


def duplicate_ids(root: Any, _: Signer) -> Any:
    """The forged assertion takes the signed assertion's ID; the signed one goes to Advice."""
    signed = root.find(f"{A}Assertion")
    forged = _forge(signed)
    forged.set("ID", signed.get("ID"))
    forged.insert(1, copy.deepcopy(signed.find(SIG)))
    advice = etree.SubElement(forged, f"{A}Advice")
    advice.append(copy.deepcopy(signed))
    root.replace(signed, forged)
    return root


def response_signature_after_assertion(root: Any, _: Signer) -> Any:
    signature = root.find(SIG)
    root.remove(signature)
    root.append(signature)
    return root


def encrypted_assertion_beside(root: Any, _: Signer) -> Any:
    encrypted = etree.SubElement(root, f"{A}EncryptedAssertion")
    etree.SubElement(encrypted, "{http://www.w3.org/2001/04/xmlenc#}EncryptedData")
    return root


ASSERTION_SIGNED: dict[str, Wrap] = {
    "XSW3 forged sibling before": xsw3,
    "XSW4 forged wrapper": xsw4,
    "XSW5 signature moved, original at the end": xsw5,
    "XSW6 original inside the moved signature": xsw6,
    "XSW7 original in Extensions": xsw7,
    "XSW8 original in the signature's Object": xsw8,
    "genuine assertion in Advice": genuine_in_advice,
    "genuine assertion in SubjectConfirmationData": genuine_in_subject_confirmation_data,
    "genuine assertion in Advice after a fake signature": genuine_in_advice_after_fake_signature,
    "duplicate ID": duplicate_ids,
    "encrypted assertion beside": encrypted_assertion_beside,
}
RESPONSE_SIGNED: dict[str, Wrap] = {
    "XSW1 original inside the signature": xsw1,
    "XSW2 original beside a detached signature": xsw2,
    "forged sibling assertion after the signed one": (
        signed_assertion_and_forged_sibling_response_signed
    ),
    "assertion swapped under the Response signature": assertion_swapped_under_response_signature,
    "Response signature after the assertion": response_signature_after_assertion,
}


def _attack(sso: Sso, wrap: Wrap, shape: Shape) -> Any:
    request_id = sso.start()
    root = etree.fromstring(sso.respond(request_id, EVE, shape=shape))
    return sso.post(etree.tostring(wrap(root, sso.signer)))


@pytest.mark.parametrize("name", list(ASSERTION_SIGNED))
def test_wrapping_of_a_signed_assertion_signs_nobody_in(sso, caplog, name):
    response = _attack(sso, ASSERTION_SIGNED[name], Shape())

    assert_refused(sso, response, caplog)
    assert signed_in_emails(sso.app) == []


@pytest.mark.parametrize("name", list(RESPONSE_SIGNED))
def test_wrapping_of_a_signed_response_signs_nobody_in(sso, caplog, name):
    shape = Shape(sign_response=True, sign_assertion=False)

    response = _attack(sso, RESPONSE_SIGNED[name], shape)

    assert_refused(sso, response, caplog)
    assert signed_in_emails(sso.app) == []


def test_genuine_response_for_eve_signs_in_eve_only(sso):
    # The control for every case above: the unaltered response works, as Eve.
    request_id = sso.start()

    response = sso.post(sso.respond(request_id, EVE))

    assert response.status_code == 303
    assert signed_in_emails(sso.app) == [EVE]


def test_doctype_declaring_an_id_on_the_idps_signed_metadata_is_refused(sso, caplog):
    # Any document the IdP's key signed can be borrowed this way: here its signed metadata,
    # whose ID attribute only a DTD would make an XML ID.
    metadata = etree.fromstring(sso.signer.metadata().encode())
    metadata.set("ID", new_id())
    sso.signer.sign(metadata, at="end")
    request_id = sso.start()
    root = etree.fromstring(sso.respond(request_id, EVE))
    forged = _forge(root.find(f"{A}Assertion"))
    forged.set("ID", metadata.get("ID"))
    metadata.set("ID", new_id())  # the declared ID now names the forged assertion's twin
    advice = etree.SubElement(forged, f"{A}Advice")
    advice.append(metadata)
    root.replace(root.find(f"{A}Assertion"), forged)
    body = etree.tostring(root).decode()
    doctype = (
        "<!DOCTYPE samlp:Response [<!ATTLIST md:EntityDescriptor ID ID #IMPLIED>"
        "<!ATTLIST saml:Assertion ID ID #IMPLIED>]>"
    )

    response = sso.post(f'<?xml version="1.0"?>\n{doctype}\n{body}')

    reason = assert_refused(sso, response, caplog)
    assert "DOCTYPE" in reason


def test_unsigned_forged_response_with_another_signed_document_inside_is_refused(sso, caplog):
    request_id = sso.start()
    root = etree.fromstring(sso.respond(request_id, OWNER, shape=Shape(sign_assertion=False)))
    old = sso.signer.assertion_element(None, acs_url=sso.acs_url, audience=sso.entity_id, email=EVE)
    advice = etree.SubElement(root.find(f"{A}Assertion"), f"{A}Advice")
    advice.append(old)

    response = sso.post(etree.tostring(root))

    assert_refused(sso, response, caplog)


@pytest.mark.parametrize("name", list(ASSERTION_SIGNED) + list(RESPONSE_SIGNED))
def test_verified_subtree_alone_never_yields_the_forged_subject(sso, name):
    # Behind the structural check: even were a shape to slip past it, what verify() returns
    # is parsed from the digested bytes, so the subject read is Eve's or nothing.
    wrap = {**ASSERTION_SIGNED, **RESPONSE_SIGNED}[name]
    response_signed = name in RESPONSE_SIGNED
    shape = Shape(sign_response=response_signed, sign_assertion=not response_signed)
    request_id = sso.start()
    root = wrap(etree.fromstring(sso.respond(request_id, EVE, shape=shape)), sso.signer)
    claimed = signed.Shape(
        in_response_to=request_id,
        response_signed=response_signed,
        assertion_signed=not response_signed,
    )

    try:
        verified = signed.verify(etree.tostring(root), claimed, [sso.signer.cert])
    except signed.Refused:
        return
    name_id = verified.assertion.find(f"{A}Subject/{A}NameID")
    assert "".join(name_id.itertext()) == EVE


# -- malformed signatures from anyone with a browser: a refusal, never a 500 ------------------


def _unsigned_forgery(
    request_id: str, signature_value: str, prolog: str = "", extra: str = ""
) -> str:
    """A response for the owner with a made-up signature, needing no IdP account at all."""
    fake = etree.tostring(_fake_signature("_a")).decode()
    fake = fake.replace("<ds:SignatureValue>AAAA", f"<ds:SignatureValue>{signature_value}")
    return (
        f'{prolog}<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_r" '
        f'Version="2.0" InResponseTo="{request_id}">{extra}<saml:Assertion ID="_a">'
        f"<saml:Issuer>{Signer().entity_id}</saml:Issuer>{fake}<saml:Subject><saml:NameID>"
        f"{OWNER}</saml:NameID></saml:Subject></saml:Assertion></samlp:Response>"
    )


MALFORMED: dict[str, dict[str, str]] = {
    "SignatureValue not base64": {"signature_value": "A"},
    "empty SignatureValue": {"signature_value": ""},
    "nesting deeper than the verifier parses": {
        "signature_value": "AAAA",
        "extra": "<x>" * 300 + "</x>" * 300,
    },
    "encoding name only Python knows": {
        "signature_value": "AAAA",
        "prolog": '<?xml version="1.0" encoding="latin_1"?>',
    },
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_signature_is_a_refusal_not_a_500(sso, caplog, case):
    request_id = sso.start()
    xml = _unsigned_forgery(request_id, **MALFORMED[case])

    assert_refused(sso, sso.post(xml.encode("latin-1")), caplog)


def test_garbage_key_value_beside_a_genuine_signature_is_refused(sso, caplog):
    request_id = sso.start()
    root = etree.fromstring(sso.respond(request_id, EVE))
    key_info = root.find(f"{A}Assertion/{SIG}/{{{DS}}}KeyInfo")
    key_value = etree.SubElement(key_info, f"{{{DS}}}KeyValue")
    rsa = etree.SubElement(key_value, f"{{{DS}}}RSAKeyValue")
    etree.SubElement(rsa, f"{{{DS}}}Modulus").text = "A"

    assert_refused(sso, sso.post(etree.tostring(root)), caplog)


def test_id_that_is_not_an_xml_name_is_refused(sso, caplog):
    # signxml strips every leading "#" from a Reference: "##x" would name the element "x".
    request_id = sso.start()
    root = etree.fromstring(sso.respond(request_id, EVE))
    assertion = root.find(f"{A}Assertion")
    assertion.set("ID", "#" + assertion.get("ID"))

    reason = assert_refused(sso, sso.post(etree.tostring(root)), caplog)
    assert "is not an XML name" in reason
