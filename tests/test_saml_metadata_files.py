"""IdP metadata as six real identity providers publish it, uploaded and then signed in through.

The files in tests/data/idp_metadata are templates shaped like what Microsoft Entra ID, AD FS,
Okta, Google Workspace, Keycloak and OneLogin serve (Entra's byte order mark and metadata
signature, WS-Federation RoleDescriptors, an SPSSODescriptor beside the IdP, an
EntitiesDescriptor, KeyNames, keys without ``use``, extra bindings). Each is filled with a key
from ``tests.saml_signer`` and must work from the settings page and from ``sso configure``, up
to a person signing in with a response that key signed.
"""

from __future__ import annotations

import datetime
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner

from terminus_hub.core.idp_metadata import EXPIRED
from tests import factories
from tests.conftest import AuthActions
from tests.saml_signer import Signer
from tests.saml_signer import request_id_from
from tests.saml_signer import saml_time
from tests.sso_helpers import DOMAIN
from tests.sso_helpers import OWNER
from tests.sso_helpers import Sso
from tests.sso_helpers import signed_in_emails
from tests.sso_helpers import vouch
from tests.test_sso_settings import assert_clear_error
from tests.test_sso_settings import connection_state
from tests.test_sso_settings import field_error
from tests.test_sso_settings import sso_configure
from tests.test_sso_settings import upload

TEMPLATES = Path(__file__).parent / "data" / "idp_metadata"
EVE = f"eve@{DOMAIN}"
BOM = b"\xef\xbb\xbf"
EXPIRED_ON = datetime.datetime(2024, 3, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Vendor:
    """One IdP's metadata template and the values its placeholders take."""

    name: str
    entity_id: str
    sso_url: str  # the HTTP-Redirect SingleSignOnService
    # Entra lists the key it is rolling over to second: the second one signs.
    signs_with_second_key: bool = False
    # Google Workspace breaks the certificate's base64 into lines.
    cert_line_length: int | None = None
    # Entra serves FederationMetadata.xml with a UTF-8 byte order mark.
    byte_order_mark: bool = False

    def __str__(self) -> str:
        return self.name


ENTRA_TENANT = "3f2b8c1e-7a4d-4e9b-a6c5-1d0e2f3a4b5c"
ONELOGIN_APP = "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c"
ENTRA = Vendor(
    "entra",
    f"https://sts.windows.net/{ENTRA_TENANT}/",
    f"https://login.microsoftonline.com/{ENTRA_TENANT}/saml2",
    signs_with_second_key=True,
    byte_order_mark=True,
)
ADFS = Vendor(
    "adfs", "http://adfs.acme.example/adfs/services/trust", "https://adfs.acme.example/adfs/ls/"
)
OKTA = Vendor(
    "okta",
    "http://www.okta.com/exk9a8b7c6d5e4f3g2h1",
    "https://acme.okta.com/app/acme_terminushub_1/exk9a8b7c6d5e4f3g2h1/sso/saml",
)
GOOGLE = Vendor(
    "google",
    "https://accounts.google.com/o/saml2?idpid=C03x7k2mq",
    "https://accounts.google.com/o/saml2/idp?idpid=C03x7k2mq",
    cert_line_length=76,
)
KEYCLOAK = Vendor(
    "keycloak",
    "https://sso.acme.example/realms/acme",
    "https://sso.acme.example/realms/acme/protocol/saml",
)
ONELOGIN = Vendor(
    "onelogin",
    f"https://app.onelogin.com/saml/metadata/{ONELOGIN_APP}",
    f"https://acme.onelogin.com/trust/saml2/http-redirect/sso/{ONELOGIN_APP}",
)
VENDORS = [ENTRA, ADFS, OKTA, GOOGLE, KEYCLOAK, ONELOGIN]


# -- keys -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signers() -> dict[str, Signer]:
    """Each vendor's IdP: its entity id, and the key that signs its responses."""
    return {vendor.name: Signer(vendor.entity_id) for vendor in VENDORS}


@pytest.fixture(scope="module")
def other_key() -> Signer:
    """A key metadata lists beside the signing one (Entra's old key, AD FS's encryption key)."""
    return Signer("https://other-key.example/")


@pytest.fixture(autouse=True)
def _shared_sp_key(shared_sp_key: None) -> None:
    """Every test here uses the run's SP key pair."""


# -- helpers ----------------------------------------------------------------------------------


def certificate_text(signer: Signer, line_length: int | None) -> str:
    """The signer's certificate as base64 DER, on one line or broken into lines."""
    if line_length is None:
        return signer.cert_b64
    return "\n" + "\n".join(textwrap.wrap(signer.cert_b64, line_length)) + "\n"


def metadata_for(
    vendor: Vendor,
    signer: Signer,
    other_key: Signer,
    *,
    valid_until: datetime.datetime | None = None,
) -> bytes:
    """The vendor's template filled in, as the bytes its IdP would serve."""
    first, second = (other_key, signer) if vendor.signs_with_second_key else (signer, other_key)
    until = valid_until or datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1825)
    raw = (TEMPLATES / f"{vendor.name}.xml").read_bytes()
    assert raw.startswith(BOM) == vendor.byte_order_mark, f"{vendor.name}.xml byte order mark"
    text = (
        raw.decode("utf-8")  # not utf-8-sig: Entra's byte order mark stays in the upload
        .replace("{{CERT}}", certificate_text(first, vendor.cert_line_length))
        .replace("{{CERT2}}", certificate_text(second, vendor.cert_line_length))
        .replace("{{ENTITY_ID}}", vendor.entity_id)
        .replace("{{SSO_URL}}", vendor.sso_url)
        .replace("{{VALID_UNTIL}}", saml_time(until, fraction_digits=3))
    )
    assert "{{" not in text, f"{vendor.name}.xml has a placeholder this helper does not fill"
    return text.encode("utf-8")


def make_account(app: Flask) -> str:
    """The account acme, owned by OWNER (confirmed, so the web may claim acme.example)."""
    factories.make_user(app, email=OWNER)
    return factories.make_account(app, OWNER, name="Acme")


def sign_in_through_idp(app: Flask, vendor: Vendor, slug: str, signer: Signer) -> Any:
    """Eve, in a fresh browser: to the vendor's SSO URL and back to the ACS with its answer."""
    browser: FlaskClient = app.test_client()
    sso = Sso(app=app, client=browser, signer=signer, slug=slug)
    step = browser.get(f"/sso/{slug}/login")
    assert step.status_code == 303, step.get_data(as_text=True)[:300]
    separator = "&" if "?" in vendor.sso_url else "?"
    assert step.location.startswith(vendor.sso_url + separator), step.location
    return sso.post(sso.respond(request_id_from(step.location), EVE))


# -- the settings page ------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS, ids=str)
def test_uploaded_vendor_metadata_signs_people_in(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    signers: dict[str, Signer],
    other_key: Signer,
    vendor: Vendor,
) -> None:
    slug = make_account(app)
    assert auth.sign_in(OWNER).status_code == 303
    signer = signers[vendor.name]

    saved = upload(client, slug, metadata_for(vendor, signer, other_key))
    assert saved.status_code == 303, saved.get_data(as_text=True)[:500]
    assert saved.location == f"/a/{slug}/sso"
    vouch(app, slug, DOMAIN)  # Eve is new: only a verified domain creates people

    answer = sign_in_through_idp(app, vendor, slug, signer)

    assert answer.status_code == 303, answer.get_data(as_text=True)[:300]
    assert sorted(signed_in_emails(app)) == [EVE, OWNER]


def test_adfs_encryption_key_does_not_verify_responses(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    signers: dict[str, Signer],
    other_key: Signer,
) -> None:
    slug = make_account(app)
    assert auth.sign_in(OWNER).status_code == 303
    assert upload(client, slug, metadata_for(ADFS, signers["adfs"], other_key)).status_code == 303
    vouch(app, slug, DOMAIN)
    browser = app.test_client()
    sso = Sso(app=app, client=browser, signer=other_key, slug=slug)  # the encryption key

    answer = sso.post(sso.respond(sso.start(), EVE, issuer=ADFS.entity_id))

    assert answer.status_code == 403
    assert signed_in_emails(app) == [OWNER]


def test_expired_google_metadata_is_refused_on_the_page(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    signers: dict[str, Signer],
    other_key: Signer,
) -> None:
    slug = make_account(app)
    assert auth.sign_in(OWNER).status_code == 303
    metadata = metadata_for(GOOGLE, signers["google"], other_key, valid_until=EXPIRED_ON)

    response = upload(client, slug, metadata)

    message = field_error(response, "metadata")
    assert "expired" in message
    assert message == EXPIRED.format(date="2024-03-01 00:00 UTC")
    assert connection_state(app, slug) is None


# -- sso configure ----------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS, ids=str)
def test_vendor_metadata_given_to_the_cli_signs_people_in(
    app: Flask,
    runner: FlaskCliRunner,
    tmp_path: Path,
    signers: dict[str, Signer],
    other_key: Signer,
    vendor: Vendor,
) -> None:
    slug = make_account(app)
    signer = signers[vendor.name]
    path = tmp_path / f"{vendor.name}.xml"
    path.write_bytes(metadata_for(vendor, signer, other_key))

    result = sso_configure(runner, slug, "--domain", DOMAIN, "--metadata", str(path), "--verified")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"SSO for {slug}; not enforced.\n  {DOMAIN}: verified (operator)\n"

    answer = sign_in_through_idp(app, vendor, slug, signer)

    assert answer.status_code == 303, answer.get_data(as_text=True)[:300]
    assert signed_in_emails(app) == [EVE]


def test_expired_google_metadata_is_refused_by_the_cli(
    app: Flask,
    runner: FlaskCliRunner,
    tmp_path: Path,
    signers: dict[str, Signer],
    other_key: Signer,
) -> None:
    slug = make_account(app)
    path = tmp_path / "google.xml"
    path.write_bytes(metadata_for(GOOGLE, signers["google"], other_key, valid_until=EXPIRED_ON))

    result = sso_configure(runner, slug, "--domain", DOMAIN, "--metadata", str(path))

    assert_clear_error(result, EXPIRED.format(date="2024-03-01 00:00 UTC"))
    assert "expired" in result.stderr
    assert connection_state(app, slug) is None
