"""Mail through the outbox: written with the change that causes it, sent after commit."""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta
from typing import Any

from flask import Flask
from flask import current_app
from flask import g
from flask import has_request_context
from flask import render_template
from flask_mail import Message
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from werkzeug.wrappers import Response

from terminus_hub import metrics
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.extensions import mail
from terminus_hub.models import OutboxMessage
from terminus_hub.models import utcnow

log = logging.getLogger(__name__)

SUBJECTS = {
    "confirm": "Confirm your email for Terminus Hub",
    "existing_account": "Someone tried to sign up with your email",
    "unlock": "Your Terminus Hub sign-in is locked",
    "reset": "Reset your Terminus Hub password",
    "password_changed": "Your Terminus Hub password was changed",
    "email_change": "Confirm your new email for Terminus Hub",
    "email_change_requested": "Someone asked to change the email of your Terminus Hub account",
    "email_taken": "Someone tried to move their Terminus Hub account to your email",
    "email_changed": "The email of your Terminus Hub account was changed",
    "second_factor_changed": "Your Terminus Hub two-step sign-in changed",
    "invitation": "You are invited to join an account on Terminus Hub",
    "domain_unverified": "A single sign-on domain of your Terminus Hub account is unverified",
    "api_key_expiring": "An API key of your Terminus Hub account expires in a week",
}
_CLAIM_SECONDS = 120


def send_email(to: str, template: str, **context: Any) -> OutboxMessage:
    """Write a mail to the outbox in the current transaction; it goes out after commit."""
    message = OutboxMessage(
        recipient=to,
        template=template,
        subject=SUBJECTS[template],
        text_body=render_template(f"email/{template}.txt", **context),
        html_body=render_template(f"email/{template}.html", **context),
    )
    db.session.add(message)
    db.session.flush()
    if has_request_context():
        g.setdefault("outbox_ids", []).append(message.id)
    return message


def may_mail(email: str, template: str) -> bool:
    """Say whether another mail of this kind may go to this address now (a silent limit)."""
    config = current_app.config
    since = utcnow() - timedelta(hours=1)
    sent: int = db.session.execute(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.recipient == email,
            OutboxMessage.template == template,
            OutboxMessage.created_at >= since,
        )
    ).scalar_one()
    return sent < int(config["TERMINUS_MAILS_PER_ADDRESS_PER_HOUR"])


def init_app(app: Flask) -> None:
    """Send a request's mail once its response has gone out."""

    @app.after_request
    def _send_after_response(response: Response) -> Response:
        ids = g.pop("outbox_ids", None)
        if ids:
            response.call_on_close(lambda: _deliver_in_context(app, ids))
        return response


def _deliver_in_context(app: Flask, ids: list[str]) -> None:
    # Only this request's own mail: the backlog is `flask mail send-pending`'s job, so one
    # request never waits on more than its own few messages.
    with app.app_context():
        try:
            deliver_pending(ids=ids)
        except Exception:
            # The mail stays in the outbox; `flask mail send-pending` retries it.
            log.exception("outbox delivery failed; mail kept for retry")


def deliver_pending(limit: int = 100, ids: list[str] | None = None) -> tuple[int, int]:
    """Send due outbox mail (optionally only the given ids), each by one sender only.

    Returns (sent, given up).
    """
    now = utcnow()
    query = select(OutboxMessage.id)
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(ids))
    due = db.session.scalars(
        query.where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.failed_at.is_(None),
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
        )
        .order_by(OutboxMessage.created_at)
        .limit(limit)
    ).all()
    sent = failed = 0
    for message_id in due:
        if not _claim(message_id):
            continue
        message = db.session.get(OutboxMessage, message_id)
        if message is None:  # deleted (housekeeping) since it was listed
            continue
        try:
            outcome = _deliver(message)
        except Exception as exc:
            # A message that cannot even be built (bad header, no sender) will never go out.
            log.exception("mail %s could not be sent", message_id)
            outcome = _record_failure(message, f"{type(exc).__name__}: {exc}", True)
        db.session.commit()  # deliberate: each delivery's outcome is recorded on its own
        sent += outcome == "sent"
        failed += outcome == "failed"
    return sent, failed


def _claim(message_id: str) -> bool:
    now = utcnow()
    result = db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.failed_at.is_(None),
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
        )
        .values(claimed_until=now + timedelta(seconds=_CLAIM_SECONDS))
    )
    db.session.commit()  # deliberate: other senders must see the claim before we send
    return affected(result) == 1


def _deliver(message: OutboxMessage) -> str:
    message.attempts += 1
    message.claimed_until = None
    try:
        _transmit(message)
    except smtplib.SMTPResponseException as exc:
        return _record_failure(message, f"{exc.smtp_code} {exc.smtp_error!r}", exc.smtp_code >= 500)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        # A 4xx at RCPT (greylisting, a full mailbox) is worth another try; a 5xx is final.
        return _record_failure(message, f"recipient refused ({codes})", min(codes) >= 500)
    except (OSError, smtplib.SMTPException) as exc:
        return _record_failure(message, f"{type(exc).__name__}: {exc}", False)
    message.sent_at = utcnow()
    message.last_error = None
    return "sent"


def _transmit(message: OutboxMessage) -> None:
    if not current_app.config.get("MAIL_SERVER"):
        log.info(
            "mail to %s (MAIL_SERVER unset, written here instead)\nSubject: %s\n\n%s",
            message.recipient,
            message.subject,
            message.text_body,
        )
        return
    mail.send(
        Message(
            subject=message.subject,
            recipients=[message.recipient],
            body=message.text_body,
            html=message.html_body,
        )
    )


def _record_failure(message: OutboxMessage, error: str, permanent: bool) -> str:
    message.last_error = error[:500]
    if permanent or message.attempts >= current_app.config["MAIL_MAX_ATTEMPTS"]:
        message.failed_at = utcnow()
        metrics.MAIL_FAILURES.labels("true").inc()
        log.error("mail %s given up after %d attempts: %s", message.id, message.attempts, error)
        return "failed"
    delay = timedelta(seconds=min(30 * 2 ** (message.attempts - 1), 3600))
    message.next_attempt_at = utcnow() + delay
    metrics.MAIL_FAILURES.labels("false").inc()
    log.warning("mail %s not sent (attempt %d), retrying: %s", message.id, message.attempts, error)
    return "retry"
