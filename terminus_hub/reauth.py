"""Re-authentication ("sudo mode"): sensitive actions need a recent proof of who is acting.

Signing in counts, and so does entering the password again at /reauth (or the current
password on a form that asks for it). Past TERMINUS_REAUTH_MINUTES, a page action sends the
person to /reauth and back; an API call with a session gets 403 reauthentication_required.
API keys are not affected: a key is its own proof.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from typing import ParamSpec
from typing import TypeVar

from flask import current_app
from flask import g
from flask import request
from flask import session
from flask import url_for

from terminus_hub import htmx
from terminus_hub import user_sessions
from terminus_hub.api_errors import ApiError
from terminus_hub.models import utcnow
from terminus_hub.redirects import safe_next

P = ParamSpec("P")
R = TypeVar("R")

REQUIRED = "Confirm it is you: sign in again (with your password) to do this."
KEPT_FORM = "reauth_form"


def window() -> timedelta:
    """How recently a sensitive action needs the person to have proved who they are."""
    return timedelta(minutes=current_app.config["TERMINUS_REAUTH_MINUTES"])


def is_recent(explicit: bool = False) -> bool:
    """Say whether this request's session proved its person within TERMINUS_REAUTH_MINUTES.

    A password sign-in proves it at the session's start; an IdP's sign-in when the IdP checked
    the person (which may be earlier: the session row says so); /reauth when it passed.
    ``explicit``: only a proof given after the sign-in counts (/reauth, or a form's current
    password), not the sign-in itself: for what outlives the session, such as a new passkey.
    """
    row = user_sessions.current_session()
    if row is None:
        return False
    proved = row.reauthenticated_at if explicit else row.reauthenticated_at or row.created_at
    return proved is not None and utcnow() - proved <= window()


def mark() -> None:
    """Record that the person proved who they are just now (committed by the caller)."""
    row = user_sessions.current_session()
    if row is not None:
        row.reauthenticated_at = utcnow()


def required(view: Callable[P, R]) -> Callable[P, R]:
    """Let the view run only for a recently proved session (API keys always pass)."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if request.method in ("GET", "HEAD") or _by_api_key() or is_recent():
            return view(*args, **kwargs)
        if request.blueprint == "api":
            raise ApiError("reauthentication_required", REQUIRED, 403)
        # Back to the page the form was on (never to a POST-only address), and the form's
        # own fields kept to send again after the password (never a password or a token).
        here = request.path if request.method == "GET" else None
        back = safe_next(_referrer_path()) or safe_next(here) or "/"
        _keep_form()
        return htmx.redirect_to(url_for("auth.reauth_page", next=back))  # type: ignore[return-value]

    return wrapper


# The kept form lives in the signed session cookie: small forms only, and only the fields of
# the forms this guards (never a password, a code or a token).
_KEPT_LIMIT = 1500
_KEPT_FIELDS = frozenset(
    {"name", "email", "role", "domains", "entity_id", "sso_url", "certificate", "enforced"}
)


def _keep_form() -> None:
    fields = [(n, v) for n, v in request.form.items(multi=True) if n in _KEPT_FIELDS]
    kept = {"action": request.path, "fields": fields}
    if safe_next(request.path) and sum(len(n) + len(v) for n, v in fields) <= _KEPT_LIMIT:
        session[KEPT_FORM] = kept
    else:
        session.pop(KEPT_FORM, None)


def kept_form() -> dict[str, Any] | None:
    """Take the form a re-authentication interrupted (its action and fields), once."""
    kept = session.pop(KEPT_FORM, None)
    if not isinstance(kept, dict) or not safe_next(kept.get("action")):
        return None
    fields = kept.get("fields")
    if not isinstance(fields, list) or not all(
        isinstance(f, list | tuple) and len(f) == 2 and all(isinstance(x, str) for x in f)
        for f in fields
    ):
        return None
    return {"action": kept["action"], "fields": [tuple(f) for f in fields]}


def _by_api_key() -> bool:
    caller = g.get("api_caller")
    return caller is not None and caller.auth == "api_key"


def _referrer_path() -> str | None:
    referrer = request.referrer or ""
    base = str(current_app.config["TERMINUS_BASE_URL"])
    if referrer.startswith(base + "/"):
        return referrer[len(base) :]
    return None
