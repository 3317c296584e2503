"""/settings/passkeys…: register a passkey (JSON, from the settings page's script), rename and
delete one (plain forms)."""

from __future__ import annotations

from flask import flash
from flask import jsonify
from flask import redirect
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from terminus_hub import limits
from terminus_hub import passkey_http
from terminus_hub import reauth
from terminus_hub.accounts.blueprint import bp
from terminus_hub.accounts.mfa_views import refusal_for_factors
from terminus_hub.accounts.mfa_views import refused_action
from terminus_hub.core import passkeys
from terminus_hub.extensions import db
from terminus_hub.models import User

RENAMED = "Passkey renamed."
DELETED = "Passkey “{name}” removed."


def _settings() -> Response:
    return redirect(url_for("accounts.settings_page", _anchor="passkeys"), 303)


def _may_register(user: User) -> Response | None:
    refused = refusal_for_factors(user)
    if refused is not None:
        return passkey_http.refusal(passkeys.PasskeyError(refused, code="forbidden", status=403))
    if not reauth.is_recent(explicit=True):
        # A passkey signs in on its own and outlives every session, so even a fresh sign-in
        # is asked again (a cookie copied right after it must not add one). The page's script
        # follows reauth_url, and comes back to the settings page.
        error = passkeys.PasskeyError(reauth.REQUIRED, code="reauthentication_required", status=403)
        back = url_for("auth.reauth_page", next=url_for("accounts.settings_page") + "#passkeys")
        return passkey_http.refusal(error, reauth_url=back)
    return None


@bp.post("/settings/passkeys/options")
@login_required
@limits.sign_in
def passkey_registration_options() -> Response:
    """The options for navigator.credentials.create()."""
    stopped = _may_register(current_user)
    if stopped is not None:
        return stopped
    document = passkeys.registration_options(current_user)
    db.session.commit()
    return passkey_http.options(document)


@bp.post("/settings/passkeys")
@login_required
@limits.sign_in
def register_passkey() -> Response:
    """Keep the passkey the browser made (RegistrationResponseJSON plus ``name``)."""
    user: User = current_user
    stopped = _may_register(user)
    if stopped is not None:
        return stopped
    try:
        passkey = passkeys.register(user, passkey_http.body(), request.user_agent.string)
        db.session.commit()
    except passkeys.PasskeyError as exc:
        db.session.commit()  # the challenge stays spent, the refusal audited
        return passkey_http.refusal(exc)
    except IntegrityError:  # the same credential registered in the same moment
        db.session.rollback()
        return passkey_http.refusal(
            passkeys.PasskeyError(passkeys.ALREADY_REGISTERED, code="conflict", status=409)
        )
    response = jsonify({"id": passkey.id, "name": passkey.name})
    response.status_code = 201
    return response


@bp.post("/settings/passkeys/<passkey_id>/rename")
@login_required
@reauth.required
def rename_passkey(passkey_id: str) -> Response:
    stopped = refused_action("passkeys")
    if stopped is not None:
        return stopped
    try:
        passkeys.rename(current_user, passkey_id, request.form.get("name"))
    except passkeys.PasskeyError as exc:
        flash(str(exc), "error")
        return _settings()
    db.session.commit()
    flash(RENAMED, "success")
    return _settings()


@bp.post("/settings/passkeys/<passkey_id>/delete")
@login_required
@reauth.required
def delete_passkey(passkey_id: str) -> Response:
    stopped = refused_action("passkeys")
    if stopped is not None:
        return stopped
    try:
        removed = passkeys.remove(current_user, passkey_id)
    except passkeys.PasskeyError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _settings()
    db.session.commit()
    flash(DELETED.format(name=removed.name), "success")
    return _settings()
