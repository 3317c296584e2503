"""Getting back in: password reset links and the per-email limit on recovery mail."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import update

from terminus_hub import audit
from terminus_hub import links
from terminus_hub import user_sessions
from terminus_hub.core import lockout
from terminus_hub.core.proof import address_proved
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.models import User
from terminus_hub.outbox import may_mail
from terminus_hub.outbox import send_email
from terminus_hub.passwords import hash_password

FORGOT_SENT = (
    "If that email address has an account, we have sent it a link to reset the password. "
    "The link works for {minutes} minutes."
)
PASSWORD_CHANGED = "Your password is changed and every other session is signed out. Sign in now."


def request_reset(user: User | None) -> None:
    """Mail a reset link to a known user, within the per-address limit; nothing otherwise."""
    if user is None or not may_mail(user.email, "reset"):
        return
    url = links.external_url("auth.reset_password", token=links.make_token("reset", user))
    audit.record("password.reset_requested", user=user)
    send_email(
        user.email,
        "reset",
        user=user,
        url=url,
        minutes=current_app.config["TERMINUS_RESET_TOKEN_MINUTES"],
    )


def reset_password(user: User, new_password: str) -> bool:
    """Set a new password from a reset link; False if the link was used meanwhile (the caller
    commits on True).

    The update is conditional on the hash the link was issued for, so of two simultaneous
    resets with one link exactly one wins.
    """
    old_hash = user.password_hash
    condition = User.password_hash.is_(None) if old_hash is None else User.password_hash == old_hash
    result = db.session.execute(
        update(User)
        .where(User.id == user.id, condition)
        .values(password_hash=hash_password(new_password))
        .execution_options(synchronize_session=False)
    )
    if affected(result) != 1:
        db.session.rollback()
        return False
    db.session.refresh(user)
    address_proved(user, password_set_by_proof=True)  # the link proved the address
    lockout.clear(user)
    user_sessions.end_all_for(user, keep=user_sessions.current_session_of(user))
    send_email(user.email, "password_changed", user=user)
    audit.record("password.changed", user=user, actor=user, detail={"by": "reset_link"})
    return True
