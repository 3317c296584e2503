"""The SAML Web Browser SSO profile's rules, read from the signed elements only.

``read`` takes what ``signed.verify`` returned and says who the identity provider vouches
for, or raises ``signed.Refused`` with the rule that failed. Each rule stands on the signed
assertion: its Issuer, one Subject, a bearer confirmation for our ACS and our request, every
AudienceRestriction naming us, the validity window, an AuthnStatement, and the email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from terminus_hub.addresses import try_canonical_email
from terminus_hub.core.saml_times import parse_time
from terminus_hub.sso.signed import SAML
from terminus_hub.sso.signed import SAMLP
from terminus_hub.sso.signed import Refused
from terminus_hub.sso.signed import Verified

BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
ENTITY_FORMAT = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
CLOCK_SKEW = timedelta(seconds=60)
# However long an IdP says an assertion lives, its id is remembered (and it is accepted) for
# at most this long after it was issued.
MAX_LIFETIME = timedelta(hours=24)
# Attribute names that carry the email, most specific first; short names match in any case.
EMAIL_ATTRIBUTES = (
    "email",
    "mail",
    "emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
    "urn:oid:1.2.840.113549.1.9.1",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
)
# Entra ID puts the user principal name here; it counts only when it is an email.
NAME_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
_KNOWN_CONDITIONS = frozenset({"AudienceRestriction", "OneTimeUse", "ProxyRestriction"})


@dataclass(frozen=True)
class Expected:
    """What a response to our request must say: who we are, whom we trust, which request."""

    idp_entity_id: str
    sp_entity_id: str
    acs_url: str
    request_id: str
    requested_at: datetime
    now: datetime
    # We asked the IdP to check the person again (ForceAuthn, for re-authentication).
    force_authn: bool = False


@dataclass(frozen=True)
class Identity:
    """The person an assertion vouches for, and how long to remember the assertion's id."""

    email: str
    assertion_id: str
    remember_until: datetime
    # When the IdP last checked the person (AuthnInstant), not when it answered.
    authenticated_at: datetime | None = None


def read(verified: Verified, expected: Expected) -> Identity:
    """Apply the profile's rules to the signed elements and return the asserted identity."""
    _check_response(verified, expected)
    assertion = verified.assertion
    assertion_id = assertion.get("ID") or ""
    if assertion.get("Version") != "2.0" or not assertion_id or len(assertion_id) > 200:
        raise Refused("the assertion has no ID or is not SAML 2.0")
    _check_issuer(_one(assertion, "Issuer", required=True), expected, "assertion")
    issued = _time(assertion.get("IssueInstant"), "assertion IssueInstant")
    if issued > expected.now + CLOCK_SKEW or issued < expected.requested_at - CLOCK_SKEW:
        raise Refused("the assertion was not issued between our request and now")
    subject = _one(assertion, "Subject", required=True)
    confirmed_until = _bearer_confirmation(subject, expected)
    valid_until = _conditions(_one(assertion, "Conditions", required=True), expected)
    authenticated_at = _authn_statement(assertion, expected)
    until = min(valid_until or confirmed_until, confirmed_until, issued + MAX_LIFETIME)
    if expected.now >= until + CLOCK_SKEW:
        raise Refused("the assertion has expired")
    email = asserted_email(subject, assertion)
    if email is None:
        raise Refused("no email in the assertion")
    return Identity(
        email=email,
        assertion_id=assertion_id,
        remember_until=until + CLOCK_SKEW,
        authenticated_at=authenticated_at,
    )


def asserted_email(subject: Any, assertion: Any) -> str | None:
    """Return the email an emailAddress NameID, an email attribute or a bare NameID gives."""
    name_id = _one(subject, "NameID", required=False)
    name_format = (name_id.get("Format") if name_id is not None else None) or NAMEID_UNSPECIFIED
    name_value = _text(name_id) if name_id is not None else ""
    if name_format == NAMEID_EMAIL:
        return _plain_email(name_value)
    from_attributes = _email_from_attributes(assertion)
    if from_attributes is not None:
        return from_attributes
    if name_format == NAMEID_UNSPECIFIED:
        return _plain_email(name_value)
    return None  # a persistent or transient NameID is an opaque handle, never an email


def _check_response(verified: Verified, expected: Expected) -> None:
    response = verified.response
    if response.get("Version") != "2.0":
        raise Refused("the response is not SAML 2.0")
    status = response.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    if status is None or status.get("Value") != SUCCESS:
        value = None if status is None else status.get("Value")
        raise Refused(f"the IdP answered with status {value!r}")
    if response.get("InResponseTo") != expected.request_id:
        raise Refused("the response answers another request")
    destination = response.get("Destination")
    if destination != expected.acs_url and (destination or verified.response_signed):
        raise Refused(f"the response is for {str(destination)[:200]!r}, not this ACS")
    issuer = _one(response, "Issuer", required=False)
    if issuer is not None:
        _check_issuer(issuer, expected, "response")


def _check_issuer(issuer: Any, expected: Expected, what: str) -> None:
    if issuer.get("Format") not in (None, ENTITY_FORMAT) or _text(issuer) != expected.idp_entity_id:
        raise Refused(f"the {what} Issuer {_text(issuer)[:200]!r} is not this connection's IdP")


def _bearer_confirmation(subject: Any, expected: Expected) -> datetime:
    """Return the NotOnOrAfter of a bearer confirmation for our ACS and request."""
    if any(subject.find(f"{{{SAML}}}{name}") is not None for name in ("BaseID", "EncryptedID")):
        raise Refused("the Subject uses an identifier other than NameID")
    reasons = []
    for confirmation in subject.iterfind(f"{{{SAML}}}SubjectConfirmation"):
        if confirmation.get("Method") != BEARER:
            reasons.append(f"method {confirmation.get('Method')!r} is not bearer")
            continue
        data = confirmation.find(f"{{{SAML}}}SubjectConfirmationData")
        reason = _bearer_data_problem(data, expected)
        if reason is None:
            return _time(data.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter")
        reasons.append(reason)
    raise Refused("no usable bearer SubjectConfirmation: " + ("; ".join(reasons) or "none"))


def _bearer_data_problem(data: Any, expected: Expected) -> str | None:
    if data is None:
        return "no SubjectConfirmationData"
    if data.get("Recipient") != expected.acs_url:
        return f"Recipient {str(data.get('Recipient'))[:200]!r} is not this ACS"
    if data.get("InResponseTo") != expected.request_id:
        return "InResponseTo names another request"
    if not data.get("NotOnOrAfter"):
        return "no NotOnOrAfter"
    if _time(data.get("NotOnOrAfter"), "NotOnOrAfter") <= expected.now - CLOCK_SKEW:
        return "it has expired"
    if data.get("NotBefore") and _time(data.get("NotBefore"), "NotBefore") > (
        expected.now + CLOCK_SKEW
    ):
        return "it is not valid yet"
    return None


def _conditions(conditions: Any, expected: Expected) -> datetime | None:
    """Check the validity window and that every AudienceRestriction names us."""
    not_before = conditions.get("NotBefore")
    if not_before and _time(not_before, "NotBefore") > expected.now + CLOCK_SKEW:
        raise Refused("the assertion is not valid yet")
    not_on_or_after = conditions.get("NotOnOrAfter")
    until = _time(not_on_or_after, "NotOnOrAfter") if not_on_or_after else None
    if until is not None and until <= expected.now - CLOCK_SKEW:
        raise Refused("the assertion has expired")
    restrictions = 0
    for condition in conditions:
        name = condition.tag.rpartition("}")[2] if condition.tag.startswith(f"{{{SAML}}}") else ""
        if name not in _KNOWN_CONDITIONS:
            raise Refused(f"unknown condition {condition.tag[:200]!r}")
        if name == "AudienceRestriction":
            restrictions += 1
            audiences = {_text(a) for a in condition.iterfind(f"{{{SAML}}}Audience")}
            if expected.sp_entity_id not in audiences:
                raise Refused(f"an AudienceRestriction does not name us: {sorted(audiences)[:3]}")
    if restrictions == 0:
        raise Refused("the assertion has no AudienceRestriction")
    return until


def _authn_statement(assertion: Any, expected: Expected) -> datetime | None:
    """Check the AuthnStatements; return when the IdP last signed the person in (None when it
    does not say, which a re-authentication refuses)."""
    statements = assertion.findall(f"{{{SAML}}}AuthnStatement")
    if not statements:
        raise Refused("the assertion has no AuthnStatement")
    latest = None
    for statement in statements:
        ends = statement.get("SessionNotOnOrAfter")
        if ends and _time(ends, "SessionNotOnOrAfter") <= expected.now - CLOCK_SKEW:
            raise Refused("the IdP session has ended")
        instant = statement.get("AuthnInstant")
        signed_in = _time(instant, "AuthnInstant") if instant or expected.force_authn else None
        if signed_in is not None:
            latest = signed_in if latest is None else max(latest, signed_in)
        # An IdP that ignored ForceAuthn answers from its old session: that proves nothing new,
        # so it cannot count as confirming it is you.
        too_old = signed_in is not None and signed_in < expected.requested_at - CLOCK_SKEW
        if expected.force_authn and too_old:
            raise Refused("the IdP did not sign the person in again (ForceAuthn ignored)")
    return min(latest, expected.now) if latest is not None else None


def _email_from_attributes(assertion: Any) -> str | None:
    values: dict[str, list[str]] = {}
    for attribute in assertion.iterfind(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute"):
        name = (attribute.get("Name") or "").strip()
        key = name.lower() if name.lower() in EMAIL_ATTRIBUTES[:3] else name
        texts = [_text(v) for v in attribute.iterfind(f"{{{SAML}}}AttributeValue")]
        values.setdefault(key, []).extend(t for t in texts if t)
    for name in (*EMAIL_ATTRIBUTES, NAME_CLAIM):
        for value in values.get(name, []):
            email = _plain_email(value)
            if email is not None:
                return email
    return None


def _plain_email(value: str) -> str | None:
    """Return the email when its canonical form is the value lower-cased, else None.

    Canonicalising would fold look-alikes (full-width letters, ideographic full stops) onto
    another person's address; an IdP that means that person sends the plain address.
    """
    email = try_canonical_email(value)
    return email if email is not None and email == value.strip().lower() else None


def _one(parent: Any, name: str, *, required: bool) -> Any:
    found = parent.findall(f"{{{SAML}}}{name}")
    if len(found) > 1 or (required and not found):
        raise Refused(f"{len(found)} {name} elements in the {parent.tag.rpartition('}')[2]}")
    return found[0] if found else None


def _text(element: Any) -> str:
    return "".join(element.itertext()).strip()


def _time(value: str | None, what: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError:
        raise Refused(f"{what} is not a time: {str(value)[:40]!r}") from None
