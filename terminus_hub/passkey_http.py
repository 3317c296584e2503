"""The JSON side of the passkey endpoints, shared by the sign-in and settings pages: reading
the browser's body, and answering a refusal."""

from __future__ import annotations

import json
from typing import Any

from flask import jsonify
from flask import request
from werkzeug.wrappers import Response

from terminus_hub.core.passkeys import MALFORMED
from terminus_hub.core.passkeys import MAX_BODY_BYTES
from terminus_hub.core.passkeys import PasskeyError

TOO_LARGE = "That is far larger than any passkey answer."
NEEDS_JSON = "Send the passkey answer as a JSON object (Content-Type: application/json)."


def body() -> dict[str, Any]:
    """The request's JSON object, or PasskeyError (too large, not JSON, not an object)."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise PasskeyError(TOO_LARGE, code="too_large", status=413)
    raw = request.get_data(cache=False)[: MAX_BODY_BYTES + 1]
    if len(raw) > MAX_BODY_BYTES:
        raise PasskeyError(TOO_LARGE, code="too_large", status=413)
    if request.mimetype != "application/json":
        raise PasskeyError(NEEDS_JSON, code="bad_request", status=415)
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nesting too deep is malformed
        raise PasskeyError(MALFORMED, code="bad_request") from None
    if not isinstance(parsed, dict):
        raise PasskeyError(MALFORMED, code="bad_request")
    return parsed


def refusal(exc: PasskeyError, **extra: str) -> Response:
    """The JSON answer for a refused passkey request: a code and a sentence for the person."""
    response = jsonify({"error": {"code": exc.code, "message": str(exc), **extra}})
    response.status_code = exc.status
    return response


def options(document: str) -> Response:
    """py_webauthn's options JSON, sent as is."""
    return Response(document, mimetype="application/json")
