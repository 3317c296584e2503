"""Just-in-time accounts for people the identity provider vouches for."""

from __future__ import annotations

from sqlalchemy import select

from terminus_hub.accounts.membership import add_member
from terminus_hub.accounts.membership import membership_of
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import User
from terminus_hub.models import utcnow


def provision(account: Account, email: str) -> User:
    """Return the person for an asserted (canonical) email, creating a user and membership."""
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        # No password: until they set one through a reset link, they sign in through the IdP.
        user = User(email=email, name="", password_hash=None, confirmed_at=utcnow())
        db.session.add(user)
        db.session.flush()
    elif user.confirmed_at is None:
        user.confirmed_at = utcnow()  # the identity provider proved the address
    if membership_of(user, account) is None:
        add_member(account, user, "member")
    return user
