"""GET /settings and its forms: the signed-in person's name and password."""

from __future__ import annotations

from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from werkzeug.wrappers import Response

from terminus_hub import limits
from terminus_hub import reauth
from terminus_hub.accounts.blueprint import bp
from terminus_hub.accounts.forms import ChangePasswordForm
from terminus_hub.accounts.forms import PersonNameForm
from terminus_hub.core import profile
from terminus_hub.core import signin
from terminus_hub.core.routing import password_blocked_by_sso
from terminus_hub.extensions import db
from terminus_hub.models import User
from terminus_hub.passwords import context_words

NAME_SAVED = "Your name is saved."
PASSWORD_CHANGED = "Your password is changed. Every other browser signed in as you is signed out."
WRONG_CURRENT = "That is not your current password."
NO_PASSWORD = (
    "You sign in through your organisation’s identity provider, which looks after your password."
)


def _uses_password(user: User) -> bool:
    return user.password_hash is not None and not password_blocked_by_sso(user)


def _page(
    name_form: PersonNameForm | None = None,
    password_form: ChangePasswordForm | None = None,
    status: int = 200,
) -> Response:
    user: User = current_user
    page = render_template(
        "accounts/settings.html",
        name_form=name_form or PersonNameForm(formdata=None, name=user.name),
        password_form=password_form or ChangePasswordForm(formdata=None),
        uses_password=_uses_password(user),
        no_password=NO_PASSWORD,
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
    if not _uses_password(user):
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


def _blank(form: ChangePasswordForm) -> ChangePasswordForm:
    form.current_password.data = form.password.data = ""  # never echo a password back
    return form
