"""What every template may use: the signed-in person, safely, and the static asset names."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

from flask import Flask
from flask import has_request_context
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError

from terminus_hub.core.membership import accounts_of
from terminus_hub.extensions import db
from terminus_hub.idp_scope import within_scope
from terminus_hub.models import utcnow

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

    app.add_template_global(moment)


def _viewer() -> Any:
    if not has_request_context():  # mail rendered by a command has no viewer
        return None
    # An error page must render even when the database that knows the person is down.
    try:
        return current_user if current_user.is_authenticated else None
    except SQLAlchemyError:
        db.session.rollback()
        return None


def moment(when: datetime | None, never: str = "Never") -> Markup:
    """A time as people read it ("3 minutes ago", "in 5 days"), the exact one in <time>."""
    if when is None:
        return Markup('<span class="muted">{}</span>').format(never)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    exact = when.strftime("%-d %b %Y, %H:%M UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        when.isoformat(timespec="seconds"), exact, relative(when, utcnow())
    )


def relative(when: datetime, now: datetime) -> str:
    """Say how long ago (or how soon) ``when`` is, to the unit that matters."""
    seconds = (now - when).total_seconds()
    past = seconds >= 0
    seconds = abs(seconds)
    if seconds < 60:
        return "just now" if past else "in under a minute"
    if seconds < 3600:
        return _ago(int(seconds // 60), "minute", past)
    if seconds < 86400:
        return _ago(int(seconds // 3600), "hour", past)
    days = int(seconds // 86400)
    if days == 1:
        return "yesterday" if past else "tomorrow"
    if days < 30:
        return _ago(days, "day", past)
    return when.strftime("%-d %b %Y")


def _ago(count: int, unit: str, past: bool) -> str:
    text = f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{text} ago" if past else f"in {text}"
