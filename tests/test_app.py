"""The factory and the contract's order of settings."""

from __future__ import annotations

import os
import stat

import pytest

from terminus_hub import create_app
from terminus_hub.settings import normalize_database_url


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "instance"
    path.mkdir()
    return path


def test_defaults_serve_one_machine(instance):
    app = create_app(instance_path=str(instance))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance}/terminus_hub.sqlite"
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert app.config["TERMINUS_BCRYPT_ROUNDS"] == 12
    assert app.config["TERMINUS_LOCKOUT_MAX_ATTEMPTS"] == 5
    assert app.config["TERMINUS_PASSWORD_MIN_LENGTH"] == 12
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-thub_session"


def test_settings_load_in_contract_order(instance, monkeypatch):
    (instance / "config.py").write_text(
        "TERMINUS_LOCKOUT_MINUTES = 30\n"
        "TERMINUS_BCRYPT_ROUNDS = 10\n"
        "TERMINUS_RESET_TOKEN_MINUTES = 5\n"
    )
    monkeypatch.setenv("FLASK_TERMINUS_BCRYPT_ROUNDS", "11")
    monkeypatch.setenv("FLASK_TERMINUS_RESET_TOKEN_MINUTES", "20")
    app = create_app({"TERMINUS_RESET_TOKEN_MINUTES": 45}, instance_path=str(instance))
    assert app.config["TERMINUS_LOCKOUT_MINUTES"] == 30  # instance/config.py over defaults
    assert app.config["TERMINUS_BCRYPT_ROUNDS"] == 11  # FLASK_* over instance/config.py
    assert app.config["TERMINUS_RESET_TOKEN_MINUTES"] == 45  # the mapping over everything


def test_flask_prefixed_values_are_parsed_as_json(instance, monkeypatch):
    monkeypatch.setenv("FLASK_SESSION_COOKIE_SECURE", "false")
    app = create_app(instance_path=str(instance))
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.config["SESSION_COOKIE_NAME"] == "thub_session"


def test_database_url_is_an_alias(instance, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/hub")
    app = create_app(instance_path=str(instance))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/hub"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://h/db", "postgresql+psycopg://h/db"),
        ("postgresql://h/db", "postgresql+psycopg://h/db"),
        ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_use_the_shipped_driver(given, expected):
    assert normalize_database_url(given) == expected


def test_secret_key_is_made_once_and_kept_private(instance):
    first = create_app(instance_path=str(instance)).config["SECRET_KEY"]
    second = create_app(instance_path=str(instance)).config["SECRET_KEY"]
    key_file = instance / "secret_key"
    assert first == second and len(first) >= 32
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_configured_secret_key_wins_and_no_file_is_made(instance):
    app = create_app({"SECRET_KEY": "k" * 40}, instance_path=str(instance))
    assert app.config["SECRET_KEY"] == "k" * 40
    assert not (instance / "secret_key").exists()


def test_unusable_secret_key_file_refuses_to_start(instance):
    (instance / "secret_key").write_text("short\n")
    with pytest.raises(RuntimeError, match="no usable secret key"):
        create_app(instance_path=str(instance))


def test_wsgi_module_exposes_an_app(monkeypatch, instance):
    monkeypatch.setenv("FLASK_SECRET_KEY", '"' + "s" * 40 + '"')
    import importlib

    import wsgi

    importlib.reload(wsgi)
    assert wsgi.app.name == "terminus_hub"


def test_the_sync_check_cache_keeps_no_callable_made_per_request(app) -> None:  # type: ignore[no-untyped-def]
    import gc

    before = len(app._sync)
    for _ in range(100):
        app.ensure_sync(lambda: None)()  # as after_this_request or a view class makes them
    gc.collect()
    assert len(app._sync) <= before + 1


# xmlsec1, found without pysaml2 ---------------------------------------------------------------


@pytest.fixture
def xmlsec_elsewhere(tmp_path):
    """An executable xmlsec1 in a folder that is not on PATH."""
    folder = tmp_path / "xmlsec-bin"
    folder.mkdir()
    binary = folder / "xmlsec1"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    return binary


def test_xmlsec_is_found_at_the_configured_path_off_path(instance, xmlsec_elsewhere):
    app = create_app({"TERMINUS_XMLSEC_BINARY": str(xmlsec_elsewhere)}, instance_path=str(instance))
    assert app.config["TERMINUS_XMLSEC_BINARY"] == str(xmlsec_elsewhere)


def test_xmlsec_is_found_in_the_configured_folder(instance, xmlsec_elsewhere):
    folder = str(xmlsec_elsewhere.parent)
    app = create_app({"TERMINUS_XMLSEC_BINARY": folder}, instance_path=str(instance))
    assert app.config["TERMINUS_XMLSEC_BINARY"] == str(xmlsec_elsewhere)


def test_a_configured_xmlsec_that_is_not_there_stops_the_start_with_the_reason(instance, tmp_path):
    missing = str(tmp_path / "nowhere" / "xmlsec1")
    with pytest.raises(RuntimeError, match=r"TERMINUS_XMLSEC_BINARY is .*nowhere/xmlsec1.* not an"):
        create_app({"TERMINUS_XMLSEC_BINARY": missing}, instance_path=str(instance))


def test_without_xmlsec_on_path_the_start_says_how_to_install_it(instance, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="apt-get install xmlsec1"):
        create_app(instance_path=str(instance))


# What a worker imports ------------------------------------------------------------------------

_IMPORTED_BY_THE_APP = """
import json, os, sys
from terminus_hub import create_app
create_app(instance_path=sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:])))
"""
# Loaded by the first request that needs them, never by the app itself: a worker that serves
# key calls and sign-ins stays without their memory (docs/benchmarks.md, Memory).
ON_DEMAND = ("saml2", "xmlschema", "zxcvbn", "webauthn", "dns", "pyotp", "segno")


def test_the_app_leaves_sso_passkey_and_strength_libraries_unloaded(instance):
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _IMPORTED_BY_THE_APP, str(instance), *ON_DEMAND, "cryptography"],
        capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
    )  # fmt: skip
    loaded = json.loads(out.stdout.splitlines()[-1])
    assert [m for m in loaded if m.split(".")[0] in ON_DEMAND] == []
    # redis imports cryptography's package to see whether it is there; its primitives (Fernet,
    # x509, the hazmat bindings) are loaded by the first sealed value or certificate.
    assert [m for m in loaded if m.startswith(("cryptography.hazmat", "cryptography.x509"))] == []
