"""Operator commands: `flask --app terminus_hub users|accounts|mail …`."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup

from terminus_hub import audit
from terminus_hub import mail
from terminus_hub.accounts import api_keys as keyring
from terminus_hub.accounts.membership import MembershipError
from terminus_hub.accounts.membership import account_by_slug
from terminus_hub.accounts.membership import add_member
from terminus_hub.accounts.membership import create_account
from terminus_hub.auth import lockout
from terminus_hub.auth.signin import find_user
from terminus_hub.emails import InvalidEmail
from terminus_hub.emails import canonical_email
from terminus_hub.extensions import db
from terminus_hub.models import ROLES
from terminus_hub.models import Account
from terminus_hub.models import ApiKey
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.passwords import context_words
from terminus_hub.passwords import hash_password
from terminus_hub.passwords import password_problem
from terminus_hub.sso.connections import ConfigurationError
from terminus_hub.sso.connections import configure
from terminus_hub.sso.connections import parse_domains
from terminus_hub.sso.metadata import MAX_METADATA_BYTES
from terminus_hub.sso.metadata import MetadataError
from terminus_hub.sso.metadata import decode_metadata

users = AppGroup("users", help="Create and manage people.")
accounts = AppGroup("accounts", help="Create accounts and manage their members.")
mail_group = AppGroup("mail", help="The outgoing mail queue.")
keys_group = AppGroup("keys", help="An account's API keys.")
sso_group = AppGroup("sso", help="An account's SAML single sign-on.")
audit_group = AppGroup("audit", help="The security audit log.")


def init_app(app: Flask) -> None:
    """Add the command groups to `flask`."""
    for group in (users, accounts, mail_group, keys_group, sso_group, audit_group):
        app.cli.add_command(group)


def _email(raw: str) -> str:
    try:
        return canonical_email(raw)
    except InvalidEmail as exc:
        raise click.ClickException(f"{raw!r} is not an email address. {exc}") from exc


def _existing_user(raw: str) -> User:
    user = find_user(_email(raw))
    if user is None:
        raise click.ClickException(f"No user has the email {raw.strip()}.")
    return user


@users.command("create")
@click.argument("email")
@click.option("--password", help="Prompted for (hidden) when not given.")
@click.option("--name", default="", help="The person's name.")
@click.option("--confirmed", is_flag=True, help="Mark the email as already confirmed.")
def create_user(email: str, password: str | None, name: str, confirmed: bool) -> None:
    """Create a user who can sign in with a password."""
    canonical = _email(email)
    name = " ".join(name.split())
    if len(name) > 120 or not name.isprintable():
        raise click.ClickException("--name takes at most 120 printable characters.")
    if find_user(canonical) is not None:
        raise click.ClickException(f"A user with the email {canonical} already exists.")
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password, context_words(canonical, name))
    if problem:
        raise click.ClickException(f"--password: {problem}")
    user = User(
        email=canonical,
        name=name,
        password_hash=hash_password(password),
        confirmed_at=utcnow() if confirmed else None,
    )
    db.session.add(user)
    db.session.commit()
    state = "confirmed" if confirmed else "unconfirmed"
    click.echo(f"Created user {user.email} ({user.id}), {state}.")


@users.command("unlock")
@click.argument("email")
def unlock_user(email: str) -> None:
    """Clear a user's failed sign-ins and lock."""
    user = _existing_user(email)
    lockout.clear(user)
    audit.record("account.unlocked", user=user, detail={"by": "operator"})
    db.session.commit()
    click.echo(f"Unlocked {user.email}.")


@accounts.command("create")
@click.argument("name")
@click.option("--owner", "owner_email", required=True, help="Email of an existing user.")
def create_account_command(name: str, owner_email: str) -> None:
    """Create an account, with its workspace Main, owned by an existing user."""
    name = " ".join(name.split())
    if not name or len(name) > 120 or not name.isprintable():
        raise click.ClickException("NAME takes 1 to 120 printable characters.")
    owner = _existing_user(owner_email)
    account = create_account(name, owner=owner)
    db.session.commit()
    click.echo(f"Created account {account.slug} ({account.id}) owned by {owner.email}.")


@accounts.command("add-member")
@click.argument("slug")
@click.argument("email")
@click.option("--role", required=True, help="owner, admin or member.")
def add_member_command(slug: str, email: str, role: str) -> None:
    """Give an existing user a role in an account."""
    if role not in ROLES:
        raise click.ClickException(f"--role must be one of: {', '.join(ROLES)}.")
    account = _account(slug)
    user = _existing_user(email)
    try:
        add_member(account, user, role)
    except MembershipError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Added {user.email} to {account.slug} as {role}.")


def _account(slug: str) -> Account:
    account = account_by_slug(slug)
    if account is None:
        raise click.ClickException(f"No account has the slug {slug}.")
    return account


@keys_group.command("list")
@click.argument("slug")
def list_keys_command(slug: str) -> None:
    """List an account's keys: id, prefix, name, created, last used (never the secret)."""
    for key in keyring.list_keys(_account(slug)):
        last = key.last_used_at.isoformat() if key.last_used_at else "never"
        click.echo(f"{key.id}\t{key.prefix}…\t{key.name}\t{key.created_at.isoformat()}\t{last}")


@keys_group.command("create")
@click.argument("slug")
@click.argument("name")
def create_key_command(slug: str, name: str) -> None:
    """Create a key and print its token, this once."""
    account = _account(slug)
    problem = keyring.name_problem(name)
    if problem:
        raise click.ClickException(f"NAME: {problem}")
    row, token = keyring.create_key(account, name, creator=None)
    db.session.commit()
    click.echo(
        f"Created key {row.id} ({row.name}) for {account.slug}. "
        "Store it now; it is not shown again:",
        err=True,
    )
    click.echo(token)


@keys_group.command("revoke")
@click.argument("key_id")
def revoke_key_command(key_id: str) -> None:
    """Revoke a key by id: its token fails from the next request."""
    key = db.session.get(ApiKey, key_id) if len(key_id) <= 32 else None
    if key is None:
        raise click.ClickException(f"No key has the id {key_id}.")
    keyring.revoke_key(key)
    db.session.commit()
    click.echo(f"Revoked key {key_id} ({key.name}).")


@sso_group.command("configure")
@click.argument("slug")
@click.option("--domain", "domains", multiple=True, required=True, help="Repeat for each domain.")
@click.option(
    "--metadata",
    "metadata_file",
    type=click.Path(dir_okay=False),
    required=True,
    help="The IdP's SAML metadata XML file.",
)
@click.option("--enforce/--no-enforce", default=False, help="Require SSO for these domains.")
def configure_sso(slug: str, domains: tuple[str, ...], metadata_file: str, enforce: bool) -> None:
    """Set an account's SSO domains, IdP metadata and enforcement (any domain, at once)."""
    account = _account(slug)
    try:
        with open(metadata_file, "rb") as f:
            metadata_xml = decode_metadata(f.read(MAX_METADATA_BYTES + 1))
    except OSError as exc:
        raise click.ClickException(f"--metadata: cannot read {metadata_file}: {exc}") from exc
    except MetadataError as exc:
        raise click.ClickException(f"--metadata: {exc}") from exc
    try:
        connection = configure(
            account,
            parse_domains(" ".join(domains)),
            metadata_xml,
            enforce,
            by_operator=True,
        )
    except MetadataError as exc:
        raise click.ClickException(f"--metadata: {exc}") from exc
    except ConfigurationError as exc:
        raise click.ClickException(f"--{exc.field.rstrip('s')}: {exc}") from exc
    audit.record(
        "sso.settings_changed",
        account=account,
        detail={"domains": [d.domain for d in connection.domains], "enforced": enforce},
    )
    db.session.commit()
    state = "enforced" if connection.enforced else "not enforced"
    listed = ", ".join(d.domain for d in connection.domains)
    click.echo(f"SSO for {account.slug}: {listed}; {state}.")


@audit_group.command("export")
@click.argument("slug")
def export_audit(slug: str) -> None:
    """Write an account's audit events as JSON lines (oldest first) for SIEM import."""
    for event in audit.export(_account(slug)):
        click.echo(json.dumps(event, separators=(",", ":"), sort_keys=True))


@mail_group.command("send-pending")
def send_pending() -> None:
    """Send the mail waiting in the outbox (safe to run from cron on every instance)."""
    sent, failed = mail.deliver_pending(limit=1000)
    click.echo(f"Sent {sent} mail(s); gave up on {failed}.")
