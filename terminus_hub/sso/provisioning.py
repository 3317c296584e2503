"""Who a sign-in through an account's identity provider may be, and just-in-time people.

An IdP is trusted for an email only at a domain its account has proven (verified): there it
may create the person, add them to the account and confirm the address. At a domain that is
only claimed, it signs in nobody but the owner or admin who started a test sign-in, as
themselves: otherwise an admin could claim the owner's domain and sign in as the owner.
"""

from __future__ import annotations

from sqlalchemy import select

from terminus_hub.core.membership import add_member
from terminus_hub.core.membership import membership_of
from terminus_hub.core.proof import address_proved
from terminus_hub.core.sso_connections import email_domain
from terminus_hub.extensions import db
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import Account
from terminus_hub.models import SsoConnection
from terminus_hub.models import User
from terminus_hub.models import utcnow


class NotProvisioned(Exception):
    """The asserted person may not be signed in; the message is the reason, for the log."""


_RANK = {"member": 0, "admin": 1, "owner": 2, "operator": 3}


def provision(
    account: Account,
    connection: SsoConnection,
    email: str,
    *,
    domain_verified: bool,
    started_by_id: str | None = None,
) -> User:
    """Return the person for an asserted (canonical) email, or raise NotProvisioned.

    ``started_by_id`` is the owner or admin who started this sign-in as a test, if anyone.
    An IdP whose metadata an admin gave never signs in an owner.
    """
    user = db.session.scalar(select(User).where(User.email == email))
    existing = membership_of(user, account) if user is not None else None
    if existing is not None and _RANK[existing.role] > _RANK[connection.metadata_set_by_role]:
        raise NotProvisioned(
            f"the IdP's metadata was given by an {connection.metadata_set_by_role}: it cannot "
            f"sign in an {existing.role} (who signs in with a password)"
        )
    if not domain_verified:
        if user is None or user.id != started_by_id or existing is None:
            raise NotProvisioned(
                f"domain {email_domain(email)!r} is not verified: its IdP signs in only the "
                "owner or admin running a test sign-in, as themselves"
            )
        if existing.role not in MANAGER_ROLES:
            raise NotProvisioned("the test sign-in was started by someone no longer a manager")
        return user
    if user is None:
        # No password: until they set one through a reset link, they sign in through the IdP.
        user = User(email=email, name="", password_hash=None, confirmed_at=utcnow())
        db.session.add(user)
        db.session.flush()
    else:
        address_proved(user, password_set_by_proof=False)
    if existing is None:
        add_member(account, user, "member")
    return user
