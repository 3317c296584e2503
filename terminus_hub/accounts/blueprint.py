"""The accounts blueprint: the account picker, account pages, members, sessions, audit log."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("accounts", __name__)
