"""The end of a password sign-in: the second-factor step when the person has one, then the
session, and the way to enrolment when an account's policy asks for a second factor."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import flash
from flask import session
from flask import url_for
from werkzeug.wrappers import Response

from terminus_hub import htmx
from terminus_hub import user_sessions
from terminus_hub.core import mfa
from terminus_hub.core.membership import accounts_of
from terminus_hub.extensions import db
from terminus_hub.models import User
from terminus_hub.models import utcnow

# The step between a right password and the code: no session exists until the code passes.
PENDING_KEY = "mfa_pending"
PENDING_FOR = timedelta(minutes=5)
ENROL_FIRST = (
    "An account you manage asks its owners and admins to use a second factor. Set up an "
    "authenticator app to go on."
)


def home_of(user: User) -> str:
    """Where a person lands after signing in: their one account, or the picker."""
    accounts = accounts_of(user)
    if len(accounts) == 1:
        return url_for("accounts.home", slug=accounts[0].slug)
    return url_for("accounts.picker")


def finish(user: User, next_path: str | None, notice: tuple[str, str] | None = None) -> Response:
    """Start the session and go on: to next, home, or first to enrolment if a policy asks."""
    return htmx.redirect_to(complete(user, next_path, notice))


def complete(user: User, next_path: str | None, notice: tuple[str, str] | None = None) -> str:
    """Start the session (committed) and say where to go: next, home, or enrolment first.

    A notice (message, category) is shown on the next page: given here, because starting the
    session clears everything the browser's pre-sign-in session held.
    """
    target = next_path or home_of(user)
    user_sessions.start(user)
    if notice is not None:
        flash(*notice)
    if not mfa.has_second_factor(user) and mfa.policy_applies_anywhere(user):
        flash(ENROL_FIRST, "info")
        target = url_for("accounts.totp_page", next=target)
    db.session.commit()
    return target


def _fingerprint(user: User) -> str:
    # A password reset (or change) between the two steps ends the step.
    return hashlib.sha256((user.password_hash or "").encode("utf-8")).hexdigest()[:16]


def begin_second_factor(user: User, next_path: str | None) -> Response:
    """Remember, in the signed cookie only, that this browser passed the password step."""
    session[PENDING_KEY] = {
        "user": user.id,
        "at": utcnow().timestamp(),
        "next": next_path or "",
        "pw": _fingerprint(user),
    }
    return htmx.redirect_to(url_for("auth.sign_in_mfa"))


def pending() -> tuple[User, str | None] | None:
    """Return the person waiting at the second-factor step and their next, or None (expired)."""
    step = session.get(PENDING_KEY)
    if not isinstance(step, dict):
        return None
    at, user_id = step.get("at"), step.get("user")
    if not isinstance(at, int | float) or not isinstance(user_id, str):
        return None
    if utcnow().timestamp() - at > PENDING_FOR.total_seconds():
        return None
    user = db.session.get(User, user_id)
    if user is None or step.get("pw") != _fingerprint(user) or not mfa.has_second_factor(user):
        return None
    next_path = step.get("next")
    return user, next_path if isinstance(next_path, str) and next_path else None


def forget_pending() -> None:
    """End the second-factor step (expired, locked, or done)."""
    session.pop(PENDING_KEY, None)
