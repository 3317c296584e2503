"""SP metadata, sending people to their IdP, the assertion consumer, and the settings page."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import abort
from flask import current_app
from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from terminus_hub import audit
from terminus_hub import limits
from terminus_hub import metrics
from terminus_hub import reauth
from terminus_hub import user_sessions
from terminus_hub.core import dns_proof
from terminus_hub.core import sso_domains as domains
from terminus_hub.core.idp_metadata import MetadataError
from terminus_hub.core.idp_metadata import build_idp_metadata
from terminus_hub.core.membership import account_by_slug
from terminus_hub.core.membership import membership_of
from terminus_hub.core.sso_connections import ConfigurationError
from terminus_hub.core.sso_connections import claim_for_email
from terminus_hub.core.sso_connections import configure
from terminus_hub.core.sso_connections import connection_of
from terminus_hub.extensions import csrf
from terminus_hub.extensions import db
from terminus_hub.forms import EmptyForm
from terminus_hub.guards import enrolment_required
from terminus_hub.guards import member_account_or_404
from terminus_hub.idp_scope import within_scope
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import Account
from terminus_hub.models import Membership
from terminus_hub.models import SsoConnection
from terminus_hub.models import utcnow
from terminus_hub.redirects import safe_next
from terminus_hub.sso.blueprint import bp
from terminus_hub.sso.forms import SsoSettingsForm
from terminus_hub.sso.provisioning import NotProvisioned
from terminus_hub.sso.provisioning import provision

# pysaml2 (through sso.saml) costs about 20 MiB and a second and a half to import: each view
# that needs it imports it, so a worker that never serves single sign-on never loads it.
if TYPE_CHECKING:
    from terminus_hub.sso import saml

log = logging.getLogger("terminus_hub.security")

SSO_FAILED = "Sign-in through your identity provider failed."
TEST_SUCCEEDED = "Test sign-in succeeded. You can now enforce single sign-on."
SAVED = "Single sign-on settings saved."
METADATA_EXPIRED = (
    "Single sign-on is unavailable: this account’s identity provider metadata has expired. "
    "An owner or admin must upload fresh metadata on the account’s single sign-on page."
)
NOT_ACTIVE = "Single sign-on for this account is not active yet."
NOT_ACTIVE_DETAIL = (
    "None of its email domains is verified. Until one is, only the account’s owners and admins "
    "can use the identity provider, for a test sign-in from the single sign-on page."
)
METADATA_UNUSABLE = (
    "Single sign-on is unavailable: this account’s identity provider settings are no longer "
    "accepted. An owner or admin must upload fresh metadata on the account’s single sign-on page."
)


def _configured(slug: str) -> tuple[Account, SsoConnection]:
    account = account_by_slug(slug) if len(slug) <= 64 else None
    connection = connection_of(account) if account else None
    if account is None or connection is None:
        abort(404)
    return account, connection


@bp.get("/sso/<slug>/metadata")
@limits.sso
def metadata(slug: str) -> Response:
    """Serve this account's SAML SP metadata (the entity id is this URL).

    Public once the account has SSO (its IdP fetches it); before that only its owners and
    admins, who are setting it up, see it. Anyone else gets the same 404 as for an unknown
    slug, so the metadata URL cannot tell which accounts exist.
    """
    # One query whether or not the account exists, so its time does not tell either.
    found = None
    if len(slug) <= 64:
        found = db.session.execute(
            select(Account, SsoConnection.id)
            .outerjoin(SsoConnection, SsoConnection.account_id == Account.id)
            .where(Account.slug == slug)
        ).first()
    if found is None or (found[1] is None and not _manages(found[0])):
        abort(404)
    account = found[0]
    from terminus_hub.sso import saml  # only once the answer is not a 404 (see the docstring)

    response = make_response(saml.sp_metadata_xml(account))
    response.mimetype = "application/samlmetadata+xml"
    return response


@bp.route("/sso/<slug>/login", methods=["GET", "POST"])
@limits.sso
def login(slug: str) -> Response:
    """Send the person to the account's IdP with a signed AuthnRequest (HTTP-Redirect).

    Only an account with a verified domain sends anyone there from a GET. The settings page's
    test sign-in is ``POST …?test=1`` with the page's CSRF token, by the account's owners and
    admins only, so no link from elsewhere can send a signed-in owner to the IdP.
    """
    account, connection = _configured(slug)
    is_test = request.args.get("test") == "1"
    if request.method == "POST" or is_test:
        if request.method != "POST" or not is_test or not _manages(account):
            abort(403)
        if not EmptyForm().validate_on_submit():
            abort(400)
    if not is_test and not any(d.is_verified for d in connection.domains):
        page = render_template("sso/failed.html", message=NOT_ACTIVE, detail=NOT_ACTIVE_DETAIL)
        return make_response(page, 409)
    next_path = safe_next(request.args.get("next"))
    started_by = current_user._get_current_object() if is_test else None
    force = request.args.get("reauth") == "1"  # from /reauth: the IdP must check again
    from terminus_hub.sso import saml

    try:
        location, request_id = saml.start_login(
            account, connection, next_path, started_by, force_authn=force
        )
    except saml.MetadataUnusable as exc:
        return _metadata_unusable(account, exc)
    db.session.commit()
    response = redirect(location, 303)
    binding = saml.bind_to_browser(request.cookies.get(saml.BINDING_COOKIE), request_id)
    _set_binding(response, binding)
    return response


def _still_manages(account: Account, user_id: str | None) -> bool:
    """Say whether the person who started a test sign-in is still an owner or admin here."""
    role = db.session.scalar(
        select(Membership.role).where(
            Membership.account_id == account.id, Membership.user_id == user_id
        )
    )
    return role in MANAGER_ROLES


def _manages(account: Account) -> bool:
    """Say whether the signed-in person is an owner or admin of the account, in this session."""
    if not current_user.is_authenticated or not within_scope([account]):
        return False
    membership = membership_of(current_user, account)
    if membership is None or membership.role not in MANAGER_ROLES:
        return False
    # An owner or admin the account's policy sends to enrol first may not start a test sign-in
    # either: its session would come from the IdP, which the policy does not ask.
    return not enrolment_required(current_user, account, membership)


@bp.post("/sso/<slug>/acs")
@csrf.exempt  # the IdP posts this cross-site; the pending request is what binds it to us
@limits.sso
def acs(slug: str) -> Response:
    """Check the IdP's response and sign the person in, or show a clear failure page."""
    account = account_by_slug(slug) if len(slug) <= 64 else None
    connection = connection_of(account) if account else None
    if account is None or connection is None:
        return _failed(slug, "no SSO connection for this slug")
    from terminus_hub.sso import saml

    binding = request.cookies.get(saml.BINDING_COOKIE)
    try:
        asserted = saml.finish_login(
            account, connection, request.form.get("SAMLResponse", ""), binding
        )
    except saml.SsoFailure as exc:
        return _failed(slug, str(exc), account)
    except saml.MetadataUnusable as exc:
        return _metadata_unusable(account, exc)
    claim = claim_for_email(connection, asserted.email)
    try:
        user = provision(
            account,
            connection,
            asserted.email,
            domain_verified=claim is not None and claim.is_verified,
            started_by_id=asserted.started_by_id,
        )
    except NotProvisioned as exc:
        return _failed(slug, str(exc), account)
    if asserted.is_test and _still_manages(account, asserted.started_by_id):
        connection.tested_at = utcnow()
    target = safe_next(asserted.next_path) or url_for("accounts.home", slug=account.slug)
    row = user_sessions.start(user)  # clears the pre-sign-in session, so flash only after it
    row.sso_account_id = account.id
    # The person proved who they are when the IdP checked them, which may be long before this
    # answer (its own session): re-authentication counts from then (reauth.is_recent).
    row.reauthenticated_at = asserted.authenticated_at or row.created_at - reauth.window()
    if asserted.is_test:
        target = url_for("sso.settings", slug=account.slug)
        flash(TEST_SUCCEEDED, "success")
    row.account_id = account.id
    audit.record("sso.sign_in_succeeded", account=account, user=user, actor=user)
    db.session.commit()
    log.info("authn_login_success method=saml account=%s user=%s", account.slug, user.id)
    metrics.SIGN_INS.labels("sso", "signed_in").inc()
    response = redirect(target, 303)
    _set_binding(response, saml.release_binding(binding, asserted.request_id))
    return response


def _set_binding(response: Response, value: str) -> None:
    """Set (or, when empty, clear) the cookie that ties pending sign-ins to this browser."""
    from terminus_hub.sso import saml

    secure = current_app.config["SESSION_COOKIE_SECURE"]
    if not value:
        response.delete_cookie(saml.BINDING_COOKIE, path="/sso/", secure=secure, httponly=True)
        return
    response.set_cookie(
        saml.BINDING_COOKIE,
        value,
        max_age=int(saml.REQUEST_LIFETIME.total_seconds()),
        path="/sso/",
        secure=secure,
        httponly=True,
        # The IdP posts the response cross-site: only SameSite=None (which needs Secure)
        # sends the cookie with it. Plain-http development falls back to Lax.
        samesite="None" if secure else "Lax",
    )


def _metadata_unusable(account: Account, exc: saml.MetadataUnusable) -> Response:
    from terminus_hub.sso import saml

    db.session.rollback()
    message = str(exc)
    log.warning("authn_login_fail method=saml account=%r reason=%r", account.slug, message[:300])
    audit.record("sso.metadata_expired", account=account, detail={"message": message})
    db.session.commit()
    headline = METADATA_EXPIRED if isinstance(exc, saml.MetadataExpired) else METADATA_UNUSABLE
    page = render_template("sso/failed.html", message=headline, detail=message)
    return make_response(page, 409)


def _failed(slug: str, reason: str, account: Account | None = None) -> Response:
    db.session.rollback()
    log.warning("authn_login_fail method=saml account=%r reason=%r", slug[:64], reason[:300])
    metrics.SIGN_INS.labels("sso", "failed").inc()
    if account is not None:
        audit.record("sso.sign_in_failed", account=account, detail={"reason": reason[:300]})
        db.session.commit()
    return make_response(render_template("sso/failed.html", message=SSO_FAILED), 403)


@bp.route("/a/<slug>/sso", methods=["GET", "POST"])
@login_required
@reauth.required
def settings(slug: str) -> Response:
    """Owners and admins: domains, IdP metadata, enforcement, and what to give the IdP."""
    account, membership = member_account_or_404(current_user, slug)
    if membership.role not in MANAGER_ROLES:
        abort(403)
    connection = connection_of(account)
    form = SsoSettingsForm()
    if request.method == "GET":
        form = _settings_form(connection)
    elif form.validate_on_submit() and _save(account, form, membership.role):
        flash(SAVED, "success")
        return redirect(url_for("sso.settings", slug=account.slug), 303)
    return _settings_page(account, membership, connection, form, 422 if form.errors else 200)


def _settings_page(
    account: Account,
    membership: Membership,
    connection: SsoConnection | None,
    form: SsoSettingsForm,
    status: int = 200,
    check: tuple[str, dns_proof.Check] | None = None,
) -> Response:
    from terminus_hub.sso import saml

    entity_id, acs_url = saml.sp_urls(account)
    page = render_template(
        "sso/settings.html",
        account=account,
        membership=membership,
        connection=connection,
        form=form,
        action_form=EmptyForm(formdata=None),
        entity_id=entity_id,
        acs_url=acs_url,
        metadata_problem=_metadata_problem(connection),
        record_name=dns_proof.record_name,
        record_value=dns_proof.record_value,
        check=check,
    )
    return make_response(page, status)


@bp.post("/a/<slug>/sso/domains/<domain>/verify")
@login_required
@limits.sso
def verify_domain(slug: str, domain: str) -> Response:
    """Look for the domain's TXT record now and answer the settings page with what was found."""
    account, membership = member_account_or_404(current_user, slug)
    if membership.role not in MANAGER_ROLES:
        abort(403)
    connection = connection_of(account)
    claim = (
        next((d for d in connection.domains if d.domain == domain), None) if connection else None
    )
    if claim is None:
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        result = domains.verify(claim)
    except domains.DomainError as exc:
        db.session.rollback()
        result = dns_proof.Check(dns_proof.Outcome.WRONG_VALUE, str(exc))
    else:
        db.session.commit()
    form = _settings_form(connection)
    return _settings_page(account, membership, connection, form, 200, check=(domain, result))


def _settings_form(connection: SsoConnection | None) -> SsoSettingsForm:
    return SsoSettingsForm(
        formdata=None,
        domains=" ".join(d.domain for d in connection.domains) if connection else "",
        enforced=connection.enforced if connection else False,
    )


def _metadata_problem(connection: SsoConnection | None) -> str | None:
    """Say why the stored metadata cannot serve sign-ins now (it expired), if it cannot."""
    from terminus_hub.sso import saml

    if connection is None:
        return None
    try:
        saml.current_idp(connection)
    except saml.MetadataUnusable as exc:
        return str(exc)
    return None


def _save(account: Account, form: SsoSettingsForm, role: str) -> bool:
    try:
        metadata_xml = form.metadata_xml()
        if metadata_xml is None and form.entity_id.data:
            metadata_xml = build_idp_metadata(
                form.entity_id.data, form.sso_url.data or "", form.certificate.data or ""
            )
        configure(
            account,
            metadata_xml=metadata_xml,
            by_operator=False,
            domains=form.domain_list,
            enforce=bool(form.enforced.data),
            role=role,
        )
        audit.record(
            "sso.settings_changed",
            account=account,
            detail={
                "domains": form.domain_list,
                "enforced": bool(form.enforced.data),
                "metadata_replaced": metadata_xml is not None,
            },
        )
    except MetadataError as exc:
        field = form.metadata if form.metadata.data else form.certificate
        field.errors = [*field.errors, str(exc)]
        db.session.rollback()
        return False
    except ConfigurationError as exc:
        field = getattr(form, exc.field, form.metadata)
        field.errors = [*field.errors, str(exc)]
        db.session.rollback()
        return False
    db.session.commit()
    return True
