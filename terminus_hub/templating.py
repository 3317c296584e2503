"""What every template may use: the signed-in person, safely, and the static asset names."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask import has_request_context
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from terminus_hub.core.membership import accounts_of
from terminus_hub.extensions import db
from terminus_hub.idp_scope import within_scope

HTMX_SCRIPT = "htmx-2.0.11.min.js"


def init_app(app: Flask) -> None:
    """Add the template context shared by every page."""

    @app.context_processor
    def _shared() -> dict[str, Any]:
        viewer = _viewer()
        return {
            "viewer": viewer,
            "viewer_accounts": lambda: within_scope(accounts_of(viewer)) if viewer else [],
            "htmx_script": HTMX_SCRIPT,
        }


def _viewer() -> Any:
    if not has_request_context():  # mail rendered by a command has no viewer
        return None
    # An error page must render even when the database that knows the person is down.
    try:
        return current_user if current_user.is_authenticated else None
    except SQLAlchemyError:
        db.session.rollback()
        return None
