"""Members and invitations, renaming, and the invitation link (routes of the accounts bp)."""

from __future__ import annotations

from flask import abort
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

from terminus_hub import reauth
from terminus_hub import user_sessions
from terminus_hub.accounts.blueprint import bp
from terminus_hub.accounts.forms import ROLE_CHOICES
from terminus_hub.accounts.forms import InvitationAcceptForm
from terminus_hub.accounts.forms import InviteForm
from terminus_hub.accounts.forms import RenameForm
from terminus_hub.accounts.forms import RoleForm
from terminus_hub.core import invitations
from terminus_hub.core.membership import MembershipError
from terminus_hub.core.membership import change_role
from terminus_hub.core.membership import members_of
from terminus_hub.core.membership import remove_member
from terminus_hub.core.membership import rename_account
from terminus_hub.extensions import db
from terminus_hub.forms import EmptyForm
from terminus_hub.guards import member_account_or_404
from terminus_hub.idp_scope import sso_scope
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import Account
from terminus_hub.models import Invitation
from terminus_hub.models import Membership
from terminus_hub.models import User
from terminus_hub.passwords import context_words
from terminus_hub.passwords import hash_password

INVITED = "Invitation sent to {email}."
RESENT = "A new invitation link went to {email}."
REVOKED = "The invitation for {email} is withdrawn."
ROLE_CHANGED = "{email} is now {role}."
REMOVED = "{email} no longer has access to this account."
LEFT = "You left {name}."
RENAMED = "The account is now called {name}."
JOINED = "Welcome to {name}."
OTHER_IDP_SESSION = (
    "You signed in through another account’s identity provider, which reaches only that "
    "account. Sign in with your password to accept this invitation."
)
INVITATION_INVALID = "This invitation is invalid, has expired, was withdrawn or was already used."


def _members_page(
    account: Account,
    membership: Membership,
    invite_form: InviteForm | None = None,
    status: int = 200,
) -> Response:
    invite_form = invite_form or InviteForm(formdata=None)
    if membership.role != "owner":
        # Only owners make owners: admins are not offered the choice.
        invite_form.role.choices = {k: v for k, v in ROLE_CHOICES.items() if k != "owner"}
    page = render_template(
        "accounts/members.html",
        account=account,
        membership=membership,
        members=members_of(account),
        invitations=invitations.pending_for(account),
        invite_form=invite_form,
        can_manage=membership.role in MANAGER_ROLES,
        empty_form=EmptyForm(),
    )
    return make_response(page, status)


def _back(slug: str) -> Response:
    return redirect(url_for("accounts.members", slug=slug), 303)


def _target(account_id: str, member_id: str) -> Membership:
    target = db.session.scalar(
        select(Membership).where(Membership.id == member_id, Membership.account_id == account_id)
    )
    if target is None:
        abort(404)
    return target


@bp.get("/a/<slug>/members")
@login_required
def members(slug: str) -> Response:
    """List members and pending invitations; owners and admins also manage them."""
    account, membership = member_account_or_404(current_user, slug)
    return _members_page(account, membership)


@bp.post("/a/<slug>/members/invite")
@login_required
@reauth.required
def invite(slug: str) -> Response:
    """Invite an email with a role."""
    account, membership = member_account_or_404(current_user, slug)
    if membership.role not in MANAGER_ROLES:
        abort(403)
    form = InviteForm()
    if form.validate_on_submit():
        try:
            invitations.invite(
                account, form.email.canonical, form.role.data, membership, current_user
            )
        except MembershipError as exc:
            form.email.errors = [str(exc)]
        else:
            db.session.commit()
            flash(INVITED.format(email=form.email.canonical), "success")
            return _back(slug)
    db.session.rollback()
    return _members_page(account, membership, form, 422)


def _invitation(account_id: str, invitation_id: str) -> Invitation:
    row = db.session.scalar(
        select(Invitation).where(
            Invitation.id == invitation_id, Invitation.account_id == account_id
        )
    )
    if row is None or not row.is_pending:
        abort(404)
    return row


@bp.post("/a/<slug>/invitations/<invitation_id>/<action>")
@login_required
@reauth.required
def invitation_action(slug: str, invitation_id: str, action: str) -> Response:
    """Resend or revoke a pending invitation."""
    account, membership = member_account_or_404(current_user, slug)
    if membership.role not in MANAGER_ROLES:
        abort(403)
    row = _invitation(account.id, invitation_id)
    if action not in ("resend", "revoke") or not EmptyForm().validate_on_submit():
        abort(404)
    try:
        if action == "resend":
            invitations.resend(row, membership)
        else:
            invitations.revoke(row, membership)
    except MembershipError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(slug)
    db.session.commit()
    flash((RESENT if action == "resend" else REVOKED).format(email=row.email), "success")
    return _back(slug)


@bp.post("/a/<slug>/members/<member_id>/role")
@login_required
@reauth.required
def set_role(slug: str, member_id: str) -> Response:
    """Change a member's role."""
    account, membership = member_account_or_404(current_user, slug)
    if membership.role not in MANAGER_ROLES:
        abort(403)
    target = _target(account.id, member_id)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        change_role(target, form.role.data, membership)
    except MembershipError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(slug)
    db.session.commit()
    flash(ROLE_CHANGED.format(email=target.user.email, role=form.role.data), "success")
    return _back(slug)


@bp.post("/a/<slug>/members/<member_id>/remove")
@login_required
@reauth.required
def remove(slug: str, member_id: str) -> Response:
    """Remove a member, or leave the account when it is your own membership."""
    account, membership = member_account_or_404(current_user, slug)
    target = _target(account.id, member_id)
    if target.id != membership.id and membership.role not in MANAGER_ROLES:
        abort(403)
    if not EmptyForm().validate_on_submit():
        abort(400)
    leaving = target.id == membership.id
    email = target.user.email
    try:
        remove_member(target, membership)
    except MembershipError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(slug)
    db.session.commit()
    if leaving:
        flash(LEFT.format(name=account.name), "success")
        return redirect(url_for("accounts.picker"), 303)
    flash(REMOVED.format(email=email), "success")
    return _back(slug)


@bp.post("/a/<slug>/rename")
@login_required
@reauth.required  # like the settings page that holds its form
def rename(slug: str) -> Response:
    """Rename the account (owners only)."""
    account, membership = member_account_or_404(current_user, slug)
    if membership.role != "owner":
        abort(403)
    form = RenameForm()
    try:
        if not form.validate_on_submit():
            raise MembershipError(form.name.errors[0] if form.name.errors else "")
        rename_account(account, form.name.data or "")
    except MembershipError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("accounts.account_settings", slug=slug), 303)
    db.session.commit()
    flash(RENAMED.format(name=account.name), "success")
    # Back to the account's settings, where the name is edited.
    return redirect(url_for("accounts.account_settings", slug=slug), 303)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str) -> Response:
    """Show an invitation; join (signed in as its email) or sign up through it (new person).

    A new person, or one whose address was never confirmed, proves the address with this
    link and chooses a password here, unless SSO enforced at their domain sends them through
    the identity provider instead.
    """
    row = invitations.find(token)
    if row is None:
        page = render_template("accounts/invitation_invalid.html", message=INVITATION_INVALID)
        return make_response(page, 400)
    existing = db.session.scalar(select(User).where(User.email == row.email))
    signed_in = current_user.is_authenticated
    new_person = not signed_in and (existing is None or not existing.is_confirmed)
    way = invitations.route(row)
    form = InvitationAcceptForm(context=context_words(row.email), needs_account=new_person)
    if request.method == "GET" or not form.validate_on_submit():
        return _invitation_page(row, form, existing, way, 422 if form.errors else 200)
    if way.blocked or (new_person and not way.password):
        return _invitation_page(row, form, existing, way, 403)
    if not signed_in and not new_person:
        return redirect(url_for("auth.sign_in", next=request.path), 303)
    if signed_in and sso_scope() not in (None, row.account_id):
        flash(OTHER_IDP_SESSION, "error")
        return redirect(request.path, 303)
    user = current_user._get_current_object() if signed_in else existing
    if user is None:
        user = User(email=row.email, name=form.name.data, password_hash=None)
        db.session.add(user)
        db.session.flush()
    if new_person:
        user.name = " ".join((form.name.data or "").split())
        user.password_hash = hash_password(form.password.data or "")
    try:
        invitations.accept(row, user, password_set_by_proof=new_person)
    except MembershipError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(request.path, 303)
    if new_person:
        user_sessions.start(user)  # a person who just proved the address and chose a password
    db.session.commit()
    flash(JOINED.format(name=row.account.name), "success")
    return redirect(url_for("accounts.home", slug=row.account.slug), 303)


def _invitation_page(
    row: Invitation,
    form: InvitationAcceptForm,
    existing: User | None,
    way: invitations.Route,
    status: int,
) -> Response:
    wrong_person = current_user.is_authenticated and current_user.email != row.email
    sso_url = url_for("sso.login", slug=way.sso_slug, next=request.path) if way.sso_slug else None
    page = render_template(
        "accounts/invitation.html",
        invitation=row,
        form=form,
        existing=existing if existing is not None and existing.is_confirmed else None,
        wrong_person=wrong_person,
        not_for_you=invitations.NOT_FOR_YOU.format(email=row.email),
        way=way,
        sso_url=sso_url,
    )
    return make_response(page, status)
