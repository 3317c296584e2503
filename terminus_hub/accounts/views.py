"""The account picker and account home."""

from __future__ import annotations

import json

from flask import abort
from flask import flash
from flask import render_template
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from terminus_hub import htmx
from terminus_hub import links
from terminus_hub import reauth
from terminus_hub import user_sessions
from terminus_hub.accounts.blueprint import bp
from terminus_hub.accounts.forms import ApiKeyCreateForm
from terminus_hub.accounts.forms import ApiKeyRollForm
from terminus_hub.core import keyring
from terminus_hub.core.membership import accounts_of
from terminus_hub.extensions import db
from terminus_hub.forms import EmptyForm
from terminus_hub.guards import member_account_or_404
from terminus_hub.idp_scope import within_scope
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import Account
from terminus_hub.models import ApiKey
from terminus_hub.models import Membership
from terminus_hub.models import Record
from terminus_hub.models import Workspace
from terminus_hub.models import utcnow

KEY_REVOKED = "Key “{name}” revoked. Requests with it now fail."
ROLL_REFUSED = "The key was not rolled: reload the page and try again."


@bp.get("/accounts")
@login_required
def picker() -> str:
    """List the accounts the person belongs to."""
    accounts = within_scope(accounts_of(current_user))
    return render_template("accounts/picker.html", accounts=accounts)


@bp.get("/a/<slug>/")
@login_required
def home(slug: str) -> str:
    """Show an account's workspaces and make it this session's current account."""
    account, membership = member_account_or_404(current_user, slug)
    row = user_sessions.current_session()
    if row is not None and row.account_id != account.id:
        row.account_id = account.id
        db.session.commit()
    return render_template(
        "accounts/home.html",
        account=account,
        membership=membership,
        workspaces=sorted(account.workspaces, key=lambda w: (w.created_at, w.id)),
        api_base=links.api_base(),
    )


# A workspace page lists its newest records; the API pages through all of them.
RECORDS_SHOWN = 50
# A record's data may be 64 KiB nested 32 deep, and indenting it can make it 30 times longer:
# the page indents only short data, and shows at most this many characters of any (the API
# gives the whole record).
DATA_INDENTED_UP_TO = 1_000
DATA_SHOWN = 2_000


def data_preview(data: object) -> tuple[str, bool]:
    """A record's data as its page shows it, and whether it was cut short."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if len(text) <= DATA_INDENTED_UP_TO:
        text = json.dumps(data, ensure_ascii=False, indent=2)
    return text[:DATA_SHOWN], len(text) > DATA_SHOWN


@bp.get("/a/<slug>/workspaces/<workspace_id>")
@login_required
def workspace(slug: str, workspace_id: str) -> str:
    """Show one workspace of the account and its newest records (read-only)."""
    account, membership = member_account_or_404(current_user, slug)
    found = db.session.scalar(
        select(Workspace).where(Workspace.id == workspace_id, Workspace.account_id == account.id)
    )
    if found is None:
        abort(404)
    records = list(
        db.session.scalars(
            select(Record)
            .where(Record.account_id == account.id, Record.workspace_id == found.id)
            .order_by(Record.created_at.desc(), Record.id.desc())
            .limit(RECORDS_SHOWN + 1)
        )
    )
    return render_template(
        "accounts/workspace.html",
        account=account,
        membership=membership,
        workspace=found,
        records=[(record, *data_preview(record.data)) for record in records[:RECORDS_SHOWN]],
        more=len(records) > RECORDS_SHOWN,
        api_base=links.api_base(),
    )


def _keys_page(
    account: Account,
    membership: Membership,
    form: ApiKeyCreateForm,
    new_key: ApiKey | None = None,
    new_token: str | None = None,
    status: int = 200,
    rolled: ApiKey | None = None,
) -> Response:
    return htmx.render(
        "accounts/api_keys.html",
        "accounts/_api_keys.html",
        status=status,
        account=account,
        membership=membership,
        keys=keyring.list_keys(account),
        form=form,
        new_key=new_key,
        new_token=new_token,
        rolled=rolled,
        roll_form=ApiKeyRollForm(formdata=None),
        now=utcnow(),
        scope_labels=keyring.SCOPE_LABELS,
        all_scopes=keyring.SCOPES,
        can_manage=membership.role in MANAGER_ROLES,
        empty_form=EmptyForm(),
        api_base=links.api_base(),
    )


@bp.get("/a/<slug>/api_keys")
@login_required
def api_keys(slug: str) -> Response:
    """List the account's keys; owners and admins also get the create form."""
    account, membership = member_account_or_404(current_user, slug)
    return _keys_page(account, membership, ApiKeyCreateForm(formdata=None))


@bp.post("/a/<slug>/api_keys")
@login_required
@reauth.required
def create_api_key(slug: str) -> Response:
    """Create a key and show its token this once."""
    account, membership = member_account_or_404(current_user, slug)
    if membership.role not in MANAGER_ROLES:
        abort(403)
    form = ApiKeyCreateForm()
    if not form.validate_on_submit():
        return _keys_page(account, membership, form, status=422)
    row, token = keyring.create_key(
        account,
        form.name.data or "",
        current_user,
        scopes=list(form.scopes.data or []),
        expires_in_days=form.expiry_days(),
    )
    db.session.commit()
    return _keys_page(account, membership, ApiKeyCreateForm(formdata=None), row, token, 201)


def _managed_key(slug: str, key_id: str) -> tuple[Account, Membership, ApiKey]:
    """The account, the owner's or admin's membership and the key; else 404 or 403."""
    account, membership = member_account_or_404(current_user, slug)
    if membership.role not in MANAGER_ROLES:
        abort(403)
    key = keyring.get_key(account, key_id)
    if key is None:
        abort(404)
    return account, membership, key


@bp.post("/a/<slug>/api_keys/<key_id>/roll")
@login_required
@reauth.required
def roll_api_key(slug: str, key_id: str) -> Response:
    """Replace a key by a new one with its name and scopes, and show the new token once."""
    account, membership, key = _managed_key(slug, key_id)
    form = ApiKeyRollForm()
    if not form.validate_on_submit():
        # Only a stale page or a forged post gets here: say so and change nothing.
        flash(ROLL_REFUSED, "error")
        return htmx.redirect_to(url_for("accounts.api_keys", slug=account.slug))
    try:
        row, token = keyring.roll_key(key, int(form.expires_in_hours.data), current_user)
    except keyring.KeyGone:
        db.session.rollback()
        abort(404)
    except keyring.KeyringError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return htmx.redirect_to(url_for("accounts.api_keys", slug=account.slug))
    db.session.commit()
    return _keys_page(
        account, membership, ApiKeyCreateForm(formdata=None), row, token, 201, rolled=key
    )


@bp.post("/a/<slug>/api_keys/<key_id>/delete")
@login_required
@reauth.required
def revoke_api_key(slug: str, key_id: str) -> Response:
    """Revoke a key after the confirmation step."""
    account, _, key = _managed_key(slug, key_id)
    if EmptyForm().validate_on_submit():
        keyring.revoke_key(key)
        db.session.commit()
        flash(KEY_REVOKED.format(name=key.name), "success")
    return htmx.redirect_to(url_for("accounts.api_keys", slug=account.slug))
