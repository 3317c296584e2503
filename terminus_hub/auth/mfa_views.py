"""GET, POST /sign_in/mfa: the code after a right password, before any session exists."""

from __future__ import annotations

from flask import flash
from flask import make_response
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from terminus_hub import htmx
from terminus_hub import limits
from terminus_hub import metrics
from terminus_hub.auth import signing_in
from terminus_hub.auth.blueprint import bp
from terminus_hub.core import mfa
from terminus_hub.core import passkeys
from terminus_hub.core import signin
from terminus_hub.core.routing import password_blocked_by_sso
from terminus_hub.forms import CodeForm
from terminus_hub.models import User
from terminus_hub.redirects import safe_next

EXPIRED = "That sign-in took too long. Enter your email and password again."
RECOVERY_USED = (
    "You signed in with a recovery code. {left} left: make new ones in your settings if you "
    "are running low."
)


@bp.route("/sign_in/mfa", methods=["GET", "POST"])
@limits.sign_in
def sign_in_mfa() -> Response:
    """Ask for the authenticator-app code (or a recovery code); sign in when it is right."""
    waiting = signing_in.pending()
    if waiting is None:
        signing_in.forget_pending()
        flash(EXPIRED, "info")
        return htmx.redirect_to(url_for("auth.sign_in"))
    user, next_path = waiting
    form = CodeForm(formdata=request.form if request.method == "POST" else None)
    if request.method == "GET" or not form.validate():
        return _page(form, status=422 if form.errors else 200, user=user)
    if not user.is_confirmed or password_blocked_by_sso(user):
        # Changed since the password step: sign in again, and hear the rule there.
        signing_in.forget_pending()
        return htmx.redirect_to(url_for("auth.sign_in"))
    code = mfa.normalize(form.code.data or "")
    if not (mfa.is_totp_code(code) or mfa.is_recovery_code(code)):
        form.code.errors = [signin.MALFORMED_CODE]  # not a guess: not counted
        return _page(form, status=422, user=user)
    result = signin.check_second_factor(user, code, "sign_in")
    metrics.SIGN_INS.labels("second_factor", result.value).inc()
    if result is signin.Factor.LOCKED:
        signing_in.forget_pending()
        return _page(None, status=403, error=signin.LOCKED_AT_CODE)
    if result is signin.Factor.WRONG:
        form.code.errors = [signin.WRONG_CODE]
        return _page(form, status=422, user=user)
    notice = None
    if mfa.is_recovery_code(code):
        left = mfa.recovery_codes_left(user)
        notice = (RECOVERY_USED.format(left=left), "error" if left < 3 else "info")
    return signing_in.finish(user, safe_next(next_path), notice)


def _page(
    form: CodeForm | None, status: int, error: str | None = None, user: User | None = None
) -> Response:
    if form is not None:
        form.code.data = ""  # a code is never shown back
    page = render_template(
        "auth/sign_in_mfa.html",
        form=form,
        error=error,
        has_totp=user is not None and mfa.confirmed_totp(user) is not None,
        has_passkeys=user is not None and bool(passkeys.passkeys_of(user)),
    )
    return make_response(page, status)
