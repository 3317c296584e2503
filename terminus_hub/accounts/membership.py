"""Accounts and who belongs to them."""

from __future__ import annotations

import re
import secrets
import unicodedata

from flask import abort
from sqlalchemy import select

from terminus_hub.extensions import db
from terminus_hub.models import ROLES
from terminus_hub.models import Account
from terminus_hub.models import Membership
from terminus_hub.models import User
from terminus_hub.models import Workspace

FIRST_WORKSPACE = "Main"
SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
ALREADY_MEMBER = "{email} is already a member of {slug}."
UNKNOWN_ROLE = "Role must be one of: owner, admin, member."


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


def add_member(account: Account, user: User, role: str) -> Membership:
    """Give a person a role in an account."""
    if role not in ROLES:
        raise MembershipError(UNKNOWN_ROLE)
    if membership_of(user, account) is not None:
        raise MembershipError(ALREADY_MEMBER.format(email=user.email, slug=account.slug))
    membership = Membership(account=account, user=user, role=role)
    db.session.add(membership)
    db.session.flush()
    return membership


def membership_of(user: User, account: Account) -> Membership | None:
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


def member_account_or_404(user: User, slug: str) -> tuple[Account, Membership]:
    """Return the account and the person's membership; 404 when either is missing."""
    account = account_by_slug(slug) if SLUG_PATTERN.fullmatch(slug) else None
    membership = membership_of(user, account) if account else None
    if account is None or membership is None:
        abort(404)
    return account, membership
