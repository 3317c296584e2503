"""Decide a password sign-in; the contract's messages live here."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from terminus_hub import audit
from terminus_hub.addresses import try_canonical_email
from terminus_hub.core import lockout
from terminus_hub.core import mfa
from terminus_hub.core.routing import password_blocked_by_sso
from terminus_hub.extensions import db
from terminus_hub.models import AuditEvent
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.passwords import dummy_verify
from terminus_hub.passwords import hash_password
from terminus_hub.passwords import needs_rehash
from terminus_hub.passwords import verify_password

INCORRECT = "Incorrect email or password."
UNCONFIRMED = "Confirm your email before signing in."
SSO_ENFORCED = (
    "Your account’s domain enforces single sign-on. Sign in through your identity provider instead."
)


class Outcome(enum.Enum):
    SIGNED_IN = "signed_in"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"
    SSO_REQUIRED = "sso_required"
    SECOND_FACTOR = "second_factor"  # the password is right; a code comes next


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    user: User | None = None
    reason: str = ""  # internal only (audit log): never shown, never different on screen
    user_id: str | None = None


def find_user(email: str) -> User | None:
    """Return the person with this email (any case or spacing), or None."""
    canonical = try_canonical_email(email)
    if canonical is None:
        return None
    return db.session.scalar(select(User).where(User.email == canonical))


def authenticate(email: str, password: str) -> Result:
    """Check an email and password, paying for one password check whatever the outcome.

    Wrong password, unknown email and locked user all come back as FAILED. Every attempt is
    in the audit log: ``sign_in.failed`` with its reason, or ``sign_in.succeeded``.

    An unknown address, a locked person and a wrong password take the same time: the same
    statements (the count and the lock match no row for an unknown address), one password
    check, and two commits that each write: the attempt's audit row (with a known person's
    count) before the check, and the attempt's outcome after it.
    """
    # Only the id and the hash, not the whole person: building that object is work that only
    # known addresses would pay. The person is loaded once the password is right.
    canonical = try_canonical_email(email)
    found = None
    if canonical is not None:
        query = select(User.id, User.password_hash).where(User.email == canonical)
        found = db.session.execute(query).one_or_none()
    user_id, stored = (found.id, found.password_hash) if found is not None else (None, None)
    detail = {"reason": "checking", "email_hash": audit.email_fingerprint(email)}
    attempt = audit.record("sign_in.failed", user=user_id, detail=detail)
    if len(password) > current_app.config["TERMINUS_PASSWORD_MAX_LENGTH"]:
        dummy_verify()
        # Not counted (no reserve_attempt): the lock update below must match no row either.
        return _failed(attempt, user_id, "too_long", counted=False)
    allowed = lockout.reserve_attempt(user_id)  # commits, with the attempt
    if user_id is None or not allowed:
        dummy_verify()  # the password is not checked, but the time is spent the same
        return _failed(attempt, user_id, "unknown_email" if user_id is None else "locked")
    if not verify_password(password, stored):
        return _failed(attempt, user_id, "wrong_password")
    # Only a correct password earns a more specific answer.
    user = db.session.get_one(User, user_id)
    if not user.is_confirmed:
        outcome, reason = Outcome.UNCONFIRMED, "unconfirmed"
    elif password_blocked_by_sso(user):
        outcome, reason = Outcome.SSO_REQUIRED, "sso_enforced"
    elif mfa.has_second_factor(user):
        outcome, reason = Outcome.SECOND_FACTOR, "second_factor_required"
    else:
        outcome, reason = Outcome.SIGNED_IN, ""
    if outcome is Outcome.SECOND_FACTOR:
        # The count is not cleared by the password: it clears when the code passes. Otherwise
        # someone holding the password could enter it again after every few wrong codes. The
        # right password gives back only its own attempt, so the code step always has one.
        lockout.release_attempt(user.id)
        _complete(attempt, reason)
        if attempt is not None:
            attempt.kind = "sign_in.second_factor_required"
            attempt.actor_type, attempt.actor_id = "user", user.id
        if needs_rehash(stored):
            user.password_hash = hash_password(password)
        db.session.commit()
        return Result(outcome, user, reason, user_id)
    # Recorded as failed until the count is cleared: a parallel attempt may lock first.
    _complete(attempt, reason or "signing_in")
    if not lockout.record_success(user):  # commits, with the attempt so far
        _complete(attempt, "locked")
        db.session.commit()
        return Result(Outcome.FAILED, user, "locked", user_id)
    if outcome is Outcome.SIGNED_IN:
        _complete(attempt, "", signed_in=user)  # committed with the new session
    if needs_rehash(stored):
        # The cost setting changed since this hash was made: bring it up to date now that the
        # password is at hand (committed with the new session).
        user.password_hash = hash_password(password)
    return Result(outcome, user, reason, user_id)


def _failed(
    attempt: AuditEvent | None,
    user_id: str | None,
    reason: str,
    counted: bool = True,
) -> Result:
    _complete(attempt, reason)
    lockout.record_failure(user_id if counted else None)  # commits, with the attempt's outcome
    return Result(Outcome.FAILED, None, reason, user_id)


def _complete(attempt: AuditEvent | None, reason: str, signed_in: User | None = None) -> None:
    """Write the attempt's outcome into its audit row (flushed by the next commit)."""
    if attempt is None:
        return
    if signed_in is not None:
        attempt.kind = "sign_in.succeeded"
        attempt.actor_type, attempt.actor_id = "user", signed_in.id
        attempt.detail = {"method": "password"}
    else:
        attempt.detail = {**attempt.detail, "reason": reason}


class Factor(enum.Enum):
    PASSED = "passed"
    WRONG = "wrong"
    LOCKED = "locked"


WRONG_CODE = "That code is not right, or it was already used. Codes change every 30 seconds."
MALFORMED_CODE = "Enter the 6-digit code from your authenticator app, or a recovery code."
LOCKED_AT_CODE = (
    "Too many wrong attempts: signing in is locked for a while. We mailed you a link to unlock "
    "it now."
)


def check_second_factor(user: User, code: str, purpose: str, recovery: bool = True) -> Factor:
    """Check a code (already normalized, see mfa.normalize) at sign-in or re-authentication.

    Counted like a password: wrong codes lock the person out at the same threshold, and only
    a right code clears the count. An authenticator-app code works once; a recovery code is
    spent (only where ``recovery`` allows it). Commits.
    """
    kind_failed = "sign_in.failed" if purpose == "sign_in" else "reauthentication.failed"
    if not lockout.reserve_attempt(user.id):  # commits
        detail = {"reason": "locked", "for": purpose}
        audit.record(kind_failed, user=user, actor=user, detail=detail)
        lockout.record_failure(
            user.id, at_code=purpose == "sign_in"
        )  # locks (and mails) if the count just passed
        return Factor.LOCKED
    if mfa.is_totp_code(code):
        method, ok = "totp", mfa.use_totp(user, code)
    elif recovery and mfa.is_recovery_code(code):
        method, ok = "recovery_code", mfa.use_recovery_code(user, code)
    else:
        method, ok = "unknown", False
    if not ok:
        detail = {"reason": "wrong_code", "method": method, "for": purpose}
        audit.record(kind_failed, user=user, actor=user, detail=detail)
        lockout.record_failure(user.id, at_code=purpose == "sign_in")  # commits
        db.session.refresh(user)
        locked = user.locked_until is not None and user.locked_until > utcnow()
        return Factor.LOCKED if locked else Factor.WRONG
    if not lockout.record_success(user):  # commits, with the code spent
        return Factor.LOCKED
    if purpose == "sign_in":
        detail = {"method": "password", "second_factor": method}
        audit.record("sign_in.succeeded", user=user, actor=user, detail=detail)
    else:
        detail = {"for": purpose, "method": method}
        audit.record("reauthentication.succeeded", user=user, actor=user, detail=detail)
    return Factor.PASSED


def confirm_password(user: User, password: str, purpose: str) -> bool:
    """Check a signed-in person's password again (re-authentication, a password change).

    Counted like a sign-in: a session thief guessing here locks the person out as at the
    sign-in page. Commits the count; the caller commits what follows a success.
    """
    too_long = len(password) > current_app.config["TERMINUS_PASSWORD_MAX_LENGTH"]
    if too_long or not lockout.reserve_attempt(user.id):  # the count is committed here
        dummy_verify()
        ok = False
    else:
        ok = verify_password(password, user.password_hash)
    if not ok:
        audit.record("reauthentication.failed", user=user, actor=user, detail={"for": purpose})
        lockout.record_failure(user.id)  # commits
        return False
    if not lockout.record_success(user):  # commits
        return False
    audit.record("reauthentication.succeeded", user=user, actor=user, detail={"for": purpose})
    return True
