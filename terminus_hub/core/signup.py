"""Register a person: user, owned account and workspace "Main", or a notice to the owner."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from terminus_hub import links
from terminus_hub.core.membership import create_account
from terminus_hub.extensions import db
from terminus_hub.models import User
from terminus_hub.outbox import may_mail
from terminus_hub.outbox import send_email
from terminus_hub.passwords import hash_password

CHECK_EMAIL = "Check your email: we sent a link to confirm your address."


def register(name: str, email: str, password: str) -> None:
    """Sign up a canonical email, or tell its owner someone tried (the caller commits)."""
    # Hash first, so an existing email answers in the same time as a new one.
    password_hash = hash_password(password)
    existing = db.session.scalar(select(User).where(User.email == email))
    if existing is not None:
        _notify_existing(existing)
        return
    user = User(email=email, name=name, password_hash=password_hash)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        # A parallel sign-up won the race for this email: treat it as an existing one.
        db.session.rollback()
        _notify_existing(db.session.scalar(select(User).where(User.email == email)))
        return
    create_account(name, owner=user)
    send_confirmation(user)


def send_confirmation(user: User) -> None:
    """Mail a fresh confirmation link to a person."""
    url = links.external_url("auth.confirm_email", token=links.make_token("confirm", user))
    send_email(user.email, "confirm", user=user, url=url)


def _notify_existing(user: User | None) -> None:
    if user is None or not may_mail(user.email, "existing_account"):
        return
    sign_in = links.external_url("auth.sign_in")
    send_email(user.email, "existing_account", user=user, sign_in_url=sign_in)
