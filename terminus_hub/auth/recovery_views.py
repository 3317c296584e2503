"""Forgot password, reset links and unlock links (routes of the auth blueprint)."""

from __future__ import annotations

from flask import current_app
from flask import flash
from flask import make_response
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from terminus_hub import htmx
from terminus_hub import limits
from terminus_hub import links
from terminus_hub.auth.blueprint import bp
from terminus_hub.auth.views import remember_email
from terminus_hub.core import lockout
from terminus_hub.core import recovery
from terminus_hub.core.signin import find_user
from terminus_hub.extensions import db
from terminus_hub.forms import EmptyForm
from terminus_hub.forms import ForgotPasswordForm
from terminus_hub.forms import ResendForm
from terminus_hub.forms import ResetPasswordForm
from terminus_hub.passwords import context_words

UNLOCKED = "Your account is unlocked. Sign in with your password."


def _invalid_link(template: str = "auth/link_invalid.html") -> Response:
    page = render_template(template, form=ResendForm(formdata=None), message=links.INVALID_LINK)
    return make_response(page, 400)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limits.recovery
def forgot_password() -> Response:
    """Mail a reset link to a known address; answer the same for every address."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        recovery.request_reset(find_user(form.email.canonical))
        db.session.commit()
        remember_email(form.email.canonical)
        minutes = current_app.config["TERMINUS_RESET_TOKEN_MINUTES"]
        flash(recovery.FORGOT_SENT.format(minutes=minutes), "success")
        return htmx.redirect_to(url_for("auth.forgot_password"))
    if request.method == "GET":
        form = ForgotPasswordForm(formdata=None, email=request.args.get("email", ""))
    status = 422 if form.errors else 200
    return make_response(render_template("auth/forgot.html", form=form), status)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limits.links
def reset_password(token: str) -> Response:
    """Show the new-password form (GET changes nothing); set the password on POST."""
    user = links.load_user("reset", token)
    if user is None:
        return _invalid_link("auth/reset_invalid.html")
    form = ResetPasswordForm(context=context_words(user.email, user.name))
    if request.method == "POST" and form.validate():
        if not recovery.reset_password(user, form.password.data or ""):
            return _invalid_link("auth/reset_invalid.html")
        db.session.commit()
        remember_email(user.email)
        flash(recovery.PASSWORD_CHANGED, "success")
        return htmx.redirect_to(url_for("auth.sign_in"))
    form.password.data = ""
    status = 422 if form.errors else 200
    return make_response(render_template("auth/reset.html", form=form), status)


@bp.route("/unlock/<token>", methods=["GET", "POST"])
@limits.links
def unlock(token: str) -> Response:
    """Show one button (GET, safe for mail scanners); clear the lock on POST. Never signs in."""
    user = links.load_user("unlock", token)
    if user is None:
        return _invalid_link("auth/unlock_invalid.html")
    form = EmptyForm()
    if request.method == "GET" or not form.validate_on_submit():
        return make_response(render_template("auth/unlock.html", form=form))
    if not lockout.unlock(user):
        return _invalid_link("auth/unlock_invalid.html")
    db.session.commit()
    remember_email(user.email)
    flash(UNLOCKED, "success")
    return htmx.redirect_to(url_for("auth.sign_in"))
