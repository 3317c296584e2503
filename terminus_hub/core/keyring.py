"""Create, list, roll and revoke an account's API keys (the API, the web page and the CLI).

A key has scopes (what it may do) and may expire; both are read by the key check with the
key's row, so they cost no extra lookup.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update

from terminus_hub import api_tokens
from terminus_hub import audit
from terminus_hub import key_state
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import AccountLike
from terminus_hub.models import ApiKey
from terminus_hub.models import Membership
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.outbox import send_email

# What a key may do. A new scope is added at the end; clients must accept ones they do not know.
SCOPES = ("account:read", "workspaces:read", "workspaces:write", "records:read", "records:write")
SCOPE_LABELS = {
    "account:read": "Read the account, its keys",
    "workspaces:read": "Read workspaces",
    "workspaces:write": "Create, rename and delete workspaces",
    "records:read": "Read records",
    "records:write": "Create, change and delete records",
}
SCOPES_EMPTY = "Give the key at least one scope."
SCOPES_NOT_LIST = 'Send a list of scopes, such as ["records:read"].'
SCOPES_REPEATED = "Name each scope once: {scope} is repeated."
SCOPE_UNKNOWN = "{scope} is not a scope. Use any of: " + ", ".join(SCOPES) + "."

EXPIRY_DAYS_MAX = 366
EXPIRY_INVALID = f"Use a whole number of days from 1 to {EXPIRY_DAYS_MAX}, or leave it out."
GRACE_HOURS_MAX = 168
GRACE_HOURS_DEFAULT = 24
GRACE_INVALID = f"Use a whole number of hours from 0 to {GRACE_HOURS_MAX}."
KEY_GONE = "This key was revoked."
ROLL_REPEATED = "This key was already rolled: roll the key that replaced it instead."
ROLL_EXPIRED = "This key has expired, so it cannot be rolled. Create a new key instead."
# Owners and admins are told this long before a key expires.
EXPIRY_WARNING = timedelta(days=7)

NAME_MAX = 100
NAME_REQUIRED = "Give the key a name, such as “CI pipeline”."
NAME_TOO_LONG = f"Use at most {NAME_MAX} characters."
NAME_INVALID = "Use printable characters on one line."


def name_problem(name: object) -> str | None:
    """Say what is wrong with a key name, or None."""
    if not isinstance(name, str) or not name.strip():
        return NAME_REQUIRED
    if len(name.strip()) > NAME_MAX:
        return NAME_TOO_LONG
    if not name.isprintable():
        return NAME_INVALID
    return None


def scopes_problem(scopes: object) -> str | None:
    """Say what is wrong with a list of scopes, or None."""
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        return SCOPES_NOT_LIST
    if not scopes:
        return SCOPES_EMPTY
    seen: set[str] = set()
    for scope in scopes:
        if scope not in SCOPES:
            return SCOPE_UNKNOWN.format(scope=_quoted(scope))
        if scope in seen:
            return SCOPES_REPEATED.format(scope=scope)
        seen.add(scope)
    return None


def _quoted(value: str) -> str:
    shown = value if len(value) <= 40 else value[:39] + "…"
    return f"“{shown}”"


def whole_number_problem(value: object, low: int, high: int, message: str) -> str | None:
    """Say what is wrong with a number that must be a whole number in [low, high], or None."""
    # bool is an int in Python, and 7.0 is a float: neither is a whole number here.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return message
    return None


def expiry_problem(days: object) -> str | None:
    """Say what is wrong with expires_in_days (None means never), or None."""
    if days is None:
        return None
    return whole_number_problem(days, 1, EXPIRY_DAYS_MAX, EXPIRY_INVALID)


def scopes_of(key: ApiKey) -> list[str]:
    """A key's scopes, in the order of SCOPES."""
    held = set(key.scopes.split())
    return [scope for scope in SCOPES if scope in held]


def is_expired(key: ApiKey, now: datetime | None = None) -> bool:
    """Whether a key's time is up."""
    return key.expires_at is not None and key.expires_at <= (now or utcnow())


def create_key(
    account: AccountLike,
    name: str,
    creator: User | None,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
) -> tuple[ApiKey, str]:
    """Make a key for an account; return the row and the full token (never stored).

    Without scopes the key gets all of them; without expires_in_days it never expires.
    """
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    row, token = _new_key(account.id, name.strip(), scopes or list(SCOPES), expires_at, creator)
    audit.record(
        "api_key.created",
        account=account,
        detail={
            "key_id": row.id,
            "name": row.name,
            "scopes": scopes_of(row),
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return row, token


def _new_key(
    account_id: str,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    creator: User | None,
) -> tuple[ApiKey, str]:
    token = api_tokens.generate()
    row = ApiKey(
        account_id=account_id,
        name=name,
        token_hash=api_tokens.token_hash(token),
        prefix=api_tokens.display_prefix(token),
        created_by_id=creator.id if creator else None,
        scopes=" ".join(scope for scope in SCOPES if scope in scopes),
        expires_at=expires_at,
    )
    db.session.add(row)
    db.session.flush()
    return row, token


def _exists(key_id: str) -> bool:
    return db.session.scalar(select(ApiKey.id).where(ApiKey.id == key_id)) is not None


class KeyringError(ValueError):
    """A key change that cannot be made: the message says why."""


class KeyGone(KeyringError):
    """The key no longer exists (it was revoked)."""


def roll_key(key: ApiKey, grace_hours: int, actor: User | None) -> tuple[ApiKey, str]:
    """Replace a key by a new one with its name and scopes; the old one lives grace_hours more.

    A key that had a lifetime gives the new key the same lifetime from now. A key is rolled
    once: its end only moves earlier, and it never has two successors.
    """
    now = utcnow()
    # Taken first, so two rolls of one key at once happen one after the other.
    locked = db.session.scalar(
        select(ApiKey)
        .where(ApiKey.id == key.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if locked is None:
        raise KeyGone(KEY_GONE)  # revoked meanwhile
    if is_expired(key, now):
        raise KeyringError(ROLL_EXPIRED)
    # Rolled once; unless its successor was revoked since, which leaves it without one.
    if key.replaced_by_id is not None and _exists(key.replaced_by_id):
        raise KeyringError(ROLL_REPEATED)
    lifetime = key.expires_at - key.created_at if key.expires_at is not None else None
    new, token = _new_key(
        key.account_id, key.name, scopes_of(key), now + lifetime if lifetime else None, actor
    )
    ends = now + timedelta(hours=grace_hours)
    key.expires_at = min(ends, key.expires_at) if key.expires_at is not None else ends
    key.replaced_by_id = new.id
    # Its end moved: other instances' caches must read it again.
    key_state.changed_after_commit(db.session(), key.token_hash)
    # Its end was chosen just now: nobody needs a mail about it.
    key.expiry_notified_at = now
    db.session.flush()
    audit.record(
        "api_key.rolled",
        account=key.account_id,
        detail={
            "key_id": key.id,
            "new_key_id": new.id,
            "name": key.name,
            "old_key_expires_at": key.expires_at.isoformat(),
        },
    )
    return new, token


def keys_query(account: AccountLike) -> Select[Any]:
    """The account's keys, unordered (the API pages through them)."""
    return select(ApiKey).where(ApiKey.account_id == account.id)


def list_keys(account: AccountLike) -> list[ApiKey]:
    """Return an account's keys, newest first."""
    return list(
        db.session.scalars(keys_query(account).order_by(ApiKey.created_at.desc(), ApiKey.id))
    )


def get_key(account: AccountLike, key_id: str) -> ApiKey | None:
    """Return one of an account's keys, or None (other accounts' keys are not found)."""
    return db.session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account.id)
    )


def revoke_key(key: ApiKey) -> None:
    """Delete a key: its token fails from the very next request, on every instance."""
    db.session.execute(delete(ApiKey).where(ApiKey.id == key.id))
    key_state.changed_after_commit(db.session(), key.token_hash)
    audit.record(
        "api_key.revoked", account=key.account_id, detail={"key_id": key.id, "name": key.name}
    )


def notify_expiring() -> int:
    """Mail the owners and admins of each key that expires within seven days, once per key.

    Keys made to live seven days or less are left out: whoever made them chose that. Returns
    how many keys were announced. Safe to run from several machines at once.
    """
    now = utcnow()
    due = db.session.scalars(
        select(ApiKey).where(
            ApiKey.expires_at > now,
            ApiKey.expires_at <= now + EXPIRY_WARNING,
            ApiKey.expiry_notified_at.is_(None),
        )
    ).all()
    announced = 0
    base_url = current_app.config["TERMINUS_BASE_URL"]
    for key in due:
        # Claimed with a conditional UPDATE: a second run at the same time skips it.
        claimed = db.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key.id, ApiKey.expiry_notified_at.is_(None))
            .values(expiry_notified_at=now)
        )
        if not affected(claimed):
            db.session.rollback()
            continue
        if key.expires_at is None or key.expires_at - key.created_at <= EXPIRY_WARNING:
            db.session.commit()  # marked, so it is not looked at again
            continue
        account = key.account
        managers = db.session.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.account_id == account.id, Membership.role.in_(MANAGER_ROLES))
        )
        for person in managers:
            send_email(
                person.email,
                "api_key_expiring",
                user=person,
                account=account,
                key=key,
                keys_url=f"{base_url}/a/{account.slug}/api_keys",
            )
        db.session.commit()  # deliberate: one transaction per key, so one failure costs one
        announced += 1
    return announced
