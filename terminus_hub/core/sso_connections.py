"""Which account's identity provider serves an email domain, and configuring it."""

from __future__ import annotations

import re

from sqlalchemy import select

from terminus_hub.core import sso_domains as domains_module
from terminus_hub.core.idp_metadata import MetadataError
from terminus_hub.core.idp_metadata import inspect_idp_metadata
from terminus_hub.core.sso_domains import DomainError
from terminus_hub.core.sso_domains import claim
from terminus_hub.core.sso_domains import release
from terminus_hub.extensions import db
from terminus_hub.models import MANAGER_ROLES
from terminus_hub.models import Account
from terminus_hub.models import Membership
from terminus_hub.models import SsoConnection
from terminus_hub.models import SsoDomain
from terminus_hub.models import User
from terminus_hub.models import utcnow

# 239 characters at most, so that _terminus-hub.<domain> still fits in a DNS name (253).
_DOMAIN = re.compile(r"(?=.{1,239}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
DOMAIN_INVALID = "“{domain}” is not a domain name such as example.com."
DOMAINS_REQUIRED = "Give at least one email domain."
NOT_CLAIMED = "{domain} is not one of this account’s domains."
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
    """Return the SSO connection holding this email's domain verified, if any.

    Only a verified domain routes people, blocks passwords and lets the IdP create people.
    """
    return db.session.scalar(
        select(SsoConnection)
        .join(SsoDomain, SsoDomain.connection_id == SsoConnection.id)
        .where(SsoDomain.domain == email_domain(email), SsoDomain.verified_at.is_not(None))
    )


def find_claim(connection: SsoConnection | None, domain: str) -> SsoDomain | None:
    """Return the connection's claim (verified or not) on a domain, if any."""
    wanted = domain.strip().lower().rstrip(".")
    claims = connection.domains if connection is not None else []
    return next((d for d in claims if d.domain == wanted), None)


def claim_for_email(connection: SsoConnection, email: str) -> SsoDomain | None:
    """Return the connection's claim (verified or not) on this email's domain, if any."""
    return find_claim(connection, email_domain(email))


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
    *,
    metadata_xml: str | None,
    by_operator: bool,
    domains: list[str] | None = None,
    add: list[str] | tuple[str, ...] = (),
    remove: list[str] | tuple[str, ...] = (),
    enforce: bool | None = None,
    vouch: bool = False,
    role: str | None = None,
) -> SsoConnection:
    """Change an account's SSO: IdP metadata, domain claims and enforcement, checking each rule.

    ``domains`` (the settings page) is the whole list: claims not in it are dropped, new ones
    added. ``add`` and ``remove`` (the CLI) change only the domains they name, and ``enforce``
    None leaves enforcement as it is. ``role`` is the web user's role (None: an operator),
    remembered with new metadata. New claims start unverified with their own token;
    ``vouch`` (operators only) verifies the domains in ``add`` without DNS. From the web,
    enforcing needs a test sign-in through the current metadata.
    """
    connection = connection_of(account)
    if metadata_xml is None and connection is None:
        raise ConfigurationError("metadata", "Upload the identity provider’s metadata.")
    if metadata_xml is not None:
        info = inspect_idp_metadata(metadata_xml)
        if info.expired(utcnow()):
            raise MetadataError(info.expiry_message())
    if connection is None:
        connection = SsoConnection(account=account, idp_metadata_xml=metadata_xml)
        db.session.add(connection)
        connection.metadata_set_by_role = role or "operator"
    elif metadata_xml is not None and metadata_xml != connection.idp_metadata_xml:
        connection.idp_metadata_xml = metadata_xml
        connection.metadata_version += 1
        connection.tested_at = None  # a new IdP must prove itself again
        connection.metadata_set_by_role = role or "operator"
    current = {d.domain for d in connection.domains}
    for domain in remove:
        if domain not in current:
            raise ConfigurationError("remove_domain", NOT_CLAIMED.format(domain=domain))
    wanted = set(domains) if domains is not None else (current | set(add)) - set(remove)
    try:
        for domain in sorted(current - wanted):
            release(connection, domain)
        for domain in sorted(wanted):
            row = claim(connection, domain)
            if vouch and by_operator and domain in add:
                db.session.flush()
                domains_module.vouch(row)
    except DomainError as exc:
        raise ConfigurationError("domains", str(exc)) from None
    if not connection.domains:
        raise ConfigurationError("domains", DOMAINS_REQUIRED)
    if enforce is not None:
        if enforce and not by_operator and connection.tested_at is None:
            raise ConfigurationError("enforced", ENFORCE_NEEDS_TEST)
        connection.enforced = enforce
    db.session.flush()
    return connection
