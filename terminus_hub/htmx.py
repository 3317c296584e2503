"""Answer a request with a whole page or, for htmx, just the fragment it swaps in."""

from __future__ import annotations

from typing import Any

from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from werkzeug.wrappers import Response


def is_htmx() -> bool:
    """Say whether htmx sent this request (and it is not a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(page: str, partial: str, status: int = 200, **context: Any) -> Response:
    """Render the fragment for htmx and the page otherwise, varying the cache on HX-Request."""
    template = partial if is_htmx() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def redirect_to(url: str) -> Response:
    """Navigate after a POST: 303 for a browser, 200 with HX-Redirect for htmx."""
    response: Response
    if is_htmx():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url
    else:
        response = redirect(url, 303)
    response.vary.add("HX-Request")
    return response
