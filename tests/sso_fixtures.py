"""Fixtures for the SSO tests (a pytest plugin, registered in conftest.py)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from terminus_hub.sso.credentials import ensure_keypair
from tests.saml_signer import Signer
from tests.sso_helpers import Sso
from tests.sso_helpers import make_sso


@pytest.fixture(scope="session")
def sp_key_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One SP key pair for the run: making an RSA key in every test's instance/ costs time."""
    folder = tmp_path_factory.mktemp("sp")
    key, cert = str(folder / "sp.key"), str(folder / "sp.crt")
    ensure_keypair(key, cert)
    return key, cert


@pytest.fixture
def shared_sp_key(app: Flask, sp_key_files: tuple[str, str]) -> None:
    """Point the app at the run's SP key pair."""
    app.config["TERMINUS_SAML_SP_KEY_FILE"], app.config["TERMINUS_SAML_SP_CERT_FILE"] = sp_key_files


@pytest.fixture(scope="module")
def signer() -> Signer:
    """An independent IdP (lxml + cryptography), one key per module."""
    return Signer()


@pytest.fixture
def sso(app: Flask, client: FlaskClient, signer: Signer, shared_sp_key: None) -> Sso:
    """An account owned by OWNER whose SSO trusts ``signer``."""
    return make_sso(app, client, signer)
