"""Where the email step sends a person: their identity provider, or the password step."""

from __future__ import annotations

from flask import url_for

from terminus_hub.core.sso_connections import connection_for_email
from terminus_hub.core.sso_connections import password_blocked
from terminus_hub.models import User


def sso_login_url(email: str, next_path: str | None = None) -> str | None:
    """Return the IdP sign-in URL when the email's domain enforces SSO, else None.

    The decision depends on the domain alone, never on whether the person exists.
    """
    connection = connection_for_email(email)
    if connection is None or not connection.enforced:
        return None
    return url_for("sso.login", slug=connection.account.slug, next=next_path or None)


def password_blocked_by_sso(user: User) -> bool:
    """Say whether SSO enforcement forbids this person a password (owners and admins keep it)."""
    return password_blocked(user)
