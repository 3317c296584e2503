"""Gunicorn's access log: one line per request, no link tokens, no query strings."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest

from terminus_hub.access_log import logged_path
from tests import processes
from tests.processes import HOST
from tests.processes import Gunicorn

TOKEN = "eyJ1IjoidXNyX2FiYyJ9.Zk3x9Q.c2VjcmV0LXNpZ25hdHVyZQ"


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        ("/accounts", "/accounts"),
        ("/sign_in?next=/a/acme", "/sign_in"),
        (f"/confirm/{TOKEN}", "/confirm/[redacted]"),
        (f"/password/reset/{TOKEN}", "/password/reset/[redacted]"),
        (f"/unlock/{TOKEN}?x=1", "/unlock/[redacted]"),
        (f"/invitations/{TOKEN}", "/invitations/[redacted]"),
        # Spellings the router reads as the same link.
        (f"/%63onfirm/{TOKEN}", "/confirm/[redacted]"),
        (f"//password//reset/{TOKEN}", "/password/reset/[redacted]"),
        (f"http://hub.example.com/unlock/{TOKEN}", "/unlock/[redacted]"),
        (f"/password/reset/{TOKEN}#/x", "/password/reset/[redacted]"),
        (f"abcdefghijk://x/password/reset/{TOKEN}", "/password/reset/[redacted]"),
        (f"/confirm/{TOKEN}/extra/segments", "/confirm/[redacted]"),
        # Still encoded, so a newline or a quote cannot forge a line or a field.
        ('/x%0a127.0.0.1 "GET /admin" 200', "/x%0a127.0.0.1 \\x22GET /admin\\x22 200"),
        ("/caf\u00e9", "/caf\\xc3\\xa9"),
    ],
)
def test_the_logged_path_keeps_no_secret_and_no_line_break(raw: str, logged: str) -> None:
    assert logged_path(raw) == logged


def _raw_request(port: int, target: str, user_agent: str = "pytest") -> None:
    """Send a request line exactly as given (no client library normalises it)."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        head = f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: {user_agent}\r\n"
        sock.sendall(head.encode("latin-1") + b"Connection: close\r\n\r\n")
        while sock.recv(65536):
            pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    workdir = tmp_path_factory.mktemp("access-log")
    instance = Gunicorn("hub", processes.one_host_environment(workdir), workdir, workers=1)
    instance.start()
    try:
        instance.wait_ready(ready=lambda status: status in (200, 503))
        yield instance
    finally:
        instance.stop()


def _access_lines(server: Gunicorn, marker: str) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in server.out_log.read_text().splitlines() if "GET" in line]
        mine = [line for line in lines if marker in line]
        if mine or time.monotonic() > deadline:
            return mine
        time.sleep(0.05)


def test_tokens_in_emailed_links_never_reach_the_access_log(server: Gunicorn) -> None:
    for path in ("/confirm/", "/password/reset/", "/unlock/", "/invitations/", "/%75nlock/"):
        _raw_request(server.port, path + TOKEN, user_agent="token-check")
    _raw_request(server.port, f"/sign_in?next=/a/{TOKEN}", user_agent="token-check")
    lines = _access_lines(server, "token-check")
    assert len(lines) == 6, lines
    assert not any(TOKEN in line for line in server.out_log.read_text().splitlines())
    assert sum("[redacted]" in line for line in lines) == 5


def test_an_encoded_newline_cannot_forge_a_log_line(server: Gunicorn) -> None:
    forged = '127.0.0.1 "GET /admin" 200 0 0.000000s "forged"'
    _raw_request(server.port, "/nothing%0a" + forged.replace(" ", "%20").replace('"', "%22"))
    _raw_request(server.port, "/accounts", user_agent='x" 200 "forged')
    log = server.out_log.read_text().splitlines()
    assert not any(line.startswith('127.0.0.1 "GET /admin"') for line in log)
    assert any("/nothing%0a127.0.0.1" in line for line in log)
    assert any('"x\\x22 200 \\x22forged"' in line for line in log)


def test_the_quick_atoms_are_gunicorns_own_for_the_projects_format() -> None:
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from terminus_hub.access_log import AccessLog

    conf = (processes.REPO / "gunicorn.conf.py").read_text()
    project_format = re.search(r"access_log_format = '(.*)'", conf).group(1)
    cfg = Config()
    cfg.set("access_log_format", project_format)
    log = AccessLog(cfg)
    resp = SimpleNamespace(status="201 CREATED", sent=512, headers=[("Content-Type", "x")])
    req = SimpleNamespace(headers=[("USER-AGENT", 'curl "8"\n')])
    environ = {
        "REMOTE_ADDR": "192.0.2.7",
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/unlock/secret-token?next=/x",
        "PATH_INFO": "/unlock/secret-token",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": "next=/x",
        "HTTP_USER_AGENT": 'curl "8"\n',
    }
    took = timedelta(seconds=1, microseconds=2345)
    quick = log.atoms(resp, req, environ, took)
    # A header atom in the format takes gunicorn's full path, which the quick one must match.
    cfg.set("access_log_format", project_format + " %({x-forwarded-for}i)s")
    full = log.atoms(resp, req, environ, took)
    assert quick == {name: full[name] for name in quick}
    assert quick["U"] == "/unlock/[redacted]" and quick["L"] == "1.002345"
    assert "secret-token" not in project_format % quick
