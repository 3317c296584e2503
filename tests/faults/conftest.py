"""Fixtures of the faults suite: real servers on 127.0.0.1, started here and broken by the tests.

One cluster serves the whole suite: two gunicorn instances of the app (A and B, two workers
each) sharing one PostgreSQL database (made by migrations, reached through a TCP proxy that the
tests cut, slow down or trip), one Redis (our own ``redis-server`` on a free port, stopped and
restarted by the tests) and one SMTP sink (refusing, stalling or answering 550 on demand).
After every test the proxy, Redis and the sink are put right again and both instances must
answer ``/healthz`` with 200 before the next test starts.

Every client sends its own ``X-Forwarded-For`` address (the instances trust one proxy hop, as
behind a load balancer), so per-address rate limits of one test never touch another's.

Needs PostgreSQL: without TEST_DATABASE_URL the whole suite is skipped.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy.engine import make_url

from terminus_hub import create_app
from terminus_hub.core import keyring
from terminus_hub.core.membership import account_by_slug
from terminus_hub.errors import TITLES
from terminus_hub.extensions import db
from tests import factories
from tests import processes
from tests.faults.tcp_proxy import TcpProxy
from tests.processes import HOST
from tests.processes import Gunicorn
from tests.processes import PortHold
from tests.processes import RedisServer
from tests.smtp_sink import SmtpSink

WORKERS = 2
LOCKOUT_MAX_ATTEMPTS = 5
SIGN_IN_LIMIT = 5  # per minute, per client address
MAIL_TIMEOUT = 3  # seconds (the default is 5)
TIMEOUT = 20  # no client call in this suite waits longer than this
ERROR_BOUND = 6.5  # seconds: connect_timeout and lock_timeout are 3 s, statement_timeout 5 s
HEALTH_TOKEN = "faults-health-" + secrets.token_hex(8)  # shows /healthz's details
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')

_clusters: list[Cluster] = []  # the running cluster, for failure reports
_LOG_MARKS = pytest.StashKey[dict[str, int]]()
_addresses = itertools.count(1)


def next_address() -> str:
    """Return a client address no other client of this run has used."""
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class MailSink(SmtpSink):
    """The SMTP sink, whose port stays ours (refusing connections) while it is stopped."""

    def __init__(self) -> None:
        super().__init__()
        self._hold: PortHold | None = None

    def start(self) -> None:
        if self._hold is not None:
            self._hold.release()
            self._hold = None
        super().start()

    def stop(self, hold: bool = True) -> None:
        running = self.running
        super().stop()
        if hold and running:
            self._hold = PortHold(self.port)

    def release(self) -> None:
        if self._hold is not None:
            self._hold.release()
            self._hold = None


@dataclass
class Cluster:
    """Two instances sharing PostgreSQL (through the proxy), Redis and the SMTP sink."""

    a: Gunicorn
    b: Gunicorn
    env: dict[str, str]
    database_url: str  # direct, not through the proxy: for checks made by the tests
    proxy: TcpProxy
    redis: RedisServer
    mail: MailSink
    app: Flask  # in-process app on the same database, for making rows and reading them

    @property
    def instances(self) -> tuple[Gunicorn, Gunicorn]:
        return (self.a, self.b)

    def flask(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `flask --app terminus_hub …` with the instances' environment."""
        return processes.flask(self.env, *args, timeout=timeout)

    def wait_healthy(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        for instance in self.instances:
            while True:
                try:
                    response = requests.get(instance.url + "/healthz", timeout=2)
                    if response.status_code == 200:
                        break
                    detail = response.text
                except requests.RequestException as exc:
                    detail = repr(exc)
                if time.monotonic() > deadline:
                    raise AssertionError(f"{instance.name} not healthy again: {detail}")
                time.sleep(0.1)

    def scalar(self, statement: Any) -> Any:
        """Run one query on the database directly (not through the proxy)."""
        with self.app.app_context():
            try:
                return db.session.scalar(statement)
            finally:
                db.session.remove()

    def scalars(self, statement: Any) -> list[Any]:
        with self.app.app_context():
            try:
                return list(db.session.scalars(statement))
            finally:
                db.session.remove()

    def execute(self, statement: Any) -> None:
        with self.app.app_context():
            try:
                db.session.execute(statement)
                db.session.commit()
            finally:
                db.session.remove()

    def leaks(self, text: str) -> list[str]:
        """What an error answer must never show: tracebacks, driver names, where the data is."""
        url = make_url(self.database_url)
        secrets_ = ["Traceback", 'File "', "psycopg", "sqlalchemy", "OperationalError"]
        secrets_ += ["postgresql", str(url.database), f":{self.proxy.port}", f":{url.port or 5432}"]
        return [s for s in secrets_ if s.lower() in text.lower()]

    def person(self, **kwargs: Any) -> factories.Person:
        """A confirmed person who owns one account (made directly in the database)."""
        return factories.make_person(self.app, **kwargs)

    def api_key(self, slug: str, name: str = "faults") -> tuple[str, str]:
        """Make an API key for an account; return (key id, token)."""
        with self.app.app_context():
            row, token = keyring.create_key(account_by_slug(slug), name, creator=None)
            db.session.commit()
            return row.id, token


class Browser:
    """One person's browser, talking to one instance, from one client address."""

    def __init__(self, base_url: str, address: str | None = None) -> None:
        self.base_url = base_url
        self.address = address or next_address()
        self.http = requests.Session()
        self.http.headers["X-Forwarded-For"] = self.address
        self.http.headers["User-Agent"] = "faults-suite"

    def url(self, path: str) -> str:
        """A path on this browser's instance; a full URL (the other instance) is kept."""
        return path if path.startswith("http") else self.base_url + path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", TIMEOUT)
        return self.http.get(self.url(path), **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", TIMEOUT)
        return self.http.post(self.url(path), **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self.http.delete(self.url(path), **kwargs)

    def health(self) -> requests.Response:
        """/healthz with its details (each check, the outbox), as an operator's monitor asks."""
        return self.get("/healthz", headers={"Authorization": f"Bearer {HEALTH_TOKEN}"})

    def csrf_token(self, path: str = "/sign_in/password") -> str:
        """Read the CSRF token from a page's <meta name="csrf-token">, as app.js does."""
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        match = CSRF_META.search(response.text)
        assert match, f"no csrf-token meta on {path}"
        return match.group(1)

    def sign_in(self, email: str, password: str = factories.PASSWORD) -> requests.Response:
        token = self.csrf_token()
        data = {"email": email, "password": password, "csrf_token": token}
        return self.post("/sign_in/password", data=data)

    def sign_up(self, email: str, name: str = "Faulty Tester") -> requests.Response:
        token = self.csrf_token("/sign_up")
        data = {"name": name, "email": email, "password": factories.PASSWORD, "csrf_token": token}
        return self.post("/sign_up", data=data)

    def sign_out(self) -> requests.Response:
        token = self.csrf_token("/accounts")
        return self.post("/sign_out", data={"csrf_token": token})

    def cookies(self) -> dict[str, str]:
        return self.http.cookies.get_dict()

    def close(self) -> None:
        self.http.close()


def page_text(response: requests.Response) -> str:
    """A page's HTML without its per-session CSRF tokens, to compare two answers."""
    text = CSRF_META.sub("", response.text)
    return re.sub(r'(name="csrf_token"[^>]*?value=")[^"]*', r"\1", text)


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> Any:
    """Poll until predicate() is truthy; return its value (or the last falsy one)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def wrong_sign_ins(instances: list[Gunicorn], address: str, count: int) -> list[int]:
    """Post `count` failed sign-ins from one client address, spread over the instances."""
    statuses = []
    for n in range(count):
        browser = Browser(instances[n % len(instances)].url, address)
        try:
            token = browser.csrf_token()
            data = {"email": "no-such-person@example.com", "password": "wrong", "csrf_token": token}
            statuses.append(browser.post("/sign_in/password", data=data).status_code)
        finally:
            browser.close()
    return statuses


def wait_limits_shared(cluster: Cluster, timeout: float = 45) -> None:
    """Wait until every worker counts in Redis again (after an outage, each re-checks Redis
    on its own back-off of 2**n seconds): three rounds in a row of 12 failed sign-ins from a
    new address, spread over both instances, of which exactly the limit get through."""
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while in_a_row < 3:
        assert time.monotonic() < deadline, f"limits not shared again within {timeout} s"
        statuses = wrong_sign_ins(list(cluster.instances), next_address(), 12)
        assert not [s for s in statuses if s >= 500], statuses
        in_a_row = in_a_row + 1 if sum(s != 429 for s in statuses) == SIGN_IN_LIMIT else 0


def assert_unavailable_page(cluster: Cluster, response: requests.Response) -> None:
    """The friendly 503 page: no traceback, no driver, no connection string."""
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.elapsed.total_seconds() < ERROR_BOUND
    assert response.headers["Content-Type"].startswith("text/html")
    assert TITLES[503] in response.text
    assert cluster.leaks(response.text) == []


def assert_unavailable_api(cluster: Cluster, response: requests.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.elapsed.total_seconds() < ERROR_BOUND
    assert response.json()["error"]["code"] == "unavailable"
    assert cluster.leaks(response.text) == []


@pytest.fixture(scope="session", autouse=True)
def _require_postgresql() -> None:
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip(
            "the faults suite needs PostgreSQL: set TEST_DATABASE_URL "
            "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres)"
        )


@pytest.fixture(scope="session")
def faults_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def cluster(_require_postgresql: None, database_url: str, faults_dir: Path) -> Iterator[Cluster]:
    """Start PostgreSQL's proxy, Redis, the SMTP sink and instances A and B; stop them after."""
    url = make_url(database_url)
    proxy = TcpProxy(url.host or HOST, url.port or 5432)
    redis = RedisServer(faults_dir)
    sink = MailSink()
    instances: list[Gunicorn] = []
    app: Flask | None = None
    # A CI timeout's SIGTERM becomes a KeyboardInterrupt, so the teardown below still runs.
    previous_handler = signal.getsignal(signal.SIGTERM)
    if previous_handler is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": database_url,
                "SECRET_KEY": "faults-in-process-" + "x" * 32,
                "TERMINUS_BASE_URL": f"http://{HOST}",
                "TERMINUS_BCRYPT_ROUNDS": 4,
                "RATELIMIT_ENABLED": False,
            },
            instance_path=str(faults_dir / "instance"),
        )
        proxy.start()
        redis.start()
        sink.start()
        proxied = url.set(host=HOST, port=proxy.port).render_as_string(hide_password=False)
        env = processes.app_environment(
            {
                "DATABASE_URL": proxied,
                "FLASK_SECRET_KEY": '"faults-' + secrets.token_hex(24) + '"',
                "FLASK_SESSION_COOKIE_SECURE": "false",
                "FLASK_TERMINUS_BCRYPT_ROUNDS": "4",
                "FLASK_RATELIMIT_STORAGE_URI": f'"{redis.url}"',
                "FLASK_MAIL_SERVER": f'"{sink.host}"',
                "FLASK_MAIL_PORT": str(sink.port),
                "FLASK_MAIL_TIMEOUT": str(MAIL_TIMEOUT),
                "FLASK_TERMINUS_LOCKOUT_MAX_ATTEMPTS": str(LOCKOUT_MAX_ATTEMPTS),
                "FLASK_TERMINUS_SIGN_IN_RATE_LIMIT": f'"{SIGN_IN_LIMIT} per minute"',
                # One trusted hop, as behind a load balancer: each test client has its own address.
                "FLASK_TERMINUS_TRUSTED_PROXIES": "1",
                # Both instances answer on 127.0.0.1 (on their own ports); links carry no port.
                "FLASK_TERMINUS_BASE_URL": f"http://{HOST}",
                "FLASK_TERMINUS_HEALTH_TOKEN": f'"{HEALTH_TOKEN}"',
            }
        )
        instances = [
            Gunicorn(name, env, faults_dir, WORKERS, separate_errors=True) for name in "AB"
        ]
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_ready(timeout=30)
        running = Cluster(
            a=instances[0],
            b=instances[1],
            env=env,
            database_url=database_url,
            proxy=proxy,
            redis=redis,
            mail=sink,
            app=app,
        )
        _clusters.append(running)
        yield running
    finally:
        _clusters.clear()
        for instance in instances:
            instance.stop()
        proxy.close()
        redis.stop(hold=False)
        redis.release()
        sink.stop(hold=False)
        sink.release()
        if app is not None:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        signal.signal(signal.SIGTERM, previous_handler)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Add what the instances logged during a failed test to its report."""
    report = yield
    if report.when == "call" and report.failed and _clusters:
        marks = item.stash.get(_LOG_MARKS, {})
        for instance in _clusters[0].instances:
            logged = instance.log()[marks.get(instance.name, 0) :]
            report.sections.append((f"gunicorn {instance.name} log (this test)", logged[-20000:]))
    return report


@pytest.fixture(autouse=True)
def _put_right_again(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: proxy plain and listening, Redis up, the sink accepting; all healthy."""
    request.node.stash[_LOG_MARKS] = {i.name: len(i.log()) for i in cluster.instances}
    yield
    cluster.proxy.reset()
    if not cluster.redis.running:
        cluster.redis.start()
        wait_limits_shared(cluster)
    cluster.mail.refuse_rcpt = None
    cluster.mail.refuse_data = None
    cluster.mail.data_delay = 0
    cluster.mail.start()
    with cluster.app.app_context():
        db.session.remove()
    cluster.wait_healthy()


@pytest.fixture
def browsers() -> Iterator[Any]:
    """Make browsers (`browsers(url, address=None)`); all are closed after the test."""
    made: list[Browser] = []

    def make(base_url: str, address: str | None = None) -> Browser:
        browser = Browser(base_url, address)
        made.append(browser)
        return browser

    yield make
    for browser in made:
        browser.close()
