"""Deleting rows that have served their purpose (`flask housekeeping`, run hourly from cron)."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete
from sqlalchemy import or_

from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.models import AuditEvent
from terminus_hub.models import IdempotentRequest
from terminus_hub.models import Invitation
from terminus_hub.models import OutboxMessage
from terminus_hub.models import SamlAssertion
from terminus_hub.models import SamlRequest
from terminus_hub.models import UserSession
from terminus_hub.models import WebAuthnChallenge
from terminus_hub.models import utcnow

UNKNOWN_SIGN_INS_KEPT = timedelta(days=30)  # failed sign-ins to addresses nobody has
IDEMPOTENCY_KEPT = timedelta(hours=24)  # how long a POST's Idempotency-Key replays its answer
SENT_MAIL_KEPT = timedelta(days=7)  # long enough to answer "did the mail go out?"
FAILED_MAIL_KEPT = timedelta(days=30)


def purge() -> dict[str, int]:
    """Delete what nothing needs any more; return how many rows went, per kind."""
    now = utcnow()
    config = current_app.config
    idle = timedelta(hours=config["TERMINUS_SESSION_IDLE_HOURS"])
    lifetime = timedelta(days=config["TERMINUS_SESSION_MAX_DAYS"])
    statements = {
        # Unanswered sign-ins past their ten minutes (anyone can start one with a GET).
        "saml_requests": delete(SamlRequest).where(SamlRequest.expires_at < now),
        # Replay protection is needed only until the assertion itself expires.
        "saml_assertions": delete(SamlAssertion).where(SamlAssertion.expires_at < now),
        "sessions": delete(UserSession).where(
            or_(UserSession.last_seen_at < now - idle, UserSession.created_at < now - lifetime)
        ),
        # Passkey challenges nobody answered within their five minutes.
        "webauthn_challenges": delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at < now),
        # Past their expiry, used or not: the audit log keeps the record of each.
        "invitations": delete(Invitation).where(Invitation.expires_at < now),
        "unknown_sign_ins": delete(AuditEvent).where(
            AuditEvent.kind.in_(("sign_in.failed", "passkey.refused")),
            AuditEvent.user_id.is_(None),
            AuditEvent.created_at < now - UNKNOWN_SIGN_INS_KEPT,
        ),
        "idempotent_requests": delete(IdempotentRequest).where(
            IdempotentRequest.created_at < now - IDEMPOTENCY_KEPT
        ),
        "outbox": delete(OutboxMessage).where(
            or_(
                OutboxMessage.sent_at < now - SENT_MAIL_KEPT,
                OutboxMessage.failed_at < now - FAILED_MAIL_KEPT,
            )
        ),
    }
    counts = {}
    for name, statement in statements.items():
        counts[name] = affected(db.session.execute(statement))
        db.session.commit()  # deliberate: short transactions, one per table
    return counts
