"""Decide a password sign-in; the contract's messages live here."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from terminus_hub.addresses import try_canonical_email
from terminus_hub.core import lockout
from terminus_hub.core.routing import password_blocked_by_sso
from terminus_hub.extensions import db
from terminus_hub.models import User
from terminus_hub.passwords import dummy_verify
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


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    user: User | None = None
    reason: str = ""  # internal only (audit log): never shown, never different on screen


def find_user(email: str) -> User | None:
    """Return the person with this email (any case or spacing), or None."""
    canonical = try_canonical_email(email)
    if canonical is None:
        return None
    return db.session.scalar(select(User).where(User.email == canonical))


def authenticate(email: str, password: str) -> Result:
    """Check an email and password, paying for one password check whatever the outcome.

    Wrong password, unknown email and locked user all come back as FAILED.
    """
    user = find_user(email)
    too_long = len(password) > current_app.config["TERMINUS_PASSWORD_MAX_LENGTH"]
    if user is None or too_long:
        dummy_verify()
        return Result(Outcome.FAILED, user, "unknown_email" if user is None else "too_long")
    if not lockout.reserve_attempt(user):
        dummy_verify()  # locked: the password is not checked, but the time is spent the same
        return Result(Outcome.FAILED, user, "locked")
    if not verify_password(password, user.password_hash):
        lockout.record_failure(user)
        return Result(Outcome.FAILED, user, "wrong_password")
    if not lockout.record_success(user):
        return Result(Outcome.FAILED, user, "locked")
    # Only a correct password earns a more specific answer.
    if not user.is_confirmed:
        return Result(Outcome.UNCONFIRMED, user, "unconfirmed")
    if password_blocked_by_sso(user):
        return Result(Outcome.SSO_REQUIRED, user, "sso_enforced")
    return Result(Outcome.SIGNED_IN, user)
