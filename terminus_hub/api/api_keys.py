"""The account's API keys: anyone may list; only an owner or admin session creates or deletes."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from terminus_hub import reauth
from terminus_hub.api import validation
from terminus_hub.api.auth import admin_only
from terminus_hub.api.auth import current_caller
from terminus_hub.api.blueprint import bp
from terminus_hub.api_errors import not_found
from terminus_hub.core import keyring
from terminus_hub.extensions import db
from terminus_hub.models import ApiKey


def serialize(key: ApiKey) -> dict[str, Any]:
    """Return a key's listing fields: never the token or its hash."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }


@bp.get("/api_keys")
def list_api_keys() -> dict[str, Any]:
    """List the account's keys, newest first."""
    rows = keyring.list_keys(current_caller().account)
    return {"data": [serialize(row) for row in rows], "next_cursor": None}


@bp.post("/api_keys")
@admin_only
@reauth.required
def create_api_key() -> tuple[dict[str, Any], int]:
    """Create a key; the answer holds the full token, this once."""
    body = validation.json_object({"name"})
    validation.check({"name": keyring.name_problem(body.get("name"))})
    caller = current_caller()
    row, token = keyring.create_key(caller.account, body["name"], caller.user)
    db.session.commit()
    return {**serialize(row), "key": token}, 201


@bp.delete("/api_keys/<key_id>")
@admin_only
@reauth.required
def delete_api_key(key_id: str) -> Response:
    """Revoke a key: its token fails from the very next request."""
    key = keyring.get_key(current_caller().account, key_id)
    if key is None:
        raise not_found()
    keyring.revoke_key(key)
    db.session.commit()
    return Response(status=204)
