"""GET, POST /reauth: enter the password again before a sensitive action, then go back."""

from __future__ import annotations

from flask import make_response
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from werkzeug.wrappers import Response

from terminus_hub import htmx
from terminus_hub import limits
from terminus_hub import reauth
from terminus_hub import user_sessions
from terminus_hub.auth.blueprint import bp
from terminus_hub.core import mfa
from terminus_hub.core import passkeys
from terminus_hub.core import signin
from terminus_hub.extensions import db
from terminus_hub.forms import CodeForm
from terminus_hub.forms import ReauthForm
from terminus_hub.models import Account
from terminus_hub.redirects import safe_next

WRONG_PASSWORD = "That is not your password."
NOT_A_CODE = "Enter the 6 digits your authenticator app shows."


@bp.route("/reauth", methods=["GET", "POST"])
@login_required
@limits.sign_in
def reauth_page() -> Response:
    """Ask for the password again (SSO sessions: sign in again at the IdP), then go to next."""
    form = ReauthForm(formdata=request.form if request.method == "POST" else None)
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    target = safe_next(form.next.data) or url_for("accounts.picker")
    row = user_sessions.current_session()
    sso_account = (
        db.session.get(Account, row.sso_account_id) if row and row.sso_account_id else None
    )
    if sso_account is not None:
        # The IdP vouched for this session: only it can vouch again (a new sign-in there).
        again = url_for("sso.login", slug=sso_account.slug, next=target, reauth="1")
        return make_response(render_template("auth/reauth.html", form=None, sso_url=again))
    if request.method == "GET" and reauth.is_recent(explicit=True):
        # Just proved (a passkey's answer comes back here): resume the interrupted form.
        return _proved(target, mark=False)
    code_form = CodeForm(formdata=None, next=form.next.data)
    if request.method == "POST" and "code" in request.form:
        # The authenticator app instead of the password (recovery codes are kept for sign-in).
        code_form = CodeForm(formdata=request.form)
        if code_form.validate():
            code = mfa.normalize(code_form.code.data or "")
            if not mfa.is_totp_code(code):
                code_form.code.errors = [NOT_A_CODE]
            elif signin.check_second_factor(current_user, code, "reauth", recovery=False) is (
                signin.Factor.PASSED
            ):
                return _proved(target)
            else:
                code_form.code.errors = [signin.WRONG_CODE]
    elif request.method == "POST" and form.validate():
        if signin.confirm_password(current_user, form.password.data or "", "reauth"):
            return _proved(target)
        form.password.errors = [WRONG_PASSWORD]
    form.password.data = ""  # never echo a password back
    code_form.code.data = ""
    status = 422 if form.errors or code_form.errors else 200
    page = render_template(
        "auth/reauth.html",
        form=form,
        code_form=code_form if mfa.confirmed_totp(current_user) else None,
        has_passkeys=bool(passkeys.passkeys_of(current_user)),
        sso_url=None,
    )
    return make_response(page, status)


def _proved(target: str, mark: bool = True) -> Response:
    if mark:
        reauth.mark()
        db.session.commit()
    kept = reauth.kept_form()
    if kept is not None:
        # One click sends the interrupted form again, as it was (its own CSRF token).
        page = render_template("auth/reauth_resume.html", kept=kept, back=target)
        return make_response(page)
    return htmx.redirect_to(target)
