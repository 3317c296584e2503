"""GET /metrics: Prometheus' format, for the scraper's token only, bounded labels, all workers."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests import factories
from tests import processes
from tests.processes import HOST
from tests.processes import Gunicorn

TOKEN = "m" * 40
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
WITH_TOKEN = pytest.mark.app_config(TERMINUS_METRICS_TOKEN=TOKEN)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client: FlaskClient) -> str:
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/plain"
    return response.get_data(as_text=True)


def test_without_a_token_setting_there_is_no_metrics_endpoint(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=SCRAPER).status_code == 404


@WITH_TOKEN
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer m\u00e9"])
def test_a_scraper_without_the_token_is_refused(client: FlaskClient, header: str | None) -> None:
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "terminus_" not in response.get_data(as_text=True)


@WITH_TOKEN
def test_sign_ins_api_requests_and_the_outbox_are_counted(app: Flask, client: FlaskClient) -> None:
    person = factories.make_person(app)
    _, token = factories.make_api_key(app, person.account_slug)
    before = scrape(client)
    for _ in range(2):
        client.post("/sign_in/password", data={"email": person.email, "password": "wrong"})
    client.post("/sign_in/password", data={"email": "nobody@example.com", "password": "x"})
    client.get("/api/v1/account", headers={"Authorization": f"Bearer {token}"})
    client.get("/api/v1/account")
    client.post("/password/forgot", data={"email": person.email})
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("terminus_sign_ins_total", method="password", outcome="wrong_password") == 2
    assert grew("terminus_sign_ins_total", method="password", outcome="unknown_email") == 1
    assert grew("terminus_api_requests_total", status="200", auth="api_key") == 1
    assert grew("terminus_api_requests_total", status="401", auth="none") == 1
    assert grew("terminus_api_key_check_seconds_count") == 1
    sources = ("cache", "database", "no_redis")
    checks = {source: grew("terminus_api_key_checks_total", source=source) for source in sources}
    assert sum(checks.values()) == 1 and checks["cache"] == 0  # a first call reads the key
    assert grew("terminus_request_duration_seconds_count", endpoint="auth.forgot_password") == 1
    assert value(after, "terminus_outbox_messages", state="pending") >= 1
    # Labels never carry who or what: no address, account, key or path.
    for secret in (person.email, person.account_slug, token, "nobody@example.com", "/api/v1"):
        assert secret not in after


@WITH_TOKEN
@pytest.mark.app_config(TERMINUS_LOCKOUT_MAX_ATTEMPTS=2)
def test_a_lockout_is_counted(app: Flask, client: FlaskClient) -> None:
    person = factories.make_person(app)
    before = value(scrape(client), "terminus_lockouts_total")
    for _ in range(3):
        client.post("/sign_in/password", data={"email": person.email, "password": "wrong"})
    assert value(scrape(client), "terminus_lockouts_total") == before + 1


# -- under gunicorn: every worker's counts in one scrape ----------------------------------------


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    workdir: Path = tmp_path_factory.mktemp("metrics")
    env = processes.one_host_environment(workdir, FLASK_TERMINUS_METRICS_TOKEN=f'"{TOKEN}"')
    migrated = processes.flask(env, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    server = Gunicorn("hub", env, workdir, workers=2)
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)  # a new connection each
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_a_scrape_adds_up_every_workers_counts(two_workers: Gunicorn) -> None:
    def served() -> float:
        status, text = _get(two_workers.port, "/metrics", SCRAPER)
        assert status == 200
        return value(text, "terminus_request_duration_seconds_count", endpoint="auth.sign_in")

    before = served()
    for _ in range(40):
        assert _get(two_workers.port, "/sign_in")[0] == 200
    assert served() == before + 40
