"""Accounts and who belongs to them."""

from __future__ import annotations

import re
import secrets
import unicodedata

from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import select

from terminus_hub import audit
from terminus_hub import key_state
from terminus_hub.extensions import db
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import ROLES
from terminus_hub.models import Account
from terminus_hub.models import AccountLike
from terminus_hub.models import ApiKey
from terminus_hub.models import Invitation
from terminus_hub.models import Membership
from terminus_hub.models import User
from terminus_hub.models import Workspace
from terminus_hub.models import utcnow

FIRST_WORKSPACE = "Main"
SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
ALREADY_MEMBER = "{email} is already a member of {slug}."
UNKNOWN_ROLE = "Role must be one of: owner, admin, member."


LAST_OWNER = "An account must keep at least one owner. Make someone else an owner first."
OWNERS_ONLY = "Only owners can make or change owners."
CANNOT_MANAGE = "Only owners and admins can manage members."
NAME_INVALID = "Give the account a name of 1 to 120 printable characters."


class MembershipError(ValueError):
    """A membership change that the rules do not allow."""


def slugify(text: str) -> str:
    """Turn a name into a URL-safe slug (lower-case letters, digits and dashes)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:40].strip("-") or "account"


def _free_slug(name: str) -> str:
    base = slugify(name)
    slug = base
    while db.session.scalar(select(Account.id).where(Account.slug == slug)) is not None:
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def create_account(name: str, owner: User) -> Account:
    """Create an account owned by a person, with its first workspace "Main"."""
    account = Account(name=name, slug=_free_slug(name))
    account.workspaces.append(Workspace(name=FIRST_WORKSPACE))
    account.memberships.append(Membership(user=owner, role="owner"))
    db.session.add(account)
    db.session.flush()
    return account


def add_member(account: Account, user: User, role: str, actor: User | None = None) -> Membership:
    """Give a person a role in an account."""
    if role not in ROLES:
        raise MembershipError(UNKNOWN_ROLE)
    if membership_of(user, account) is not None:
        raise MembershipError(ALREADY_MEMBER.format(email=user.email, slug=account.slug))
    membership = Membership(account=account, user=user, role=role)
    db.session.add(membership)
    db.session.flush()
    audit.record("member.joined", account=account, user=user, actor=actor, detail={"role": role})
    return membership


def _owner_count(account_id: str) -> int:
    count = db.session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.account_id == account_id, Membership.role == "owner")
    )
    return count or 0


def check_manager(actor: Membership | None, target_role: str, new_role: str | None) -> None:
    """Refuse unless the actor may manage a member of target_role (giving them new_role).

    Operators (actor None) may do anything; admins may not touch owners or make them.
    """
    if actor is None:
        return
    if actor.role not in MANAGER_ROLES:
        raise MembershipError(CANNOT_MANAGE)
    if "owner" in (target_role, new_role) and actor.role != "owner":
        raise MembershipError(OWNERS_ONLY)


def change_role(membership: Membership, role: str, actor: Membership | None) -> None:
    """Change a member's role: only owners touch owners, and one owner always remains."""
    if role not in ROLES:
        raise MembershipError(UNKNOWN_ROLE)
    check_manager(actor, membership.role, role)
    if membership.role == "owner" and role != "owner":
        _lock_owners(membership.account_id)
        if _owner_count(membership.account_id) <= 1:
            raise MembershipError(LAST_OWNER)
    old = membership.role
    membership.role = role
    db.session.flush()
    withdraw_invitations_beyond(membership.account_id, membership.user_id, role)
    _withdraw_invitations_to(membership, "the person's role was changed")
    audit.record(
        "member.role_changed",
        account=membership.account_id,
        user=membership.user_id,
        detail={"from": old, "to": role},
    )


def remove_member(membership: Membership, actor: Membership | None) -> None:
    """Remove someone (or, with actor = their own membership, leave); one owner remains.

    Their sessions stop reaching the account at once: every request checks the membership.
    """
    leaving = actor is not None and actor.id == membership.id
    if not leaving:
        check_manager(actor, membership.role, None)
    if membership.role == "owner":
        _lock_owners(membership.account_id)
        if _owner_count(membership.account_id) <= 1:
            raise MembershipError(LAST_OWNER)
    audit.record(
        "member.removed",
        account=membership.account_id,
        user=membership.user_id,
        detail={"role": membership.role, "left": leaving},
    )
    withdraw_invitations_beyond(membership.account_id, membership.user_id, None)
    _withdraw_invitations_to(membership, "the person was removed")
    db.session.delete(membership)
    db.session.flush()


def may_grant(role_held: str | None, role_given: str) -> bool:
    """Say whether someone holding role_held may give role_given (owners only make owners)."""
    if role_held not in MANAGER_ROLES:
        return False
    return role_given != "owner" or role_held == "owner"


def withdraw_invitations_beyond(account_id: str, user_id: str, role: str | None) -> None:
    """Withdraw the person's pending invitations that their role (None: gone) no longer grants.

    An invitation carries its inviter's authority: an owner who is removed or demoted can no
    longer make owners through invitations sent before.
    """
    pending = db.session.scalars(
        select(Invitation).where(
            Invitation.account_id == account_id,
            Invitation.invited_by_id == user_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    )
    for invitation in pending:
        if may_grant(role, invitation.role):
            continue
        invitation.revoked_at = utcnow()
        audit.record(
            "member.invitation_revoked",
            account=account_id,
            detail={
                "email": invitation.email,
                "role": invitation.role,
                "reason": "the inviter can no longer grant this role",
            },
        )


def _withdraw_invitations_to(membership: Membership, reason: str) -> None:
    """Withdraw pending invitations addressed to this member: a role change or a removal is
    the newer decision, which an older invitation must not undo."""
    email = membership.user.email
    pending = db.session.scalars(
        select(Invitation).where(
            Invitation.account_id == membership.account_id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    )
    for invitation in pending:
        invitation.revoked_at = utcnow()
        audit.record(
            "member.invitation_revoked",
            account=membership.account_id,
            detail={"email": email, "role": invitation.role, "reason": reason},
        )


def _lock_owners(account_id: str) -> None:
    # Serialise owner changes per account on PostgreSQL, so two admins demoting the last two
    # owners at once cannot both succeed (SQLite serialises writes anyway).
    db.session.execute(
        select(Membership.id)
        .where(Membership.account_id == account_id, Membership.role == "owner")
        .with_for_update()
    ).all()


def rename_account(account: Account, name: str) -> None:
    """Rename an account (its slug, and so its URLs, stay as they are)."""
    name = " ".join((name or "").split())
    if not name or len(name) > 120 or not name.isprintable():
        raise MembershipError(NAME_INVALID)
    old = account.name
    account.name = name
    db.session.flush()
    audit.record("account.renamed", account=account, detail={"from": old, "to": name})
    # Key checks cache the account's name with each key: have them read it again.
    hashes = db.session.scalars(select(ApiKey.token_hash).where(ApiKey.account_id == account.id))
    for token_hash in hashes:
        key_state.changed_after_commit(db.session(), token_hash)


def members_of(account: AccountLike) -> list[Membership]:
    """Return an account's memberships with their people, owners first."""
    order = case({"owner": 0, "admin": 1}, value=Membership.role, else_=2)
    return list(
        db.session.scalars(
            select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.account_id == account.id)
            .order_by(order, User.email)
        )
    )


def membership_of(user: User, account: AccountLike) -> Membership | None:
    """Return a person's membership in an account, or None."""
    return db.session.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.account_id == account.id)
    )


def accounts_of(user: User) -> list[Account]:
    """Return the accounts a person belongs to, by name."""
    return list(
        db.session.scalars(
            select(Account)
            .join(Membership, Membership.account_id == Account.id)
            .where(Membership.user_id == user.id)
            .order_by(Account.name, Account.slug)
        )
    )


def account_by_slug(slug: str) -> Account | None:
    """Return the account with this slug, or None."""
    return db.session.scalar(select(Account).where(Account.slug == slug))
