"""Your sessions: every signed-in browser, and signing out one or all the others."""

from __future__ import annotations

import re

from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from sqlalchemy import delete
from sqlalchemy import select
from werkzeug.wrappers import Response

from terminus_hub import audit
from terminus_hub import user_sessions as sessions
from terminus_hub.accounts.blueprint import bp
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.forms import EmptyForm
from terminus_hub.models import UserSession

SIGNED_OUT_ONE = "That session is signed out."
SIGNED_OUT_OTHERS = "Every other session is signed out."
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("Windows", "Windows"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_device(user_agent: str) -> str:
    """Turn a user agent into words such as "Firefox on Linux"."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), None)
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system or ""
    first = re.split(r"[\s/;(]", user_agent.strip(), maxsplit=1)[0]
    return first[:40] or "Unknown device"


@bp.get("/sessions")
@login_required
def sessions_page() -> str:
    """List this person's signed-in browsers, the current one first.

    A session started through an account's IdP sees only itself: that IdP vouched for the
    person towards its own account, not for their other sessions.
    """
    current = sessions.current_session()
    rows: list[UserSession]
    if current is not None and current.sso_account_id is not None:
        rows = [current]
    else:
        rows = list(
            db.session.scalars(
                select(UserSession)
                .where(UserSession.user_id == current_user.id)
                .order_by(UserSession.last_seen_at.desc())
            )
        )
        rows = sorted(rows, key=lambda r: r.id != (current.id if current else None))
    return render_template(
        "accounts/sessions.html",
        rows=rows,
        current_id=current.id if current else None,
        describe=describe_device,
        form=EmptyForm(),
        confined=_confined(current),
    )


def _confined(current: UserSession | None) -> bool:
    return current is not None and current.sso_account_id is not None


@bp.post("/sessions/<session_id>/sign_out")
@login_required
def sign_out_session(session_id: str) -> Response:
    """Sign out one of your other sessions (its cookie stops working at once)."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    current = sessions.current_session()
    if _confined(current):
        abort(404)
    result = db.session.execute(
        delete(UserSession).where(
            UserSession.id == session_id,
            UserSession.user_id == current_user.id,
            UserSession.id != (current.id if current else ""),
        )
    )
    if affected(result) != 1:
        abort(404)
    audit.record("session.revoked", user=current_user.id, detail={"which": "one"})
    db.session.commit()
    flash(SIGNED_OUT_ONE, "success")
    return redirect(url_for("accounts.sessions_page"), 303)


@bp.post("/sessions/sign_out_others")
@login_required
def sign_out_other_sessions() -> Response:
    """Sign out every session of yours except this one."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    if _confined(sessions.current_session()):
        abort(403)
    sessions.end_all_for(current_user, keep=sessions.current_session())
    audit.record("session.revoked", user=current_user.id, detail={"which": "others"})
    db.session.commit()
    flash(SIGNED_OUT_OTHERS, "success")
    return redirect(url_for("accounts.sessions_page"), 303)
