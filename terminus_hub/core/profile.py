"""A signed-in person's own details: their name, password and email."""

from __future__ import annotations

from flask import current_app

from terminus_hub import audit
from terminus_hub import links
from terminus_hub import user_sessions
from terminus_hub.core.routing import password_blocked_by_sso
from terminus_hub.core.signin import find_user
from terminus_hub.core.sso_connections import connection_for_email
from terminus_hub.core.sso_connections import email_domain
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.outbox import may_mail
from terminus_hub.outbox import send_email
from terminus_hub.passwords import hash_password


def rename_person(user: User, name: str) -> None:
    """Set the person's display name (already checked by the form); the caller commits."""
    if user.name != name:
        audit.record("user.renamed", user=user, actor=user, detail={"from": user.name, "to": name})
        user.name = name


def change_password(user: User, new_password: str) -> None:
    """Set a new password: every other session ends and a notice goes to the address.

    The current password was checked first (signin.confirm_password); the caller commits.
    """
    user.password_hash = hash_password(new_password)
    user_sessions.end_all_for(user, keep=user_sessions.current_session_of(user))
    send_email(user.email, "password_changed", user=user)
    audit.record("password.changed", user=user, actor=user, detail={"by": "settings"})


class EmailChangeRefused(ValueError):
    """The new address cannot be this person's: the message says why."""


SAME_EMAIL = "That is already your email address."
SSO_DOMAIN = (
    "Addresses at {domain} sign in through their organisation’s identity provider: ask an "
    "owner of that organisation’s account to invite you instead."
)
TAKEN_NOW = "That address belongs to another account now, so the change was not made."
SSO_KEEPS_IT = (
    "Your organisation’s identity provider now looks after your sign-in and your address, so "
    "the change was not made."
)


def check_new_email(user: User, new_email: str) -> None:
    """Refuse an address that is already this person's or whose domain is proven for SSO.

    An address taken by someone else is not refused here: the answer must not tell.
    """
    if new_email == user.email:
        raise EmailChangeRefused(SAME_EMAIL)
    if connection_for_email(new_email) is not None:
        raise EmailChangeRefused(SSO_DOMAIN.format(domain=email_domain(new_email)))


def request_email_change(user: User, new_email: str) -> None:
    """Mail a link to the new address (or, if someone has it, a notice to them) and a notice
    to the current one. Nothing changes until the link is used; the caller commits."""
    owner = find_user(new_email)
    if owner is not None:
        if may_mail(new_email, "email_taken"):
            send_email(new_email, "email_taken", user=owner)
    elif may_mail(new_email, "email_change"):
        token = links.make_token("email_change", user, new_email)
        url = links.external_url("accounts.confirm_email_change", token=token)
        hours = current_app.config["TERMINUS_CONFIRM_TOKEN_HOURS"]
        send_email(new_email, "email_change", new_email=new_email, url=url, hours=hours)
    send_email(user.email, "email_change_requested", user=user, new_email=new_email)
    audit.record("email.change_requested", user=user, actor=user)


def change_email(user: User, new_email: str) -> None:
    """Make the proven new address the person's (the link was used); the caller commits.

    Raises EmailChangeRefused when the address was taken or its domain proven for SSO
    since the link was sent.
    """
    check_new_email(user, new_email)
    if password_blocked_by_sso(user):
        # Single sign-on now keeps this person's sign-in (enforced since the link was sent):
        # moving the address out of the domain would slip out of it.
        raise EmailChangeRefused(SSO_KEEPS_IT)
    if find_user(new_email) is not None:
        raise EmailChangeRefused(TAKEN_NOW)
    old_email = user.email
    user.email = new_email
    user.confirmed_at = utcnow()  # the link proved the new address
    send_email(old_email, "email_changed", user=user, new_email=new_email)
    audit.record("email.changed", user=user, actor=user)
