"""Passkeys (WebAuthn, with py_webauthn): registering one, and checking an assertion for a
passwordless sign-in, as the second factor, or to confirm it is you.

Every ceremony starts with a challenge kept on the server (hashed) and tied to the browser
that asked (a random value in its signed session cookie) and to the ceremony. An answer
consumes its challenge with one conditional delete, so a challenge is answered once, by that
browser, for that purpose, within CHALLENGE_LIFETIME. The relying party id is the host of
TERMINUS_BASE_URL and the origin must be TERMINUS_BASE_URL exactly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from flask import session
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update

from terminus_hub import audit
from terminus_hub.core import mfa
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.models import Passkey
from terminus_hub.models import User

# py_webauthn (with cryptography) is imported by the functions that use it: a worker that never
# sees a passkey never loads it.
if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor
from terminus_hub.models import WebAuthnChallenge
from terminus_hub.models import utcnow

CHALLENGE_LIFETIME = timedelta(minutes=5)
TIMEOUT_MS = int(CHALLENGE_LIFETIME.total_seconds() * 1000)
MAX_BODY_BYTES = 64 * 1024  # an attestation "none" is a few hundred bytes
NAME_MAX = 64
_BINDING_KEY = "webauthn_binding"

EXPIRED = "This passkey request expired or was already used. Try again."
MALFORMED = "The browser sent something that is not a passkey answer. Try again."
UNKNOWN = "That passkey is not registered here (it may have been removed). Use another way in."
NOT_YOURS = "That passkey belongs to someone else. Use one of your own."
CLONED = (
    "That passkey's counter went backwards, which is what a copied authenticator does, so it "
    "was refused. Use another way in and tell your account's owner."
)
ALREADY_REGISTERED = "This passkey is already registered."
NAME_INVALID = f"Give the passkey a name of at most {NAME_MAX} printable characters."

# Names of common passkey providers by AAGUID (the authenticator's model id), for the
# default name; anything else is named after the browser it was made in.
KNOWN_AAGUIDS = {
    "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
    "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
    "adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
    "08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
    "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
    "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
    "531126d6-e717-415c-9320-3d9aa6981239": "Dashlane",
}


class PasskeyError(ValueError):
    """A passkey answer that was refused: the message is for the person."""

    def __init__(self, message: str, code: str = "passkey_refused", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Assertion:
    """A checked passkey answer: whose passkey, and for which ceremony."""

    user: User
    passkey: Passkey
    purpose: str


def rp_id() -> str:
    """The relying party id: the host of TERMINUS_BASE_URL."""
    return urlsplit(_origin()).hostname or ""


def _origin() -> str:
    return str(current_app.config["TERMINUS_BASE_URL"])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _from_b64url(value: object) -> bytes:
    if not isinstance(value, str) or len(value) > MAX_BODY_BYTES:
        raise PasskeyError(MALFORMED)
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise PasskeyError(MALFORMED) from None


def user_handle(user_id: str) -> bytes:
    """The WebAuthn user handle of a person: their opaque id (no email, no name)."""
    return user_id.encode("ascii")


# Challenges ---------------------------------------------------------------------------------


def _binding() -> str:
    value = session.get(_BINDING_KEY)
    if not isinstance(value, str):
        value = secrets.token_urlsafe(32)
        session[_BINDING_KEY] = value
    return hashlib.sha256(value.encode("ascii")).hexdigest()


def _issue(purpose: str, user_id: str | None) -> bytes:
    challenge = secrets.token_bytes(32)
    db.session.add(
        WebAuthnChallenge(
            id=hashlib.sha256(challenge).hexdigest(),
            purpose=purpose,
            binding=_binding(),
            user_id=user_id,
            expires_at=utcnow() + CHALLENGE_LIFETIME,
        )
    )
    return challenge


def _client_challenge(credential: dict[str, Any]) -> bytes:
    response = credential.get("response")
    if not isinstance(response, dict):
        raise PasskeyError(MALFORMED)
    try:
        client_data = json.loads(_from_b64url(response.get("clientDataJSON")))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise PasskeyError(MALFORMED) from None
    if not isinstance(client_data, dict):
        raise PasskeyError(MALFORMED)
    return _from_b64url(client_data.get("challenge"))


def _consume(challenge: bytes, purposes: tuple[str, ...]) -> tuple[str, str | None]:
    """Spend the challenge (once, from the browser it went to); return purpose and person."""
    row = db.session.execute(
        delete(WebAuthnChallenge)
        .where(
            WebAuthnChallenge.id == hashlib.sha256(challenge).hexdigest(),
            WebAuthnChallenge.binding == _binding(),
            WebAuthnChallenge.expires_at > utcnow(),
        )
        .returning(WebAuthnChallenge.purpose, WebAuthnChallenge.user_id)
    ).one_or_none()
    if row is None or row.purpose not in purposes:
        raise PasskeyError(EXPIRED, code="challenge_invalid")
    return row.purpose, row.user_id


# Registration -------------------------------------------------------------------------------


def passkeys_of(user: User) -> list[Passkey]:
    """The person's passkeys, oldest first."""
    query = select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.created_at)
    return list(db.session.scalars(query))


def _descriptors(passkeys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    from webauthn.helpers.structs import AuthenticatorTransport
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=_from_b64url(p.credential_id),
            transports=[AuthenticatorTransport(t) for t in p.transports if t in known] or None,
        )
        for p in passkeys
    ]


def registration_options(user: User) -> str:
    """The options for navigator.credentials.create(), as JSON (the caller commits)."""
    from webauthn import generate_registration_options
    from webauthn import options_to_json
    from webauthn.helpers.structs import AttestationConveyancePreference
    from webauthn.helpers.structs import AuthenticatorSelectionCriteria
    from webauthn.helpers.structs import ResidentKeyRequirement
    from webauthn.helpers.structs import UserVerificationRequirement

    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name=mfa.ISSUER,
        user_id=user_handle(user.id),
        user_name=user.email,
        user_display_name=user.name or user.email,
        challenge=_issue("register", user.id),
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        # One authenticator is not registered twice.
        exclude_credentials=_descriptors(passkeys_of(user)),
    )
    return options_to_json(options)


def checked_name(value: object) -> str | None:
    """A passkey name as given (None when none was), or PasskeyError."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value.strip()) > NAME_MAX or not value.isprintable():
        raise PasskeyError(NAME_INVALID, code="validation_error", status=422)
    return value.strip()


def default_name(aaguid: str, user_agent: str) -> str:
    """Name a new passkey after its provider, or else after the browser that made it."""
    if aaguid in KNOWN_AAGUIDS:
        return KNOWN_AAGUIDS[aaguid]
    browsers = (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"))
    browser = next((name for mark, name in browsers if mark in user_agent), None)
    if browser is None and "Safari/" in user_agent:
        browser = "Safari"
    systems = (
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Mac OS X", "Mac"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    )
    system = next((name for mark, name in systems if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Passkey"


def register(user: User, body: dict[str, Any], user_agent: str) -> Passkey:
    """Check the browser's RegistrationResponseJSON (plus ``name``) and keep the passkey.

    Raises PasskeyError, having written nothing but the spent challenge and the audit entry
    (the caller commits either way).
    """
    from webauthn import verify_registration_response
    from webauthn.helpers import decode_credential_public_key
    from webauthn.helpers import decoded_public_key_to_cryptography

    name = checked_name(body.get("name"))
    credential = {key: value for key, value in body.items() if key != "name"}
    mfa.lock_factors(user)
    challenge = _client_challenge(credential)
    _, owner = _consume(challenge, ("register",))
    if owner != user.id:
        raise PasskeyError(EXPIRED, code="challenge_invalid")
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=_origin(),
        )
        # A key that cannot be loaded would never verify a signature: refuse it now.
        decoded_public_key_to_cryptography(
            decode_credential_public_key(verified.credential_public_key)
        )
    except Exception as exc:  # the library raises more than its own types on hostile input
        _refused(user.id, "registration", f"{type(exc).__name__}: {exc}")
        raise PasskeyError(f"The passkey was not accepted: {_sentence(exc)}") from None
    credential_id = _b64url(verified.credential_id)
    taken = db.session.scalar(select(Passkey.id).where(Passkey.credential_id == credential_id))
    if taken is not None:
        raise PasskeyError(ALREADY_REGISTERED, code="conflict", status=409)
    transports = credential.get("response", {}).get("transports")
    passkey = Passkey(
        user_id=user.id,
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        transports=[t for t in transports if isinstance(t, str)][:8]
        if isinstance(transports, list)
        else [],
        name=name or default_name(verified.aaguid, user_agent),
        backed_up=verified.credential_backed_up,
    )
    db.session.add(passkey)
    db.session.flush()
    mfa.factor_added(user)
    detail = {"passkey_id": passkey.id, "name": passkey.name}
    audit.record("passkey.registered", user=user, actor=user, detail=detail)
    mfa.notify(user, "passkey_added", name=passkey.name)
    return passkey


def rename(user: User, passkey_id: str, name: object) -> Passkey:
    """Give one of the person's passkeys a new name; the caller commits."""
    passkey = _own(user, passkey_id)
    new_name = checked_name(name)
    if new_name is None:
        raise PasskeyError(NAME_INVALID, code="validation_error", status=422)
    if new_name != passkey.name:
        passkey.name = new_name
        audit.record("passkey.renamed", user=user, actor=user, detail={"passkey_id": passkey.id})
    return passkey


def remove(user: User, passkey_id: str) -> Passkey:
    """Delete one of the person's passkeys (refused when the policy needs the last factor)."""
    mfa.lock_factors(user)
    passkey = _own(user, passkey_id)
    last = len(passkeys_of(user)) == 1 and mfa.confirmed_totp(user) is None
    if last and mfa.policy_applies_anywhere(user):
        raise PasskeyError(mfa.POLICY_KEEPS_IT, code="conflict", status=409)
    db.session.delete(passkey)
    if last:
        mfa.last_factor_removed(user)
    detail = {"passkey_id": passkey.id, "name": passkey.name}
    audit.record("passkey.deleted", user=user, actor=user, detail=detail)
    mfa.notify(user, "passkey_removed", name=passkey.name)
    return passkey


def _own(user: User, passkey_id: str) -> Passkey:
    passkey = db.session.get(Passkey, passkey_id) if len(passkey_id) <= 32 else None
    if passkey is None or passkey.user_id != user.id:
        raise PasskeyError("No such passkey.", code="not_found", status=404)
    return passkey


# Assertions ---------------------------------------------------------------------------------


def authentication_options(purpose: str, user: User | None) -> str:
    """The options for navigator.credentials.get(), as JSON (the caller commits).

    ``sign_in`` (passwordless, from the email step): any discoverable passkey, the person
    verified on the device. ``second_factor`` and ``reauth``: the given person's passkeys.
    """
    from webauthn import generate_authentication_options
    from webauthn import options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    passkeys = passkeys_of(user) if user is not None and purpose != "sign_in" else []
    required = UserVerificationRequirement.REQUIRED
    options = generate_authentication_options(
        rp_id=rp_id(),
        challenge=_issue(purpose, user.id if user is not None else None),
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(passkeys),
        user_verification=required
        if purpose in ("sign_in", "reauth")
        else UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options)


def check_assertion(body: dict[str, Any], purposes: tuple[str, ...]) -> Assertion:
    """Check the browser's AuthenticationResponseJSON against its challenge and passkey.

    Raises PasskeyError (audited where a person is known); the caller commits either way,
    so a refused answer still spends its challenge.
    """
    from webauthn import verify_authentication_response
    from webauthn.helpers import parse_authenticator_data
    from webauthn.helpers.exceptions import WebAuthnException

    challenge = _client_challenge(body)
    purpose, expected_user = _consume(challenge, purposes)
    raw_id = body.get("rawId", body.get("id"))
    passkey = (
        db.session.scalar(select(Passkey).where(Passkey.credential_id == raw_id))
        if isinstance(raw_id, str) and len(raw_id) <= 1400
        else None
    )
    if passkey is None:
        _refused(expected_user, purpose, "unknown credential")
        raise PasskeyError(UNKNOWN, code="unknown_passkey")
    if expected_user is not None and passkey.user_id != expected_user:
        _refused(expected_user, purpose, "credential of another person")
        raise PasskeyError(NOT_YOURS)
    response = body.get("response")
    if not isinstance(response, dict):
        raise PasskeyError(MALFORMED)
    handle = response.get("userHandle")
    if purpose == "sign_in" and (
        not isinstance(handle, str) or _from_b64url(handle) != user_handle(passkey.user_id)
    ):
        _refused(passkey.user_id, purpose, "user handle does not match the credential")
        raise PasskeyError(NOT_YOURS)
    try:
        counted = parse_authenticator_data(_from_b64url(response.get("authenticatorData")))
    except WebAuthnException:
        raise PasskeyError(MALFORMED) from None
    try:
        verified = verify_authentication_response(
            credential=body,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=_origin(),
            credential_public_key=passkey.public_key,
            # The counter is judged below, after the signature: an unsigned answer must not
            # raise the "cloned" alarm against someone.
            credential_current_sign_count=0,
            # Sign-in and re-authentication stand in for the password: the device must have
            # checked the person. As the second factor after a password, presence suffices.
            require_user_verification=purpose in ("sign_in", "reauth"),
        )
    except Exception as exc:  # the library raises more than its own types on hostile input
        _refused(passkey.user_id, purpose, f"{type(exc).__name__}: {exc}")
        raise PasskeyError(f"The passkey was not accepted: {_sentence(exc)}") from None
    if (counted.sign_count or passkey.sign_count) and counted.sign_count <= passkey.sign_count:
        detail = {"passkey_id": passkey.id, "stored": passkey.sign_count}
        audit.record("passkey.counter_regressed", user=passkey.user_id, detail=detail)
        raise PasskeyError(CLONED, code="passkey_cloned")
    # Conditional on the counter read above: of two answers racing, one is recorded.
    used = db.session.execute(
        update(Passkey)
        .where(Passkey.id == passkey.id, Passkey.sign_count == passkey.sign_count)
        .values(
            sign_count=verified.new_sign_count,
            last_used_at=utcnow(),
            backed_up=verified.credential_backed_up,
        )
        .execution_options(synchronize_session=False)
    )
    if affected(used) != 1:
        raise PasskeyError(EXPIRED, code="challenge_invalid")
    user = db.session.get_one(User, passkey.user_id)
    return Assertion(user=user, passkey=passkey, purpose=purpose)


def _refused(user_id: str | None, purpose: str, reason: str) -> None:
    detail = {"for": purpose, "reason": reason[:200]}
    audit.record("passkey.refused", user=user_id, detail=detail)


def _sentence(exc: Exception) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()[:200] or "it did not check out"
    return text[0].lower() + text[1:] if text[:1].isupper() and text[1:2].islower() else text
