"""The account's audit log page for owners and admins."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import time

from flask import abort
from flask import render_template
from flask import request
from flask_login import current_user
from flask_login import login_required
from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select

from terminus_hub import audit
from terminus_hub.accounts.audit_text import kind_label
from terminus_hub.accounts.audit_text import person_label
from terminus_hub.accounts.audit_text import tell
from terminus_hub.accounts.blueprint import bp
from terminus_hub.addresses import try_canonical_email
from terminus_hub.extensions import db
from terminus_hub.guards import member_account_or_404
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import AuditEvent
from terminus_hub.models import User

PAGE_SIZE = 50


def _date(value: str | None, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)


@bp.get("/a/<slug>/audit")
@login_required
def audit_log(slug: str) -> str:
    """Show security events, newest first, filtered by kind, person and dates."""
    account, membership = member_account_or_404(current_user, slug)
    if membership.role not in MANAGER_ROLES:
        abort(403)
    args = request.args
    kind = args.get("kind") if args.get("kind") in audit.KINDS else None
    person = (args.get("person") or "").strip()[:254]
    user_id = None
    if person:
        email = try_canonical_email(person)
        user_id = db.session.scalar(select(User.id).where(User.email == email)) if email else None
        user_id = user_id or "nobody"
    query = audit.account_events(
        account,
        kind=kind,
        user_id=user_id,
        since=_date(args.get("since")),
        until=_date(args.get("until"), end=True),
    )
    before = db.session.get(AuditEvent, args.get("before", "")[:32]) if args.get("before") else None
    if before is not None:
        query = query.where(
            or_(
                AuditEvent.created_at < before.created_at,
                and_(AuditEvent.created_at == before.created_at, AuditEvent.id < before.id),
            )
        )
    rows = db.session.scalars(
        query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(PAGE_SIZE + 1)
    ).all()
    people = {
        u.id: person_label(u.name, u.email)
        for u in db.session.scalars(
            select(User).where(
                User.id.in_({r.user_id for r in rows} | {r.actor_id for r in rows} - {None})
            )
        )
    }
    return render_template(
        "accounts/audit.html",
        account=account,
        membership=membership,
        events=[(event, tell(event, people)) for event in rows[:PAGE_SIZE]],
        older=rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
        people=people,
        kinds=[(kind, kind_label(kind)) for kind in audit.KINDS],
        filters={k: args.get(k, "") for k in ("kind", "person", "since", "until")},
    )
