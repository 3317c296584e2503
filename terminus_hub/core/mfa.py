"""Second factors: authenticator apps (TOTP) and recovery codes, and the policy that asks
owners and admins to use one.

Authenticator-app secrets are stored encrypted (Fernet) under a key derived from
TERMINUS_MFA_KEY, or from SECRET_KEY when that is unset; recovery codes are stored as a keyed
hash under a second key derived the same way. A copy of the database alone gives neither the
codes nor the recovery codes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from terminus_hub import audit
from terminus_hub import sealing
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import Account
from terminus_hub.models import Membership
from terminus_hub.models import Passkey
from terminus_hub.models import RecoveryCode
from terminus_hub.models import TotpFactor
from terminus_hub.models import User
from terminus_hub.models import UserSession
from terminus_hub.models import utcnow
from terminus_hub.outbox import send_email

log = logging.getLogger(__name__)

ISSUER = "Terminus Hub"
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1  # a code of the step before or after the current one is accepted too
# An enrolment not confirmed within this time starts again with a new secret.
PENDING_MINUTES = 15
RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: the codes are read off paper. 10 characters of 31 are about 49.5 bits.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10
_TOTP_CODE = re.compile(rf"[0-9]{{{DIGITS}}}")
_RECOVERY_CODE = re.compile(rf"[{_RECOVERY_ALPHABET}]{{{_RECOVERY_LENGTH}}}")

POLICY_KEEPS_IT = (
    "You are an owner or admin of an account that requires a second factor, so you cannot "
    "remove your last one. Add another first, or ask an owner to change the policy."
)


class MfaError(ValueError):
    """A second-factor change that cannot be made: the message says why."""


# Keys ---------------------------------------------------------------------------------------


_SECRETS = b"totp secrets"


def _encrypt(secret: str) -> str:
    return sealing.seal(_SECRETS, secret.encode("ascii"))


def _decrypt(stored: str) -> str | None:
    opened = sealing.unseal(_SECRETS, stored)
    if opened is None:
        # The key changed (SECRET_KEY rotated without TERMINUS_MFA_KEY): no code can match.
        log.error("an authenticator-app secret cannot be decrypted: was the key changed?")
        return None
    return opened.decode("ascii")


# Codes as people type them -------------------------------------------------------------------


def normalize(code: str) -> str:
    """Drop spaces and hyphens and lower the case: "123 456" and "ABCDE-FGHJK" are accepted."""
    return re.sub(r"[\s-]", "", code).lower()


def is_totp_code(code: str) -> bool:
    """Say whether a normalized code has the shape of an authenticator-app code."""
    return _TOTP_CODE.fullmatch(code) is not None


def is_recovery_code(code: str) -> bool:
    """Say whether a normalized code has the shape of a recovery code."""
    return _RECOVERY_CODE.fullmatch(code) is not None


# Authenticator apps -------------------------------------------------------------------------


def has_second_factor(user: User) -> bool:
    """Say whether the person signs in with a second factor (no query)."""
    return user.mfa_enabled_at is not None


def _factor_of(user: User) -> TotpFactor | None:
    return db.session.scalar(select(TotpFactor).where(TotpFactor.user_id == user.id))


def confirmed_totp(user: User) -> TotpFactor | None:
    """Return the person's confirmed authenticator app, or None."""
    factor = _factor_of(user)
    return factor if factor is not None and factor.confirmed_at is not None else None


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret as text, and the QR code of its URI."""

    secret: str
    uri: str
    qr_svg: str
    started_at: datetime


def pending_enrolment(user: User, session: UserSession) -> Enrolment:
    """Return the person's enrolment in progress in this session, starting one if needed.

    Two tabs of one browser get the same secret, so confirming either one works. Another
    session (another browser, or a copied cookie) gets a new secret, which replaces the one
    shown before: a secret is confirmed only by the session it was shown to. An enrolment
    left unconfirmed for PENDING_MINUTES starts again. Raises MfaError when an app is already
    on. The caller commits.
    """
    import pyotp
    import segno

    factor = _factor_of(user)
    if factor is not None and factor.confirmed_at is not None:
        raise MfaError("An authenticator app is already set up. Remove it first to use another.")
    now = utcnow()
    secret = _decrypt(factor.secret) if factor is not None else None
    if (
        factor is None
        or secret is None
        or factor.session_id != session.id
        or now - factor.created_at > _pending_window()
    ):
        secret = pyotp.random_base32()
        if factor is None:
            factor = TotpFactor(user_id=user.id, secret=_encrypt(secret), created_at=now)
            db.session.add(factor)
        else:
            factor.secret, factor.created_at, factor.last_used_step = _encrypt(secret), now, None
        factor.session_id = session.id
        db.session.flush()
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=ISSUER
    )
    qr = segno.make(uri, error="m")
    svg = qr.svg_inline(scale=4, border=2, dark="#111", light="#fff", title="QR code to scan")
    return Enrolment(secret=secret, uri=uri, qr_svg=svg, started_at=factor.created_at)


def _pending_window() -> timedelta:
    return timedelta(minutes=PENDING_MINUTES)


def _matching_step(secret: str, code: str) -> int | None:
    """Return the step whose code this is (the current one ±DRIFT_STEPS), or None."""
    import pyotp

    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(utcnow().timestamp()) // STEP_SECONDS
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every candidate is compared, matching or not: the time does not say which matched.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def confirm_enrolment(user: User, session: UserSession, code: str) -> bool:
    """Turn the pending authenticator app on if the code is right; the caller commits.

    Raises MfaError when there is no enrolment in progress in this session (expired, finished
    in another tab, or replaced by one started elsewhere). The first factor also makes the
    first recovery codes: see make_recovery_codes.
    """
    lock_factors(user)
    factor = _factor_of(user)
    if factor is None or factor.confirmed_at is not None or factor.session_id != session.id:
        raise MfaError("This setup is no longer in progress. Scan the new QR code below.")
    if utcnow() - factor.created_at > _pending_window():
        raise MfaError("This setup timed out. Scan the new QR code and enter its code.")
    secret = _decrypt(factor.secret)
    step = _matching_step(secret, code) if secret is not None else None
    if step is None:
        return False
    factor.confirmed_at = utcnow()
    factor.last_used_step = step
    factor.session_id = None  # the factor outlives the session that set it up
    factor_added(user)
    audit.record("mfa.totp_enabled", user=user, actor=user)
    notify(user, "totp_enabled")
    return True


def use_totp(user: User, code: str) -> bool:
    """Accept an authenticator-app code once: a code already used (or an older one) fails.

    One conditional update decides, so two requests racing with one code cannot both pass.
    """
    factor = confirmed_totp(user)
    secret = _decrypt(factor.secret) if factor is not None else None
    step = _matching_step(secret, code) if secret is not None else None
    if factor is None or step is None:
        return False
    result = db.session.execute(
        update(TotpFactor)
        .where(
            TotpFactor.id == factor.id,
            TotpFactor.confirmed_at.is_not(None),
            or_(TotpFactor.last_used_step.is_(None), TotpFactor.last_used_step < step),
        )
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    return affected(result) == 1


def remove_totp(user: User) -> None:
    """Turn the authenticator app off (refused when the policy needs it); the caller commits."""
    lock_factors(user)
    factor = confirmed_totp(user)
    if factor is None:
        raise MfaError("No authenticator app is set up.")
    keeps_passkeys = _has_passkeys(user)
    if not keeps_passkeys and policy_applies_anywhere(user):
        raise MfaError(POLICY_KEEPS_IT)
    db.session.delete(factor)
    if not keeps_passkeys:
        last_factor_removed(user)
    audit.record("mfa.totp_disabled", user=user, actor=user)
    notify(user, "totp_disabled")


def lock_factors(user: User) -> None:
    """Take the person's row for this transaction before changing their factors.

    Two changes at once (removing two passkeys, removing the app while adding a passkey)
    then happen one after the other, each seeing what the other did, so mfa_enabled_at and
    the last-factor rule stay true. (SQLite serialises writers anyway.)
    """
    db.session.refresh(user, with_for_update=True)


def _has_passkeys(user: User) -> bool:
    query = select(Passkey.id).where(Passkey.user_id == user.id).limit(1)
    return db.session.scalar(query) is not None


def factor_added(user: User) -> None:
    """Note that the person now has a second factor (an app or a passkey)."""
    if user.mfa_enabled_at is None:
        user.mfa_enabled_at = utcnow()


def last_factor_removed(user: User) -> None:
    """Note that the person's last second factor is gone, and their recovery codes with it."""
    # Recovery codes stand in for a factor; with none left they would be a factor of their own.
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    user.mfa_enabled_at = None


# Recovery codes -----------------------------------------------------------------------------


def _code_hash(code: str) -> str:
    return hmac.new(
        sealing.derived_key(b"recovery codes"), code.encode("ascii"), hashlib.sha256
    ).hexdigest()


def display(code: str) -> str:
    """Write a recovery code the way it is shown: two groups of five."""
    return f"{code[:5]}-{code[5:]}"


def make_recovery_codes(user: User, first: bool = False) -> list[str]:
    """Replace the person's recovery codes with RECOVERY_CODE_COUNT new ones; return them.

    Shown once: only their keyed hashes are kept. The caller commits.
    """
    if not has_second_factor(user):
        raise MfaError("Set up a second factor first: recovery codes stand in for it.")
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes: list[str] = []
    while len(codes) < RECOVERY_CODE_COUNT:
        code = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        if code not in codes:
            codes.append(code)
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_code_hash(c)) for c in codes)
    db.session.flush()
    audit.record("mfa.recovery_codes_generated", user=user, actor=user)
    if not first:  # the first set comes with the factor, whose notice says so
        notify(user, "recovery_codes_generated")
    return [display(c) for c in codes]


def recovery_codes_left(user: User) -> int:
    """Count the person's unused recovery codes."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def use_recovery_code(user: User, code: str) -> bool:
    """Spend one recovery code: one conditional update, so a code used twice at once wins once."""
    result = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _code_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if affected(result) != 1:
        return False
    left = recovery_codes_left(user)
    audit.record("mfa.recovery_code_used", user=user, actor=user, detail={"left": left})
    notify(user, "recovery_code_used", left=left)
    return True


# The policy ---------------------------------------------------------------------------------


def policy_on(account: Account) -> bool:
    """Say whether the owners and admins of this account must use a second factor."""
    return bool(current_app.config["TERMINUS_REQUIRE_MFA_FOR_MANAGERS"]) or (
        account.require_mfa_for_managers
    )


def must_enrol(user: User, account: Account, role: str) -> bool:
    """Say whether this person must set up a second factor before using this account."""
    return role in MANAGER_ROLES and not has_second_factor(user) and policy_on(account)


def policy_applies_anywhere(user: User) -> bool:
    """Say whether any account the person manages requires a second factor of them."""
    query = (
        select(Account.id)
        .join(Membership, Membership.account_id == Account.id)
        .where(Membership.user_id == user.id, Membership.role.in_(MANAGER_ROLES))
    )
    if not current_app.config["TERMINUS_REQUIRE_MFA_FOR_MANAGERS"]:
        query = query.where(Account.require_mfa_for_managers.is_(True))
    return db.session.scalar(query.limit(1)) is not None


def set_policy(account: Account, owner: User, required: bool) -> None:
    """Switch the account's policy; an owner turning it on must have a second factor first.

    The caller commits.
    """
    if required and not has_second_factor(owner):
        raise MfaError(
            "Set up your own second factor first: the policy would lock you out of this page."
        )
    if account.require_mfa_for_managers != required:
        account.require_mfa_for_managers = required
        audit.record(
            "account.mfa_policy_changed",
            account=account,
            actor=owner,
            detail={"required": required},
        )


# The operator's way back in -----------------------------------------------------------------


def reset(user: User) -> bool:
    """Remove every second factor of a person: app, passkeys, recovery codes (they lost them).

    Returns False when there was nothing to remove. The caller commits.
    """
    lock_factors(user)
    had = has_second_factor(user)  # a setup never finished is not a factor
    db.session.execute(delete(TotpFactor).where(TotpFactor.user_id == user.id))
    db.session.execute(delete(Passkey).where(Passkey.user_id == user.id))
    last_factor_removed(user)
    if had:
        audit.record("mfa.reset", user=user, detail={"by": "operator"})
        notify(user, "reset")
    return had


def notify(user: User, change: str, **context: object) -> None:
    """Mail the person that a second factor changed (what changed is ``change``)."""
    send_email(user.email, "second_factor_changed", user=user, change=change, **context)
