"""Cursor pagination over (created_at, id) and the {"data", "next_cursor", "has_more"} shape."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import request
from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import or_

from terminus_hub.api_errors import validation_error
from terminus_hub.extensions import db

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
LIMIT_INVALID = f"Use a whole number from 1 to {MAX_LIMIT}."
CURSOR_INVALID = "Use the next_cursor value of the previous page."


def _encode(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        when = datetime.fromisoformat(created)
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise validation_error({"cursor": CURSOR_INVALID}) from None
    if when.tzinfo is None or not isinstance(row_id, str) or len(row_id) > 32:
        raise validation_error({"cursor": CURSOR_INVALID})
    return when, row_id


def page_limit() -> int:
    """Read ?limit= (1–100, default 50) or raise a validation error."""
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise validation_error({"limit": LIMIT_INVALID})
    return int(raw)


def paginate(
    query: Select[Any], model: Any, serialize: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """Run a query page by page, oldest first, and answer with the list shape."""
    limit = page_limit()
    cursor = request.args.get("cursor")
    if cursor:
        if len(cursor) > 200:
            raise validation_error({"cursor": CURSOR_INVALID})
        when, row_id = _decode(cursor)
        query = query.where(
            or_(model.created_at > when, and_(model.created_at == when, model.id > row_id))
        )
    rows: Sequence[Any] = db.session.scalars(
        query.order_by(model.created_at, model.id).limit(limit + 1)
    ).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = _encode(rows[-1].created_at, rows[-1].id)
    return {
        "data": [serialize(row) for row in rows],
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }
