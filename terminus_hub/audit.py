"""The security audit log: append-only events, written without ever breaking the action."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import g
from flask import has_request_context
from flask import request
from flask_login import current_user
from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from terminus_hub.extensions import db
from terminus_hub.models import AccountLike
from terminus_hub.models import AuditEvent
from terminus_hub.models import Membership
from terminus_hub.models import User

log = logging.getLogger(__name__)

# Every kind the app writes, for the filter menu and the API docs.
KINDS = (
    "sign_in.succeeded",
    "sign_in.failed",
    "sign_in.second_factor_required",
    "reauthentication.succeeded",
    "reauthentication.failed",
    "account.locked",
    "account.unlocked",
    "account.unconfirmed_claim_cleared",
    "password.reset_requested",
    "password.changed",
    "email.change_requested",
    "email.changed",
    "user.renamed",
    "mfa.totp_enabled",
    "mfa.totp_disabled",
    "mfa.recovery_codes_generated",
    "mfa.recovery_code_used",
    "mfa.reset",
    "passkey.registered",
    "passkey.renamed",
    "passkey.deleted",
    "passkey.refused",
    "passkey.counter_regressed",
    "sso.sign_in_succeeded",
    "sso.sign_in_failed",
    "sso.settings_changed",
    "sso.domain_verified",
    "sso.domain_unverified",
    "sso.metadata_expired",
    "api_key.created",
    "api_key.revoked",
    "api_key.rolled",
    "member.invited",
    "member.invitation_revoked",
    "member.joined",
    "member.role_changed",
    "member.removed",
    "account.renamed",
    "account.mfa_policy_changed",
    "session.revoked",
)


def email_fingerprint(email: str) -> str:
    """Return a short hash that links failed sign-ins for one address without storing it."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:16]


def record(
    kind: str,
    *,
    account: AccountLike | str | None = None,
    user: User | str | None = None,
    actor: User | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent | None:
    """Add an event to the current transaction, inside a savepoint so a failure costs nothing.

    Returns the event (None when it could not be written), for a caller that completes it.

    The actor is, in order: the given person, the API key of this request, the signed-in
    person, or "operator" outside a request (the CLI).
    """
    actor_type, actor_id = _actor(actor)
    event = AuditEvent(
        kind=kind,
        account_id=account if isinstance(account, str | None) else account.id,
        user_id=user if isinstance(user, str | None) else user.id,
        actor_type=actor_type,
        actor_id=actor_id,
        ip_address=(request.remote_addr or "")[:64] if has_request_context() else "",
        user_agent=request.user_agent.string[:512] if has_request_context() else "",
        request_id=g.get("request_id") if has_request_context() else None,
        detail=detail or {},
    )
    try:
        with db.session.begin_nested():
            db.session.add(event)
        return event
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise  # the connection, and the action's transaction with it, is gone: fail (503)
        log.exception("audit event %s could not be written", kind)
    except Exception:
        # The action matters more than its record; say so loudly in the log instead.
        log.exception("audit event %s could not be written", kind)
    return None


def _actor(actor: User | None) -> tuple[str, str | None]:
    if actor is not None:
        return "user", actor.id
    if not has_request_context():
        return "operator", None
    caller = g.get("api_caller")
    if caller is not None and caller.key is not None:
        return "api_key", caller.key.id
    if current_user and current_user.is_authenticated:
        return "user", current_user.id
    return "anonymous", None


def account_events(
    account: AccountLike,
    *,
    kind: str | None = None,
    user_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Any]:
    """Select an account's events: those recorded in its context, plus its current members'
    personal events (no account: sign-ins, password changes) from the moment they joined.
    Events about other accounts never appear.
    """
    member_since = (
        select(Membership.id)
        .where(
            Membership.account_id == account.id,
            Membership.user_id == AuditEvent.user_id,
            Membership.created_at <= AuditEvent.created_at,
        )
        .exists()
    )
    query = select(AuditEvent).where(
        or_(
            AuditEvent.account_id == account.id,
            and_(AuditEvent.account_id.is_(None), member_since),
        )
    )
    if kind:
        query = query.where(AuditEvent.kind == kind)
    if user_id:
        query = query.where(or_(AuditEvent.user_id == user_id, AuditEvent.actor_id == user_id))
    if since:
        query = query.where(AuditEvent.created_at >= since)
    if until:
        query = query.where(AuditEvent.created_at < until)
    return query


def serialize(event: AuditEvent) -> dict[str, Any]:
    """Return an event's public fields (never a secret: none is ever written)."""
    return {
        "id": event.id,
        "created_at": event.created_at.isoformat(),
        "kind": event.kind,
        "account_id": event.account_id,
        "user_id": event.user_id,
        "actor": {"type": event.actor_type, "id": event.actor_id},
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "detail": event.detail,
    }


def export(account: AccountLike) -> Iterator[dict[str, Any]]:
    """Yield every event of an account, oldest first, for SIEM import."""
    query = account_events(account).order_by(AuditEvent.created_at, AuditEvent.id)
    for event in db.session.scalars(query.execution_options(yield_per=500)):
        yield serialize(event)
