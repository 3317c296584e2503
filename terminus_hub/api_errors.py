"""The API's one error shape: {"error": {"code", "message"[, "fields"]}}."""

from __future__ import annotations

from flask import jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

REALM = 'Bearer realm="terminus"'

# HTTP status -> (code, message) for errors raised outside our views (routing, limits, size).
_BY_STATUS = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Send an API key: Authorization: Bearer thub_…"),
    403: ("forbidden", "Your role does not allow this."),
    404: ("not_found", "No such object in this account."),
    405: ("method_not_allowed", "This endpoint does not take that method."),
    413: ("payload_too_large", "The request body is too large."),
    429: ("rate_limited", "Too many requests. Wait, then try again."),
    500: ("internal_error", "Something went wrong on our side."),
    503: ("unavailable", "A service we depend on is not answering. Try again shortly."),
}


class ApiError(Exception):
    """An error the API answers with its JSON shape."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields
        self.headers = headers or {}


def unauthorized() -> ApiError:
    """No credentials at all."""
    return ApiError("unauthorized", _BY_STATUS[401][1], 401)


def invalid_token(message: str = "The API key is malformed, unknown or revoked.") -> ApiError:
    """A malformed, unknown, revoked or expired key."""
    return ApiError("invalid_token", message, 401)


def insufficient_scope(scope: str) -> ApiError:
    """A key without the scope an endpoint needs."""
    return ApiError(
        "insufficient_scope",
        f"This API key does not have the {scope} scope this needs.",
        403,
        headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'},
    )


def not_found() -> ApiError:
    """No such object in the caller's account."""
    return ApiError("not_found", _BY_STATUS[404][1], 404)


def validation_error(fields: dict[str, str]) -> ApiError:
    """One or more fields are wrong; each is named with what is wrong with it."""
    return ApiError("validation_error", "Some fields are not valid.", 422, fields)


def to_response(error: ApiError) -> Response:
    """Render an ApiError, with WWW-Authenticate on 401s."""
    body: dict[str, object] = {"code": error.code, "message": error.message}
    if error.fields is not None:
        body["fields"] = error.fields
    response = jsonify({"error": body})
    response.status_code = error.status
    if error.code == "unauthorized":
        response.headers["WWW-Authenticate"] = REALM
    elif error.code == "invalid_token":
        response.headers["WWW-Authenticate"] = f'{REALM}, error="invalid_token"'
    response.headers.update(error.headers)
    return response


def from_http_exception(exc: HTTPException) -> Response:
    """Render a routing, size, limit or server error in the API's shape."""
    status = exc.code or 500
    code, message = _BY_STATUS.get(status, _BY_STATUS[500] if status >= 500 else _BY_STATUS[400])
    return to_response(ApiError(code, message, status))
