"""Where the email step sends a person: their identity provider, or the password step."""

from __future__ import annotations

from terminus_hub.models import User


def sso_login_url(email: str) -> str | None:
    """Return the IdP sign-in URL when the email's domain enforces SSO, else None.

    The decision depends on the domain alone, never on whether the person exists. No account
    can enforce SSO until SSO connections are configurable, so every email gets a password.
    """
    return None


def password_blocked_by_sso(user: User) -> bool:
    """Say whether SSO enforcement forbids this person a password (owners and admins keep it)."""
    return False
