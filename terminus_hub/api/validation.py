"""Request bodies: a JSON object or 400; each field checked, every problem named (422)."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import request

from terminus_hub.api_errors import ApiError
from terminus_hub.api_errors import validation_error

NOT_JSON = "Send a JSON object with Content-Type: application/json."
UNKNOWN_FIELD = "Unknown field."
REQUIRED = "This field is required."
MAX_DATA_BYTES = 64 * 1024


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def json_object(allowed: set[str]) -> dict[str, Any]:
    """Return the body as a dict, refusing non-objects (400) and unknown fields (422).

    Parsed strictly: NaN, Infinity and numbers too large for a float are not JSON, and a body
    nested deeper than Python can parse is refused rather than crashing.
    """
    body = None
    if request.is_json:
        try:
            body = json.loads(
                request.get_data(cache=True),
                parse_constant=_refuse_constant,
                parse_float=_finite_float,
            )
        except (ValueError, RecursionError):
            body = None
    if not isinstance(body, dict):
        raise ApiError("bad_request", NOT_JSON, 400)
    unknown = {name: UNKNOWN_FIELD for name in body if name not in allowed}
    if unknown:
        raise validation_error(unknown)
    return body


def text(value: Any, *, max_length: int) -> str | None:
    """Say what is wrong with a one-line text value (None when fine)."""
    if not isinstance(value, str):
        return "Must be a string."
    stripped = value.strip()
    if not stripped:
        return "Must not be empty."
    if len(stripped) > max_length:
        return f"Use at most {max_length} characters."
    if not stripped.isprintable():
        return "Use printable characters on one line."
    return None


def json_data(value: Any) -> str | None:
    """Say what is wrong with a record's data (None when fine)."""
    if not isinstance(value, dict):
        return "Must be a JSON object."
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_DATA_BYTES:
        return f"Must be at most {MAX_DATA_BYTES // 1024} KiB as JSON ({size} bytes given)."
    if _has_nul(value):
        return "Must not contain NUL characters."
    return None


def _has_nul(value: Any) -> bool:
    # PostgreSQL's jsonb cannot hold U+0000 in any key or string.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def check(problems: dict[str, str | None]) -> None:
    """Raise a validation error naming every field that has a problem."""
    found = {name: problem for name, problem in problems.items() if problem}
    if found:
        raise validation_error(found)
