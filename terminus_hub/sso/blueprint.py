"""The sso blueprint: SP metadata, the sign-in start, the assertion consumer, settings."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sso", __name__)
