"""Decide what to believe about a request, and refuse input no page can store."""

from __future__ import annotations

from flask import Flask
from flask import abort
from flask import request
from werkzeug.middleware.proxy_fix import ProxyFix


def init_app(app: Flask) -> None:
    """Trust only the configured proxies; refuse NUL characters, which PostgreSQL cannot hold."""
    proxies = app.config["TERMINUS_TRUSTED_PROXIES"]
    if proxies:
        # Only that many X-Forwarded-For/-Proto hops are believed, so a client cannot forge its
        # address (and escape per-address limits) by sending the header itself.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    app.before_request(_refuse_nul)


_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _refuse_nul() -> None:
    if "\x00" in request.path:
        abort(400)
    # Only what was sent is looked at: the query string when there is one, the form when the
    # body is a form (request.form is empty for any other body; JSON is checked by the API).
    sources = []
    if request.query_string:
        sources.append(request.args)
    if request.mimetype in _FORM_TYPES:
        sources.append(request.form)
    for values in sources:
        for key, value in values.items(multi=True):
            if "\x00" in key or "\x00" in value:
                abort(400)
