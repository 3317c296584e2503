"""Invitations: emailed links that let a person join an account with a role."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select
from sqlalchemy import select
from sqlalchemy import update

from terminus_hub import audit
from terminus_hub import links
from terminus_hub.core.membership import MembershipError
from terminus_hub.core.membership import add_member
from terminus_hub.core.membership import change_role
from terminus_hub.core.membership import check_manager
from terminus_hub.core.membership import may_grant
from terminus_hub.core.membership import membership_of
from terminus_hub.core.proof import address_proved
from terminus_hub.core.sso_connections import connection_for_email
from terminus_hub.extensions import affected
from terminus_hub.extensions import db
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import ROLES
from terminus_hub.models import AccountLike
from terminus_hub.models import Invitation
from terminus_hub.models import Membership
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.outbox import send_email

ALREADY_MEMBER = "{email} is already a member of this account."
ALREADY_INVITED = "{email} already has a pending invitation; resend it instead."
INVITER_LOST_AUTHORITY = (
    "This invitation was withdrawn: whoever sent it can no longer give that role."
)
NOT_FOR_YOU = "This invitation is for {email}. Sign out and sign in as that address to accept it."


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _lifetime() -> timedelta:
    return timedelta(days=current_app.config["TERMINUS_INVITATION_DAYS"])


def pending_query(account: AccountLike) -> Select[Any]:
    """An account's invitations that can still be accepted, unordered (the API pages them)."""
    return select(Invitation).where(
        Invitation.account_id == account.id,
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > utcnow(),
    )


def pending_for(account: AccountLike) -> list[Invitation]:
    """Return an account's invitations that can still be accepted, newest first."""
    return list(db.session.scalars(pending_query(account).order_by(Invitation.created_at.desc())))


def invite(
    account: AccountLike, email: str, role: str, actor: Membership | None, inviter: User | None
) -> Invitation:
    """Invite a canonical email with a role and mail the link."""
    check_manager(actor, "member", role)
    existing_user = db.session.scalar(select(User).where(User.email == email))
    if existing_user is not None and membership_of(existing_user, account) is not None:
        raise MembershipError(ALREADY_MEMBER.format(email=email))
    if any(i.email == email for i in pending_for(account)):
        raise MembershipError(ALREADY_INVITED.format(email=email))
    invitation = Invitation(
        account_id=account.id,
        email=email,
        role=role,
        token_hash="",
        invited_by_id=inviter.id if inviter else None,
        expires_at=utcnow() + _lifetime(),
    )
    db.session.add(invitation)
    _send(invitation, account, inviter)
    audit.record("member.invited", account=account, detail={"email": email, "role": role})
    return invitation


def resend(invitation: Invitation, actor: Membership | None) -> None:
    """Mail a fresh link (the old one stops working) and restart the expiry."""
    check_manager(actor, "member", invitation.role)
    invitation.expires_at = utcnow() + _lifetime()
    _send(invitation, invitation.account, invitation.invited_by)


def revoke(invitation: Invitation, actor: Membership | None) -> None:
    """Withdraw an invitation: its link stops working."""
    check_manager(actor, "member", invitation.role)
    invitation.revoked_at = utcnow()
    audit.record(
        "member.invitation_revoked",
        account=invitation.account_id,
        detail={"email": invitation.email, "role": invitation.role},
    )


def _send(invitation: Invitation, account: AccountLike, inviter: User | None) -> None:
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _hash(token)
    db.session.flush()
    send_email(
        invitation.email,
        "invitation",
        account=account,
        role=invitation.role,
        inviter=inviter,
        url=links.external_url("accounts.invitation", token=token),
        days=current_app.config["TERMINUS_INVITATION_DAYS"],
    )


def find(token: str) -> Invitation | None:
    """Return the pending invitation behind a link token, or None."""
    if not token or len(token) > 100 or not token.isascii():
        return None
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == _hash(token)))
    if invitation is None or not invitation.is_pending or not inviter_may_grant(invitation):
        return None
    return invitation


def inviter_may_grant(invitation: Invitation) -> bool:
    """Say whether the inviter can still give the invited role (operators' invitations can)."""
    if invitation.invited_by_id is None:
        return True
    role = db.session.scalar(
        select(Membership.role).where(
            Membership.account_id == invitation.account_id,
            Membership.user_id == invitation.invited_by_id,
        )
    )
    return may_grant(role, invitation.role)


@dataclass(frozen=True)
class Route:
    """How the invited person may prove the address and join.

    ``password`` says whether they may choose a password here; ``sso_slug`` names the account
    whose identity provider they may go through instead; ``blocked`` explains a dead end.
    """

    password: bool
    sso_slug: str | None = None
    blocked: str | None = None


SSO_ELSEWHERE = (
    "Addresses at {domain} sign in only through their organisation’s identity provider, "
    "which does not reach this account. Ask whoever invited you to invite another address."
)


def route(invitation: Invitation) -> Route:
    """Say how the invitation may be accepted, given SSO enforced at the email's domain.

    At a verified domain whose account enforces SSO, a new person joins through that IdP;
    owners and admins invited by that same account may still choose a password.
    """
    connection = connection_for_email(invitation.email)
    if connection is None or not connection.enforced:
        return Route(password=True)
    if connection.account_id != invitation.account_id:
        domain = invitation.email.rpartition("@")[2]
        return Route(password=False, blocked=SSO_ELSEWHERE.format(domain=domain))
    slug = connection.account.slug
    return Route(password=invitation.role in MANAGER_ROLES, sso_slug=slug)


def accept(
    invitation: Invitation, user: User, *, password_set_by_proof: bool = False
) -> Membership:
    """Add the invited person (whose email must match) to the account, once.

    The link proves the address: an unconfirmed user is confirmed, losing any password the
    acceptance did not set. The inviter's authority is checked again here. A person who is
    already a member gets the invited role when it is higher than theirs.
    """
    if user.email != invitation.email:
        raise MembershipError(NOT_FOR_YOU.format(email=invitation.email))
    if not inviter_may_grant(invitation):
        raise MembershipError(INVITER_LOST_AUTHORITY)
    claimed = db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None))
        .values(accepted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if affected(claimed) != 1:
        raise MembershipError("This invitation has already been used.")
    address_proved(user, password_set_by_proof=password_set_by_proof)
    existing = membership_of(user, invitation.account)
    if existing is None:
        return add_member(invitation.account, user, invitation.role, actor=user)
    if ROLES.index(invitation.role) < ROLES.index(existing.role):
        change_role(existing, invitation.role, actor=None)
    return existing
