# ruff: noqa: S603, S607  (the bench runs its own tools: wrk, gunicorn, pip, apt-get)
"""`make bench`: Terminus Hub against Flask-Security-Too and a bare-Flask ceiling, in one run.

Installs what it needs (Debian's wrk; bench/.venv-peer for the peer), makes its own PostgreSQL
databases (dropped at the end), serves every app with gunicorn the same way (the project's
gunicorn.conf.py, the same workers and sync worker class, each on a free loopback port),
alternates the apps repetition by repetition under wrk, and writes docs/benchmarks.md.

    .venv/bin/python bench/run.py                  # the whole run (about 10 minutes)
    .venv/bin/python bench/run.py --only th_account ceiling --reps 1 --no-docs
    .venv/bin/python bench/run.py --profile        # py-spy on GET /api/v1/account
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench import clients  # noqa: E402
from bench import report  # noqa: E402
from bench import seed  # noqa: E402
from tests.processes import Gunicorn  # noqa: E402

OUT = BENCH / "out"
PROJECT_BIN = ROOT / ".venv" / "bin"
PEER_VENV = BENCH / ".venv-peer"
PEER_BIN = PEER_VENV / "bin"
PEER_REQUIREMENTS = BENCH / "peers" / "requirements.txt"
HOST = "127.0.0.1"
PG = "postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
# Far above anything two cores can reach, yet counted in Redis exactly as in production; the
# moving window keeps one entry per hit up to the limit, so the count stays moderate and the
# window short (see docs/benchmarks.md).
BENCH_RATE_LIMIT = "20000 per second"
SECRET_KEY = "bench-secret-key-" + "b" * 40


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- installing ------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """Debian's wrk; installed with apt-get when missing (as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is missing: run `sudo apt-get install -y wrk`, then `make bench` again")
    log("installing Debian's wrk")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        stdout=subprocess.DEVNULL,
    )
    return shutil.which("wrk") or sys.exit("wrk did not install")


def ensure_peer_venv() -> None:
    """bench/.venv-peer with Flask-Security-Too, rebuilt when its requirements change."""
    import hashlib

    digest = hashlib.sha256(PEER_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    stamp = PEER_VENV / f".installed-{digest}"
    if stamp.exists():
        return
    log("installing the peer's venv (bench/.venv-peer) from bench/peers/requirements.txt")
    if not (PEER_BIN / "python").exists():
        subprocess.run([sys._base_executable, "-m", "venv", str(PEER_VENV)], check=True)  # type: ignore[attr-defined]
    pip = [str(PEER_BIN / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(PEER_REQUIREMENTS)], check=True)
    for old in PEER_VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()


# -- databases -------------------------------------------------------------------------------


class Databases:
    """PostgreSQL databases made for this run and dropped after it, whatever happens."""

    def __init__(self, tag: str) -> None:
        import psycopg

        self._psycopg = psycopg
        self.tag = tag
        self.names: list[str] = []

    def _admin(self) -> Any:
        return self._psycopg.connect(f"postgresql://{PG}/postgres", autocommit=True)

    def create(self, suffix: str, template: str | None = None) -> str:
        name = f"bench_{self.tag}_{suffix}"
        with self._admin() as conn:
            if template:
                # A template must have no other sessions; the seeding process's are done.
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (template,),
                )
            clause = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{clause}')
        self.names.append(name)
        return name

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in reversed(self.names):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.names.clear()


def sqlalchemy_url(name: str) -> str:
    return f"postgresql+psycopg://{PG}/{name}"


def dsn(name: str) -> str:
    return f"postgresql://{PG}/{name}"


# -- servers ---------------------------------------------------------------------------------


class Server(Gunicorn):
    """One app under gunicorn (tests/processes.py), with what the benchmark measures of it."""

    def __init__(
        self,
        name: str,
        bin_dir: Path,
        module: str,
        chdir: Path,
        env: dict[str, str],
        workers: int,
        config: Path = ROOT / "gunicorn.conf.py",
    ) -> None:
        # The other apps cannot import Terminus Hub's access logger: gunicorn's own for them.
        extra = () if module == "wsgi:app" else ("--logger-class", "gunicorn.glogging.Logger")
        super().__init__(
            name,
            env,
            OUT,
            workers,
            bin_dir=bin_dir,
            module=module,
            chdir=chdir,
            config=config,
            extra_args=extra,
        )
        self.max_rss_mib = 0.0
        # Proportional set size and private (unshared) memory of the same worker: with
        # preload_app most of a worker's resident pages are the master's, shared copy-on-write.
        self.max_pss_mib = 0.0
        self.max_private_mib = 0.0

    def command(self) -> str:
        """The command line as documented (ports vary run to run)."""
        argv = [a if not a.startswith(str(ROOT)) else os.path.relpath(a, ROOT) for a in self.argv]
        return " ".join(argv).replace(f"{HOST}:{self.port}", f"{HOST}:PORT")

    def wait_ready(
        self,
        path: str = "/healthz",
        timeout: float = 60,
        ready: Callable[[int], bool] = lambda status: status < 500,
    ) -> None:
        """Any answer below 500 will do: the peers have no /healthz."""
        super().wait_ready(path, timeout, ready)

    def cpu_seconds(self) -> float:
        """CPU time of the master, its live workers and the workers it has reaped."""
        assert self.proc is not None
        return _group_cpu_seconds(self.proc.pid)

    def database_cpu_seconds(self) -> float:
        """CPU time of the PostgreSQL backends serving this app's database now."""
        database = self.env.get("DATABASE_URL") or self.env.get("BENCH_FST_DATABASE_URL") or ""
        name = database.rsplit("/", 1)[-1]
        return _backend_cpu_seconds(name) if name else 0.0

    def worker_memory_mib(self) -> dict[str, float]:
        """The largest RSS, PSS and private (USS) memory among the workers now."""
        largest = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                fields = {}
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
                    name, _, rest = line.partition(":")
                    fields[name] = int(rest.split()[0]) / 1024
                largest["rss"] = max(largest["rss"], fields.get("Rss", 0.0))
                largest["pss"] = max(largest["pss"], fields.get("Pss", 0.0))
                private = fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0)
                largest["uss"] = max(largest["uss"], private)
        return largest

    def worker_rss_mib(self) -> float:
        """The largest resident set among the workers now (VmRSS from /proc)."""
        largest = 0.0
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        largest = max(largest, int(line.split()[1]) / 1024)
            with contextlib.suppress(OSError):
                kib = {}
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
                    name, value = line.split(":", 1)
                    kib[name] = int(value.split()[0])
                self.max_pss_mib = max(self.max_pss_mib, kib.get("Pss", 0) / 1024)
                private = kib.get("Private_Clean", 0) + kib.get("Private_Dirty", 0)
                self.max_private_mib = max(self.max_private_mib, private / 1024)
        self.max_rss_mib = max(self.max_rss_mib, largest)
        return largest


# -- wrk -------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "non_2xx_3xx": 0,
        "socket_errors": 0,
    }
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.MULTILINE)
        result[f"p{pct}_ms"] = _ms(match.group(1)) if match else None
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        result["non_2xx_3xx"] = int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        # Sync workers close every connection; wrk's "read" count is those closes, not errors.
        result["socket_errors"] = int(match.group(1)) + int(match.group(3)) + int(match.group(4))
        result["socket_read_closes"] = int(match.group(2))
    return result


@dataclass
class Target:
    """One measured thing: a wrk run against a server, or a Python loop."""

    name: str
    label: str
    app: str  # "ceiling", "peer", "terminus", "limit"
    server: str | None = None
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    script: str | None = None
    script_env: dict[str, str] = field(default_factory=dict)
    threads: int = 2
    connections: int = 8
    kind: str = "wrk"  # "wrk", "bcrypt", "sso"
    # bcrypt-bound targets run longer: a run cut off mid-sign-in loses that work, and a few
    # sign-ins a second need time to count precisely.
    duration_factor: float = 1.0

    def wrk_argv(self, wrk: str, port: int, seconds: float) -> list[str]:
        argv = [wrk, "-t", str(self.threads), "-c", str(self.connections), "-d", f"{seconds:g}s"]
        argv += ["--timeout", "10s", "--latency"]
        for name, value in self.headers.items():
            argv += ["-H", f"{name}: {value}"]
        if self.script:
            argv += ["-s", str(BENCH / "lua" / self.script)]
        return [*argv, f"http://{HOST}:{port}{self.path}"]

    def documented_command(self) -> str:
        argv = self.wrk_argv("wrk", 0, 10 * self.duration_factor)
        shown = []
        for arg in argv:
            if arg.startswith(str(BENCH)):
                arg = os.path.relpath(arg, ROOT)
            if arg.startswith("Authorization: Bearer") or arg.startswith("Authentication-Token"):
                arg = arg.split(":")[0] + ": <token>"
            shown.append(f"'{arg}'" if " " in arg else arg)
        env = " ".join(f"{k}=<{k.lower()[6:]}>" for k in self.script_env)
        return (env + " " if env else "") + " ".join(shown).replace(f"{HOST}:0", f"{HOST}:PORT")


_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from 3 (state) on


def _group_cpu_seconds(leader: int) -> float:
    """utime+stime of every process in the group, plus the leader's reaped children."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fields = _stat_fields(pid)
        if fields is None or int(fields[2]) != leader:  # field 5: process group
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
        if int(pid) == leader:
            total += int(fields[13]) + int(fields[14])  # fields 16, 17: cutime, cstime
    return total / _TICK


def _backend_cpu_seconds(database: str) -> float:
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if not cmdline.startswith(b"postgres: ") or f" {database} ".encode() not in cmdline:
            continue
        fields = _stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _busy_cpu_seconds() -> float:
    """All cores' non-idle time since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / _TICK


def run_wrk(wrk: str, target: Target, server: Server, seconds: float) -> dict[str, Any]:
    import resource

    workers = set(server.worker_pids())
    app_cpu, db_cpu, busy = server.cpu_seconds(), server.database_cpu_seconds(), _busy_cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    completed = subprocess.run(
        target.wrk_argv(wrk, server.port, seconds),
        env={**os.environ, **target.script_env},
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = parse_wrk(completed.stdout)
    requests = max(result["requests"], 1)
    app_cpu = server.cpu_seconds() - app_cpu
    db_cpu = server.database_cpu_seconds() - db_cpu
    wrk_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    busy = _busy_cpu_seconds() - busy
    recycled = set(server.worker_pids()) != workers
    result["workers_recycled"] = recycled
    # A worker replaced during the run takes its CPU time (and its database connections')
    # out of reach: such runs report no CPU per request.
    result["app_cpu_us"] = None if recycled else app_cpu / requests * 1e6
    result["db_cpu_us"] = None if recycled else db_cpu / requests * 1e6
    result["wrk_cpu_us"] = wrk_cpu / requests * 1e6
    # Busy CPU on the machine that none of this run's processes account for (other work,
    # Redis, the kernel's own threads), in cores.
    result["other_cores"] = (
        None if recycled else max(0.0, busy - app_cpu - db_cpu - wrk_cpu) / elapsed
    )
    result["worker_rss_mib"] = server.worker_rss_mib()
    result["worker_memory_mib"] = server.worker_memory_mib()
    return result


# -- the run ---------------------------------------------------------------------------------


def machine_facts(wrk: str) -> dict[str, str]:
    def first(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    mem = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    import psycopg

    with psycopg.connect(f"postgresql://{PG}/postgres") as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    import redis

    redis_version = redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]
    peer_versions = subprocess.run(
        [str(PEER_BIN / "python"), "-c", "import flask_security as f; print(f.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    import gunicorn
    import sqlalchemy

    return {
        "cpu": model.group(1).strip() if model else platform.machine(),
        "cores": str(os.cpu_count()),
        "memory": f"{int(mem.group(1)) / 1024 / 1024:.0f} GiB" if mem else "unknown",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "redis": redis_version,
        "wrk": first([wrk, "--version"]).split(" [")[0],
        "gunicorn": gunicorn.__version__,
        "flask": importlib.metadata.version("flask"),
        "sqlalchemy": sqlalchemy.__version__,
        "flask_security_too": peer_versions,
    }


def terminus_env(database: str, prefix: str) -> dict[str, str]:
    env = seed.environment_without_flask()
    env.update(
        {
            "DATABASE_URL": sqlalchemy_url(database),
            "FLASK_SECRET_KEY": SECRET_KEY,
            "FLASK_RATELIMIT_STORAGE_URI": REDIS_URL,
            "FLASK_RATELIMIT_KEY_PREFIX": prefix,
            "FLASK_TERMINUS_API_RATE_LIMIT": BENCH_RATE_LIMIT,
            "FLASK_TERMINUS_SIGN_IN_RATE_LIMIT": BENCH_RATE_LIMIT,
            "FLASK_TERMINUS_SSO_RATE_LIMIT": BENCH_RATE_LIMIT,
            # Plain HTTP on loopback: the Python clients send the cookie back themselves.
            "FLASK_SESSION_COOKIE_SECURE": "false",
            # Every app answers on 127.0.0.1 (each on its own port, which links do not carry).
            "FLASK_TERMINUS_BASE_URL": f"http://{HOST}",
            "FLASK_TERMINUS_SAML_SP_KEY_FILE": str(OUT / "instance" / "saml_sp.key"),
            "FLASK_TERMINUS_SAML_SP_CERT_FILE": str(OUT / "instance" / "saml_sp.crt"),
        }
    )
    return env


def seed_config() -> dict[str, Any]:
    return {
        "SECRET_KEY": SECRET_KEY,
        "TERMINUS_BASE_URL": f"http://{HOST}",
        "TERMINUS_SAML_SP_KEY_FILE": str(OUT / "instance" / "saml_sp.key"),
        "TERMINUS_SAML_SP_CERT_FILE": str(OUT / "instance" / "saml_sp.crt"),
        "BENCH_INSTANCE_PATH": str(OUT / "instance"),
        "LOG_LEVEL": "WARNING",
    }


def spread_users(count: int, total: int, offset: int = 0) -> list[int]:
    """`count` bulk user numbers spread over 0..total-1 (different index pages)."""
    step = max(1, (total - offset) // count)
    return [offset + i * step for i in range(count)][:count]


def build_targets(
    seeded: seed.Seeded, fst_token: str, cookie: str, csrf: str, small: int, large: int
) -> list[Target]:
    bearer = {"Authorization": f"Bearer {seeded.token}"}
    record = json.dumps(
        {
            "workspace_id": seeded.workspace_id,
            "title": "bench record",
            "data": {"n": 1, "tags": ["bench"], "ok": True},
        }
    )
    password = quote(seed.PASSWORD)
    sign_in_body = f"email=u{{i}}%40scale.example&password={password}&csrf_token={quote(csrf)}"
    email_body = f"email=someone%40example.com&csrf_token={quote(csrf)}"
    sign_in_env = {"BENCH_COOKIE": cookie, "BENCH_BODY": sign_in_body}
    return [
        Target("ceiling", "bare Flask ceiling: GET /api/v1/account", "ceiling", "ceiling",
               "/api/v1/account"),
        Target("peer_token", "Flask-Security-Too: GET, auth_required(\"token\")", "peer", "peer",
               "/api/v1/account", headers={"Authentication-Token": fst_token}),
        Target("th_account", "Terminus Hub: GET /api/v1/account (bearer key), 1 k keys",
               "terminus", "th_small", "/api/v1/account", headers=bearer),
        Target("th_account_1m", "Terminus Hub: GET /api/v1/account (bearer key), 1 M keys",
               "terminus", "th_large", "/api/v1/account", headers=bearer),
        Target("th_account_c32", "Terminus Hub: GET /api/v1/account (bearer key), 1 k keys, "
               "32 connections", "terminus", "th_small", "/api/v1/account", headers=bearer,
               connections=32),
        Target("th_records", "Terminus Hub: GET /api/v1/records (50 records)", "terminus",
               "th_small", "/api/v1/records", headers=bearer),
        Target("th_records_post", "Terminus Hub: POST /api/v1/records", "terminus", "th_small",
               "/api/v1/records", script="post_json.lua",
               script_env={"BENCH_TOKEN": seeded.token, "BENCH_BODY": record}),
        Target("th_email_step", "Terminus Hub: POST /sign_in/email (CSRF on)", "terminus",
               "th_small", "/sign_in/email", script="post_form.lua",
               script_env={"BENCH_COOKIE": cookie, "BENCH_BODY": email_body}),
        Target("th_sign_in", "Terminus Hub: POST /sign_in/password, bcrypt 12, 1 k users",
               "terminus", "th_small", "/sign_in/password", script="post_form.lua",
               script_env={**sign_in_env, "BENCH_USERS": " ".join(
                   str(u) for u in spread_users(40, small))},
               connections=4, duration_factor=2),
        Target("th_sign_in_1m", "Terminus Hub: POST /sign_in/password, bcrypt 12, 1 M users",
               "terminus", "th_large", "/sign_in/password", script="post_form.lua",
               script_env={**sign_in_env, "BENCH_USERS": " ".join(
                   str(u) for u in spread_users(40, large))},
               connections=4, duration_factor=2),
        Target("raw_bcrypt", "raw bcrypt.checkpw, cost 12, 2 processes", "limit", kind="bcrypt",
               duration_factor=2),
        Target("th_sso", "Terminus Hub: SSO round trip through the pysaml2 IdP", "terminus",
               "th_sso", kind="sso"),
    ]  # fmt: skip


def probe(target: Target, server: Server) -> None:
    """One request first, so a wrong status fails the run instead of measuring an error."""
    expected = {"th_records_post": 201, "th_sign_in": 303, "th_sign_in_1m": 303}.get(
        target.name, 200
    )
    headers = dict(target.headers)
    body = None
    method = "GET"
    if target.script:
        env = target.script_env
        method = "POST"
        if "BENCH_TOKEN" in env:
            headers = {"Authorization": f"Bearer {env['BENCH_TOKEN']}",
                       "Content-Type": "application/json"}  # fmt: skip
        else:
            headers = {"Cookie": env["BENCH_COOKIE"],
                       "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
        first_user = (env.get("BENCH_USERS") or "0").split()[0]
        body = env["BENCH_BODY"].replace("{i}", first_user).encode()
    answer = clients.request(server.port, method, target.path, body=body, headers=headers)
    if answer.status != expected:
        raise RuntimeError(
            f"{target.name}: {method} {target.path} answered {answer.status}, not {expected}: "
            f"{answer.body[:300]!r}"
        )
    if target.name == "th_records" and len(json.loads(answer.body)["data"]) != 50:
        raise RuntimeError("GET /api/v1/records did not list 50 records")


def summarize_reps(reps: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float | None:
        values = [r[key] for r in reps if r.get(key) is not None]
        return statistics.median(values) if values else None

    rps = [r["rps"] for r in reps]
    memory = [r["worker_memory_mib"] for r in reps if r.get("worker_memory_mib")]
    return {
        "rps": statistics.median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "app_cpu_us": med("app_cpu_us"),
        "db_cpu_us": med("db_cpu_us"),
        "wrk_cpu_us": med("wrk_cpu_us"),
        "other_cores": med("other_cores"),
        "worker_rss_mib": max((r.get("worker_rss_mib") or 0.0) for r in reps) or None,
        "worker_pss_mib": max((m["pss"] for m in memory), default=None),
        "worker_uss_mib": max((m["uss"] for m in memory), default=None),
        "errors": sum(r.get("non_2xx_3xx", 0) + r.get("socket_errors", 0) for r in reps),
        "reps": reps,
    }


def profile_account(wrk: str, server: Server, target: Target, seconds: float) -> None:
    """py-spy on every worker while wrk drives GET /api/v1/account; top frames to out/."""
    py_spy = PEER_BIN / "py-spy"
    raw = OUT / "profile-account.txt"
    assert server.proc is not None
    argv = [str(py_spy), "record", "--pid", str(server.proc.pid), "--subprocesses"]
    argv += ["--rate", "250", "--duration", f"{seconds + 1:g}", "--format", "raw"]
    spy = subprocess.Popen(
        [*argv, "--output", str(raw)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    result = run_wrk(wrk, target, server, seconds)
    spy.wait(timeout=120)
    summary = report.profile_summary(raw.read_text())
    (OUT / "profile-account.md").write_text(
        f"wrk during the profile: {result['rps']:.0f} req/s (slowed by the sampler)\n\n{summary}"
    )
    log(f"profile written to {OUT / 'profile-account.md'}")
    print(summary)


def run_stages(
    args: argparse.Namespace, wrk: str, database: str, seeded: seed.Seeded, prefix: str
) -> None:
    """Serve each tuning stage (a source tree) side by side and alternate them under wrk."""
    project_env = seed.environment_without_flask()
    servers = {
        "ceiling": Server(
            "ceiling", PROJECT_BIN, "ceiling:app", BENCH / "peers", project_env, args.workers
        )
    }
    for stage in args.stages:
        stage = stage.resolve()
        servers[stage.name] = Server(
            f"stage-{stage.name}", PROJECT_BIN, "wsgi:app", stage,
            terminus_env(database, prefix), args.workers, config=stage / "gunicorn.conf.py",
        )  # fmt: skip
    try:
        for server in servers.values():
            server.start()
        for name, server in servers.items():
            server.wait_ready("/api/v1/account" if name == "ceiling" else "/healthz")
        first = servers[args.stages[0].resolve().name]
        cookie, csrf = clients.form_session(first.port)
        base = {t.name: t for t in build_targets(seeded, "", cookie, csrf, 1, 1)}
        targets: list[tuple[str, Target]] = [("ceiling", base["ceiling"])]
        for name in servers:
            if name != "ceiling":
                for what in ("th_account", "th_records", "th_email_step"):
                    targets.append((name, base[what]))
        for server_name, target in targets:
            probe(target, servers[server_name])
            run_wrk(wrk, target, servers[server_name], args.warmup)
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for rep in range(1, args.reps + 1):
            for server_name, target in targets:
                result = run_wrk(wrk, target, servers[server_name], args.duration)
                results.setdefault((server_name, target.name), []).append(result)
                log(f"rep {rep} {server_name:22} {target.name:14} {result['rps']:8.1f}/s "
                    f"app {result['app_cpu_us'] or 0:.0f} µs/req "
                    f"other load {result['other_cores'] or 0:.2f} cores")  # fmt: skip
        ceiling = statistics.median(r["rps"] for r in results[("ceiling", "ceiling")])
        lines = [
            "| stage | endpoint | req/s median (min–max) | × ceiling | p50 ms "
            "| app CPU µs/req (pooled) | RSS MiB |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for (server_name, target_name), reps in results.items():
            rps = [r["rps"] for r in reps]
            counted = [r for r in reps if r["app_cpu_us"] is not None]
            requests = sum(r["requests"] for r in counted)
            pooled = sum(r["app_cpu_us"] * r["requests"] for r in counted) / max(requests, 1)
            lines.append(
                f"| {server_name} | {target_name} | {statistics.median(rps):.0f} "
                f"({min(rps):.0f}–{max(rps):.0f}) | {statistics.median(rps) / ceiling:.2f} "
                f"| {statistics.median(r['p50_ms'] for r in reps):.1f} | {pooled:.0f} "
                f"| {max(r['worker_rss_mib'] for r in reps):.0f} |"
            )
        text = "\n".join(lines)
        (OUT / "stages.md").write_text(text + "\n")
        (OUT / "stages.json").write_text(
            json.dumps({f"{k[0]} {k[1]}": v for k, v in results.items()}, indent=1)
        )
        print(text)
    finally:
        for server in servers.values():
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--reps", type=int, default=3, help="repetitions, apps alternating")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per target")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per app")
    parser.add_argument("--small", type=int, default=1_000, help="users and keys, small scale")
    parser.add_argument("--large", type=int, default=1_000_000, help="users and keys, scale")
    parser.add_argument("--timing-samples", type=int, default=200, help="sign-ins per kind")
    parser.add_argument("--only", nargs="*", help="measure only these targets")
    parser.add_argument("--no-docs", action="store_true", help="don't write docs/benchmarks.md")
    parser.add_argument("--profile", action="store_true", help="profile the bearer key path")
    parser.add_argument("--keep", action="store_true", help="keep the databases (debugging)")
    parser.add_argument(
        "--stages",
        nargs="+",
        type=Path,
        help="tuning comparison: serve these source trees (copies of terminus_hub, wsgi.py and "
        "gunicorn.conf.py) side by side on the 1 k database",
    )
    args = parser.parse_args()
    # Stopped with SIGTERM (a CI timeout, kill), still stop the servers and drop the databases.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    began = time.monotonic()
    OUT.mkdir(exist_ok=True)
    (OUT / "instance").mkdir(exist_ok=True)

    wrk = ensure_wrk()
    ensure_peer_venv()
    facts = machine_facts(wrk)
    log(f"machine: {facts['cpu']}, {facts['cores']} cores")

    tag = secrets.token_hex(3)
    prefix = f"thub-bench-{tag}"
    databases = Databases(tag)
    servers: dict[str, Server] = {}
    timings: dict[str, float] = {}
    try:
        from tests.saml_idp import TestIdp

        idp_dir = Path(tempfile.mkdtemp(prefix="bench-idp-", dir=OUT))
        idp = TestIdp(idp_dir)

        t0 = time.monotonic()
        small_db = databases.create("th_1k")
        seed.migrate(sqlalchemy_url(small_db), seed.environment_without_flask())
        seeded = seed.seed(sqlalchemy_url(small_db), args.small, idp.metadata_xml, seed_config())
        timings["terminus 1 k: migrate and seed"] = time.monotonic() - t0
        if args.stages:
            run_stages(args, wrk, small_db, seeded, prefix)
            return
        large_db = None
        if not args.only or any(name.endswith("_1m") for name in args.only):
            t0 = time.monotonic()
            large_db = databases.create("th_1m", template=small_db)
            password_hash = seed.password_hash_of(dsn(small_db))
            seed.bulk_load(dsn(large_db), args.small, args.large, password_hash)
            timings[f"terminus {args.large:,}: clone and bulk load"] = time.monotonic() - t0
            log(f"bulk-loaded {args.large:,} users and keys in {time.monotonic() - t0:.0f} s")
        t0 = time.monotonic()
        peer_db = databases.create("fst")
        fst_token = subprocess.run(
            [str(PEER_BIN / "python"), str(BENCH / "peers" / "fst_app.py"), "setup",
             str(args.small)],
            env={**os.environ, "BENCH_FST_DATABASE_URL": sqlalchemy_url(peer_db)},
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        timings["peer: tables and users"] = time.monotonic() - t0

        project_env = seed.environment_without_flask()
        servers["ceiling"] = Server(
            "ceiling", PROJECT_BIN, "ceiling:app", BENCH / "peers", project_env, args.workers
        )
        servers["peer"] = Server(
            "peer", PEER_BIN, "fst_app:app", BENCH / "peers",
            {**project_env, "BENCH_FST_DATABASE_URL": sqlalchemy_url(peer_db)}, args.workers,
        )  # fmt: skip
        servers["th_small"] = Server(
            "th_small", PROJECT_BIN, "wsgi:app", ROOT, terminus_env(small_db, prefix), args.workers
        )
        # SSO round trips get an instance of their own (same database): a worker loads pysaml2
        # at its first SSO request, and th_small's memory figure is the one of workers serving
        # key calls, records and sign-ins.
        servers["th_sso"] = Server(
            "th_sso", PROJECT_BIN, "wsgi:app", ROOT, terminus_env(small_db, prefix + "-sso"),
            args.workers,
        )  # fmt: skip
        if large_db:
            servers["th_large"] = Server(
                "th_large", PROJECT_BIN, "wsgi:app", ROOT,
                terminus_env(large_db, prefix + "-1m"), args.workers,
            )  # fmt: skip
        for server in servers.values():
            server.start()
        for name, server in servers.items():
            server.wait_ready("/healthz" if name.startswith("th_") else "/api/v1/account")
        log("servers up: " + ", ".join(f"{n} :{s.port}" for n, s in servers.items()))

        small = servers["th_small"]
        sso = servers["th_sso"]  # serving the SP metadata loads pysaml2 in a worker
        sp_metadata = clients.request(sso.port, "GET", f"/sso/{seeded.slug}/metadata")
        idp.trust_sp(sp_metadata.body.decode())
        cookie, csrf = clients.form_session(small.port)
        targets = build_targets(seeded, fst_token, cookie, csrf, args.small, args.large)
        if args.only:
            targets = [t for t in targets if t.name in args.only]
        for target in targets:
            if target.kind == "wrk":
                probe(target, servers[target.server])  # type: ignore[index]

        if args.profile:
            account = next(t for t in build_targets(seeded, fst_token, cookie, csrf, 1, 1)
                           if t.name == "th_account")  # fmt: skip
            profile_account(wrk, small, account, max(args.duration, 10))
            return

        stored_hash = seed.password_hash_of(dsn(small_db)).removeprefix("bcrypt_sha256$").encode()
        t0 = time.monotonic()
        for target in targets:
            if target.kind == "wrk" and args.warmup > 0:
                run_wrk(wrk, target, servers[target.server], args.warmup)  # type: ignore[index]
        # The first SSO sign-in provisions the person and builds the cached SAML client.
        clients.sso_round_trips(sso.port, idp, seeded.slug, f"ada@{seeded.sso_domain}", 1)
        timings["warm-up"] = time.monotonic() - t0

        results: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
        t0 = time.monotonic()
        for rep in range(1, args.reps + 1):
            for target in targets:
                seconds = args.duration * target.duration_factor
                if target.kind == "wrk":
                    server = servers[target.server]  # type: ignore[index]
                    result = run_wrk(wrk, target, server, seconds)
                elif target.kind == "bcrypt":
                    result = clients.raw_bcrypt(stored_hash, args.workers, seconds)
                    result["rps"] = result["per_second"]
                else:
                    result = clients.sso_round_trips(
                        sso.port, idp, seeded.slug, f"ada@{seeded.sso_domain}", args.duration
                    )
                    result["rps"] = result["per_second"]
                    result["p50_ms"] = result["sp"]["median"]
                    result["p99_ms"] = result["sp"]["p99"]
                    result["worker_rss_mib"] = sso.worker_rss_mib()
                results[target.name].append(result)
                log(f"rep {rep}/{args.reps} {target.name:16} {result['rps']:9.1f}/s"
                    + (f"  p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
                       if result.get("p50_ms") is not None else "")
                    + (f"  app {result['app_cpu_us']:.0f} µs/req db {result['db_cpu_us']:.0f}"
                       f"  other load {result['other_cores']:.2f} cores"
                       if result.get("app_cpu_us") is not None else "")
                    + ("  (recycled)" if result.get("workers_recycled") else ""))  # fmt: skip
        timings["measurements (alternating)"] = time.monotonic() - t0

        timing: dict[str, Any] | None = None
        if not args.only or "timing" in args.only:
            t0 = time.monotonic()
            wrong = [seed.bulk_email(u) for u in
                     spread_users(args.timing_samples, args.small, offset=1)]  # fmt: skip
            # Each worker computes its dummy hash once: spend that before measuring.
            cookie2, csrf2 = clients.form_session(small.port)
            for i in range(args.workers * 2):
                clients.post_form(small.port, "/sign_in/password",
                                  {"email": f"warm{i}@unknown.example", "password": "x" * 12},
                                  cookie2, csrf2)  # fmt: skip
            timing = clients.timing_equality(
                small.port, args.timing_samples, wrong, seeded.locked_email
            )
            timings["timing equality"] = time.monotonic() - t0
            log(f"timing: unknown/wrong median {timing['unknown_over_wrong']:.3f}, "
                f"locked/wrong {timing['locked_over_wrong']:.3f}")  # fmt: skip

        summary = {name: summarize_reps(reps) for name, reps in results.items() if reps}
        data = {
            "facts": facts,
            "args": vars(args),
            "summary": summary,
            "timing": timing,
            "timings": timings,
            "servers": {name: s.command() for name, s in servers.items()},
            "max_worker_rss_mib": {name: s.max_rss_mib for name, s in servers.items()},
            "max_worker_pss_mib": {name: s.max_pss_mib for name, s in servers.items()},
            "max_worker_private_mib": {name: s.max_private_mib for name, s in servers.items()},
            "targets": {t.name: asdict(t) | {"command": t.documented_command()} for t in targets},
            "seeded": {"users_small": args.small, "users_large": args.large},
            "bench_rate_limit": BENCH_RATE_LIMIT,
        }
        for target in data["targets"].values():
            target["headers"] = {k: "<token>" for k in target["headers"]}
            target["script_env"] = {k: "<set by run.py>" for k in target["script_env"]}
        (OUT / "results.json").write_text(json.dumps(data, indent=2, default=str))
        data["timings"]["total (this run)"] = time.monotonic() - began
        text = report.render(data)
        (OUT / "benchmarks.md").write_text(text)
        if not args.no_docs and not args.only:
            (ROOT / "docs").mkdir(exist_ok=True)
            (ROOT / "docs" / "benchmarks.md").write_text(text)
            log("wrote docs/benchmarks.md")
        print(report.table(data))
    finally:
        for server in servers.values():
            server.stop()
        if not args.keep:
            databases.drop_all()
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"*{prefix}*", count=1000):
                client.delete(key)
        log(f"done in {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
