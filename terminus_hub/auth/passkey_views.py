"""POST /sign_in/passkey/options and /sign_in/passkey: a passkey answers for a passwordless
sign-in (from the email step), the second-factor step, or re-authentication.

Which of the three is decided by the state of the browser when it asks for options (signed
in: re-authentication; waiting at /sign_in/mfa: the second factor; otherwise: sign-in) and
is kept with the challenge, so an answer serves only the ceremony it was made for.
"""

from __future__ import annotations

from flask import jsonify
from flask import request
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from terminus_hub import audit
from terminus_hub import limits
from terminus_hub import metrics
from terminus_hub import passkey_http
from terminus_hub import reauth
from terminus_hub import user_sessions
from terminus_hub.auth import signing_in
from terminus_hub.auth.blueprint import bp
from terminus_hub.core import lockout
from terminus_hub.core import passkeys
from terminus_hub.core import signin
from terminus_hub.core.routing import password_blocked_by_sso
from terminus_hub.extensions import db
from terminus_hub.models import User
from terminus_hub.redirects import safe_next

LOCKED = (
    "Signing in is locked for a while after too many wrong attempts. Use the link we mailed "
    "you to unlock it now."
)
SSO_SESSION = "You signed in through your identity provider: confirm it is you there instead."


def _ceremony() -> tuple[str, User | None, str | None]:
    """Which passkey ceremony this browser is in, whose passkeys may answer, and the next
    page the second-factor step remembered."""
    if current_user.is_authenticated:
        return "reauth", current_user._get_current_object(), None
    waiting = signing_in.pending()
    if waiting is not None:
        return "second_factor", waiting[0], waiting[1]
    return "sign_in", None, None


def _refuse(message: str, code: str = "passkey_refused", status: int = 403) -> Response:
    return passkey_http.refusal(passkeys.PasskeyError(message, code=code, status=status))


@bp.post("/sign_in/passkey/options")
@limits.sign_in
def passkey_options() -> Response:
    """The options for navigator.credentials.get(), for this browser's ceremony."""
    purpose, user, _ = _ceremony()
    if purpose == "reauth" and _from_idp():
        return _refuse(SSO_SESSION, code="reauthentication_at_idp")
    document = passkeys.authentication_options(purpose, user)
    db.session.commit()
    return passkey_http.options(document)


@bp.post("/sign_in/passkey")
@limits.sign_in
def passkey_answer() -> Response:
    """Check the AuthenticationResponseJSON; sign in, pass the second factor, or confirm."""
    purpose, user, remembered_next = _ceremony()
    if purpose == "reauth" and _from_idp():
        return _refuse(SSO_SESSION, code="reauthentication_at_idp")
    try:
        found = passkeys.check_assertion(passkey_http.body(), (purpose,))
        if user is not None and found.user.id != user.id:
            raise passkeys.PasskeyError(passkeys.NOT_YOURS)
    except passkeys.PasskeyError as exc:
        db.session.commit()  # the challenge stays spent, the refusal audited
        metrics.SIGN_INS.labels("passkey", "failed").inc()
        return passkey_http.refusal(exc)
    person, passkey_id = found.user, found.passkey.id
    next_path = safe_next(request.args.get("next")) or remembered_next
    refusal = _rule_refusing(person, purpose)
    if refusal is not None:
        reason, message, code = refusal
        kind = "reauthentication.failed" if purpose == "reauth" else "sign_in.failed"
        detail = {"reason": reason, "method": "passkey", "passkey_id": passkey_id}
        audit.record(kind, user=person, actor=person, detail=detail)
        db.session.commit()
        metrics.SIGN_INS.labels("passkey", reason).inc()
        return _refuse(message, code=code)
    if purpose == "reauth":
        reauth.mark()
        detail = {"for": "reauth", "method": "passkey", "passkey_id": passkey_id}
        audit.record("reauthentication.succeeded", user=person, actor=person, detail=detail)
        db.session.commit()
        # /reauth sends the interrupted form again (or goes on to next) now that it is recent.
        return jsonify({"redirect": url_for("auth.reauth_page", next=next_path or "/accounts")})
    if purpose == "sign_in":
        detail = {"method": "passkey", "passkey_id": passkey_id}
    else:
        detail = {"method": "password", "second_factor": "passkey", "passkey_id": passkey_id}
    audit.record("sign_in.succeeded", user=person, actor=person, detail=detail)
    metrics.SIGN_INS.labels("passkey", "signed_in").inc()
    return jsonify({"redirect": signing_in.complete(person, next_path)})


def _rule_refusing(person: User, purpose: str) -> tuple[str, str, str] | None:
    """The sign-in rules a passkey obeys like a password: (reason, message, code) or None.

    Re-checked at the second factor too: the address or the domain's SSO may have changed
    since the password step. A lock counts everywhere; a lock that has run out does not.
    Passing clears the count of failures, as a right password does (committed).
    """
    if purpose != "reauth" and not person.is_confirmed:
        return "unconfirmed", signin.UNCONFIRMED, "unconfirmed"
    if purpose != "reauth" and password_blocked_by_sso(person):
        return "sso_enforced", signin.SSO_ENFORCED, "sso_required"
    lockout.forget_expired_lock(person)
    if not lockout.record_success(person):  # commits
        return "locked", LOCKED, "locked"
    return None


def _from_idp() -> bool:
    row = user_sessions.current_session()
    return row is not None and row.sso_account_id is not None
