"""Who is calling the API: a bearer key (the Authorization header alone decides) or a session."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from functools import wraps
from typing import ParamSpec
from typing import TypeVar

from flask import g
from flask import request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import validate_csrf
from sqlalchemy import Connection
from sqlalchemy import bindparam
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from wtforms import ValidationError

from terminus_hub import key_state
from terminus_hub import metrics
from terminus_hub import user_sessions
from terminus_hub.api import rate_limit
from terminus_hub.api.bearer import key_hash
from terminus_hub.api_errors import ApiError
from terminus_hub.api_errors import insufficient_scope
from terminus_hub.api_errors import invalid_token
from terminus_hub.api_errors import unauthorized
from terminus_hub.core.keyring import SCOPES
from terminus_hub.core.membership import accounts_of
from terminus_hub.core.membership import membership_of
from terminus_hub.extensions import db
from terminus_hub.guards import ENROL_FIRST
from terminus_hub.guards import enrolment_required
from terminus_hub.idp_scope import within_scope
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import Account
from terminus_hub.models import AccountLike
from terminus_hub.models import ApiKey
from terminus_hub.models import Membership
from terminus_hub.models import User
from terminus_hub.models import utcnow

# A busy key writes last_used_at at most this often.
LAST_USED_EVERY = timedelta(minutes=1)
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSRF_REQUIRED = "Send the page's CSRF token in the X-CSRFToken header."
NO_ACCOUNT = "Open an account in the web app first, so the API knows which one you mean."
ADMIN_ONLY = "API keys cannot use this endpoint; an owner or admin must do it signed in."
ROLE_REQUIRED = "Only the account's owners and admins can do this."
EXPIRED = "This API key expired at {when}. Roll or create a key on the API keys page."

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class AccountRef:
    """What a key check knows of the key's account: enough for every key caller's view."""

    id: str
    slug: str
    name: str


@dataclass(frozen=True)
class KeyRef:
    """The key a request came with (never its token or hash)."""

    id: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class Caller:
    """The account an API request acts on, and through what.

    Session callers carry ORM rows; key callers carry plain references (AccountRef, KeyRef)
    read by one Core query, so a key check builds no ORM objects.
    """

    account: AccountLike
    auth: str  # "api_key" or "session"
    key: ApiKey | KeyRef | None = None
    user: User | None = None
    membership: Membership | None = None


def current_caller() -> Caller:
    """Return the caller established for this request."""
    caller: Caller = g.api_caller
    return caller


def authenticate() -> None:
    """Establish the caller before any API view runs (public endpoints are skipped)."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return
    header = request.headers.get("Authorization")
    if header is None:
        g.api_caller = _from_session()
        return
    started = time.perf_counter()
    try:
        g.api_caller = _from_key(header)
    finally:
        metrics.KEY_CHECK_SECONDS.observe(time.perf_counter() - started)


# One indexed lookup (the unique index on api_keys.token_hash) joining the account, as a Core
# statement (compiled once, cached): no ORM objects. On PostgreSQL it runs on its own pooled
# connection in autocommit, with no BEGIN/ROLLBACK around it.
# The key's scopes and expiry ride on the same row.
_KEY_SELECT = (
    select(
        ApiKey.id,
        ApiKey.last_used_at,
        ApiKey.scopes,
        ApiKey.expires_at,
        Account.id,
        Account.slug,
        Account.name,
    )
    .join(Account, Account.id == ApiKey.account_id)
    .where(ApiKey.token_hash == bindparam("token_hash"))
)


# The counters' children, looked up once.
_FROM_CACHE = metrics.KEY_CHECKS.labels(source="cache")
_FROM_DATABASE = metrics.KEY_CHECKS.labels(source="database")
_WITHOUT_REDIS = metrics.KEY_CHECKS.labels(source="no_redis")


def _from_key(header: str) -> Caller:
    # Judged by the header alone: cookies are ignored. Shape and checksum are checked before
    # any lookup; nothing here costs a password hash.
    token_hash = key_hash(header)
    if token_hash is None:
        raise invalid_token()
    now = utcnow()
    # Read by the rate limit's Redis call of this request; None without Redis.
    generation: str | None = g.get("key_generation")
    verified = key_state.CACHE.get(token_hash, generation) if generation is not None else None
    if verified is None:
        verified = _read_key(token_hash, now, generation)
        (_FROM_DATABASE if generation is not None else _WITHOUT_REDIS).inc()
    else:
        _FROM_CACHE.inc()
        if _touch_due(verified.last_used_at, now):
            # At most once a minute per key and worker: the one extra round trip.
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect() as conn:
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                    _touch(conn, verified.key_id, verified.last_used_at, now)
            else:
                _touch(db.session.connection(), verified.key_id, verified.last_used_at, now)
                db.session.commit()
            verified = replace(verified, last_used_at=now)
            key_state.CACHE.put(token_hash, verified)
    if verified.expires_at is not None and _expired(verified.expires_at, now):
        when = verified.expires_at.isoformat(timespec="seconds")
        raise invalid_token(EXPIRED.format(when=when))
    caller: Caller = verified.caller  # made once per read of the key, immutable
    return caller


def _read_key(token_hash: str, now: datetime, generation: str | None) -> key_state.Verified:
    """The key's row from the database (one indexed lookup), cached when Redis is there."""
    engine = db.engine
    touched = False
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            row = conn.execute(_KEY_SELECT, {"token_hash": token_hash}).one_or_none()
            if row is not None and not _expired(row.expires_at, now):
                touched = _touch(conn, row[0], row[1], now)
    else:
        # SQLite (development, tests): the session's own connection, one transaction.
        conn = db.session.connection()
        row = conn.execute(_KEY_SELECT, {"token_hash": token_hash}).one_or_none()
        if row is not None and not _expired(row.expires_at, now):
            touched = _touch(conn, row[0], row[1], now)
            if touched:
                db.session.commit()
    if row is None:
        # Well-formed but unknown: each costs a lookup, so they are also counted per address.
        rate_limit.count_unknown_key()
        raise invalid_token()
    key_id, last_used_at, scopes, expires_at, account_id, slug, name = row
    verified = key_state.Verified(
        key_id=key_id,
        last_used_at=now if touched else last_used_at,
        expires_at=expires_at,
        caller=Caller(
            account=AccountRef(id=account_id, slug=slug, name=name),
            auth="api_key",
            key=KeyRef(id=key_id, scopes=frozenset(scopes.split())),
        ),
        generation=generation or "",
        until=time.monotonic() + key_state.CACHE_SECONDS,
    )
    if generation is not None:
        key_state.CACHE.put(token_hash, verified)
    return verified


def _touch_due(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_EVERY


def _expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def _touch(conn: Connection, key_id: str, last_used_at: datetime | None, now: datetime) -> bool:
    """Record the key's use, at most once a minute; say whether a write was made."""
    if not _touch_due(last_used_at, now):
        return False
    # Conditional, so parallel requests on many instances write it once a minute at most.
    conn.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_EVERY),
        )
        .values(last_used_at=now)
    )
    return True


def _from_session() -> Caller:
    if not current_user.is_authenticated:
        raise unauthorized()
    if request.method in _UNSAFE_METHODS:
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except (CSRFError, ValidationError):
            raise ApiError("forbidden", CSRF_REQUIRED, 403) from None
    user = current_user._get_current_object()
    row = user_sessions.current_session()
    account = db.session.get(Account, row.account_id) if row and row.account_id else None
    if account is None:
        # With only one account there is nothing to choose.
        accounts = within_scope(accounts_of(user))
        account = accounts[0] if len(accounts) == 1 else None
    elif row is not None and row.sso_account_id not in (None, account.id):
        # A session started through an account's identity provider reaches only that account.
        account = None
    # Checked on every call, so a removed member loses access on the very next request.
    membership = membership_of(user, account) if account else None
    if account is None or membership is None:
        raise ApiError("forbidden", NO_ACCOUNT, 403)
    if enrolment_required(user, account, membership):
        raise ApiError("second_factor_required", ENROL_FIRST, 403)
    return Caller(account=account, auth="session", user=user, membership=membership)


def scope(needed: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let a key call the view only if it has the scope; sessions act with the member's role."""
    if needed not in SCOPES:
        raise ValueError(f"unknown scope {needed}")

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            caller = current_caller()
            # Fails closed: a key caller without readable scopes has none.
            if caller.auth == "api_key" and (
                not isinstance(caller.key, KeyRef) or needed not in caller.key.scopes
            ):
                raise insufficient_scope(needed)
            return view(*args, **kwargs)

        REQUIRED_SCOPES[f"{BLUEPRINT}.{view.__name__}"] = needed
        return wrapper

    return decorate


def admin_only(view: Callable[P, R]) -> Callable[P, R]:
    """Allow only an owner or admin signed in with a session; keys get 403 admin_only."""
    ADMIN_ONLY_ENDPOINTS.add(f"{BLUEPRINT}.{view.__name__}")

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        caller = current_caller()
        if caller.auth == "api_key":
            raise ApiError("admin_only", ADMIN_ONLY, 403)
        if caller.membership is None or caller.membership.role not in MANAGER_ROLES:
            raise ApiError("forbidden", ROLE_REQUIRED, 403)
        return view(*args, **kwargs)

    return wrapper


BLUEPRINT = rate_limit.API_BLUEPRINT
PUBLIC_ENDPOINTS = {f"{BLUEPRINT}.openapi_document"}
# Filled in by the decorators as the views are defined (the OpenAPI document reads them too).
REQUIRED_SCOPES: dict[str, str] = {}
ADMIN_ONLY_ENDPOINTS: set[str] = set()
