# ruff: noqa: S603  (runs the product's own `flask db upgrade`)
"""Terminus Hub's bench databases: schema by migrations, bulk rows by COPY, a few real rows.

Runs in the project's .venv, in the bench process. Bulk rows (users, their accounts,
memberships and one API key per account) go in with PostgreSQL's COPY; every user shares one
real bcrypt hash at the production cost, so a million users cost one hash. Key hashes are
SHA-256, as the product stores them. The rows the benchmark drives (the bench account with its
key, workspace, 50 records and SSO connection, a locked user) are made through the product's
own code.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple 42"
BULK_TABLES = ("accounts", "users", "memberships", "api_keys")
CREATED = "2026-11-01 00:00:00+00"
# What a key made by the bench may do: everything (see terminus_hub.core.keyring.SCOPES).
ALL_SCOPES = "account:read workspaces:read workspaces:write records:read records:write"
CHUNK = 50_000


@dataclass
class Seeded:
    """What the load generators need to know about a seeded database."""

    token: str  # the bench account's API key
    slug: str
    account_id: str
    workspace_id: str
    owner_email: str
    locked_email: str
    sso_domain: str
    users: int  # bulk users u0..u{users-1}@scale.example, all with PASSWORD


def bulk_email(i: int) -> str:
    return f"u{i}@scale.example"


def _rows(kind: str, start: int, stop: int, password_hash: str) -> Iterator[bytes]:
    formats = {
        "accounts": lambda i: f"acc_s{i:011d}\ts{i}\tScale {i}\t{CREATED}\n",
        "users": lambda i: (
            f"usr_s{i:011d}\t{bulk_email(i)}\tUser {i}\t{password_hash}\t{CREATED}\t0\t{CREATED}\n"
        ),
        "memberships": lambda i: f"mem_s{i:011d}\tacc_s{i:011d}\tusr_s{i:011d}\towner\t{CREATED}\n",
        "api_keys": lambda i: (
            f"key_s{i:011d}\tacc_s{i:011d}\tscale\t"
            f"{hashlib.sha256(b'thub_scale%d' % i).hexdigest()}\tthub_scale\t{CREATED}\t"
            f"{ALL_SCOPES}\n"
        ),
    }
    fmt = formats[kind]
    for first in range(start, stop, CHUNK):
        yield "".join(fmt(i) for i in range(first, min(stop, first + CHUNK))).encode()


_COLUMNS = {
    "accounts": "id, slug, name, created_at",
    "users": "id, email, name, password_hash, confirmed_at, failed_attempts, created_at",
    "memberships": "id, account_id, user_id, role, created_at",
    "api_keys": "id, account_id, name, token_hash, prefix, created_at, scopes",
}


def bulk_load(dsn: str, start: int, stop: int, password_hash: str) -> float:
    """COPY users start..stop-1 (each with an account, membership and key); return seconds.

    For large loads the tables' unique constraints and secondary indexes are dropped first and
    rebuilt after (a sorted build is many times faster than a million random inserts); primary
    keys (ids made in order) and foreign keys stay, the foreign-key checks skipped during COPY
    (the rows are consistent by construction). The schema afterwards is exactly what the
    migrations made.
    """
    began = time.monotonic()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET session_replication_role = replica")
        rebuild = stop - start > 50_000
        constraints: list[tuple[str, str, str]] = []
        indexes: list[tuple[str, str]] = []
        if rebuild:
            constraints = conn.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                " FROM pg_constraint WHERE contype = 'u'"
                " AND conrelid::regclass::text = ANY(%s)",
                (list(BULK_TABLES),),
            ).fetchall()
            indexes = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
                (list(BULK_TABLES),),
            ).fetchall()
            for table, name, _ in constraints:
                conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
        with conn.cursor() as cur:
            for table in BULK_TABLES:
                with cur.copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
                    for chunk in _rows(table, start, stop, password_hash):
                        copy.write(chunk)
        if rebuild:
            for table, name, definition in constraints:
                conn.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
            for _, definition in indexes:
                conn.execute(definition)
        conn.commit()
        conn.autocommit = True
        for table in BULK_TABLES:
            conn.execute(f"ANALYZE {table}")
    return time.monotonic() - began


def migrate(sqlalchemy_url: str, env: dict[str, str]) -> None:
    """Build the schema from nothing with the product's own command."""
    subprocess.run(
        [str(ROOT / ".venv/bin/flask"), "--app", "terminus_hub", "db", "upgrade"],
        # Migrations build no links, but the app they load needs a base URL to start.
        env={**env, "DATABASE_URL": sqlalchemy_url, "FLASK_TERMINUS_BASE_URL": "http://127.0.0.1"},
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def seed(sqlalchemy_url: str, users: int, idp_metadata_xml: str, config: dict[str, Any]) -> Seeded:
    """Fill a migrated database: `users` bulk users, then the bench account's real rows."""
    from terminus_hub import api_tokens
    from terminus_hub import create_app
    from terminus_hub.core.sso_connections import configure
    from terminus_hub.extensions import db
    from terminus_hub.models import Account
    from terminus_hub.models import ApiKey
    from terminus_hub.models import Membership
    from terminus_hub.models import Record
    from terminus_hub.models import User
    from terminus_hub.models import Workspace
    from terminus_hub.models import utcnow
    from terminus_hub.passwords import hash_password

    app = create_app(
        {**config, "SQLALCHEMY_DATABASE_URI": sqlalchemy_url},
        instance_path=config["BENCH_INSTANCE_PATH"],
    )
    with app.app_context():
        password_hash = hash_password(PASSWORD)  # the production cost, once for every user
        dsn = sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")
        bulk_load(dsn, 0, users, password_hash)

        now = utcnow()
        account = Account(slug="bench", name="Bench")
        owner = User(
            email="owner@bench.example", name="Owner", password_hash=password_hash, confirmed_at=now
        )
        locked = User(
            email="locked@bench.example",
            name="Locked",
            password_hash=password_hash,
            confirmed_at=now,
            failed_attempts=5,
            locked_at=now,
            locked_until=now + timedelta(days=7),
        )
        workspace = Workspace(account=account, name="Main")
        db.session.add_all([account, owner, locked, workspace])
        db.session.add(Membership(account=account, user=owner, role="owner"))
        db.session.flush()
        token = api_tokens.generate()
        db.session.add(
            ApiKey(
                account_id=account.id,
                name="bench",
                token_hash=api_tokens.token_hash(token),
                prefix=api_tokens.display_prefix(token),
                created_by_id=owner.id,
                scopes=ALL_SCOPES,
            )
        )
        for i in range(50):
            db.session.add(
                Record(
                    account_id=account.id,
                    workspace_id=workspace.id,
                    title=f"Record {i}",
                    data={"n": i, "tags": ["bench", "seed"], "ok": True},
                    created_at=now + timedelta(microseconds=i),
                    updated_at=now + timedelta(microseconds=i),
                )
            )
        configure(
            account,
            metadata_xml=idp_metadata_xml,
            by_operator=True,
            add=["sso.bench.example"],
            vouch=True,  # the operator vouches: no DNS on the bench machine
        )
        db.session.commit()
        seeded = Seeded(
            token=token,
            slug=account.slug,
            account_id=account.id,
            workspace_id=workspace.id,
            owner_email=owner.email,
            locked_email=locked.email,
            sso_domain="sso.bench.example",
            users=users,
        )
        db.session.remove()
        db.engine.dispose()
    return seeded


def password_hash_of(dsn: str) -> str:
    """The shared bulk users' hash (to load more of them elsewhere)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE email = %s", (bulk_email(0),))
        return row.fetchone()[0]


def environment_without_flask() -> dict[str, str]:
    """This process's environment minus FLASK_* and DATABASE_URL (the bench sets its own)."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("FLASK_") and k != "DATABASE_URL"
    }
