"""A signed-in person's own details: their name and their password."""

from __future__ import annotations

from terminus_hub import audit
from terminus_hub import user_sessions
from terminus_hub.models import User
from terminus_hub.outbox import send_email
from terminus_hub.passwords import hash_password


def rename_person(user: User, name: str) -> None:
    """Set the person's display name (already checked by the form); the caller commits."""
    if user.name != name:
        audit.record("user.renamed", user=user, actor=user)
        user.name = name


def change_password(user: User, new_password: str) -> None:
    """Set a new password: every other session ends and a notice goes to the address.

    The current password was checked first (signin.confirm_password); the caller commits.
    """
    user.password_hash = hash_password(new_password)
    user_sessions.end_all_for(user, keep=user_sessions.current_session_of(user))
    send_email(user.email, "password_changed", user=user)
    audit.record("password.changed", user=user, actor=user, detail={"by": "settings"})
