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

import atexit
import ctypes
import itertools
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
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
from tests.faults.tcp_proxy import PortHold
from tests.faults.tcp_proxy import TcpProxy
from tests.ports import free_port
from tests.smtp_sink import SmtpSink

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKERS = 2
LOCKOUT_MAX_ATTEMPTS = 5
SIGN_IN_LIMIT = 5  # per minute, per client address
MAIL_TIMEOUT = 3  # seconds (the default is 5)
TIMEOUT = 20  # no client call in this suite waits longer than this
ERROR_BOUND = 6.5  # seconds: connect_timeout and lock_timeout are 3 s, statement_timeout 5 s
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')

_started: dict[int, subprocess.Popen[bytes]] = {}  # every process this suite started, by pid
_clusters: list[Cluster] = []  # the running cluster, for failure reports
_LOG_MARKS = pytest.StashKey[dict[str, int]]()
_addresses = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _kill_leftovers() -> None:
    """Last resort when a teardown did not run: end what this suite started, by process group."""
    for proc in list(_started.values()):
        _end(proc, grace=5)


atexit.register(_kill_leftovers)


def next_address() -> str:
    """Return a client address no other client of this run has used."""
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _die_with_parent() -> None:
    # In the child, before exec: SIGTERM it if the test process dies, however it dies (even
    # SIGKILL), so no server outlives the suite. A plain C call: safe between fork and exec.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(args: list[str], env: dict[str, str], log: Path, err: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out, open(err, "ab") as errors:
        proc = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=errors,
            start_new_session=True,  # its own process group: signals reach it and its children
            preexec_fn=_die_with_parent,
        )
    _started[proc.pid] = proc
    return proc


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _end(proc: subprocess.Popen[bytes] | None, grace: float = 10) -> None:
    """Stop a process this suite started and its children (gunicorn's workers), by their ids."""
    if proc is None:
        return
    children = _children(proc.pid)
    if proc.poll() is None:
        # The leader is alive, so its process group is still the one we made.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()
    for child in children:  # a worker that outlived its master (it should not)
        try:
            if os.getpgid(child) == proc.pid:
                os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _started.pop(proc.pid, None)


class RedisServer:
    """Our own redis-server on a free port of 127.0.0.1; stop() and start() keep the port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self._hold: PortHold | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        if self._hold is not None:
            self._hold.release()
            self._hold = None
        args = ["redis-server", "--port", str(self.port), "--bind", HOST]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        log = self.workdir / "redis.log"
        self.proc = _spawn(args, dict(os.environ), log, log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start: {log.read_text(errors='replace')}")

    def stop(self, hold: bool = True) -> None:
        """Stop the server; the port stays ours (refusing connections) until start()."""
        _end(self.proc)
        self.proc = None
        if hold and self._hold is None:
            self._hold = PortHold(self.port)

    def release(self) -> None:
        if self._hold is not None:
            self._hold.release()
            self._hold = None

    def ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


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


class Gunicorn:
    """One instance of the app: `gunicorn -c gunicorn.conf.py wsgi:app` on its own port."""

    def __init__(self, name: str, env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**env, "BIND": f"{HOST}:{self.port}", "WEB_CONCURRENCY": str(WORKERS)}
        self.control_socket = logdir / f"gunicorn-{name}.ctl"
        self.access_log = logdir / f"gunicorn-{name}.out"
        self.error_log = logdir / f"gunicorn-{name}.err"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        args = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
        # Gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl by default: two
        # instances on one machine would fight over it, so each gets its own.
        args += ["--control-socket", str(self.control_socket)]
        self.proc = _spawn(args, self.env, self.access_log, self.error_log)

    def wait_ready(self, timeout: float = 30) -> None:
        """Poll /healthz until the instance answers 200 with all its workers up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited:\n{self.log()}")
            try:
                status = requests.get(self.url + "/healthz", timeout=2).status_code
            except requests.RequestException:
                status = None
            if status == 200 and len(self.worker_pids()) == WORKERS:
                return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn {self.name} not ready after {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        _end(self.proc, grace=25)
        self.proc = None

    def worker_pids(self) -> set[int]:
        """The master's children now: a worker that crashed or was killed shows as a new pid."""
        assert self.proc is not None
        return set(_children(self.proc.pid))

    def log(self) -> str:
        """Everything the instance wrote to stderr: gunicorn's error log and the app's log."""
        return self.error_log.read_text(errors="replace")


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
        return subprocess.run(
            [str(BIN / "flask"), "--app", "terminus_hub", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

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
                "TERMINUS_BCRYPT_ROUNDS": 4,
                "RATELIMIT_ENABLED": False,
            },
            instance_path=str(faults_dir / "instance"),
        )
        proxy.start()
        redis.start()
        sink.start()
        proxied = url.set(host=HOST, port=proxy.port).render_as_string(hide_password=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "GUNICORN"))}
        env.pop("DATABASE_URL", None)
        env.update(
            {
                "DATABASE_URL": proxied,
                "PYTHONUNBUFFERED": "1",
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
            }
        )
        instances = [Gunicorn("A", env, faults_dir), Gunicorn("B", env, faults_dir)]
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_ready()
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
