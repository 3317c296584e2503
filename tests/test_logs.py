"""TERMINUS_LOG_FORMAT=json: one JSON object per line, with one line per request."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.logging import default_handler
from sqlalchemy import select

from terminus_hub import create_app
from terminus_hub.extensions import db
from terminus_hub.models import AuditEvent
from terminus_hub.settings import SettingsError
from tests import factories
from tests.conftest import BASE_CONFIG

JSON_LOGS = pytest.mark.app_config(TERMINUS_LOG_FORMAT="json")
TOKEN = "eyJ1IjoidXNyX2FiYyJ9.Zk3x9Q.c2VjcmV0LXNpZ25hdHVyZQ"


@pytest.fixture(autouse=True)
def _text_logs_again() -> Iterator[None]:
    """The app's logger is the process's: put the plain handler back for the next tests."""
    yield
    for name in ("terminus_hub", "flask-limiter"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if handler.get_name() == "terminus_hub.json":
                logger.removeHandler(handler)
        if default_handler not in logger.handlers:
            logger.addHandler(default_handler)


def _lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


@JSON_LOGS
def test_every_request_is_one_json_line_with_its_route_not_its_path(
    client, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = client.get(f"/password/reset/{TOKEN}")
    [line] = [e for e in _lines(capsys.readouterr().err) if e["message"] == "request"]
    assert line["route"] == "/password/reset/<token>"
    assert TOKEN not in json.dumps(line)
    assert line["status"] == response.status_code
    assert line["method"] == "GET"
    assert isinstance(line["duration_ms"], float)
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["level"] == "INFO" and line["logger"] == "terminus_hub.requests"


@JSON_LOGS
def test_the_line_names_the_signed_in_user_and_the_account(
    app: Flask, client, capsys: pytest.CaptureFixture[str]
) -> None:
    person = factories.make_person(app)
    factories.sign_in(client, person.email)
    capsys.readouterr()
    client.get(f"/a/{person.account_slug}/")
    [line] = [e for e in _lines(capsys.readouterr().err) if e["message"] == "request"]
    assert line["user"] == person.id
    assert line["account"] == person.account_slug
    assert line["route"] == "/a/<slug>/"


@JSON_LOGS
def test_a_callers_request_id_is_kept_when_it_is_sane(
    client, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = client.get("/sign_in", headers={"X-Request-ID": "lb-4f2a.9"})
    assert kept.headers["X-Request-ID"] == "lb-4f2a.9"
    for bad in ("x" * 65, "a b", "a\u00e9", ""):
        replaced = client.get("/sign_in", headers={"X-Request-ID": bad})
        assert replaced.headers["X-Request-ID"] != bad
        assert re.fullmatch(r"req_[a-z2-7]{16}", replaced.headers["X-Request-ID"])
    lines = _lines(capsys.readouterr().err)
    assert {e["request_id"] for e in lines if e["message"] == "request"} >= {"lb-4f2a.9"}


@JSON_LOGS
def test_a_line_stays_one_line_whatever_the_path_holds(client, capsys) -> None:
    capsys.readouterr()
    client.get("/sso/%E2%80%A8%C2%85" + "x" * 5000 + "/login")
    captured = capsys.readouterr().err
    assert len(captured.splitlines()) == captured.count("\n")
    [line] = [e for e in _lines(captured) if e["message"] == "request"]
    assert line["account"] is None
    assert len(captured) < 2000


@JSON_LOGS
def test_app_messages_are_json_lines_too(app: Flask, client, capsys) -> None:
    capsys.readouterr()
    client.post("/sign_in/password", data={"email": "nobody@example.com", "password": "x"})
    lines = _lines(capsys.readouterr().err)
    security = [e for e in lines if e["logger"] == "terminus_hub.security"]
    assert security and all("request_id" in e for e in security)


def test_text_is_the_default_and_every_response_has_a_request_id(client, capsys) -> None:
    response = client.get("/sign_in")
    assert re.fullmatch(r"req_[a-z2-7]{16}", response.headers["X-Request-ID"])
    assert '"message"' not in capsys.readouterr().err


def test_an_unknown_format_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TERMINUS_LOG_FORMAT must be text or json"):
        create_app({**BASE_CONFIG, "TERMINUS_LOG_FORMAT": "xml"}, instance_path=str(tmp_path))


def test_every_answer_carries_a_request_id_and_so_do_its_audit_events(app: Flask, client) -> None:
    """Pages, API errors and unknown paths all carry X-Request-ID; the audit event a request
    wrote carries the same id, and the API shows it."""
    person = factories.make_person(app)
    for path in ("/sign_in", "/api/v1/account", "/no/such/page", "/api/v1/no-such"):
        assert re.fullmatch(r"req_[a-z2-7]{16}", client.get(path).headers["X-Request-ID"])
    failed = client.post(
        "/sign_in/password",
        data={"email": person.email, "password": "wrong"},
        headers={"X-Request-ID": "support-ticket-42"},
    )
    assert failed.headers["X-Request-ID"] == "support-ticket-42"
    with app.app_context():
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "sign_in.failed")
        ).one()
        assert event.request_id == "support-ticket-42"
    factories.sign_in(client, person.email)
    listed = client.get("/api/v1/audit_events", query_string={"kind": "sign_in.failed"})
    assert listed.status_code == 200
    assert [e["request_id"] for e in listed.get_json()["data"]] == ["support-ticket-42"]
