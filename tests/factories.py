"""Plain functions that make rows for tests; each commits and returns plain data."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from flask import Flask
from flask.testing import FlaskClient

from terminus_hub.core.keyring import SCOPES
from terminus_hub.core.keyring import create_key
from terminus_hub.core.membership import add_member
from terminus_hub.core.membership import create_account
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.passwords import hash_password

PASSWORD = "correct horse battery staple"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    password: str
    account_slug: str | None


def make_user(
    app: Flask,
    email: str | None = None,
    password: str = PASSWORD,
    confirmed: bool = True,
    name: str = "Test Person",
) -> User:
    """Add a user (confirmed unless told otherwise) and return the row, detached."""
    with app.app_context():
        user = User(
            email=email or f"person{next(_numbers)}@example.com",
            name=name,
            password_hash=hash_password(password),
            confirmed_at=utcnow() if confirmed else None,
        )
        db.session.add(user)
        db.session.commit()
        db.session.refresh(user)
        db.session.expunge(user)
        return user


def make_account(app: Flask, owner_email: str, name: str | None = None) -> str:
    """Add an account owned by an existing user; return its slug."""
    with app.app_context():
        owner = db.session.query(User).filter_by(email=owner_email).one()
        account = create_account(name or f"Account {next(_numbers)}", owner=owner)
        db.session.commit()
        return account.slug


def make_membership(app: Flask, slug: str, email: str, role: str = "member") -> None:
    """Give an existing user a role in an existing account."""
    with app.app_context():
        account = db.session.query(Account).filter_by(slug=slug).one()
        user = db.session.query(User).filter_by(email=email).one()
        add_member(account, user, role)
        db.session.commit()


def make_person(app: Flask, confirmed: bool = True, email: str | None = None) -> Person:
    """Add a user who owns one account, as sign-up would."""
    user = make_user(app, email=email, confirmed=confirmed)
    slug = make_account(app, user.email)
    return Person(id=user.id, email=user.email, password=PASSWORD, account_slug=slug)


def make_api_key(app: Flask, slug: str, name: str = "CI pipeline") -> tuple[str, str]:
    """Add a key to an account; return its id and the full token."""
    with app.app_context():
        account = db.session.query(Account).filter_by(slug=slug).one()
        row, token = create_key(account, name, None)
        db.session.commit()
        return row.id, token


def key_form(name: object, **fields: object) -> dict[str, object]:
    """The key form as the page posts it: every scope box ticked, never expiring."""
    return {"name": name, "scopes": list(SCOPES), "expires_in_days": "", **fields}


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def csrf_token(client: FlaskClient, path: str = "/accounts") -> str:
    """The session's CSRF token, read from a page's meta tag as app.js reads it."""
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = CSRF_META.search(page)
    assert match, f"{path} has no CSRF meta tag"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    """Sign in through the real form, with its CSRF token (so it works with CSRF on too)."""
    # Already signed in, the form redirects away; every page carries the session's token.
    page = client.get("/sign_in/password", follow_redirects=True).get_data(as_text=True)
    match = CSRF_META.search(page)
    assert match, "the sign-in page has no CSRF meta tag"
    response = client.post(
        "/sign_in/password",
        data={"email": email, "password": password, "csrf_token": match.group(1)},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


def session_headers(client: FlaskClient, person: Person) -> dict[str, str]:
    """Sign in and open the person's account; the headers a session's API change needs."""
    sign_in(client, person.email)
    page = client.get(f"/a/{person.account_slug}/").get_data(as_text=True)
    match = CSRF_META.search(page)
    assert match, "the account page has no CSRF meta tag"
    return {"X-CSRFToken": match.group(1)}
