"""Which account's identity provider serves an email domain, and configuring it."""

from __future__ import annotations

import re

from sqlalchemy import delete
from sqlalchemy import select

from terminus_hub.extensions import db
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import Account
from terminus_hub.models import Membership
from terminus_hub.models import SsoConnection
from terminus_hub.models import SsoDomain
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.sso.metadata import MetadataError
from terminus_hub.sso.metadata import inspect_idp_metadata

_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
DOMAIN_INVALID = "“{domain}” is not a domain name such as example.com."
DOMAIN_TAKEN = "{domain} already belongs to another account’s single sign-on."
DOMAINS_REQUIRED = "Give at least one email domain."
NOT_YOUR_DOMAIN = "You can claim only the domain of your own confirmed email ({domain})."
ENFORCE_NEEDS_TEST = "Sign in once through the identity provider (Test sign-in) before enforcing."


class ConfigurationError(ValueError):
    """An SSO configuration the rules do not allow; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_domains(text: str) -> list[str]:
    """Split domains given with commas, spaces or new lines; lower-case and check each."""
    domains = sorted({d.strip().lower().rstrip(".") for d in re.split(r"[\s,;]+", text) if d})
    if not domains:
        raise ConfigurationError("domains", DOMAINS_REQUIRED)
    for domain in domains:
        if not _DOMAIN.fullmatch(domain):
            raise ConfigurationError("domains", DOMAIN_INVALID.format(domain=domain[:80]))
    return domains


def email_domain(email: str) -> str:
    """Return the domain part of a canonical email."""
    return email.rpartition("@")[2]


def connection_of(account: Account) -> SsoConnection | None:
    """Return an account's SSO connection, if it has one."""
    return db.session.scalar(select(SsoConnection).where(SsoConnection.account_id == account.id))


def connection_for_email(email: str) -> SsoConnection | None:
    """Return the SSO connection that serves this email's domain, if any."""
    return db.session.scalar(
        select(SsoConnection)
        .join(SsoDomain, SsoDomain.connection_id == SsoConnection.id)
        .where(SsoDomain.domain == email_domain(email))
    )


def password_blocked(user: User) -> bool:
    """Say whether SSO enforcement forbids this person a password (owners and admins keep it)."""
    connection = connection_for_email(user.email)
    if connection is None or not connection.enforced:
        return False
    role = db.session.scalar(
        select(Membership.role).where(
            Membership.user_id == user.id, Membership.account_id == connection.account_id
        )
    )
    return role not in MANAGER_ROLES


def configure(
    account: Account,
    domains: list[str],
    metadata_xml: str | None,
    enforce: bool,
    *,
    by_operator: bool,
    admin: User | None = None,
) -> SsoConnection:
    """Set an account's SSO domains, IdP metadata and enforcement, checking every rule.

    Operators (the CLI) may claim any domain and enforce at once; from the web an admin may
    claim only the domain of their own confirmed email, and enforce only after a test sign-in
    through the current metadata succeeded.
    """
    connection = connection_of(account)
    if metadata_xml is None and connection is None:
        raise ConfigurationError("metadata", "Upload the identity provider’s metadata.")
    if metadata_xml is not None:
        info = inspect_idp_metadata(metadata_xml)
        if info.expired(utcnow()):
            raise MetadataError(info.expiry_message())
    _check_domains(account, connection, domains, by_operator, admin)
    if connection is None:
        connection = SsoConnection(account_id=account.id, idp_metadata_xml=metadata_xml)
        db.session.add(connection)
    elif metadata_xml is not None and metadata_xml != connection.idp_metadata_xml:
        connection.idp_metadata_xml = metadata_xml
        connection.metadata_version += 1
        connection.tested_at = None  # a new IdP must prove itself again
    if enforce and not by_operator and connection.tested_at is None:
        raise ConfigurationError("enforced", ENFORCE_NEEDS_TEST)
    connection.enforced = enforce
    db.session.flush()
    db.session.execute(delete(SsoDomain).where(SsoDomain.connection_id == connection.id))
    db.session.add_all(SsoDomain(domain=d, connection_id=connection.id) for d in domains)
    db.session.flush()
    return connection


def _check_domains(
    account: Account,
    connection: SsoConnection | None,
    domains: list[str],
    by_operator: bool,
    admin: User | None,
) -> None:
    owned = {d.domain for d in connection.domains} if connection else set()
    for domain in domains:
        holder = db.session.scalar(
            select(SsoConnection.account_id)
            .join(SsoDomain, SsoDomain.connection_id == SsoConnection.id)
            .where(SsoDomain.domain == domain)
        )
        if holder is not None and holder != account.id:
            raise ConfigurationError("domains", DOMAIN_TAKEN.format(domain=domain))
        if by_operator or domain in owned:
            continue
        own = email_domain(admin.email) if admin and admin.is_confirmed else None
        if domain != own:
            raise ConfigurationError("domains", NOT_YOUR_DOMAIN.format(domain=own or "none"))
