"""Operator commands: `flask --app terminus_hub users|accounts|mail …`."""

from __future__ import annotations

import json
import re

import click
from flask import Flask
from flask.cli import AppGroup
from flask.cli import with_appcontext

from terminus_hub import audit
from terminus_hub import housekeeping
from terminus_hub import outbox
from terminus_hub.addresses import InvalidEmail
from terminus_hub.addresses import canonical_email
from terminus_hub.core import dns_proof
from terminus_hub.core import keyring
from terminus_hub.core import lockout
from terminus_hub.core import mfa
from terminus_hub.core import sso_domains as domains_module
from terminus_hub.core.idp_metadata import MAX_METADATA_BYTES
from terminus_hub.core.idp_metadata import MetadataError
from terminus_hub.core.idp_metadata import decode_metadata
from terminus_hub.core.membership import MembershipError
from terminus_hub.core.membership import account_by_slug
from terminus_hub.core.membership import accounts_of
from terminus_hub.core.membership import add_member
from terminus_hub.core.membership import create_account
from terminus_hub.core.signin import find_user
from terminus_hub.core.sso_connections import DOMAIN_INVALID
from terminus_hub.core.sso_connections import ConfigurationError
from terminus_hub.core.sso_connections import configure
from terminus_hub.core.sso_connections import connection_of
from terminus_hub.core.sso_connections import parse_domains
from terminus_hub.extensions import db
from terminus_hub.models import ROLES
from terminus_hub.models import Account
from terminus_hub.models import ApiKey
from terminus_hub.models import SsoDomain
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.passwords import context_words
from terminus_hub.passwords import hash_password
from terminus_hub.passwords import password_problem

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
    app.cli.add_command(housekeeping_command)


@click.command("housekeeping")
@with_appcontext
def housekeeping_command() -> None:
    """Delete expired rows and old mail; announce keys that expire soon (run hourly)."""
    counts = housekeeping.purge()
    announced = keyring.notify_expiring()
    click.echo(f"Announced {announced} expiring key{'s' if announced != 1 else ''}.")
    click.echo("Deleted: " + ", ".join(f"{n} {name}" for name, n in counts.items()) + ".")


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
    source = "--password"
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        source = "Password"
    problem = password_problem(password, context_words(canonical, name))
    if problem:
        raise click.ClickException(f"{source}: {problem}")
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


@users.command("reset-mfa")
@click.argument("email")
def reset_mfa(email: str) -> None:
    """Remove a user's second factors (they lost their phone and recovery codes)."""
    user = _existing_user(email)
    removed = mfa.reset(user)
    db.session.commit()
    if removed:
        click.echo(f"Removed the second factors of {user.email}; they were mailed a notice.")
    else:
        click.echo(f"{user.email} has no second factor; nothing changed.")


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
@click.option(
    "--allow-duplicate-name",
    is_flag=True,
    help="Make the account even if the owner already belongs to one of this name.",
)
def create_account_command(name: str, owner_email: str, allow_duplicate_name: bool) -> None:
    """Create an account, with its workspace Main, owned by an existing user."""
    name = " ".join(name.split())
    if not name or len(name) > 120 or not name.isprintable():
        raise click.ClickException("NAME takes 1 to 120 printable characters.")
    owner = _existing_user(owner_email)
    same = [a for a in accounts_of(owner) if a.name.casefold() == name.casefold()]
    if same and not allow_duplicate_name:
        raise click.ClickException(
            f"{owner.email} already belongs to an account named {same[0].name!r} ({same[0].slug}). "
            "Pass --allow-duplicate-name to make another."
        )
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
    """List an account's keys: id, prefix, name, created, last used, expires, scopes."""
    for key in keyring.list_keys(_account(slug)):
        last = key.last_used_at.isoformat() if key.last_used_at else "never"
        expires = key.expires_at.isoformat() if key.expires_at else "never"
        scopes = ",".join(keyring.scopes_of(key))
        click.echo(
            f"{key.id}\t{key.prefix}…\t{key.name}\t{key.created_at.isoformat()}\t{last}"
            f"\t{expires}\t{scopes}"
        )


@keys_group.command("notify-expiring")
def notify_expiring_command() -> None:
    """Mail owners and admins about keys that expire within seven days (run daily)."""
    announced = keyring.notify_expiring()
    click.echo(f"Announced {announced} expiring key{'s' if announced != 1 else ''}.")


@keys_group.command("create")
@click.argument("slug")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Allow this (repeat for each; default all): " + ", ".join(keyring.SCOPES) + ".",
)
@click.option(
    "--expires-in-days",
    type=int,
    help=f"Let the key expire after this many days (1–{keyring.EXPIRY_DAYS_MAX}).",
)
def create_key_command(
    slug: str, name: str, scopes: tuple[str, ...], expires_in_days: int | None
) -> None:
    """Create a key and print its token, this once."""
    account = _account(slug)
    for flag, problem in (
        ("NAME", keyring.name_problem(name)),
        ("--scope", keyring.scopes_problem(list(scopes)) if scopes else None),
        ("--expires-in-days", keyring.expiry_problem(expires_in_days)),
    ):
        if problem:
            raise click.ClickException(f"{flag}: {problem}")
    row, token = keyring.create_key(
        account, name, creator=None, scopes=list(scopes) or None, expires_in_days=expires_in_days
    )
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
@click.option("--domain", "domains", multiple=True, help="Claim a domain (repeat for each).")
@click.option("--remove-domain", "removed", multiple=True, help="Drop a domain (repeatable).")
@click.option(
    "--metadata",
    "metadata_file",
    type=click.Path(dir_okay=False),
    help="The IdP's SAML metadata XML file (needed the first time).",
)
@click.option("--enforce/--no-enforce", default=None, help="Require SSO for the verified domains.")
@click.option(
    "--verified",
    is_flag=True,
    help="Vouch for the --domain domains as the operator: verified without DNS.",
)
def configure_sso(
    slug: str,
    domains: tuple[str, ...],
    removed: tuple[str, ...],
    metadata_file: str | None,
    enforce: bool | None,
    verified: bool,
) -> None:
    """Change an account's SSO; only what the flags name changes."""
    account = _account(slug)
    if verified and not domains:
        raise click.ClickException("--verified vouches for the --domain domains: name one.")
    metadata_xml = _metadata_file(metadata_file) if metadata_file else None
    try:
        connection = configure(
            account,
            metadata_xml=metadata_xml,
            by_operator=True,
            add=_one_domain_each(domains, "--domain"),
            remove=_one_domain_each(removed, "--remove-domain"),
            enforce=enforce,
            vouch=verified,
        )
    except MetadataError as exc:
        raise click.ClickException(f"--metadata: {exc}") from exc
    except ConfigurationError as exc:
        flag = {
            "domains": "--domain",
            "remove_domain": "--remove-domain",
            "metadata": "--metadata",
            "enforced": "--enforce",
        }
        raise click.ClickException(f"{flag.get(exc.field, '--' + exc.field)}: {exc}") from exc
    audit.record(
        "sso.settings_changed",
        account=account,
        detail={
            "domains": [d.domain for d in connection.domains],
            "enforced": connection.enforced,
            "metadata_replaced": metadata_xml is not None,
            "vouched": list(domains) if verified else [],
        },
    )
    db.session.commit()
    state = "enforced" if connection.enforced else "not enforced"
    click.echo(f"SSO for {account.slug}; {state}.")
    for claim in connection.domains:
        click.echo(_domain_line(claim))


def _one_domain_each(values: tuple[str, ...], flag: str) -> list[str]:
    """Each use of the flag names one domain; a value with spaces is refused as a whole."""
    domains: list[str] = []
    for value in values:
        if not value.strip() or re.search(r"[\s,;]", value.strip()):
            raise click.ClickException(f"{flag}: " + DOMAIN_INVALID.format(domain=value[:80]))
        domains += parse_domains(value)
    return domains


def _metadata_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return decode_metadata(f.read(MAX_METADATA_BYTES + 1))
    except OSError as exc:
        raise click.ClickException(f"--metadata: cannot read {path}: {exc}") from exc
    except MetadataError as exc:
        raise click.ClickException(f"--metadata: {exc}") from exc


def _domain_line(claim: SsoDomain) -> str:
    if claim.is_verified:
        return f"  {claim.domain}: verified ({claim.verified_by})"
    return (
        f"  {claim.domain}: unverified; publish TXT {dns_proof.record_name(claim.domain)} "
        f"= {dns_proof.record_value(claim.verification_token)}"
    )


@sso_group.command("verify-domain")
@click.argument("slug")
@click.argument("domain")
def verify_domain_command(slug: str, domain: str) -> None:
    """Look up a claimed domain's TXT record now; exit non-zero unless it proves the claim."""
    account = _account(slug)
    connection = connection_of(account)
    wanted = domain.strip().lower().rstrip(".")
    claim = (
        next((d for d in connection.domains if d.domain == wanted), None) if connection else None
    )
    if claim is None:
        raise click.ClickException(f"{account.slug} has not claimed the domain {domain[:253]}.")
    try:
        result = domains_module.verify(claim)
    except domains_module.DomainError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    if not result.verified:
        raise click.ClickException(f"{claim.domain} is not verified: {result.message}")
    click.echo(f"{claim.domain} is verified for {account.slug}. {result.message}")


@sso_group.command("recheck-domains")
def recheck_domains_command() -> None:
    """Re-check every DNS-verified domain (run daily from cron, on one machine).

    A record found missing twice in a row unverifies the domain and mails the owners.
    """
    summary = domains_module.recheck_all()
    click.echo(
        f"Re-checked domains: {summary.confirmed} still verified, {summary.failed_once} failed "
        f"once, {summary.unverified} unverified now, {summary.unreachable} could not be checked."
    )


@audit_group.command("export")
@click.argument("slug")
def export_audit(slug: str) -> None:
    """Write an account's audit events as JSON lines (oldest first) for SIEM import."""
    for event in audit.export(_account(slug)):
        click.echo(json.dumps(event, separators=(",", ":"), sort_keys=True))


@mail_group.command("send-pending")
def send_pending() -> None:
    """Send the mail waiting in the outbox (safe to run from cron on every instance)."""
    sent, failed = outbox.deliver_pending(limit=1000)
    click.echo(f"Sent {sent} mail(s); gave up on {failed}.")
