"""The app's log: plain text, or one JSON object per line (TERMINUS_LOG_FORMAT=json).

Every request gets an id (the caller's ``X-Request-ID`` when it is a sane one, else a new
one), sent back in ``X-Request-ID``. In JSON mode every line carries it, and each request
ends with one ``request`` line: route pattern (never the path, which may hold a link's
token), method, status, duration, and the account and user when they are known.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TextIO
from typing import cast

from flask import Flask
from flask import g
from flask import has_request_context
from flask import request
from flask.logging import default_handler
from flask.logging import wsgi_errors_stream
from werkzeug.wrappers import Response

from terminus_hub.core.membership import SLUG_PATTERN
from terminus_hub.models import new_public_id
from terminus_hub.settings import SettingsError

FORMATS = ("text", "json")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A new request's id: req_ and 80 random bits, like the other public ids.
_new_request_id = new_public_id("req")
_REQUEST_LOG = logging.getLogger("terminus_hub.requests")
# What a record carries besides its own fields: logging's attributes, not data to show.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # ASCII only: U+2028 and friends would split the line for some readers.
        return json.dumps(entry, default=str)


def _json_handler() -> logging.Handler:
    # Where Flask's own handler writes: the server's error stream in a request, else stderr.
    stream = cast(TextIO, wsgi_errors_stream)  # a proxy to the stream of the moment
    handler: logging.Handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.set_name("terminus_hub.json")
    return handler


def init_app(app: Flask) -> None:
    """Set the log format from settings and give each request its id."""
    chosen = app.config["TERMINUS_LOG_FORMAT"]
    if chosen not in FORMATS:
        raise SettingsError(f"TERMINUS_LOG_FORMAT must be text or json, not {chosen!r}")
    for logger in (app.logger, logging.getLogger("flask-limiter")):
        for handler in list(logger.handlers):
            if handler is default_handler or handler.get_name() == "terminus_hub.json":
                logger.removeHandler(handler)
        logger.addHandler(_json_handler() if chosen == "json" else default_handler)
    app.before_request(_start)
    app.after_request(_finish if chosen == "json" else _send_id)


def _start() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.fullmatch(given) else _new_request_id()
    g.request_started = time.perf_counter()


def _send_id(response: Response) -> Response:
    if "request_id" in g:
        response.headers["X-Request-ID"] = g.request_id
    return response


def _finish(response: Response) -> Response:
    if "request_started" in g:
        fields: dict[str, Any] = {
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule is not None else None,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 2),
            "account": _account(),
            "user": _user_id(),
        }
        _REQUEST_LOG.info("request", extra=fields)
    return _send_id(response)


def _account() -> str | None:
    caller = g.get("api_caller")
    if caller is not None:
        return str(caller.account.id)
    slug = (request.view_args or {}).get("slug")
    return slug if isinstance(slug, str) and SLUG_PATTERN.fullmatch(slug) else None


def _user_id() -> str | None:
    # Only a user this request already loaded: logging never costs a query.
    user = g.get("_login_user")
    return str(user.id) if user is not None and getattr(user, "is_authenticated", False) else None
