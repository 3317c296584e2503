"""Security headers on every response."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask
from flask import request
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def init_app(app: Flask) -> None:
    """Add the security and caching headers after every request.

    Flask runs after-request functions last-registered first; this one goes to the front of
    the list so that it runs after every other (Flask-Limiter's, which adds Retry-After to
    every answer of a limited route, included) and has the last word.
    """
    app.after_request_funcs.setdefault(None, []).insert(0, _add_headers)


# Sent unless the view set its own; built once, checked against the response in one pass.
_DEFAULTS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Same-origin only: tokens in our link paths never reach another site.
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
_HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def _add_headers(response: Response) -> Response:
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    for name, value in _DEFAULTS:
        if name.lower() not in present:
            headers.add(name, value)
    if request.is_secure and "strict-transport-security" not in present:
        headers.add(*_HSTS)
    if response.status_code < 400 and "retry-after" in present:
        # Flask-Limiter adds Retry-After to every answer of a limited route; it means
        # something only on a refusal.
        del headers["Retry-After"]
    if isinstance(request.routing_exception, RequestRedirect) and response.location:
        # The router's own redirects (/a/x to /a/x/, // to /) name the request's host and port:
        # keep only the path, so a Host header's port never reaches a Location.
        target = urlsplit(response.location)
        path = "/" + target.path.lstrip("/")  # never "//host", which a browser reads as a host
        response.location = path + (f"?{target.query}" if target.query else "")
    if request.endpoint != "static":
        # Pages show per-person data and carry CSRF tokens: no cache may keep them.
        if "cache-control" in present:
            headers["Cache-Control"] = "no-store"
        else:
            headers.add("Cache-Control", "no-store")
        if "vary" in present:
            response.vary.add("Cookie")
        else:
            headers.add("Vary", "Cookie")
    return response
