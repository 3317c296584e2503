"""The account picker and account home."""

from __future__ import annotations

from flask import Blueprint
from flask import render_template
from flask_login import current_user
from flask_login import login_required

from terminus_hub import sessions
from terminus_hub.accounts.membership import accounts_of
from terminus_hub.accounts.membership import member_account_or_404
from terminus_hub.extensions import db

bp = Blueprint("accounts", __name__)


@bp.get("/accounts")
@login_required
def picker() -> str:
    """List the accounts the person belongs to."""
    return render_template("accounts/picker.html", accounts=accounts_of(current_user))


@bp.get("/a/<slug>/")
@login_required
def home(slug: str) -> str:
    """Show an account's workspaces and make it this session's current account."""
    account, membership = member_account_or_404(current_user, slug)
    row = sessions.current_session()
    if row is not None and row.account_id != account.id:
        row.account_id = account.id
        db.session.commit()
    return render_template(
        "accounts/home.html", account=account, membership=membership, workspaces=account.workspaces
    )
