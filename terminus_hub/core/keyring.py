"""Create, list and revoke an account's API keys (shared by the API, the web page and the CLI)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy import select

from terminus_hub import api_tokens
from terminus_hub import audit
from terminus_hub.extensions import db
from terminus_hub.models import AccountLike
from terminus_hub.models import ApiKey
from terminus_hub.models import User

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


def create_key(account: AccountLike, name: str, creator: User | None) -> tuple[ApiKey, str]:
    """Make a key for an account; return the row and the full token (never stored)."""
    token = api_tokens.generate()
    row = ApiKey(
        account_id=account.id,
        name=name.strip(),
        token_hash=api_tokens.token_hash(token),
        prefix=api_tokens.display_prefix(token),
        created_by_id=creator.id if creator else None,
    )
    db.session.add(row)
    db.session.flush()
    audit.record("api_key.created", account=account, detail={"key_id": row.id, "name": row.name})
    return row, token


def list_keys(account: AccountLike) -> list[ApiKey]:
    """Return an account's keys, newest first."""
    return list(
        db.session.scalars(
            select(ApiKey)
            .where(ApiKey.account_id == account.id)
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
        )
    )


def get_key(account: AccountLike, key_id: str) -> ApiKey | None:
    """Return one of an account's keys, or None (other accounts' keys are not found)."""
    return db.session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account.id)
    )


def revoke_key(key: ApiKey) -> None:
    """Delete a key: its token fails from the very next request."""
    db.session.execute(delete(ApiKey).where(ApiKey.id == key.id))
    audit.record(
        "api_key.revoked", account=key.account_id, detail={"key_id": key.id, "name": key.name}
    )
