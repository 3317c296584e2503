# ruff: noqa: S603  (runs the project's own interpreter on its stage trees)
"""In-process cost of one API request: CPU per request and round trips to PostgreSQL and Redis.

A tuning aid beside `bench/run.py`: it needs no HTTP load and little wall-clock quiet, since it
counts this process's CPU time (time.process_time) per request through Flask's test client,
and counts the statements PostgreSQL logged for the bench database and the commands sent to
Redis. Run from the project root with the project's .venv:

    .venv/bin/python bench/micro.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import psycopg  # noqa: E402

from bench import run  # noqa: E402
from bench import seed  # noqa: E402

PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")


def _statements_logged(database: str, since: int) -> list[str]:
    with PG_LOG.open("rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
    return [
        line
        for line in text.splitlines()
        if f"@{database} " in line and ("statement: " in line or "execute " in line)
    ]


def measure(client: Any, method: str, path: str, n: int, **kwargs: Any) -> dict[str, float]:
    for _ in range(50):  # warm caches, prepared statements, the pool
        client.open(path, method=method, **kwargs)
    cpu, wall = time.process_time(), time.perf_counter()
    status = None
    for _ in range(n):
        status = client.open(path, method=method, **kwargs).status_code
    return {
        "cpu_us": (time.process_time() - cpu) / n * 1e6,
        "wall_us": (time.perf_counter() - wall) / n * 1e6,
        "status": status,
    }


_STAGE_PROBE = """
import json, statistics, sys, time
from terminus_hub import create_app
config, token, n = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
app = create_app(config, instance_path=config.pop("INSTANCE"))
client = app.test_client()
headers = {"Authorization": "Bearer " + token}
for _ in range(50):
    assert client.get("/api/v1/account", headers=headers).status_code == 200
values = []
for _ in range(5):
    began = time.process_time()
    for _ in range(n):
        client.get("/api/v1/account", headers=headers)
    values.append((time.process_time() - began) / n * 1e6)
print(statistics.median(values))
"""


def stages_test(url: str, seeded: Any, args: Any, prefix: str) -> None:
    """CPU per GET /api/v1/account of each source tree, in its own process, rounds alternating."""
    import json
    import statistics
    import subprocess

    config = {
        **run.seed_config(),
        "SQLALCHEMY_DATABASE_URI": url,
        "RATELIMIT_STORAGE_URI": run.REDIS_URL,
        "RATELIMIT_KEY_PREFIX": prefix,
        "TERMINUS_API_RATE_LIMIT": run.BENCH_RATE_LIMIT,
        "LOG_LEVEL": "ERROR",
    }
    config["INSTANCE"] = config.pop("BENCH_INSTANCE_PATH")
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for stage in args.stages:
            out = subprocess.run(
                [sys.executable, "-c", _STAGE_PROBE, json.dumps(config), seeded.token,
                 str(args.requests)],
                env={**seed.environment_without_flask(), "PYTHONPATH": str(stage.resolve())},
                cwd=stage, capture_output=True, text=True, check=True,
            )  # fmt: skip
            results.setdefault(stage.name, []).append(float(out.stdout.split()[-1]))
    print(f"{'stage':24} CPU µs per GET /api/v1/account (median of rounds; min–max)")
    for name, values in results.items():
        print(f"{name:24} {statistics.median(values):6.0f}  ({min(values):.0f}–{max(values):.0f})")


def ab_test(app: Any, client: Any, headers: dict[str, str], args: Any) -> None:
    """Alternate the current key check (B) with another version's (A) in one process."""
    import importlib.util

    from terminus_hub.api import auth

    spec = importlib.util.spec_from_file_location("auth_a", args.ab)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["auth_a"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    variants = {"A": module._from_key, "B": auth._from_key}
    results: dict[str, list[float]] = {"A": [], "B": []}
    for _ in range(args.rounds):
        for name, function in variants.items():
            auth._from_key = function  # type: ignore[attr-defined]
            r = measure(client, "GET", "/api/v1/account", args.requests, headers=headers)
            results[name].append(r["cpu_us"])
    auth._from_key = variants["B"]  # type: ignore[attr-defined]
    for name, values in results.items():
        print(name, "CPU µs/request:", " ".join(f"{v:.0f}" for v in values),
              f" median {sorted(values)[len(values) // 2]:.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--ab",
        metavar="FILE",
        help="A/B: alternate GET /api/v1/account with api/auth.py's _from_key taken from FILE",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--stages", nargs="+", type=Path, help="CPU per key call of each source tree (in-process)"
    )
    args = parser.parse_args()

    from flask import Flask
    from redis.connection import AbstractConnection

    from terminus_hub import create_app
    from tests.saml_idp import TestIdp

    tag = secrets.token_hex(3)
    databases = run.Databases(tag)
    run.OUT.mkdir(exist_ok=True)
    try:
        name = databases.create("micro")
        url = run.sqlalchemy_url(name)
        seed.migrate(url, seed.environment_without_flask())
        idp = TestIdp(Path(run.OUT) / "micro-idp")
        seeded = seed.seed(url, 1000, idp.metadata_xml, run.seed_config())
        if args.stages:
            stages_test(url, seeded, args, f"thub-micro-{tag}")
            return
        config = {
            **run.seed_config(),
            "SQLALCHEMY_DATABASE_URI": url,
            "RATELIMIT_STORAGE_URI": run.REDIS_URL,
            "RATELIMIT_KEY_PREFIX": f"thub-micro-{tag}",
            "TERMINUS_API_RATE_LIMIT": run.BENCH_RATE_LIMIT,
        }
        config.pop("BENCH_INSTANCE_PATH")
        app = create_app(config, instance_path=str(run.OUT / "instance"))
        client = app.test_client()
        bearer = {"Authorization": f"Bearer {seeded.token}"}

        ceiling = Flask("ceiling")
        ceiling.add_url_rule("/api/v1/account", "account", lambda: {"id": "acc", "slug": "b"})

        commands: list[str] = []
        original = AbstractConnection.pack_command  # every command sent is packed here

        def counting(self: Any, *cmd: Any) -> Any:
            commands.append(str(cmd[0]))
            return original(self, *cmd)

        AbstractConnection.pack_command = counting  # type: ignore[method-assign]
        with psycopg.connect(run.dsn(name), autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()  # new connections log

        if args.ab:
            ab_test(app, client, bearer, args)
            return

        rows = []
        for label, c, method, path, kwargs in (
            ("ceiling (bare Flask)", ceiling.test_client(), "GET", "/api/v1/account", {}),
            ("GET /api/v1/account", client, "GET", "/api/v1/account", {"headers": bearer}),
            ("GET /api/v1/records", client, "GET", "/api/v1/records", {"headers": bearer}),
            (
                "POST /api/v1/records",
                client,
                "POST",
                "/api/v1/records",
                {
                    "headers": bearer,
                    "json": {"workspace_id": seeded.workspace_id, "title": "t", "data": {}},
                },
            ),
        ):
            result = measure(c, method, path, args.requests, **kwargs)
            # Round trips of 20 more requests, counted in the database's log and at Redis.
            since = PG_LOG.stat().st_size
            commands.clear()
            for _ in range(20):
                c.open(path, method=method, **kwargs)
            time.sleep(0.3)
            statements = _statements_logged(name, since)
            result["pg_per_request"] = len(statements) / 20
            result["redis_per_request"] = len(commands) / 20
            rows.append((label, result))
            if label == "GET /api/v1/account":
                print("PostgreSQL statements of one request:")
                for line in statements[: int(result["pg_per_request"])]:
                    print("   ", line.split("LOG:", 1)[-1].strip()[:160])
                per_request = int(result["redis_per_request"])
                print("Redis commands of one request:", commands[:per_request])
        print()
        print(f"{'request':24} {'CPU µs':>8} {'wall µs':>8} {'PG stmts':>9} {'Redis':>6}  status")
        for label, r in rows:
            print(
                f"{label:24} {r['cpu_us']:8.0f} {r['wall_us']:8.0f} {r['pg_per_request']:9.1f} "
                f"{r['redis_per_request']:6.1f}  {r['status']}"
            )
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
