"""App-level error pages: a page, an htmx fragment, never a traceback."""

from __future__ import annotations

import logging
import time

from flask import Flask
from flask import g
from flask import make_response
from flask import render_template
from flask import request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.exceptions import SecurityError
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.wrappers import Response

from terminus_hub import api_errors
from terminus_hub.api_errors import ApiError
from terminus_hub.extensions import db
from terminus_hub.extensions import limiter
from terminus_hub.extensions import login_manager
from terminus_hub.htmx import is_htmx

log = logging.getLogger(__name__)

TITLES = {
    400: "That request could not be understood",
    403: "You can’t do that here",
    404: "Page not found",
    405: "That method is not allowed here",
    413: "That request is too large",
    429: "Too many requests",
    500: "Something went wrong on our side",
    503: "Terminus Hub is briefly unavailable",
}
RETRY_IN = "Too many attempts. Try again in {seconds} second{s}."
MESSAGES = {
    400: "Go back, reload the page and try again.",
    403: "Your role does not allow this. Ask an owner or admin of the account.",
    404: "The page you asked for does not exist, or you do not have access to it.",
    405: "Go back and use the form on the page.",
    413: "Send less data at once.",
    429: "Wait a moment, then try again.",
    500: "We have been told about it. Try again in a moment.",
    503: "A service we depend on is not answering. Try again in a minute.",
}
CSRF_MESSAGE = "Your form expired or came from another site. Reload the page and try again."
UNKNOWN_HOST = "Bad request: this site does not answer to that host name.\n"


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into a page, a fragment or API JSON."""
    app.register_error_handler(ApiError, api_errors.to_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(SecurityError, _unknown_host)
    for exc in (OperationalError, InterfaceError, PoolTimeoutError):
        app.register_error_handler(exc, _database_down)
    app.register_error_handler(Exception, _unexpected)


def render_error(
    status: int, message: str | None = None, retry_after: int | None = None
) -> Response:
    """Render the error page; for htmx, a notice beside the form, which stays as it was."""
    _settle_viewer()
    text = message or MESSAGES.get(status, MESSAGES[500])
    if status == 429 and retry_after is None:
        retry_after = _retry_after()
    if status == 429 and retry_after:
        text = RETRY_IN.format(seconds=retry_after, s="" if retry_after == 1 else "s")
    context = {
        "status": status,
        "title": TITLES.get(status, "Something went wrong"),
        "message": text,
    }
    if is_htmx():
        # Nothing the person typed is replaced: the notice goes to the page's notice area
        # (out of band), and focus stays where it was.
        response = make_response(render_template("errors/_error.html", **context), status)
        response.headers["HX-Reswap"] = "none"
    else:
        response = make_response(render_template("errors/error.html", **context), status)
    response.vary.add("HX-Request")
    return response


def _retry_after() -> int | None:
    """Seconds until the limit that refused this request lets one through again."""
    limit = getattr(limiter, "current_limit", None)
    reset_at = getattr(limit, "reset_at", None)
    return max(1, int(reset_at - time.time())) if isinstance(reset_at, int | float) else None


def _settle_viewer() -> None:
    """Load the signed-in person now, or show the page as to a visitor if the database can't.

    Every template runs Flask-Login's context processor, which loads the person; with the
    database failing, that load would raise again inside the error handler (a bare 500).
    """
    try:
        current_user._get_current_object()
    except SQLAlchemyError:
        db.session.rollback()
        g._login_user = login_manager.anonymous_user()


def _is_api() -> bool:
    # By path, not blueprint: a routing 404 or 405 has no blueprint.
    return request.path.startswith("/api/")


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    retry_after = getattr(exc, "retry_after", None)
    response = (
        api_errors.from_http_exception(exc)
        if _is_api()
        else render_error(status, retry_after=retry_after if isinstance(retry_after, int) else None)
    )
    valid_methods = getattr(exc, "valid_methods", None)
    if status == 405 and valid_methods:
        response.headers["Allow"] = ", ".join(valid_methods)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _unknown_host(exc: SecurityError) -> Response:
    # A Host header that is not this site's: no page (its links would need the URL map,
    # which Flask does not build for an untrusted host), just a plain 400.
    log.info("refused a request for an unknown host")
    response = Response(UNKNOWN_HOST, status=400, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


def _csrf_error(exc: CSRFError) -> Response:
    if _is_api():
        return _http_error(exc)
    return render_error(400, CSRF_MESSAGE)


def _database_down(exc: Exception) -> Response:
    db.session.rollback()
    # The page for an outage is the same for everyone: no top bar whose queries would fail
    # again inside this handler (a bare 500), and no second wait on a slow database.
    g._login_user = login_manager.anonymous_user()
    log.error("database unavailable: %s", type(exc).__name__)
    return _http_error(ServiceUnavailable())


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    db.session.rollback()
    log.exception("unhandled error")
    return _http_error(InternalServerError())
