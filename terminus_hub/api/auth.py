"""Who is calling the API: a bearer key (the Authorization header alone decides) or a session."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any
from typing import TypeVar

from flask import current_app
from flask import g
from flask import request
from flask import session
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import validate_csrf
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from wtforms import ValidationError

from terminus_hub import keys
from terminus_hub import sessions
from terminus_hub.accounts.membership import accounts_of
from terminus_hub.accounts.membership import membership_of
from terminus_hub.api.errors import ApiError
from terminus_hub.api.errors import invalid_token
from terminus_hub.api.errors import unauthorized
from terminus_hub.extensions import db
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import Account
from terminus_hub.models import ApiKey
from terminus_hub.models import Membership
from terminus_hub.models import User
from terminus_hub.models import utcnow

# A busy key writes last_used_at at most this often.
LAST_USED_EVERY = timedelta(minutes=1)
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_HEADER = 200

CSRF_REQUIRED = "Send the page's CSRF token in the X-CSRFToken header."
NO_ACCOUNT = "Open an account in the web app first, so the API knows which one you mean."
ADMIN_ONLY = "API keys cannot use this endpoint; an owner or admin must do it signed in."
ROLE_REQUIRED = "Only the account's owners and admins can do this."

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Caller:
    """The account an API request acts on, and through what."""

    account: Account
    auth: str  # "api_key" or "session"
    key: ApiKey | None = None
    user: User | None = None
    membership: Membership | None = None


def current_caller() -> Caller:
    """Return the caller established for this request."""
    return g.api_caller


def authenticate() -> None:
    """Establish the caller before any API view runs (public endpoints are skipped)."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return
    header = request.headers.get("Authorization")
    g.api_caller = _from_key(header) if header is not None else _from_session()


def _from_key(header: str) -> Caller:
    # Judged by the header alone: cookies are ignored. Shape and checksum are checked before
    # the single indexed lookup; nothing here costs a password hash.
    if len(header) > _MAX_HEADER or not header.isascii():
        raise invalid_token()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not keys.is_well_formed(token):
        raise invalid_token()
    row = db.session.execute(
        select(ApiKey, Account)
        .join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.token_hash == keys.token_hash(token))
    ).one_or_none()
    if row is None:
        raise invalid_token()
    key, account = row
    _touch(key)
    return Caller(account=account, auth="api_key", key=key)


def _touch(key: ApiKey) -> None:
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_EVERY:
        return
    # Conditional, so parallel requests on many instances write it once a minute at most.
    db.session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key.id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_EVERY),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _from_session() -> Caller:
    if not current_user.is_authenticated:
        raise unauthorized()
    if request.method in _UNSAFE_METHODS:
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except (CSRFError, ValidationError):
            raise ApiError("forbidden", CSRF_REQUIRED, 403) from None
    user = current_user._get_current_object()
    row = sessions.current_session()
    account = db.session.get(Account, row.account_id) if row and row.account_id else None
    if account is None:
        # With only one account there is nothing to choose.
        accounts = accounts_of(user)
        account = accounts[0] if len(accounts) == 1 else None
    # Checked on every call, so a removed member loses access on the very next request.
    membership = membership_of(user, account) if account else None
    if membership is None:
        raise ApiError("forbidden", NO_ACCOUNT, 403)
    return Caller(account=account, auth="session", user=user, membership=membership)


def admin_only(view: F) -> F:
    """Allow only an owner or admin signed in with a session; keys get 403 admin_only."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        caller = current_caller()
        if caller.auth == "api_key":
            raise ApiError("admin_only", ADMIN_ONLY, 403)
        if caller.membership is None or caller.membership.role not in MANAGER_ROLES:
            raise ApiError("forbidden", ROLE_REQUIRED, 403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def rate_limit_key() -> str:
    """Count API calls per key, per signed-in user, or per address for anonymous calls."""
    header = request.headers.get("Authorization")
    if header is not None:
        return "key:" + hashlib.sha256(header.encode("utf-8", "replace")).hexdigest()[:32]
    user_id = session.get("_user_id")
    if isinstance(user_id, str):
        return "user:" + user_id
    return "addr:" + (request.remote_addr or "")


def rate_limit() -> str:
    """Return the API's limit from settings."""
    return current_app.config["TERMINUS_API_RATE_LIMIT"]


PUBLIC_ENDPOINTS = {"api.openapi_document"}
