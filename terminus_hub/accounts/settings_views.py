"""GET /settings and its forms: the signed-in person's name and password."""

from __future__ import annotations

from typing import TypeVar

from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response
from wtforms import PasswordField

from terminus_hub import limits
from terminus_hub import links
from terminus_hub import reauth
from terminus_hub.accounts.blueprint import bp
from terminus_hub.accounts.forms import ChangeEmailForm
from terminus_hub.accounts.forms import ChangePasswordForm
from terminus_hub.accounts.forms import PersonNameForm
from terminus_hub.core import mfa
from terminus_hub.core import passkeys
from terminus_hub.core import profile
from terminus_hub.core import signin
from terminus_hub.core.routing import password_blocked_by_sso
from terminus_hub.extensions import db
from terminus_hub.forms import EmptyForm
from terminus_hub.models import User
from terminus_hub.passwords import context_words

F = TypeVar("F", bound=FlaskForm)

NAME_SAVED = "Your name is saved."
LINK_SENT = (
    "We sent a link to {email}. Your email changes when you open it; until then, sign in with "
    "your current one."
)
EMAIL_CHANGED = "Your email is now {email}. Sign in with it from now on."
PASSWORD_CHANGED = "Your password is changed. Every other browser signed in as you is signed out."
WRONG_CURRENT = "That is not your current password."
NO_PASSWORD = (
    "You sign in through your organisation’s identity provider, which looks after your password."
)


def uses_password(user: User) -> bool:
    return user.password_hash is not None and not password_blocked_by_sso(user)


def _page(
    name_form: PersonNameForm | None = None,
    password_form: ChangePasswordForm | None = None,
    email_form: ChangeEmailForm | None = None,
    status: int = 200,
) -> Response:
    user: User = current_user
    page = render_template(
        "accounts/settings.html",
        name_form=name_form or PersonNameForm(formdata=None, name=user.name),
        password_form=password_form or ChangePasswordForm(formdata=None),
        email_form=email_form or ChangeEmailForm(formdata=None),
        uses_password=uses_password(user),
        no_password=NO_PASSWORD,
        totp=mfa.confirmed_totp(user),
        passkeys=passkeys.passkeys_of(user),
        has_factor=mfa.has_second_factor(user),
        codes_left=mfa.recovery_codes_left(user) if mfa.has_second_factor(user) else 0,
        action_form=EmptyForm(formdata=None),
    )
    return make_response(page, status)


@bp.get("/settings")
@login_required
def settings_page() -> Response:
    """The signed-in person's own page: name, email, password, sessions."""
    return _page()


@bp.post("/settings/name")
@login_required
def change_name() -> Response:
    form = PersonNameForm()
    if not form.validate_on_submit():
        return _page(name_form=form, status=422)
    profile.rename_person(current_user, form.name.data or "")
    db.session.commit()
    flash(NAME_SAVED, "success")
    return redirect(url_for("accounts.settings_page"), 303)


@bp.post("/settings/password")
@login_required
@limits.sign_in
def change_password() -> Response:
    """Current password, then the new one: other sessions end and a notice is mailed."""
    user: User = current_user
    if not uses_password(user):
        return _page(status=403)
    form = ChangePasswordForm(context=context_words(user.email, user.name))
    if not form.validate_on_submit():
        return _page(password_form=_blank(form), status=422)
    if not signin.confirm_password(user, form.current_password.data or "", "password_change"):
        form.current_password.errors = [WRONG_CURRENT]
        return _page(password_form=_blank(form), status=422)
    profile.change_password(user, form.password.data or "")
    reauth.mark()  # the current password was just entered
    db.session.commit()
    flash(PASSWORD_CHANGED, "success")
    return redirect(url_for("accounts.settings_page"), 303)


def _blank(form: F) -> F:
    """Empty every password field of a form that is shown again: never echo a password."""
    for field in form:
        if isinstance(field, PasswordField):
            field.data = ""
    return form


@bp.post("/settings/email")
@login_required
@limits.recovery
def change_email() -> Response:
    """Current password and the new address: a link goes there, a notice to the old one."""
    user: User = current_user
    if not uses_password(user):
        return _page(status=403)
    form = ChangeEmailForm()
    if not form.validate_on_submit():
        return _page(email_form=_blank(form), status=422)
    new_email = form.email.canonical
    try:
        profile.check_new_email(user, new_email)
    except profile.EmailChangeRefused as exc:
        form.email.errors = [str(exc)]
        return _page(email_form=_blank(form), status=422)
    if not signin.confirm_password(user, form.current_password.data or "", "email_change"):
        form.current_password.errors = [WRONG_CURRENT]
        return _page(email_form=_blank(form), status=422)
    profile.request_email_change(user, new_email)
    reauth.mark()
    db.session.commit()
    flash(LINK_SENT.format(email=new_email), "success")
    return redirect(url_for("accounts.settings_page"), 303)


@bp.route("/settings/email/confirm/<token>", methods=["GET", "POST"])
@limits.links
def confirm_email_change(token: str) -> Response:
    """Show one button (GET, safe for mail scanners); change the address on POST."""
    found = links.load_user_and_data("email_change", token)
    if found is None or not found[1]:
        page = render_template("accounts/email_change_invalid.html", message=links.INVALID_LINK)
        return make_response(page, 400)
    user, new_email = found
    form = EmptyForm()
    if request.method == "GET" or not form.validate_on_submit():
        page = render_template("accounts/email_change_confirm.html", form=form, new_email=new_email)
        return make_response(page)
    try:
        profile.change_email(user, new_email)
        db.session.commit()
    except profile.EmailChangeRefused as exc:
        db.session.rollback()
        page = render_template("accounts/email_change_invalid.html", message=str(exc))
        return make_response(page, 409)
    except IntegrityError:  # taken by someone in the same moment: the unique index decides
        db.session.rollback()
        page = render_template("accounts/email_change_invalid.html", message=profile.TAKEN_NOW)
        return make_response(page, 409)
    flash(EMAIL_CHANGED.format(email=new_email), "success")
    target = "accounts.settings_page" if current_user.is_authenticated else "auth.sign_in"
    return redirect(url_for(target), 303)
