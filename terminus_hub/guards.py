"""Refuse input no page can store before any view sees it."""

from __future__ import annotations

from flask import Flask
from flask import abort
from flask import request


def init_app(app: Flask) -> None:
    """Answer 400 to requests carrying NUL characters, which PostgreSQL text cannot hold."""
    app.before_request(_refuse_nul)


def _refuse_nul() -> None:
    if "\x00" in request.path:
        abort(400)
    for values in (request.args, request.form):
        for key, value in values.items(multi=True):
            if "\x00" in key or "\x00" in value:
                abort(400)
