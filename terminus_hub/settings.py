"""Built-in defaults and the contract's order for loading settings."""

from __future__ import annotations

import os
import secrets
import select
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask
from sqlalchemy.exc import DisconnectionError

DEFAULTS: dict[str, Any] = {
    # Level of the terminus_hub loggers; INFO shows mail in the terminal when MAIL_SERVER is unset.
    "LOG_LEVEL": "INFO",
    # "text" (lines for people) or "json" (one object per line, with a line per request).
    "TERMINUS_LOG_FORMAT": "text",
    # Database: SQLite in the instance folder unless DATABASE_URL or a setting says otherwise.
    "SQLALCHEMY_DATABASE_URI": None,
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    # Cookies: HttpOnly and SameSite=Lax always; Secure unless the local dev command turns it off.
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": None,  # "__Host-thub_session" when Secure, else "thub_session"
    "REMEMBER_COOKIE_HTTPONLY": True,
    # Requests larger than this are refused with 413 before they are read.
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # CSRF tokens live as long as the session that holds them.
    "WTF_CSRF_TIME_LIMIT": None,
    # Rate limits: per-process memory by default, Redis in production; fall back, never fail.
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "RATELIMIT_HEADERS_ENABLED": True,
    "RATELIMIT_KEY_PREFIX": "thub",
    "RATELIMIT_STRATEGY": "moving-window",
    # Short waits on Redis: when it is down, requests fall back to per-process limits quickly.
    "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    # Mail: with MAIL_SERVER unset, mail (with its links) is written to the log.
    "MAIL_SERVER": None,
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": "Terminus Hub <no-reply@localhost>",
    "MAIL_TIMEOUT": 5,  # seconds; bounds any wait on a slow mail server
    "MAIL_MAX_ATTEMPTS": 8,  # deliveries tried (with back-off) before a mail is given up
    # Where people reach the app, e.g. "https://hub.example.com" (required). Emailed links and
    # SAML URLs are built from it alone, and requests for any other host name answer 400.
    "TERMINUS_BASE_URL": None,
    # More host names the app answers to besides the base URL's (e.g. an internal name that
    # a load balancer's health check uses). Never used to build a link.
    "TERMINUS_ALLOWED_HOSTS": [],
    # Product settings (docs/operations.md lists each one).
    "TERMINUS_BCRYPT_ROUNDS": 12,
    "TERMINUS_LOCKOUT_MAX_ATTEMPTS": 5,
    "TERMINUS_LOCKOUT_MINUTES": 15,
    "TERMINUS_PASSWORD_MIN_LENGTH": 12,
    "TERMINUS_PASSWORD_MAX_LENGTH": 1024,
    "TERMINUS_SIGN_IN_RATE_LIMIT": "20 per minute",  # per client address, email and password steps
    "TERMINUS_SIGN_UP_RATE_LIMIT": "10 per hour",  # per client address
    "TERMINUS_RECOVERY_RATE_LIMIT": "10 per hour",  # resend and forgot-password, per address
    "TERMINUS_LINK_RATE_LIMIT": "30 per minute",  # confirm, reset and unlock posts, per address
    "TERMINUS_SSO_RATE_LIMIT": "30 per minute",  # SSO starts and assertion posts, per address
    # SAML service provider: key and certificate files; unset, they are made once in instance/.
    "TERMINUS_SAML_SP_KEY_FILE": None,
    "TERMINUS_SAML_SP_CERT_FILE": None,
    "TERMINUS_XMLSEC_BINARY": None,  # path to xmlsec1; unset, it is looked up on PATH
    # Proving SSO domains: nameservers asked for the TXT record (["ip", "ip:port", …]; unset:
    # the system resolver) and the seconds a lookup may take in all.
    "TERMINUS_DNS_NAMESERVERS": None,
    "TERMINUS_DNS_TIMEOUT": 3,
    # Public mail domains nobody may claim for SSO, on top of the built-in list.
    "TERMINUS_PUBLIC_EMAIL_DOMAINS": [],
    # Confirmation and reset mails to one address per hour; more requests answer the same silently.
    "TERMINUS_MAILS_PER_ADDRESS_PER_HOUR": 3,
    # A secret that shows /healthz's details (each check, the mail outbox's counts) to a request
    # with "Authorization: Bearer <it>"; unset, nobody sees them.
    "TERMINUS_HEALTH_TOKEN": None,
    # A secret a Prometheus scraper sends ("Authorization: Bearer <it>") to read /metrics;
    # unset, there is no /metrics.
    "TERMINUS_METRICS_TOKEN": None,
    # Proxies in front of the app whose X-Forwarded-For/-Proto are trusted (0: none).
    "TERMINUS_TRUSTED_PROXIES": 0,
    "TERMINUS_API_RATE_LIMIT": "600 per minute",
    "TERMINUS_CONFIRM_TOKEN_HOURS": 72,
    "TERMINUS_RESET_TOKEN_MINUTES": 60,
    "TERMINUS_INVITATION_DAYS": 7,  # invitation links expire after this many days
    "TERMINUS_SESSION_IDLE_HOURS": 12,
    # Sensitive actions need the password entered this recently (sign-in counts).
    "TERMINUS_REAUTH_MINUTES": 10,
    "TERMINUS_SESSION_MAX_DAYS": 14,
    # Every account's owners and admins must use a second factor (accounts can also choose it).
    "TERMINUS_REQUIRE_MFA_FOR_MANAGERS": False,
    # Encrypts authenticator-app secrets; unset, a key is derived from SECRET_KEY. Set it before
    # rotating SECRET_KEY, or every authenticator app stops working.
    "TERMINUS_MFA_KEY": None,
}


def load(app: Flask, config: Mapping[str, Any] | None) -> None:
    """Load settings: defaults, instance/config.py, FLASK_* variables, then the mapping."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env()
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    if config is not None:
        app.config.from_mapping(config)

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if not uri:
        uri = "sqlite:///" + os.path.join(app.instance_path, "terminus_hub.sqlite")
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(uri)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    )
    if not app.config["SESSION_COOKIE_NAME"]:
        secure = app.config["SESSION_COOKIE_SECURE"]
        app.config["SESSION_COOKIE_NAME"] = "__Host-thub_session" if secure else "thub_session"
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_or_create_secret_key(app.instance_path)
    base_url = checked_base_url(app.config["TERMINUS_BASE_URL"])
    app.config["TERMINUS_BASE_URL"] = base_url
    # Flask answers 400 to a Host header that is not one of these (the port is not compared).
    extra = app.config["TERMINUS_ALLOWED_HOSTS"]
    if not isinstance(extra, list) or not all(isinstance(name, str) for name in extra):
        raise SettingsError(
            'TERMINUS_ALLOWED_HOSTS must be a list of host names, e.g. ["hub-internal"]'
        )
    app.config["TRUSTED_HOSTS"] = [urlsplit(base_url).hostname, *extra]


class SettingsError(click.ClickException):
    """A setting the app cannot run without is missing or wrong; the message says which.

    A ClickException, so ``flask …`` prints it as one ``Error:`` line; wsgi.py does the same
    for gunicorn.
    """


BASE_URL_MISSING = (
    "TERMINUS_BASE_URL is not set. Set it to the address people use to reach the app, e.g. "
    "FLASK_TERMINUS_BASE_URL=https://hub.example.com: emailed links and SAML URLs are built "
    "from it, never from a request's Host header."
)


def checked_base_url(value: object) -> str:
    """Return the base URL without a trailing slash, or raise SettingsError saying what is wrong."""
    if not value:
        raise SettingsError(BASE_URL_MISSING)
    text = str(value).strip().rstrip("/")
    parts = urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise SettingsError(
            f"TERMINUS_BASE_URL must be an http(s) address such as https://hub.example.com, "
            f"not {text!r}"
        )
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(
            f"TERMINUS_BASE_URL must be an origin only (scheme, host and port), not {text!r}"
        )
    # Written as browsers write an origin (lower case, no default port): passkeys compare the
    # browser's origin with this exactly, and links look the same whichever way it was typed.
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


def engine_options(uri: str, configured: Mapping[str, Any]) -> dict[str, Any]:
    """Bound every wait on PostgreSQL and recover by itself; configured options win."""
    if not uri.startswith("postgresql"):
        return dict(configured)
    options: dict[str, Any] = {
        # A connection the server dropped is replaced, not used: checked at every checkout by
        # looking at its socket (no round trip), instead of pool_pre_ping's extra query.
        "pool_events": [(discard_if_server_spoke, "checkout")],
        "pool_timeout": 5,  # seconds to wait for a free connection
        "pool_recycle": 1800,
        "connect_args": {
            "connect_timeout": 3,
            # TCP keepalives on idle pooled connections: they keep load balancers and NAT from
            # dropping the flow silently, and a peer that is gone makes the socket report an
            # error, which the checkout check below sees (it replaces pool_pre_ping).
            "keepalives": 1,
            "keepalives_idle": 60,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            # No query may hold a worker longer than this (milliseconds).
            "options": "-c statement_timeout=5000 -c lock_timeout=3000",
        },
    }
    options.update(configured)
    return options


def discard_if_server_spoke(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: hand out an idle PostgreSQL connection only while its socket is quiet.

    Between two uses nothing may arrive on a pooled connection. When the server goes away (a
    restart, a crash, an idle timeout, a proxy or load balancer closing the connection) the
    kernel has its goodbye: the socket reads as ready (end of file, a reset, or the server's
    termination notice). Such a connection is discarded and the pool opens a new one, as
    pool_pre_ping would do, but without a query to the server on every checkout.
    """
    if getattr(dbapi_connection, "closed", False):
        raise DisconnectionError("the connection is closed")
    try:
        fileno = dbapi_connection.fileno()
    except Exception:
        raise DisconnectionError("the connection has no socket") from None
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        raise DisconnectionError("the server spoke on an idle connection: it closed it")


def migrations_directory() -> str:
    """Return the Flask-Migrate repository, wherever the command runs.

    An installed package carries it inside (terminus_hub/migrations, mapped there at build
    time); a source checkout or an editable install has it beside the package.
    """
    package = os.path.dirname(os.path.abspath(__file__))
    inside = os.path.join(package, "migrations")
    if os.path.isfile(os.path.join(inside, "env.py")):
        return inside
    return os.path.join(os.path.dirname(package), "migrations")


def normalize_database_url(url: str) -> str:
    """Point postgres:// and postgresql:// URLs at the psycopg 3 driver we ship."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def load_or_create_secret_key(instance_path: str) -> str:
    """Read instance/secret_key, making it (mode 0600) on first start."""
    path = os.path.join(instance_path, "secret_key")
    os.makedirs(instance_path, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path, encoding="ascii") as f:
            key = f.read().strip()
        if len(key) < 32:
            raise RuntimeError(
                f"{path} holds no usable secret key; delete it to make a new one"
            ) from None
        return key
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    return key
