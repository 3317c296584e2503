"""Who a sign-in through an account's identity provider may be, and just-in-time people.

An IdP is trusted for an email only at a domain its account has proven (verified): there it
may create the person, add them to the account and confirm the address. At a domain that is
only claimed, it may sign in people who are already members of the account, and nothing more.
"""

from __future__ import annotations

from sqlalchemy import select

from terminus_hub.accounts.membership import add_member
from terminus_hub.accounts.membership import membership_of
from terminus_hub.auth.proof import address_proved
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.sso.connections import email_domain


class NotProvisioned(Exception):
    """The asserted person may not be signed in; the message is the reason, for the log."""


def provision(account: Account, email: str, *, domain_verified: bool) -> User:
    """Return the person for an asserted (canonical) email, or raise NotProvisioned."""
    user = db.session.scalar(select(User).where(User.email == email))
    if not domain_verified:
        if user is None or membership_of(user, account) is None:
            raise NotProvisioned(
                f"domain {email_domain(email)!r} is not verified and the asserted person is "
                "not a member of this account"
            )
        return user
    if user is None:
        # No password: until they set one through a reset link, they sign in through the IdP.
        user = User(email=email, name="", password_hash=None, confirmed_at=utcnow())
        db.session.add(user)
        db.session.flush()
    else:
        address_proved(user, password_set_by_proof=False)
    if membership_of(user, account) is None:
        add_member(account, user, "member")
    return user
