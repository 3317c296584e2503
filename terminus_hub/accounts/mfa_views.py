"""/settings/mfa/…: set up or remove an authenticator app, and make new recovery codes."""

from __future__ import annotations

from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from werkzeug.wrappers import Response

from terminus_hub import limits
from terminus_hub import reauth
from terminus_hub import user_sessions
from terminus_hub.accounts.blueprint import bp
from terminus_hub.accounts.settings_views import uses_password
from terminus_hub.core import mfa
from terminus_hub.extensions import db
from terminus_hub.forms import CodeForm
from terminus_hub.forms import EmptyForm
from terminus_hub.models import User
from terminus_hub.redirects import safe_next

WRONG_CODE = (
    "That code does not match. Enter the code your app shows now; if it keeps failing, check "
    "that your phone’s clock is set automatically."
)
NOT_A_CODE = "Enter the 6 digits your authenticator app shows."
TOTP_REMOVED = "Your authenticator app is removed. Signing in needs only your password now."
CODES_MADE = "New recovery codes are below. The old ones no longer work."
SSO_HANDLES_IT = (
    "You sign in through your organisation’s identity provider, which looks after your second "
    "factor."
)
SIGN_IN_WITH_PASSWORD = (
    "You signed in through an organisation’s identity provider. To change your second factor, "
    "sign out and sign in with your password and your current second factor."
)


def refusal_for_factors(user: User) -> str | None:
    """Say why this session may not change the person's second factors, or None.

    A session from an account's identity provider is that IdP's word only: it must not
    change how the person proves themselves everywhere else.
    """
    if not uses_password(user):
        return SSO_HANDLES_IT
    row = user_sessions.current_session()
    if row is None or row.sso_account_id is not None:
        return SIGN_IN_WITH_PASSWORD
    return None


def refused_action(anchor: str = "second-factor") -> Response | None:
    """Back to the settings page when this session may not act (or the form is stale)."""
    refused = refusal_for_factors(current_user)
    if refused is not None:
        flash(refused, "error")
        return _settings(anchor)
    if not EmptyForm().validate_on_submit():
        return _settings(anchor)
    return None


def _settings(anchor: str = "second-factor") -> Response:
    return redirect(url_for("accounts.settings_page", _anchor=anchor), 303)


@bp.route("/settings/mfa/totp", methods=["GET", "POST"])
@login_required
@reauth.required
@limits.sign_in
def totp_page() -> Response:
    """Show the secret and its QR code; a right code from the app turns it on."""
    user: User = current_user
    refused = refusal_for_factors(user)
    row = user_sessions.current_session()
    if refused is not None or row is None:
        flash(refused or SIGN_IN_WITH_PASSWORD, "info")
        return _settings()
    if request.method != "POST" and not reauth.is_recent():
        # Even the page asks first: it shows a secret that a session thief must not copy.
        return redirect(url_for("auth.reauth_page", next=request.full_path.rstrip("?")), 303)
    form = CodeForm(formdata=request.form if request.method == "POST" else None)
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    elif form.validate():
        code = mfa.normalize(form.code.data or "")
        try:
            if not mfa.is_totp_code(code):
                form.code.errors = [NOT_A_CODE]
            elif mfa.confirm_enrolment(user, row, code):
                codes = mfa.make_recovery_codes(user, first=True)
                db.session.commit()
                return _codes_page(codes, first=True, next_path=safe_next(form.next.data))
            else:
                form.code.errors = [WRONG_CODE]
        except mfa.MfaError as exc:
            form.code.errors = [str(exc)]
    try:
        enrolment = mfa.pending_enrolment(user, row)
    except mfa.MfaError as exc:  # already on (perhaps from another tab)
        flash(str(exc), "info")
        return _settings()
    db.session.commit()
    form.code.data = ""
    status = 422 if form.errors else 200
    page = render_template("accounts/totp.html", form=form, enrolment=enrolment)
    return make_response(page, status)


@bp.post("/settings/mfa/totp/disable")
@login_required
@reauth.required
def disable_totp() -> Response:
    stopped = refused_action()
    if stopped is not None:
        return stopped
    try:
        mfa.remove_totp(current_user)
    except mfa.MfaError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _settings()
    db.session.commit()
    flash(TOTP_REMOVED, "success")
    return _settings()


@bp.post("/settings/mfa/recovery_codes")
@login_required
@reauth.required
def new_recovery_codes() -> Response:
    """Make ten new recovery codes, shown once; the old ones stop working."""
    stopped = refused_action()
    if stopped is not None:
        return stopped
    try:
        codes = mfa.make_recovery_codes(current_user)
    except mfa.MfaError as exc:
        flash(str(exc), "error")
        return _settings()
    db.session.commit()
    return _codes_page(codes, first=False, next_path=None)


def _codes_page(codes: list[str], first: bool, next_path: str | None) -> Response:
    page = render_template(
        "accounts/recovery_codes.html",
        codes=codes,
        first=first,
        codes_made=CODES_MADE,
        next_path=next_path or url_for("accounts.settings_page", _anchor="second-factor"),
    )
    return make_response(page)
