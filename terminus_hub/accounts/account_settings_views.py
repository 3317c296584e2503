"""GET, POST /a/<slug>/settings: the account's general settings, its name and second-factor
rule (owners only; the name is saved by members' POST /a/<slug>/rename)."""

from __future__ import annotations

from flask import abort
from flask import current_app
from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from werkzeug.wrappers import Response

from terminus_hub import reauth
from terminus_hub.accounts.blueprint import bp
from terminus_hub.accounts.forms import AccountPolicyForm
from terminus_hub.accounts.forms import RenameForm
from terminus_hub.core import mfa
from terminus_hub.extensions import db
from terminus_hub.guards import member_account_or_404

SAVED = "Account settings saved."


@bp.route("/a/<slug>/settings", methods=["GET", "POST"])
@login_required
@reauth.required
def account_settings(slug: str) -> Response:
    """Owners choose whether owners and admins must use a second factor."""
    account, membership = member_account_or_404(current_user, slug)
    if membership.role != "owner":
        abort(403)
    form = AccountPolicyForm()
    if request.method == "GET":
        form = AccountPolicyForm(
            formdata=None, require_mfa_for_managers=account.require_mfa_for_managers
        )
    elif form.validate_on_submit():
        try:
            mfa.set_policy(account, current_user, bool(form.require_mfa_for_managers.data))
        except mfa.MfaError as exc:
            form.require_mfa_for_managers.errors = [str(exc)]
        else:
            db.session.commit()
            flash(SAVED, "success")
            return redirect(url_for("accounts.account_settings", slug=account.slug), 303)
    page = render_template(
        "accounts/account_settings.html",
        account=account,
        membership=membership,
        rename_form=RenameForm(formdata=None, name=account.name),
        form=form,
        forced=bool(current_app.config["TERMINUS_REQUIRE_MFA_FOR_MANAGERS"]),
    )
    return make_response(page, 422 if form.errors else 200)
