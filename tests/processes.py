"""Real servers for the test suites and the benchmark: processes and PostgreSQL databases.

Every process started here leads its own process group (so its children, such as gunicorn's
workers, go with it) and is sent SIGTERM when the process that started it dies, however it
dies; ``end()`` stops one and any child that outlived it. Servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import atexit
import ctypes
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.ports import HOST
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv running this: its gunicorn and flask

_started: dict[int, subprocess.Popen[bytes]] = {}  # every process started here, by pid
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # In the child, before exec: SIGTERM it if the starting process dies, even by SIGKILL, so
    # no server outlives its suite. A plain C call: safe between fork and exec.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _end_leftovers() -> None:
    """Last resort when a teardown did not run: end what was started here."""
    for proc in list(_started.values()):
        end(proc, grace=5)


atexit.register(_end_leftovers)


def spawn(
    args: list[str],
    env: dict[str, str],
    log: Path,
    err: Path | None = None,
    cwd: Path = REPO,
) -> subprocess.Popen[bytes]:
    """Start a server with its output appended to ``log`` (and its errors to ``err``)."""
    with open(log, "ab") as out, open(err or log, "ab") as errors:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=errors if err is not None else subprocess.STDOUT,
            start_new_session=True,  # its own process group: signals reach its children
            preexec_fn=_die_with_parent,
        )
    _started[proc.pid] = proc
    return proc


def children(pid: int) -> list[int]:
    """The process's children now (gunicorn's workers)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def end(proc: subprocess.Popen[bytes] | None, grace: float = 10) -> None:
    """Stop a process started by ``spawn`` and its children: SIGTERM, then SIGKILL after grace."""
    if proc is None:
        return
    kids = children(proc.pid)
    if proc.poll() is None:
        # The leader is alive, so its process group is still the one spawn() made.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()
    for child in kids:  # a worker that outlived its master (it should not)
        try:
            if os.getpgid(child) == proc.pid:
                os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _started.pop(proc.pid, None)


def http_status(port: int, path: str, timeout: float = 2) -> int | None:
    """GET a path of a server on 127.0.0.1; its status, or None when nothing answers."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def app_environment(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without its own Flask and gunicorn settings, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "GUNICORN"))}
    env.pop("DATABASE_URL", None)
    env.update({"PYTHONUNBUFFERED": "1", **settings})
    return env


def one_host_environment(workdir: Path, **settings: str) -> dict[str, str]:
    """Settings for an app served from 127.0.0.1 on a SQLite file in workdir, plus these."""
    return app_environment(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'hub.sqlite'}",
            "FLASK_SECRET_KEY": '"' + "a" * 40 + '"',
            "FLASK_TERMINUS_BASE_URL": f"http://{HOST}",
            "FLASK_TERMINUS_SAML_SP_KEY_FILE": f'"{workdir / "sp.key"}"',
            "FLASK_TERMINUS_SAML_SP_CERT_FILE": f'"{workdir / "sp.crt"}"',
            **settings,
        }
    )


def flask(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``flask --app terminus_hub …`` with these settings, as an operator would."""
    return subprocess.run(
        [str(BIN / "flask"), "--app", "terminus_hub", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Gunicorn:
    """One app under gunicorn with the project's gunicorn.conf.py, on a free port.

    ``bin_dir``, ``module`` and ``chdir`` let the benchmark serve other apps the same way.
    """

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        workdir: Path,
        workers: int = 2,
        *,
        bin_dir: Path = BIN,
        module: str = "wsgi:app",
        chdir: Path = REPO,
        config: Path = REPO / "gunicorn.conf.py",
        port: int | None = None,
        separate_errors: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.env = env
        self.workers = workers
        self.bin_dir = bin_dir
        self.module = module
        self.chdir = chdir
        self.config = config
        self.port = port or free_port()
        self.control_socket = workdir / f"{name}.ctl"
        self.out_log = workdir / f"{name}.log"
        self.error_log = workdir / f"{name}.err" if separate_errors else self.out_log
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def argv(self) -> list[str]:
        return [
            str(self.bin_dir / "gunicorn"),
            "--config", str(self.config),
            "--workers", str(self.workers),
            "--worker-class", "sync",
            "--bind", f"{HOST}:{self.port}",
            "--chdir", str(self.chdir),
            # Gunicorn opens a control socket at ~/.gunicorn/gunicorn.ctl by default: two
            # instances on one machine would fight over it, so each gets its own.
            "--control-socket", str(self.control_socket),
            *self.extra_args,
            self.module,
        ]  # fmt: skip

    def start(self) -> None:
        err = self.error_log if self.error_log != self.out_log else None
        self.proc = spawn(self.argv, self.env, self.out_log, err, cwd=self.chdir)

    def wait_ready(
        self,
        path: str = "/healthz",
        timeout: float = 60,
        ready: Callable[[int], bool] = lambda status: status == 200,
    ) -> None:
        """Poll a path until its status is ready and all the workers are up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited:\n{self.log()[-5000:]}")
            status = http_status(self.port, path)
            if status is not None and ready(status) and len(self.worker_pids()) == self.workers:
                return
            time.sleep(0.1)
        tail = self.log()[-5000:]
        raise RuntimeError(f"gunicorn {self.name} not ready after {timeout}s:\n{tail}")

    def stop(self, grace: float = 25) -> None:
        end(self.proc, grace=grace)
        self.proc = None

    def worker_pids(self) -> set[int]:
        """The master's children now: a worker that crashed or was killed shows as a new pid."""
        return set(children(self.proc.pid)) if self.proc is not None else set()

    def log(self) -> str:
        """What the instance wrote to its error stream: gunicorn's error log and the app's log."""
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""


class PortHold:
    """Keep a port of 127.0.0.1 ours while nothing listens on it.

    A bound socket that does not listen: connections to the port are refused, as when a
    server is down, and the kernel hands the port to no other program's ``bind(0)`` (a test
    server elsewhere on the machine could otherwise get it and answer in our server's place).
    """

    def __init__(self, port: int, timeout: float = 5) -> None:
        self.port = port
        self._sock: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock.bind((HOST, port))
                return
            except OSError:
                # The server that just stopped may hold the port for a moment longer.
                if time.monotonic() > deadline:
                    self._sock.close()
                    raise
                time.sleep(0.01)

    def release(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


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
        self.release()
        args = ["redis-server", "--port", str(self.port), "--bind", HOST]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        log = self.workdir / "redis.log"
        self.proc = spawn(args, dict(os.environ), log)
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
        end(self.proc)
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


@contextmanager
def postgres_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server of ``server_url``; dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_database(workdir: Path, prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database when TEST_DATABASE_URL is set (dropped after), else SQLite."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{workdir / 'hub.sqlite'}"
        return
    with postgres_database(base, prefix) as url:
        yield url
