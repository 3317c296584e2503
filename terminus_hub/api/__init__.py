"""The REST API under /api/v1: JSON in and out, bearer keys or a browser session."""

from __future__ import annotations

from flask import Blueprint

from terminus_hub.api import auth
from terminus_hub.extensions import csrf
from terminus_hub.extensions import limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Session callers are checked for X-CSRFToken by api.auth itself; key callers carry no cookies.
csrf.exempt(bp)
bp.before_request(auth.authenticate)
limiter.limit(auth.rate_limit, key_func=auth.rate_limit_key)(bp)

# The resource modules attach their routes to bp; imported last because they need it.
from terminus_hub.api import account  # noqa: E402, F401
from terminus_hub.api import api_keys  # noqa: E402, F401
from terminus_hub.api import members  # noqa: E402, F401
from terminus_hub.api import openapi  # noqa: E402, F401
from terminus_hub.api import records  # noqa: E402, F401
from terminus_hub.api import workspaces  # noqa: E402, F401

__all__ = ["bp"]
