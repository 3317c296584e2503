"""Emailed-link tokens: signed, expiring, and bound to the state they change."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Config
from flask import current_app
from flask import url_for
from itsdangerous import BadData
from itsdangerous import URLSafeTimedSerializer

from terminus_hub.extensions import db
from terminus_hub.models import User

# Longer than any token we make; anything longer is refused before it is parsed.
MAX_TOKEN_LENGTH = 400

INVALID_LINK = "This link is invalid, has expired or has already been used."


def _confirm_state(user: User) -> str:
    # Dies once the email is confirmed or changes.
    return f"{user.email}|{user.confirmed_at is not None}"


def _reset_state(user: User) -> str:
    # Dies once the password changes, the email changes or the person signs in.
    last = user.last_sign_in_at.isoformat() if user.last_sign_in_at else ""
    return f"{user.email}|{user.password_hash}|{last}"


def _unlock_state(user: User) -> str:
    # Bound to one lock: dies once that lock is cleared or replaced by another.
    return f"{user.locked_at.isoformat() if user.locked_at else 'unlocked'}"


def _email_change_state(user: User) -> str:
    # Dies once the email changes (so the link works once, even if the address later changes
    # back: each change sets confirmed_at anew) or the password changes.
    confirmed = user.confirmed_at.isoformat() if user.confirmed_at else ""
    return f"{user.email}|{confirmed}|{user.password_hash}"


_PURPOSES: dict[str, tuple[Callable[[User], str], Callable[[Config], int]]] = {
    "email_change": (_email_change_state, lambda c: c["TERMINUS_CONFIRM_TOKEN_HOURS"] * 3600),
    "confirm": (_confirm_state, lambda c: c["TERMINUS_CONFIRM_TOKEN_HOURS"] * 3600),
    "reset": (_reset_state, lambda c: c["TERMINUS_RESET_TOKEN_MINUTES"] * 60),
    "unlock": (_unlock_state, lambda c: 24 * 3600),
}


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"thub-{purpose}")


def _fingerprint(purpose: str, user: User) -> str:
    state, _ = _PURPOSES[purpose]
    return hashlib.sha256(state(user).encode("utf-8")).hexdigest()[:32]


def make_token(purpose: str, user: User, data: str = "") -> str:
    """Sign a token for one purpose that names the user, the state it may change and data."""
    return _serializer(purpose).dumps([user.id, _fingerprint(purpose, user), data])


def load_user(purpose: str, token: str) -> User | None:
    """Return the user a token names while it is unexpired and its state is unchanged."""
    found = load_user_and_data(purpose, token)
    return found[0] if found is not None else None


def load_user_and_data(purpose: str, token: str) -> tuple[User, str] | None:
    """Return the user a token names and the data it carries, under load_user's rules."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    _, max_age = _PURPOSES[purpose]
    try:
        payload = _serializer(purpose).loads(token, max_age=max_age(current_app.config))
    except (BadData, ValueError, TypeError):
        return None
    if not isinstance(payload, list) or len(payload) not in (2, 3):  # 2: made before data
        return None
    user_id, fingerprint, data = (*payload, "") if len(payload) == 2 else payload
    if not all(isinstance(item, str) for item in (user_id, fingerprint, data)):
        return None
    user = db.session.get(User, user_id)
    if user is None or _fingerprint(purpose, user) != fingerprint:
        return None
    return user, data


def external_url(endpoint: str, **values: Any) -> str:
    """Build an absolute link for an email from TERMINUS_BASE_URL, never from a Host header."""
    return str(current_app.config["TERMINUS_BASE_URL"]) + url_for(endpoint, **values)


def api_base() -> str:
    """The API's absolute base URL, as software outside should call it."""
    prefix = current_app.blueprints["api"].url_prefix or ""
    return str(current_app.config["TERMINUS_BASE_URL"]) + prefix
