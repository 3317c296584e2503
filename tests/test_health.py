"""GET /healthz: status for anyone, details only for the operator's monitor."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from terminus_hub import create_app
from tests import factories
from tests.conftest import BASE_CONFIG

TOKEN = "h" * 40


def _queue_mail(app: Flask) -> None:
    person = factories.make_user(app)
    app.test_client().post("/password/forgot", data={"email": person.email})


def test_anyone_sees_only_the_status(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.app_config(TERMINUS_HEALTH_TOKEN=TOKEN, RATELIMIT_ENABLED=True)
def test_the_monitors_token_shows_each_check_and_the_outbox(
    app: Flask, client: FlaskClient
) -> None:
    _queue_mail(app)
    response = client.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
    body = response.get_json()
    assert response.status_code == 200
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["rate_limit_storage"] == "ok"
    assert body["checks"]["mail_outbox"]["pending"] == 1


@pytest.mark.app_config(TERMINUS_HEALTH_TOKEN=TOKEN)
@pytest.mark.parametrize(
    "header", ["Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer", f"bearer{TOKEN}"]
)
def test_a_wrong_token_sees_only_the_status(app: Flask, client: FlaskClient, header: str) -> None:
    _queue_mail(app)
    response = client.get("/healthz", headers={"Authorization": header})
    assert response.get_json() == {"status": "ok"}


def test_without_a_configured_token_nobody_sees_details(client: FlaskClient) -> None:
    for header in ("Bearer ", "Bearer None", "Bearer null"):
        assert client.get("/healthz", headers={"Authorization": header}).get_json() == {
            "status": "ok"
        }


def test_a_failing_dependency_is_named_to_anyone(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "hub.sqlite"
    app = create_app(
        {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{missing}"},
        instance_path=str(tmp_path / "instance"),
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "failing": ["database"]}
