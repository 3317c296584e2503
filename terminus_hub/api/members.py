"""Members, invitations and the audit log of the caller's account (admin-only endpoints)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request
from flask import url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from terminus_hub import audit
from terminus_hub import reauth
from terminus_hub.addresses import InvalidEmail
from terminus_hub.addresses import canonical_email
from terminus_hub.api import validation
from terminus_hub.api.auth import admin_only
from terminus_hub.api.auth import current_caller
from terminus_hub.api.blueprint import bp
from terminus_hub.api.idempotency import idempotent
from terminus_hub.api.pagination import paginate
from terminus_hub.api.scoping import in_account
from terminus_hub.api.validation import PAGING
from terminus_hub.api.validation import takes_query
from terminus_hub.api_errors import ApiError
from terminus_hub.api_errors import not_found
from terminus_hub.api_errors import validation_error
from terminus_hub.core import invitations as invites
from terminus_hub.core.membership import MembershipError
from terminus_hub.core.membership import change_role
from terminus_hub.core.membership import check_manager
from terminus_hub.core.membership import remove_member
from terminus_hub.extensions import db
from terminus_hub.models import ROLES
from terminus_hub.models import AuditEvent
from terminus_hub.models import Invitation
from terminus_hub.models import Membership

ROLE_INVALID = "Use owner, admin or member."
DATE_INVALID = "Use an ISO 8601 time with a zone, such as 2026-01-31T00:00:00Z."


def serialize_member(membership: Membership) -> dict[str, Any]:
    """Return a membership's public fields."""
    return {
        "id": membership.id,
        "user_id": membership.user_id,
        "email": membership.user.email,
        "name": membership.user.name,
        "role": membership.role,
        "created_at": membership.created_at.isoformat(),
    }


def serialize_invitation(invitation: Invitation) -> dict[str, Any]:
    """Return an invitation's public fields (never its token)."""
    return {
        "id": invitation.id,
        "email": invitation.email,
        "role": invitation.role,
        "created_at": invitation.created_at.isoformat(),
        "expires_at": invitation.expires_at.isoformat(),
    }


def _refused(exc: MembershipError) -> ApiError:
    return ApiError("forbidden", str(exc), 403)


@bp.get("/members")
@takes_query(*PAGING)
@admin_only
def list_members() -> dict[str, Any]:
    """List the account's members, oldest first."""
    query = (
        select(Membership)
        .where(Membership.account_id == current_caller().account.id)
        .options(joinedload(Membership.user))
    )
    return paginate(query, Membership, serialize_member)


@bp.patch("/members/<member_id>")
@admin_only
@reauth.required
def update_member(member_id: str) -> dict[str, Any]:
    """Change a member's role (only owners touch owners; one owner always remains)."""
    target = in_account(Membership, member_id)
    body = validation.json_object({"role"})
    if body.get("role") not in ROLES:
        raise validation_error({"role": ROLE_INVALID})
    try:
        change_role(target, body["role"], current_caller().membership)
    except MembershipError as exc:
        db.session.rollback()
        raise _refused(exc) from None
    db.session.commit()
    return serialize_member(target)


@bp.delete("/members/<member_id>")
@admin_only
@reauth.required
def delete_member(member_id: str) -> Response:
    """Remove a member: their access to this account ends with their next request."""
    try:
        remove_member(in_account(Membership, member_id), current_caller().membership)
    except MembershipError as exc:
        db.session.rollback()
        raise _refused(exc) from None
    db.session.commit()
    return Response(status=204)


@bp.get("/invitations")
@takes_query(*PAGING)
@admin_only
def list_invitations() -> dict[str, Any]:
    """List pending invitations, oldest first."""
    return paginate(
        invites.pending_query(current_caller().account), Invitation, serialize_invitation
    )


@bp.get("/invitations/<invitation_id>")
@admin_only
def get_invitation(invitation_id: str) -> dict[str, Any]:
    """Show one pending invitation."""
    return serialize_invitation(_pending_or_404(invitation_id))


def _pending_or_404(invitation_id: str) -> Invitation:
    row = in_account(Invitation, invitation_id)
    if not row.is_pending:
        raise not_found()
    return row


@bp.post("/invitations")
@admin_only
@reauth.required
@idempotent
def create_invitation() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Invite an email with a role; the link goes out by mail."""
    body = validation.json_object({"email", "role"})
    problems: dict[str, str | None] = {"role": None if body.get("role") in ROLES else ROLE_INVALID}
    email = None
    try:
        raw = body.get("email")
        email = canonical_email(raw if isinstance(raw, str) else "")
    except InvalidEmail as exc:
        problems["email"] = str(exc)
    validation.check(problems)
    assert email is not None  # validation.check refused a bad one
    caller = current_caller()
    try:
        check_manager(caller.membership, "member", body["role"])
    except MembershipError as exc:
        raise _refused(exc) from None
    try:
        invitation = invites.invite(
            caller.account, email, body["role"], caller.membership, caller.user
        )
    except MembershipError as exc:
        db.session.rollback()
        raise validation_error({"email": str(exc)}) from None
    db.session.commit()
    location = url_for("api.get_invitation", invitation_id=invitation.id)
    return serialize_invitation(invitation), 201, {"Location": location}


@bp.delete("/invitations/<invitation_id>")
@admin_only
@reauth.required
def delete_invitation(invitation_id: str) -> Response:
    """Withdraw a pending invitation."""
    row = _pending_or_404(invitation_id)
    try:
        invites.revoke(row, current_caller().membership)
    except MembershipError as exc:
        db.session.rollback()
        raise _refused(exc) from None
    db.session.commit()
    return Response(status=204)


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise validation_error({name: DATE_INVALID}) from None
    if value.tzinfo is None:
        raise validation_error({name: DATE_INVALID})
    return value


@bp.get("/audit_events")
@takes_query(*PAGING, "kind", "user_id", "since", "until")
@admin_only
def list_audit_events() -> dict[str, Any]:
    """List the account's security events, oldest first; filter by kind, user and time."""
    kind = request.args.get("kind")
    if kind is not None and kind not in audit.KINDS:
        raise validation_error({"kind": "Use one of: " + ", ".join(audit.KINDS) + "."})
    user_id = request.args.get("user_id")
    query = audit.account_events(
        current_caller().account,
        kind=kind,
        user_id=user_id[:32] if user_id else None,
        since=_time_arg("since"),
        until=_time_arg("until"),
    )
    return paginate(query, AuditEvent, audit.serialize)
