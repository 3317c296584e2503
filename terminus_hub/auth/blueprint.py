"""The auth blueprint: signing in and out, sign-up and the emailed links."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)
