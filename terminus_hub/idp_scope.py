"""A session started through an account's identity provider reaches only that account."""

from __future__ import annotations

from flask import has_request_context

from terminus_hub import user_sessions
from terminus_hub.models import Account


def sso_scope() -> str | None:
    """Return the account id this request's session is confined to, if any."""
    if not has_request_context():
        return None
    row = user_sessions.current_session()
    return row.sso_account_id if row is not None else None


def within_scope(accounts: list[Account]) -> list[Account]:
    """Keep only the accounts this session may reach."""
    scope = sso_scope()
    return [a for a in accounts if scope is None or a.id == scope]
