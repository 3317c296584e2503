"""Request bodies and query strings: every field checked, every problem named (422).

A body must be a JSON object (else 400); each view names the query parameters it takes, and
any other one is refused like an unknown body field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from typing import TypeVar

from flask import request

from terminus_hub.api.rate_limit import API_BLUEPRINT
from terminus_hub.api_errors import ApiError
from terminus_hub.api_errors import validation_error

NOT_JSON = "Send a JSON object with Content-Type: application/json."
UNKNOWN_FIELD = "Unknown field."
UNKNOWN_PARAMETER = "Unknown query parameter."
# What every list takes.
PAGING = ("limit", "cursor")
REQUIRED = "This field is required."
NUL_INSIDE = "Must not contain NUL characters."
MAX_DATA_BYTES = 64 * 1024
MAX_DATA_DEPTH = 32  # objects and arrays inside a record's data, counting data itself
# A 422 names the unknown fields it found, but never echoes a huge body back.
MAX_UNKNOWN_NAMED = 10
MAX_NAME_ECHOED = 64


V = TypeVar("V", bound=Callable[..., Any])
# endpoint -> the query parameters it takes; endpoints not named take none.
QUERY_PARAMETERS: dict[str, frozenset[str]] = {}


def takes_query(*names: str) -> Callable[[V], V]:
    """Name the query parameters a view takes (the others are refused before it runs)."""

    def decorate(view: V) -> V:
        QUERY_PARAMETERS[f"{API_BLUEPRINT}.{view.__name__}"] = frozenset(names)
        return view

    return decorate


def check_query_parameters() -> None:
    """Refuse, with 422, query parameters the endpoint does not take."""
    if not request.query_string or not request.args or request.endpoint is None:
        return
    allowed = QUERY_PARAMETERS.get(request.endpoint, frozenset())
    unknown = [name for name in request.args if name not in allowed]
    if unknown:
        raise validation_error(
            {_echoed(name): UNKNOWN_PARAMETER for name in unknown[:MAX_UNKNOWN_NAMED]}
        )


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
    if body is not None and not _encodable(body):
        body = None  # a lone surrogate ("\ud800") parses, but is no text anywhere else
    if not isinstance(body, dict):
        raise ApiError("bad_request", NOT_JSON, 400)
    unknown = [name for name in body if name not in allowed]
    if unknown:
        named = {_echoed(name): UNKNOWN_FIELD for name in unknown[:MAX_UNKNOWN_NAMED]}
        error = validation_error(named)
        if len(unknown) > MAX_UNKNOWN_NAMED:
            error.message = (
                f"Some fields are not valid: {len(unknown)} unknown fields, "
                f"the first {MAX_UNKNOWN_NAMED} named."
            )
        raise error
    return body


def _encodable(body: Any) -> bool:
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        return False
    return True


def _echoed(name: str) -> str:
    return name if len(name) <= MAX_NAME_ECHOED else name[: MAX_NAME_ECHOED - 1] + "…"


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
    problem = _problem_inside(value)
    if problem:
        return problem
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_DATA_BYTES:
        return f"Must be at most {MAX_DATA_BYTES // 1024} KiB as JSON ({size} bytes given)."
    return None


def _problem_inside(data: dict[str, Any]) -> str | None:
    """Walk the data without recursion (any depth is safe): too deep, or a NUL anywhere."""
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list) and depth > MAX_DATA_DEPTH:
            return f"Nest objects and arrays at most {MAX_DATA_DEPTH} levels deep."
        if isinstance(value, dict):
            if any("\x00" in key for key in value):
                return NUL_INSIDE
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and "\x00" in value:
            # PostgreSQL's jsonb cannot hold U+0000 in any key or string.
            return NUL_INSIDE
    return None


def check(problems: dict[str, str | None]) -> None:
    """Raise a validation error naming every field that has a problem."""
    found = {name: problem for name, problem in problems.items() if problem}
    if found:
        raise validation_error(found)
