"""Decide what to believe about a request, refuse input no page can store, and find the account
a page is about (404 for anyone who is not a member)."""

from __future__ import annotations

from flask import Flask
from flask import abort
from flask import flash
from flask import request
from flask import url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from terminus_hub import htmx
from terminus_hub import user_sessions
from terminus_hub.core import mfa
from terminus_hub.core.membership import SLUG_PATTERN
from terminus_hub.core.membership import account_by_slug
from terminus_hub.core.membership import membership_of
from terminus_hub.idp_scope import within_scope
from terminus_hub.models import Account
from terminus_hub.models import Membership
from terminus_hub.models import User


def init_app(app: Flask) -> None:
    """Trust only the configured proxies; refuse NUL characters, which PostgreSQL cannot hold."""
    proxies = app.config["TERMINUS_TRUSTED_PROXIES"]
    if proxies:
        # Only that many X-Forwarded-For/-Proto hops are believed, so a client cannot forge its
        # address (and escape per-address limits) by sending the header itself.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    app.before_request(_refuse_nul)


_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _refuse_nul() -> None:
    if "\x00" in request.path:
        abort(400)
    # Only what was sent is looked at: the query string when there is one, the form when the
    # body is a form (request.form is empty for any other body; JSON is checked by the API).
    sources = []
    if request.query_string:
        sources.append(request.args)
    if request.mimetype in _FORM_TYPES:
        sources.append(request.form)
    for values in sources:
        for key, value in values.items(multi=True):
            if "\x00" in key or "\x00" in value:
                abort(400)


def member_account_or_404(user: User, slug: str) -> tuple[Account, Membership]:
    """Return the account and the person's membership; 404 when either is missing."""
    account = account_by_slug(slug) if SLUG_PATTERN.fullmatch(slug) else None
    membership = membership_of(user, account) if account else None
    if account is None or membership is None or not within_scope([account]):
        abort(404)
    if enrolment_required(user, account, membership):
        # The account asks its owners and admins for a second factor: set one up first.
        flash(ENROL_FIRST, "info")
        back = request.path if request.method == "GET" else url_for("accounts.home", slug=slug)
        abort(htmx.redirect_to(url_for("accounts.totp_page", next=back)))
    return account, membership


ENROL_FIRST = (
    "This account asks its owners and admins to use a second factor. Set up an authenticator "
    "app to go on."
)


def enrolment_required(user: User, account: Account, membership: Membership) -> bool:
    """Say whether the account's policy stops this person until they have a second factor.

    Sessions started through the account's identity provider are not asked: the IdP decides
    how people prove themselves there.
    """
    if not mfa.must_enrol(user, account, membership.role):
        return False
    row = user_sessions.current_session()
    return row is None or row.sso_account_id is None
