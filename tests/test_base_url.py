"""TERMINUS_BASE_URL is required, and it alone (never a Host header) makes emailed and SAML URLs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from terminus_hub import create_app
from terminus_hub.settings import SettingsError
from tests import processes
from tests.conftest import BASE_CONFIG
from tests.conftest import Outbox
from tests.factories import Person
from tests.processes import REPO

MISSING = "Error: TERMINUS_BASE_URL is not set."
# As in production: no SERVER_NAME, so the Host header is what routing would see.
PRODUCTION_LIKE = pytest.mark.app_config(
    SERVER_NAME=None, TERMINUS_BASE_URL="https://hub.example.com"
)


def _without_base_url(tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run a command of the app with settings that lack only the base URL."""
    env = processes.one_host_environment(tmp_path)
    del env["FLASK_TERMINUS_BASE_URL"]
    return subprocess.run(
        list(command), cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_app_refuses_to_start_without_a_base_url(tmp_path: Path) -> None:
    config = {k: v for k, v in BASE_CONFIG.items() if k != "TERMINUS_BASE_URL"}
    os.environ.pop("FLASK_TERMINUS_BASE_URL")
    with pytest.raises(SettingsError) as raised:
        create_app(config, instance_path=str(tmp_path))
    assert raised.value.format_message().startswith("TERMINUS_BASE_URL is not set.")


def test_flask_commands_say_so_in_one_line(tmp_path: Path) -> None:
    done = _without_base_url(
        tmp_path, str(processes.BIN / "flask"), "--app", "terminus_hub", "db", "upgrade"
    )
    assert done.returncode != 0
    assert done.stderr.strip().startswith(MISSING), done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_gunicorns_entry_point_says_so_in_one_line(tmp_path: Path) -> None:
    done = _without_base_url(tmp_path, sys.executable, "-c", "import wsgi")
    assert done.returncode == 1
    assert done.stderr.strip().startswith(MISSING), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "value",
    [
        "hub.example.com",
        "ftp://hub.example.com",
        "https://",
        "https://hub.example.com/prefix",
        "https://hub.example.com?x=1",
        "https://user:pw@hub.example.com",
        "https://hub.example.com:port",
    ],
)
def test_a_base_url_that_is_not_an_origin_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="TERMINUS_BASE_URL must be"):
        create_app({**BASE_CONFIG, "TERMINUS_BASE_URL": value}, instance_path=str(tmp_path))


def test_a_trailing_slash_is_dropped(tmp_path: Path) -> None:
    app = create_app(
        {**BASE_CONFIG, "TERMINUS_BASE_URL": "https://hub.example.com:8443/"},
        instance_path=str(tmp_path),
    )
    assert app.config["TERMINUS_BASE_URL"] == "https://hub.example.com:8443"
    assert app.config["TRUSTED_HOSTS"] == ["hub.example.com"]


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("HTTPS://Hub.Example.COM:443/", "https://hub.example.com"),
        ("http://LOCALHOST:80", "http://localhost"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_the_base_url_is_written_as_browsers_write_origins(
    tmp_path: Path, value: str, origin: str
) -> None:
    app = create_app({**BASE_CONFIG, "TERMINUS_BASE_URL": value}, instance_path=str(tmp_path))
    assert app.config["TERMINUS_BASE_URL"] == origin


@PRODUCTION_LIKE
def test_a_request_for_another_host_is_refused_and_mails_nothing(
    client: FlaskClient, outbox: Outbox, user: Person
) -> None:
    for host in ("evil.example", "hub.example.com.evil.example", "evil.example:443"):
        response = client.post(
            "/password/forgot", data={"email": user.email}, headers={"Host": host}
        )
        assert response.status_code == 400, host
    assert outbox.messages(user.email) == []


@PRODUCTION_LIKE
def test_links_come_from_the_base_url_whatever_port_the_request_names(
    client: FlaskClient, outbox: Outbox, user: Person
) -> None:
    response = client.post(
        "/password/forgot", data={"email": user.email}, headers={"Host": "hub.example.com:8080"}
    )
    assert response.status_code == 303
    body = outbox.messages(user.email)[-1].text_body
    assert "https://hub.example.com/password/reset/" in body
    assert "8080" not in body


@pytest.mark.app_config(
    SERVER_NAME=None,
    TERMINUS_BASE_URL="https://hub.example.com",
    TERMINUS_ALLOWED_HOSTS=["hub-internal"],
)
def test_an_allowed_host_is_served_but_never_used_in_a_link(
    app: Flask, client: FlaskClient, outbox: Outbox, user: Person
) -> None:
    assert client.get("/healthz", headers={"Host": "hub-internal"}).status_code == 200
    client.post("/password/forgot", data={"email": user.email}, headers={"Host": "hub-internal"})
    body = outbox.messages(user.email)[-1].text_body
    assert "https://hub.example.com/password/reset/" in body
    assert "hub-internal" not in body


@PRODUCTION_LIKE
def test_the_routers_own_redirects_never_name_the_requests_host_or_port(
    client: FlaskClient, user: Person
) -> None:
    for path, target in (("/a/acme", "/a/acme/"), ("/static//app.css", "/static/app.css")):
        response = client.get(path, headers={"Host": "hub.example.com:1337"})
        assert response.status_code == 308, path
        assert response.headers["Location"] == target


def test_allowed_hosts_must_be_a_list_of_names(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TERMINUS_ALLOWED_HOSTS"):
        create_app(
            {**BASE_CONFIG, "TERMINUS_ALLOWED_HOSTS": "hub-internal"}, instance_path=str(tmp_path)
        )
