"""The benchmark's seeding (bench/seed.py) against today's schema and services.

`make bench` is not part of CI: this runs its seeding at a small scale on PostgreSQL, so a
renamed module, a changed service signature or a new column that the bulk COPY does not fill
fails here rather than at the next benchmark run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select

from bench import seed
from terminus_hub import create_app
from terminus_hub.extensions import db
from terminus_hub.models import SsoDomain
from terminus_hub.models import User
from terminus_hub.passwords import verify_password
from tests import processes
from tests.saml_signer import Signer

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)


def test_seeded_database_serves_the_benchmarks_requests(tmp_path: Path) -> None:
    config = {
        "SECRET_KEY": "bench-seed-test-" + "s" * 32,
        "TERMINUS_BASE_URL": "http://localhost",
        "TERMINUS_SAML_SP_KEY_FILE": str(tmp_path / "sp.key"),
        "TERMINUS_SAML_SP_CERT_FILE": str(tmp_path / "sp.crt"),
        "BENCH_INSTANCE_PATH": str(tmp_path / "instance"),
        "TERMINUS_BCRYPT_ROUNDS": 4,
    }
    with processes.postgres_database(os.environ["TEST_DATABASE_URL"], "thub_bench") as url:
        seed.migrate(url, seed.environment_without_flask())
        seeded = seed.seed(url, 12, Signer().metadata(), config)

        app = create_app({**config, "SQLALCHEMY_DATABASE_URI": url, "RATELIMIT_ENABLED": False})
        client = app.test_client()
        answer = client.get("/api/v1/account", headers={"Authorization": f"Bearer {seeded.token}"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.get_json()["slug"] == seeded.slug
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(User)) >= 12
            bulk = db.session.scalar(select(User).where(User.email == seed.bulk_email(5)))
            assert bulk is not None and verify_password(seed.PASSWORD, bulk.password_hash)
            domain = db.session.scalar(
                select(SsoDomain).where(SsoDomain.domain == seeded.sso_domain)
            )
            assert domain is not None and domain.verified_at is not None
            db.session.remove()
            db.engine.dispose()
