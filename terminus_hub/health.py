"""GET /healthz: is this instance able to serve, and what is failing if not."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Blueprint
from flask import jsonify
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
    """Answer 200 when the database and rate-limit storage work, else 503 naming the failure."""
    checks: dict[str, Any] = {"database": _database(), "rate_limit_storage": _limiter_storage()}
    if checks["database"] == "ok":
        checks["mail_outbox"] = _outbox()
    failing = [name for name in ("database", "rate_limit_storage") if checks[name] != "ok"]
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "checks": checks}
    if failing:
        body["failing"] = failing
    response = jsonify(body)
    response.status_code = 503 if failing else 200
    return response


def _database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("health check: database unavailable (%s)", type(exc).__name__)
        return "unavailable"


def _limiter_storage() -> str:
    try:
        return "ok" if limiter.storage.check() else "unavailable"
    except Exception:  # every storage backend fails in its own way
        return "unavailable"


def _outbox() -> dict[str, Any]:
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
