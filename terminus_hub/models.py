"""Every ORM model, in SQLAlchemy 2.0 typed style."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from flask_login import UserMixin
from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import DateTime
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import false
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship
from sqlalchemy.types import TypeDecorator

from terminus_hub.extensions import Base
from terminus_hub.extensions import db

# Flask-SQLAlchemy makes db.Model at run time from Base; type checkers see Base itself.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


class AccountLike(Protocol):
    """An account as services need it: an ORM Account, or the API key check's plain reference."""

    @property
    def id(self) -> str: ...

    @property
    def slug(self) -> str: ...

    @property
    def name(self) -> str: ...


ROLES = ("owner", "admin", "member")
MANAGER_ROLES = ("owner", "admin")


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def new_public_id(prefix: str) -> Callable[[], str]:
    """Return a maker of opaque ids such as ``acc_5k2x…`` (80 random bits)."""

    def make() -> str:
        token = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
        return f"{prefix}_{token}"

    return make


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        moment: datetime | None = value
        if moment is None:
            return None
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


def render_migration_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write UTCDateTime into migrations as a plain timestamp, so they never import the app."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


class Account(Model):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("acc"))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # "Owners and admins must use a second factor" (the owners' choice on /a/<slug>/settings).
    require_mfa_for_managers: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )
    workspaces: Mapped[list[Workspace]] = relationship(
        back_populates="account", cascade="all, delete-orphan", order_by="Workspace.created_at"
    )


class User(UserMixin, Model):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("usr"))
    # Canonical (lower-case) form; the unique index makes the email one identity.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    # None for people who only ever signed in through SSO.
    password_hash: Mapped[str | None] = mapped_column(String(128))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the person's first second factor was confirmed; None without one. Kept by core/mfa
    # so a page can tell without a query whether the sign-in needs a code.
    mfa_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def is_confirmed(self) -> bool:
        """Say whether the person has proved they own the email."""
        return self.confirmed_at is not None


class Membership(Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("account_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("mem"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(back_populates="memberships")


class Workspace(Model):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("ws"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account] = relationship(back_populates="workspaces")


class Record(Model):
    __tablename__ = "records"
    # Lists page by (created_at, id) within an account, optionally within a workspace.
    __table_args__ = (
        Index("ix_records_account_created", "account_id", "created_at", "id"),
        Index("ix_records_workspace_created", "workspace_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("rec"))
    # Kept on the row so every query is scoped to the caller's account with one indexed test.
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=dict
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ApiKey(Model):
    """An account's key: the token itself is never stored, only its SHA-256."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("key"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # For the record only: the key belongs to the account and outlives its creator.
    created_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the key may do, space-separated (see core.keyring.SCOPES); read with the key check.
    scopes: Mapped[str] = mapped_column(String(200))
    # None: the key never expires. Also read with the key check.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When owners and admins were told it expires soon (once per key).
    expiry_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The key that replaced this one when it was rolled (a key is rolled once).
    replaced_by_id: Mapped[str | None] = mapped_column(String(32))

    account: Mapped[Account] = relationship()
    created_by: Mapped[User | None] = relationship()


class SsoConnection(Model):
    """An account's SAML identity provider, the email domains it serves, and enforcement."""

    __tablename__ = "sso_connections"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("sso"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    idp_metadata_xml: Mapped[str] = mapped_column(Text)
    # Changes with every new metadata, so cached SAML clients are rebuilt.
    metadata_version: Mapped[int] = mapped_column(Integer, default=1)
    enforced: Mapped[bool] = mapped_column(Boolean, default=False)
    # Who gave the current metadata: "operator", "owner" or "admin". An IdP an admin set up
    # never signs in an owner, or an admin could configure their own IdP and become one.
    metadata_set_by_role: Mapped[str] = mapped_column(
        String(16), default="operator", server_default="operator"
    )
    # When a sign-in through this metadata last succeeded; enforcing from the web needs one.
    tested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()
    domains: Mapped[list[SsoDomain]] = relationship(
        back_populates="connection", cascade="all, delete-orphan", order_by="SsoDomain.domain"
    )


class SsoDomain(Model):
    """An account's claim to an email domain, proven (verified) by DNS or by an operator.

    Several accounts may claim one domain; the partial unique index lets only one hold it
    verified, and only verified domains route, enforce and create people.
    """

    __tablename__ = "sso_domains"
    __table_args__ = (
        UniqueConstraint("connection_id", "domain"),
        Index(
            "ux_sso_domains_verified_domain",
            "domain",
            unique=True,
            sqlite_where=text("verified_at IS NOT NULL"),
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("dom"))
    domain: Mapped[str] = mapped_column(String(253), index=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("sso_connections.id", ondelete="CASCADE"), index=True
    )
    # Published by the owner as terminus-hub-verification=<token>; each new claim gets its own.
    verification_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_by: Mapped[str | None] = mapped_column(String(16))  # "dns" or "operator"
    # The last DNS check (a manual verify or the scheduled re-check) and what it found.
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_message: Mapped[str | None] = mapped_column(String(300))
    # Re-checks in a row that found the record gone; two make a verified domain unverified.
    check_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    connection: Mapped[SsoConnection] = relationship(back_populates="domains")

    @property
    def is_verified(self) -> bool:
        """Say whether the claim is proven."""
        return self.verified_at is not None


class SamlRequest(Model):
    """An AuthnRequest this app sent; the IdP's answer consumes it once, on any instance."""

    __tablename__ = "saml_requests"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    next_path: Mapped[str | None] = mapped_column(String(2000))
    # A test sign-in from the SSO settings page, which may then switch enforcement on.
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    # Who started a test sign-in: at an unverified domain it may sign in only them.
    started_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Sent with ForceAuthn (re-authentication): the answer must show a sign-in made after it.
    force_authn: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SamlAssertion(Model):
    """An assertion id already accepted, kept until it expires so it cannot be replayed."""

    __tablename__ = "saml_assertions"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Invitation(Model):
    """An emailed invitation to join an account with a role; the link's token is stored hashed."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("inv"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship()
    invited_by: Mapped[User | None] = relationship()

    @property
    def is_pending(self) -> bool:
        """Say whether the invitation can still be accepted."""
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > utcnow()


class AuditEvent(Model):
    """One security event, append-only: what happened, to whom, by whom, from where."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_account_created", "account_id", "created_at", "id"),
        Index("ix_audit_events_user_created", "user_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("evt"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    # No foreign keys: the record outlives the account, person or key it mentions.
    account_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(32))
    actor_type: Mapped[str] = mapped_column(String(16))  # user, api_key, operator, anonymous
    actor_id: Mapped[str | None] = mapped_column(String(32))
    ip_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    # The X-Request-ID of the request that wrote it (None from the command line).
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=dict
    )


class UserSession(Model):
    """One signed-in browser; the cookie holds a secret whose SHA-256 is token_hash."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("ses"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    # Set for a session started through an account's identity provider: that IdP vouched
    # for the person only towards its own account, so the session reaches no other.
    sso_account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the person last proved who they are again in this session (sudo mode); signing in
    # counts too (created_at).
    reauthenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")

    user: Mapped[User] = relationship()


class TotpFactor(Model):
    """A person's authenticator app: pending until a first code confirms it.

    The secret is encrypted (core/mfa): a database dump alone does not give the codes.
    """

    __tablename__ = "totp_factors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("tot"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    secret: Mapped[str] = mapped_column(Text)
    # While pending: the session that was shown the secret, the only one that may confirm it.
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The 30-second step of the last code accepted: a code is never accepted twice.
    last_used_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecoveryCode(Model):
    """One single-use recovery code, stored as a keyed hash (core/mfa)."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("rec"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Passkey(Model):
    """A WebAuthn credential (a passkey) of a person: for passwordless sign-in, and as a
    second factor."""

    __tablename__ = "passkeys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("pky"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The credential id as base64url (at most 1,023 bytes raw): the authenticator names it so.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE, as registered
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    aaguid: Mapped[str] = mapped_column(String(36), default="")
    transports: Mapped[list[str]] = mapped_column(JSON, default=list)
    name: Mapped[str] = mapped_column(String(64))
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebAuthnChallenge(Model):
    """A challenge sent to a browser: answered once, by that browser, for that ceremony."""

    __tablename__ = "webauthn_challenges"

    # SHA-256 of the challenge bytes.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # register, sign_in, second_factor or reauth.
    purpose: Mapped[str] = mapped_column(String(16))
    # SHA-256 of a random value kept in this browser's signed session cookie.
    binding: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class IdempotentRequest(Model):
    """A POST sent with an Idempotency-Key, and its answer, kept 24 hours for replays."""

    __tablename__ = "idempotent_requests"

    # The API key's id, or the person's id for a browser session, and the account the request
    # acted on: keys are per caller and account.
    caller_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # A random token of the request holding the key: one that lost it can no longer write.
    claim: Mapped[str] = mapped_column(String(32))
    # SHA-256 of the method, path, query and body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # None while the first request runs; 0 once its change is committed; then the HTTP status.
    status: Mapped[int | None] = mapped_column(Integer)
    # The answer (status, headers, body) encrypted (Fernet): it may hold a new key's token.
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class OutboxMessage(Model):
    """A mail written in the transaction that caused it and sent after commit."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_recipient_template", "recipient", "template", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id("msg"))
    recipient: Mapped[str] = mapped_column(String(254))
    # Which email template made it: lets recovery mail be limited per address and kind.
    template: Mapped[str] = mapped_column(String(40), default="", server_default="")
    subject: Mapped[str] = mapped_column(String(200))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A sender claims a row until this time, so two senders never deliver it twice.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
