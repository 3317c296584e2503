"""Server-side sessions under Flask-Login: one row per signed-in browser, checked every request."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from flask import Flask
from flask import Request
from flask import current_app
from flask import g
from flask import request
from flask import session
from flask.sessions import SecureCookieSession
from flask.sessions import SecureCookieSessionInterface
from flask.sessions import SessionMixin
from flask.wrappers import Response as FlaskResponse
from flask_login import login_user
from flask_login import logout_user
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from werkzeug.wrappers import Response

from terminus_hub.extensions import db
from terminus_hub.extensions import login_manager
from terminus_hub.models import User
from terminus_hub.models import UserSession
from terminus_hub.models import utcnow

log = logging.getLogger(__name__)

# Writing last_seen_at on every request would make every page a write; a minute is precise enough.
_TOUCH_EVERY = timedelta(minutes=1)
SESSION_KEY = "sid"


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, not even opened for API calls that bring a key.

    A request with an Authorization header under /api/ is judged by that header alone
    (docs/api-authentication.md): its cookies are ignored, so it gets a fresh, empty session
    instead of the cookie's, and since nothing changes that session no cookie is sent back.
    """

    @staticmethod
    def _key_call(request: Request) -> bool:
        return "Authorization" in request.headers and request.path.startswith("/api/")

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if self._key_call(request):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: FlaskResponse) -> None:
        # Never answer a key call with a cookie: it would replace the browser's real session.
        if self._key_call(request):
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    """Make Flask-Login load people only through a live session row."""
    app.session_interface = CookieSessions()
    app.after_request(_touch)
    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"
    # Sessions are revoked server-side; a remember-me cookie would outlive them.
    app.config["REMEMBER_COOKIE_DURATION"] = timedelta(seconds=0)
    app.permanent_session_lifetime = timedelta(days=app.config["TERMINUS_SESSION_MAX_DAYS"])
    login_manager.user_loader(_load_user)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def current_session() -> UserSession | None:
    """Return the live session row behind this request's cookie, if any.

    Looked up once per request (every signed-in page asks several times); signing in or out
    forgets the answer. The last-seen time is written after the response (``_touch``).
    """
    if "user_session" in g:
        cached: UserSession | None = g.user_session
        return cached
    row = _look_up()
    g.user_session = row
    g.user_session_seen = row.last_seen_at if row is not None else None
    return row


def _look_up() -> UserSession | None:
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        return None
    row = db.session.scalar(select(UserSession).where(UserSession.token_hash == _hash(token)))
    if row is None:
        return None
    now = utcnow()
    config = current_app.config
    idle = timedelta(hours=config["TERMINUS_SESSION_IDLE_HOURS"])
    lifetime = timedelta(days=config["TERMINUS_SESSION_MAX_DAYS"])
    if now - row.last_seen_at > idle or now - row.created_at > lifetime:
        db.session.delete(row)
        db.session.commit()  # deliberate: an expired session ends whatever the request does
        return None
    return row


def _forget() -> None:
    g.pop("user_session", None)


def _touch(response: Response) -> Response:
    """After the response: note that the session was used (at most once a minute per session).

    A conditional UPDATE of its own, so it never commits anything the view left behind, and a
    failure only costs the note, never the response.
    """
    row = g.get("user_session")
    seen = g.get("user_session_seen")
    now = utcnow()
    if not isinstance(row, UserSession) or seen is None or now - seen <= _TOUCH_EVERY:
        return response
    try:
        db.session.execute(
            update(UserSession)
            .where(UserSession.id == row.id, UserSession.last_seen_at < now - _TOUCH_EVERY)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.warning("could not note a session's last use", exc_info=True)
    return response


def current_session_of(user: User) -> UserSession | None:
    """Return this request's session row when it belongs to the given person."""
    row = current_session()
    return row if row is not None and row.user_id == user.id else None


def _load_user(user_id: str) -> User | None:
    row = current_session()
    if row is None or row.user_id != user_id:
        session.clear()
        return None
    return row.user


def start(user: User) -> UserSession:
    """Sign a person in with a new session id, discarding everything from before."""
    _forget()
    previous = session.get(SESSION_KEY)
    if isinstance(previous, str):  # this browser's earlier session ends, row and all
        db.session.execute(delete(UserSession).where(UserSession.token_hash == _hash(previous)))
    session.clear()  # the pre-sign-in session (and its CSRF token) is gone
    token = secrets.token_urlsafe(32)
    row = UserSession(
        token_hash=_hash(token),
        user_id=user.id,
        ip_address=(request.remote_addr or "")[:64],
        user_agent=request.user_agent.string[:512],
    )
    db.session.add(row)
    user.last_sign_in_at = utcnow()
    session[SESSION_KEY] = token
    session.permanent = True
    login_user(user)
    g.user_session = row
    g.user_session_seen = row.created_at = row.last_seen_at = utcnow()
    return row


def end() -> None:
    """Sign out: delete the session row so a copied cookie stops working."""
    _forget()
    token = session.get(SESSION_KEY)
    if isinstance(token, str):
        db.session.execute(delete(UserSession).where(UserSession.token_hash == _hash(token)))
    logout_user()
    session.clear()


def end_all_for(user: User, keep: UserSession | None = None) -> None:
    """End every session of a person, except optionally the one given."""
    if keep is None:
        _forget()  # this request's session may be among them
    statement = delete(UserSession).where(UserSession.user_id == user.id)
    if keep is not None:
        statement = statement.where(UserSession.id != keep.id)
    db.session.execute(statement)
