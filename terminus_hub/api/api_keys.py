"""The account's API keys: keys and members may read them; owner and admin sessions manage them."""

from __future__ import annotations

from typing import Any

from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from terminus_hub import reauth
from terminus_hub.api import validation
from terminus_hub.api.auth import admin_only
from terminus_hub.api.auth import current_caller
from terminus_hub.api.auth import scope
from terminus_hub.api.blueprint import bp
from terminus_hub.api.idempotency import idempotent
from terminus_hub.api.pagination import paginate
from terminus_hub.api.validation import PAGING
from terminus_hub.api.validation import takes_query
from terminus_hub.api_errors import not_found
from terminus_hub.api_errors import validation_error
from terminus_hub.core import keyring
from terminus_hub.extensions import db
from terminus_hub.models import ApiKey


def serialize(key: ApiKey) -> dict[str, Any]:
    """Return a key's listing fields: never the token or its hash."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": keyring.scopes_of(key),
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "replaced_by": key.replaced_by_id,
    }


def _created(row: ApiKey, token: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    location = url_for("api.get_api_key", key_id=row.id)
    return {**serialize(row), "key": token}, 201, {"Location": location}


def _key_or_404(key_id: str) -> ApiKey:
    key = keyring.get_key(current_caller().account, key_id)
    if key is None:
        raise not_found()
    return key


@bp.get("/api_keys")
@takes_query(*PAGING)
@scope("account:read")
def list_api_keys() -> dict[str, Any]:
    """List the account's keys, oldest first."""
    return paginate(keyring.keys_query(current_caller().account), ApiKey, serialize)


@bp.get("/api_keys/<key_id>")
@scope("account:read")
def get_api_key(key_id: str) -> dict[str, Any]:
    """Show one key (never its token)."""
    return serialize(_key_or_404(key_id))


@bp.post("/api_keys")
@admin_only
@reauth.required
@idempotent
def create_api_key() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a key; the answer holds the full token, this once."""
    body = validation.json_object({"name", "scopes", "expires_in_days"})
    validation.check(
        {
            "name": keyring.name_problem(body.get("name")),
            "scopes": keyring.scopes_problem(body["scopes"]) if "scopes" in body else None,
            "expires_in_days": keyring.expiry_problem(body.get("expires_in_days")),
        }
    )
    caller = current_caller()
    row, token = keyring.create_key(
        caller.account,
        body["name"],
        caller.user,
        scopes=body.get("scopes"),
        expires_in_days=body.get("expires_in_days"),
    )
    db.session.commit()
    return _created(row, token)


@bp.post("/api_keys/<key_id>/roll")
@admin_only
@reauth.required
@idempotent
def roll_api_key(key_id: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Make a new key with the same name and scopes; the old one lives expires_in_hours more."""
    key = _key_or_404(key_id)
    body = validation.json_object({"expires_in_hours"}) if _has_body() else {}
    hours = body.get("expires_in_hours", keyring.GRACE_HOURS_DEFAULT)
    validation.check(
        {
            "expires_in_hours": keyring.whole_number_problem(
                hours, 0, keyring.GRACE_HOURS_MAX, keyring.GRACE_INVALID
            )
        }
    )
    try:
        row, token = keyring.roll_key(key, hours, current_caller().user)
    except keyring.KeyGone:
        db.session.rollback()
        raise not_found() from None
    except keyring.KeyringError as exc:
        db.session.rollback()
        raise validation_error({"key_id": str(exc)}) from None
    db.session.commit()
    return _created(row, token)


def _has_body() -> bool:
    return bool(request.get_data(cache=True))


@bp.delete("/api_keys/<key_id>")
@admin_only
@reauth.required
def delete_api_key(key_id: str) -> Response:
    """Revoke a key: its token fails from the very next request."""
    keyring.revoke_key(_key_or_404(key_id))
    db.session.commit()
    return Response(status=204)
