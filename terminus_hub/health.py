"""GET /healthz: is this instance able to serve, and what is failing if not."""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import jsonify
from flask import request
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from terminus_hub.extensions import db
from terminus_hub.extensions import limiter
from terminus_hub.models import OutboxMessage
from terminus_hub.models import utcnow

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

# Mail waiting longer than this means the sender (or the mail server) is stuck.
OUTBOX_STALE = timedelta(minutes=15)


@bp.get("/healthz")
@limiter.exempt
def healthz() -> Response:
    """Answer 200 when the database and rate-limit storage work, else 503 naming the failure.

    Anyone sees the status and the names of failing dependencies; each check's result and the
    mail outbox's counts go only to a request bearing TERMINUS_HEALTH_TOKEN.
    """
    checks: dict[str, Any] = {"database": _database(), "rate_limit_storage": _limiter_storage()}
    failing = [name for name, state in checks.items() if state == "unavailable"]
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable"}
    if failing:
        body["failing"] = failing
    if bears_secret("TERMINUS_HEALTH_TOKEN"):
        if checks["database"] == "ok":
            checks["mail_outbox"] = outbox_counts()
        body["checks"] = checks
    response = jsonify(body)
    response.status_code = 503 if failing else 200
    return response


def bears_secret(setting: str) -> bool:
    """Say whether the request's ``Authorization: Bearer …`` holds this setting's secret.

    Never when the setting is unset; compared in constant time (/healthz and /metrics).
    """
    secret = current_app.config[setting]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(secret)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), str(secret).encode())
    )


def _database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("health check: database unavailable (%s)", type(exc).__name__)
        return "unavailable"


def _limiter_storage() -> str:
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return "disabled"  # rate limits are turned off: nothing to reach
    try:
        return "ok" if limiter.storage.check() else "unavailable"
    except Exception:  # every storage backend fails in its own way
        return "unavailable"


def outbox_counts() -> dict[str, Any]:
    # A backlog is a warning, not a failure: mail waits safely in the outbox.
    pending = db.session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
    )
    stale = db.session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.failed_at.is_(None),
            OutboxMessage.created_at < utcnow() - OUTBOX_STALE,
        )
    )
    failed = db.session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.failed_at.is_not(None))
    )
    status = "warning" if stale or failed else "ok"
    return {"status": status, "pending": pending, "stale": stale, "failed": failed}
