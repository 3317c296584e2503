"""Sign in, sign out, sign up and email confirmation."""

from __future__ import annotations

import logging

from flask import flash
from flask import make_response
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from terminus_hub import audit
from terminus_hub import htmx
from terminus_hub import limits
from terminus_hub import links
from terminus_hub import metrics
from terminus_hub import user_sessions
from terminus_hub.auth import signing_in
from terminus_hub.auth.blueprint import bp
from terminus_hub.core import routing
from terminus_hub.core import signin
from terminus_hub.core import signup
from terminus_hub.core.membership import accounts_of
from terminus_hub.extensions import db
from terminus_hub.forms import EmailForm
from terminus_hub.forms import EmptyForm
from terminus_hub.forms import PasswordSignInForm
from terminus_hub.forms import ResendForm
from terminus_hub.forms import SignUpForm
from terminus_hub.idp_scope import within_scope
from terminus_hub.models import utcnow
from terminus_hub.outbox import may_mail
from terminus_hub.redirects import safe_next

security_log = logging.getLogger("terminus_hub.security")

SIGNED_OUT = "You have signed out."
CONFIRMED = "Your email is confirmed. Sign in to continue."
RESENT = "If that address is waiting for confirmation, a new link is on its way."
# Remembers the address just typed, so the next screen can fill it in for the person.
_EMAIL_HINT = "email_hint"


def remember_email(email: str) -> None:
    """Keep the address just used, so the next form can fill it in for the person."""
    session[_EMAIL_HINT] = email


@bp.get("/")
def index() -> Response:
    """Send people to their account (the picker when they have several), or to sign in."""
    if not current_user.is_authenticated:
        return htmx.redirect_to(url_for("auth.sign_in"))
    accounts = within_scope(accounts_of(current_user))
    if len(accounts) == 1:
        return htmx.redirect_to(url_for("accounts.home", slug=accounts[0].slug))
    return htmx.redirect_to(url_for("accounts.picker"))


@bp.get("/sign_in")
def sign_in() -> Response | str:
    """Show the email step."""
    if current_user.is_authenticated:
        return htmx.redirect_to(url_for("accounts.picker"))
    form = EmailForm(
        formdata=None, email=session.get(_EMAIL_HINT, ""), next=request.args.get("next", "")
    )
    return htmx.render("auth/sign_in.html", "auth/_email_step.html", form=form)


@bp.post("/sign_in/email")
@limits.sign_in
def sign_in_email() -> Response:
    """Route an email: to its identity provider when SSO is enforced, else the password step."""
    form = EmailForm()
    if not form.validate_on_submit():
        return htmx.render("auth/sign_in.html", "auth/_email_step.html", form=form, status=422)
    sso_url = routing.sso_login_url(form.email.canonical, safe_next(form.next.data))
    if sso_url:
        if not htmx.is_htmx() and request.headers.get("Sec-Fetch-Mode") == "navigate":
            # A browser submitting the form itself (no JavaScript): it checks the page's CSP
            # (form-action 'self') on every redirect of the submission, so the 303 chain that
            # ends at the identity provider would be blocked. This page moves on by itself, as
            # a new navigation. Everyone else gets the 303 (HX-Redirect for htmx).
            return make_response(render_template("auth/sso_continue.html", sso_url=sso_url))
        return htmx.redirect_to(sso_url)
    password_form = PasswordSignInForm(formdata=None, email=form.email.data, next=form.next.data)
    return _password_step(password_form)


@bp.get("/sign_in/password")
def sign_in_password() -> Response:
    """Show email and password on one form."""
    if current_user.is_authenticated:
        return htmx.redirect_to(url_for("accounts.picker"))
    form = PasswordSignInForm(
        formdata=None, email=session.get(_EMAIL_HINT, ""), next=request.args.get("next", "")
    )
    return _password_step(form)


@bp.post("/sign_in/password")
@limits.sign_in
def sign_in_password_submit() -> Response:
    """Check the password and start a session, or say (generically) why not."""
    form = PasswordSignInForm()
    if not form.validate_on_submit():
        return _password_step(form, status=422)
    email = form.email.data or ""
    result = signin.authenticate(email, form.password.data or "")
    metrics.SIGN_INS.labels("password", result.reason or result.outcome.value).inc()
    if result.outcome is signin.Outcome.FAILED:  # every failure alike: the log costs the same
        detail = {"reason": result.reason, "email_hash": audit.email_fingerprint(email)}
        security_log.info("authn_login_fail %s", detail)
    if result.outcome is signin.Outcome.FAILED or result.user is None:
        return _password_step(form, error=signin.INCORRECT, credentials_refused=True, status=422)
    if result.outcome is signin.Outcome.UNCONFIRMED:
        resend = ResendForm(formdata=None, email=result.user.email)
        return _password_step(form, error=signin.UNCONFIRMED, resend_form=resend, status=403)
    if result.outcome is signin.Outcome.SSO_REQUIRED:
        return _password_step(form, error=signin.SSO_ENFORCED, status=403)
    if result.outcome is signin.Outcome.SECOND_FACTOR:
        return signing_in.begin_second_factor(result.user, safe_next(form.next.data))
    return signing_in.finish(result.user, safe_next(form.next.data))


def _password_step(form: PasswordSignInForm, status: int = 200, **context: object) -> Response:
    form.password.data = ""  # never echo a password back
    return htmx.render(
        "auth/sign_in_password.html",
        "auth/_password_step.html",
        status=status,
        form=form,
        **context,
    )


@bp.post("/sign_out")
def sign_out() -> Response:
    """End this browser's session for real, then go back to sign-in."""
    form = EmptyForm()
    if not form.validate_on_submit():
        return htmx.redirect_to(url_for("auth.sign_in"))
    user_sessions.end()
    db.session.commit()
    flash(SIGNED_OUT, "success")
    response = htmx.redirect_to(url_for("auth.sign_in"))
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@bp.route("/sign_up", methods=["GET", "POST"])
@limits.sign_up
def sign_up() -> Response:
    """Create a user, their account and its workspace Main, then ask them to confirm."""
    form = SignUpForm()
    if form.validate_on_submit():
        signup.register(form.name.data or "", form.email.canonical, form.password.data or "")
        db.session.commit()
        remember_email(form.email.canonical)
        return htmx.redirect_to(url_for("auth.check_email"))
    form.password.data = ""
    status = 422 if form.errors else 200
    return htmx.render("auth/sign_up.html", "auth/_sign_up_form.html", status=status, form=form)


@bp.get("/sign_up/check_email")
def check_email() -> str:
    """Ask the person to open the link we mailed, offering to send it again."""
    form = ResendForm(formdata=None, email=session.get(_EMAIL_HINT, ""))
    return render_template("auth/check_email.html", form=form)


@bp.post("/confirm/resend")
@limits.recovery
def resend_confirmation() -> Response:
    """Send a fresh confirmation link if that person is unconfirmed; answer the same for all."""
    form = ResendForm()
    if not form.validate_on_submit():
        return htmx.render("auth/check_email.html", "auth/_resend_form.html", status=422, form=form)
    user = signin.find_user(form.email.canonical)
    if user is not None and not user.is_confirmed and may_mail(user.email, "confirm"):
        signup.send_confirmation(user)
        db.session.commit()
    remember_email(form.email.canonical)
    flash(RESENT, "success")
    return htmx.redirect_to(url_for("auth.check_email"))


@bp.route("/confirm/<token>", methods=["GET", "POST"])
@limits.links
def confirm_email(token: str) -> Response:
    """Show one button (GET, safe for mail scanners); confirm the email on POST."""
    user = links.load_user("confirm", token)
    if user is None:
        resend = ResendForm(formdata=None)
        page = render_template("auth/link_invalid.html", form=resend, message=links.INVALID_LINK)
        return make_response(page, 400)
    form = EmptyForm()
    if request.method == "GET" or not form.validate_on_submit():
        return make_response(render_template("auth/confirm.html", form=form))
    user.confirmed_at = utcnow()
    db.session.commit()
    remember_email(user.email)
    flash(CONFIRMED, "success")
    return htmx.redirect_to(url_for("auth.sign_in"))
