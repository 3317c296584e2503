"""What the browser suite runs against: the app under gunicorn, its mailbox, its command line.

``running_hub(workdir)`` starts it all on 127.0.0.1 and stops it all afterwards:

- a real SMTP sink (``tests.smtp_sink.SmtpSink``) that the app mails to;
- the database, made by ``flask db upgrade``: a fresh PostgreSQL database when
  TEST_DATABASE_URL is set (dropped at the end), else a SQLite file;
- ``gunicorn -c gunicorn.conf.py wsgi:app`` with two sync workers on a free port, every setting
  given as a ``FLASK_*`` variable (TEST_REDIS_URL, when set, holds the rate-limit counters).
"""

from __future__ import annotations

import os
import re
import secrets
import time
import weakref
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from email.message import EmailMessage
from pathlib import Path

import requests
from flask import Flask
from playwright.sync_api import Page

from terminus_hub import create_app
from terminus_hub.extensions import db
from tests import processes
from tests.browser import a11y
from tests.ports import free_port
from tests.processes import HOST
from tests.processes import Gunicorn
from tests.smtp_sink import SmtpSink

WORKERS = 2
LOCKOUT_MAX_ATTEMPTS = 3  # low, so the lockout flow is quick
PASSWORD = "violet tractor humming lagoons"  # meets the app's password rule
MAIL_WAIT = 15.0  # seconds


# -- the mailbox --------------------------------------------------------------------------------


class Mailbox:
    """The mail the SMTP sink accepted, read as a person reads their inbox."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    def _to(self, to: str) -> list[EmailMessage]:
        return [r.message for r in self.sink.received if to in r.rcpt_tos]

    def count(self, to: str) -> int:
        return len(self._to(to))

    def wait(self, to: str, after: int = 0, timeout: float = MAIL_WAIT) -> EmailMessage:
        """Wait until mail number ``after + 1`` to this address has arrived; return it."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self._to(to)
            if len(messages) > after:
                return messages[after]
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail #{after + 1} to {to} within {timeout} s")
            time.sleep(0.05)

    def link(self, to: str, after: int = 0) -> str:
        """The first link in that mail's text (the one the mail asks the person to open)."""
        message = self.wait(to, after)
        body = message.get_body(preferencelist=("plain",))
        assert body is not None, f"mail to {to} has no text part"
        urls = re.findall(r"https?://\S+", body.get_content())
        assert urls, f"no link in the mail to {to}: {body.get_content()!r}"
        return urls[0]


# -- the app ------------------------------------------------------------------------------------


@dataclass
class Person:
    email: str
    password: str
    slugs: list[str] = field(default_factory=list)


@dataclass
class Hub:
    """The running app: its URL, its mail, its log, and its command line."""

    url: str
    log_path: Path
    mail: Mailbox
    cli_app: Flask  # the app in this process, on the same database: runs its `flask` commands
    _numbers: Iterator[int] = field(default_factory=lambda: iter(range(1, 1_000_000)))

    def log(self) -> str:
        """What gunicorn and the app wrote (access log, errors, the app's own log)."""
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str) -> str:
        """Run one of the app's own `flask --app terminus_hub …` commands; return its output."""
        result = self.cli_app.test_cli_runner().invoke(args=list(args))
        assert result.exit_code == 0, f"flask {' '.join(args)} failed: {result.output}"
        return result.output

    def unique_email(self, stem: str, domain: str = "example.com") -> str:
        return f"{stem}-{next(self._numbers)}-{secrets.token_hex(3)}@{domain}"

    def person(self, stem: str, accounts: tuple[str, ...] = ("Acme",)) -> Person:
        """A confirmed user who owns these accounts (each with its workspace Main), by CLI."""
        person = Person(self.unique_email(stem), PASSWORD)
        self.cli(
            "users", "create", person.email, "--password", PASSWORD, "--name", "Pat Tester",
            "--confirmed",
        )  # fmt: skip
        for name in accounts:
            output = self.cli("accounts", "create", name, "--owner", person.email)
            match = re.search(r"Created account (\S+) ", output)
            assert match, output
            person.slugs.append(match.group(1))
        return person

    def api(
        self, path: str, token: str, method: str = "GET", body: dict[str, object] | None = None
    ) -> requests.Response:
        """Call an API path with a bearer token, as a script would."""
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(method, self.url + path, headers=headers, json=body, timeout=10)


def _app_env(url: str, database_url: str, sink: SmtpSink, workdir: Path) -> dict[str, str]:
    """The app's settings, as FLASK_* variables (values parsed as JSON)."""
    env = processes.app_environment(
        {
            "DATABASE_URL": database_url,
            "FLASK_SECRET_KEY": f'"browser-{secrets.token_hex(24)}"',
            "FLASK_SESSION_COOKIE_SECURE": "false",  # plain http on the loopback
            "FLASK_TERMINUS_BASE_URL": f'"{url}"',
            # The readiness probe (and hub.api) ask for the address, as a health check would.
            "FLASK_TERMINUS_ALLOWED_HOSTS": f'["{HOST}"]',
            "FLASK_TERMINUS_BCRYPT_ROUNDS": "4",
            "FLASK_TERMINUS_LOCKOUT_MAX_ATTEMPTS": str(LOCKOUT_MAX_ATTEMPTS),
            "FLASK_MAIL_SERVER": f'"{sink.host}"',
            "FLASK_MAIL_PORT": str(sink.port),
            "FLASK_MAIL_SUPPRESS_SEND": "false",
            # Not in the checkout's instance/: this run's own SP key.
            "FLASK_TERMINUS_SAML_SP_KEY_FILE": f'"{workdir / "sp.key"}"',
            "FLASK_TERMINUS_SAML_SP_CERT_FILE": f'"{workdir / "sp.crt"}"',
            # Every page comes from one address: limits far above what the flows use.
            "FLASK_TERMINUS_SIGN_IN_RATE_LIMIT": '"1000 per minute"',
            "FLASK_TERMINUS_SIGN_UP_RATE_LIMIT": '"1000 per hour"',
            "FLASK_TERMINUS_RECOVERY_RATE_LIMIT": '"1000 per hour"',
            "FLASK_TERMINUS_LINK_RATE_LIMIT": '"1000 per minute"',
            "FLASK_TERMINUS_SSO_RATE_LIMIT": '"1000 per minute"',
            "FLASK_TERMINUS_API_RATE_LIMIT": '"10000 per minute"',
            "FLASK_TERMINUS_MAILS_PER_ADDRESS_PER_HOUR": "50",
        }
    )
    if os.environ.get("TEST_REDIS_URL"):
        env["FLASK_RATELIMIT_STORAGE_URI"] = f'"{os.environ["TEST_REDIS_URL"]}"'
        env["FLASK_RATELIMIT_KEY_PREFIX"] = f'"thub-browser-{secrets.token_hex(4)}"'
    return env


def _flask(env: dict[str, str], *args: str) -> None:
    done = processes.flask(env, *args)
    assert done.returncode == 0, f"flask {' '.join(args)} failed:\n{done.stdout}{done.stderr}"


@contextmanager
def running_hub(workdir: Path) -> Iterator[Hub]:
    """Start the sink, the database and gunicorn; stop and remove them all afterwards."""
    sink = SmtpSink()
    sink.start()
    server: Gunicorn | None = None
    cli_app: Flask | None = None
    try:
        with processes.fresh_database(workdir, "thub_browser") as database_url:
            try:
                port = free_port()
                # "localhost", not the address: browsers refuse an IP address as a passkey RP id.
                url = f"http://localhost:{port}"
                env = _app_env(url, database_url, sink, workdir)
                _flask(env, "db", "upgrade")
                server = Gunicorn("gunicorn", env, workdir, WORKERS, port=port)
                server.start()
                server.wait_ready()
                cli_app = create_app(
                    {
                        "SQLALCHEMY_DATABASE_URI": database_url,
                        "SECRET_KEY": "browser-cli-" + secrets.token_hex(24),
                        "TERMINUS_BCRYPT_ROUNDS": 4,
                        "TERMINUS_BASE_URL": url,
                        "RATELIMIT_ENABLED": False,
                        "SESSION_COOKIE_SECURE": False,
                        "TERMINUS_SAML_SP_KEY_FILE": str(workdir / "sp.key"),
                        "TERMINUS_SAML_SP_CERT_FILE": str(workdir / "sp.crt"),
                    },
                    instance_path=str(workdir / "instance"),
                )
                yield Hub(url, server.out_log, Mailbox(sink), cli_app)
            finally:
                if server is not None:
                    server.stop(grace=15)
                if cli_app is not None:
                    with cli_app.app_context():
                        db.session.remove()
                        db.engine.dispose()
    finally:
        sink.stop()


# -- screenshots --------------------------------------------------------------------------------

NewPage = Callable[..., Page]


def file_stem(name: str) -> str:
    """A test's name as a file name: ``test_x[no-js]`` becomes ``test_x-no-js``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


# The pages opened with JavaScript off (``new_page(javascript=False)``).
WITHOUT_JAVASCRIPT: weakref.WeakSet[Page] = weakref.WeakSet()


class Shots:
    """Save a flow's key screens as ``<folder>/NN-step.png``.

    Each screen of the app (not the IdP's) is checked as it is saved: axe-core finds no WCAG
    2.1 A/AA violation, and the page does not scroll sideways on a 390 px phone.
    """

    def __init__(self, folder: Path, origin: str) -> None:
        self.folder = folder
        self.origin = origin
        self.count = 0

    def __call__(self, page: Page, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        page.screenshot(path=str(path))
        if page.url.startswith(self.origin + "/"):
            problems = a11y.problems(page, javascript=page not in WITHOUT_JAVASCRIPT)
            assert not problems, f"{step}: " + "\n".join(problems)
        return path
