"""Redis (rate-limit storage) down: requests go on under per-process limits; sharing returns."""

from __future__ import annotations

import time

import pytest
import redis

from tests.faults.conftest import SIGN_IN_LIMIT
from tests.faults.conftest import WORKERS
from tests.faults.conftest import next_address
from tests.faults.conftest import wait_limits_shared
from tests.faults.conftest import wrong_sign_ins

pytestmark = pytest.mark.faults

FALLBACK = "Rate limit storage unreachable - falling back to in-memory storage"


def test_redis_down_falls_back_to_per_process_limits_and_shares_again(cluster, browsers):
    """Broke: Redis, the shared rate-limit storage: our redis-server was stopped mid-test,
    then started again on the same port (empty, as Redis keeps nothing on disk here).

    Saw: while it was down, /healthz on both instances answered 503 naming
    "rate_limit_storage" (database "ok"); the sign-in page, a sign-in, an account page and
    the API went on as usual, promptly (the five in under 4 s); failed sign-ins from one
    address were still refused with 429 past the limit, now counted per worker (between the
    limit and limit x workers got through per instance, never a 5xx). Once Redis was back,
    health turned 200 and, within seconds and with no restart, both instances again drew on
    one budget per address, kept in Redis.

    Lost: nothing but the counters of that moment (Redis restarted empty).
    """
    person = cluster.person()
    _, token = cluster.api_key(person.account_slug)
    bearer = {"Authorization": f"Bearer {token}"}
    workers = {instance.name: instance.worker_pids() for instance in cluster.instances}
    cluster.redis.stop()

    for instance in cluster.instances:
        health = browsers(instance.url).health()
        assert health.status_code == 503
        assert health.json()["failing"] == ["rate_limit_storage"]
        assert health.json()["checks"]["database"] == "ok"

        browser = browsers(instance.url)
        started = time.monotonic()
        assert browser.get("/sign_in").status_code == 200
        assert browser.sign_in(person.email).status_code == 303
        assert browser.get(f"/a/{person.account_slug}/").status_code == 200
        assert browser.get("/api/v1/account", headers=bearer).status_code == 200
        assert time.monotonic() - started < 4  # five requests; Redis waits are 0.5 s at most

        statuses = wrong_sign_ins([instance], next_address(), 3 * SIGN_IN_LIMIT)
        assert not [s for s in statuses if s >= 500]
        passed = sum(s != 429 for s in statuses)
        assert SIGN_IN_LIMIT <= passed <= SIGN_IN_LIMIT * WORKERS
        assert statuses.count(429) == len(statuses) - passed

    cluster.redis.start()
    cluster.wait_healthy(timeout=5)
    wait_limits_shared(cluster)
    store = redis.Redis(host="127.0.0.1", port=cluster.redis.port)
    try:
        assert store.keys("*thub*"), "no rate-limit counters in Redis after it came back"
    finally:
        store.close()
    for instance in cluster.instances:
        assert instance.worker_pids() == workers[instance.name]


def test_redis_down_is_logged_once_per_worker(cluster, browsers):
    """Broke: Redis (stopped, then started again).

    Saw (expected): each instance's log says "Rate limit storage unreachable - falling back to
    in-memory storage", at most once per worker for one outage. Seen today: nothing at all in
    gunicorn's output; only /healthz tells.

    Lost: nothing.
    """
    logged_before = {instance.name: len(instance.log()) for instance in cluster.instances}
    cluster.redis.stop()
    try:
        for instance in cluster.instances:
            wrong_sign_ins([instance], next_address(), 6)
    finally:
        cluster.redis.start()
        wait_limits_shared(cluster)
    for instance in cluster.instances:
        this_outage = instance.log()[logged_before[instance.name] :]
        assert 1 <= this_outage.count(FALLBACK) <= WORKERS


def test_keys_are_checked_in_the_database_while_redis_is_down(cluster, browsers):
    """Broke: Redis, which tells instances that a key changed (each worker keeps the keys it
    verified for a while, used only while Redis says they are unchanged).

    Saw: three keys worked on B (their checks cached by B's workers); with Redis stopped, an
    operator revoked one with `flask keys revoke` (which could not tell Redis) and the very
    next request with it failed on B and on A, while the others kept working: without Redis,
    every key is looked up in PostgreSQL. Once Redis was back, a key revoked through A failed
    at once on B again, and the third key still worked everywhere.

    Lost: nothing.
    """
    person = cluster.person()
    down_id, revoked_while_down = cluster.api_key(person.account_slug, "revoked while down")
    up_id, revoked_after = cluster.api_key(person.account_slug, "revoked after")
    _, kept = cluster.api_key(person.account_slug, "kept")

    def status_on(instance, token: str) -> int:  # type: ignore[no-untyped-def]
        bearer = {"Authorization": f"Bearer {token}"}
        return browsers(instance.url).get("/api/v1/account", headers=bearer).status_code

    for token in (revoked_while_down, revoked_after, kept):
        assert [status_on(cluster.b, token) for _ in range(6)] == [200] * 6

    cluster.redis.stop()
    result = cluster.flask("keys", "revoke", down_id)
    assert result.returncode == 0, result.stderr
    assert [status_on(cluster.b, revoked_while_down) for _ in range(6)] == [401] * 6
    assert status_on(cluster.a, revoked_while_down) == 401
    assert [status_on(instance, kept) for instance in cluster.instances] == [200, 200]

    cluster.redis.start()
    cluster.wait_healthy(timeout=5)
    wait_limits_shared(cluster)
    assert [status_on(cluster.b, revoked_after) for _ in range(6)] == [200] * 6
    result = cluster.flask("keys", "revoke", up_id)
    assert result.returncode == 0, result.stderr
    assert [status_on(cluster.b, revoked_after) for _ in range(6)] == [401] * 6
    assert [status_on(cluster.b, revoked_while_down) for _ in range(2)] == [401] * 2
    assert [status_on(instance, kept) for instance in cluster.instances] == [200, 200]
