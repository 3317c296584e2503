"""SAML single sign-on in a real browser: the email step sends the person to their IdP (another
origin), they sign in there, and the IdP's signed answer lands them signed in on the account."""

from __future__ import annotations

import re
import secrets

import pytest
import requests
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.browser.flows import email_field
from tests.browser.flows import expect_account_home
from tests.browser.harness import Hub
from tests.browser.harness import NewPage
from tests.browser.harness import Shots
from tests.browser.idp_server import TITLE
from tests.browser.idp_server import IdpServer

pytestmark = pytest.mark.browser

DOMAIN = "sso-browser.example"  # email-validator refuses the reserved .test names
ACCOUNT = "Acme Single"


@pytest.fixture(scope="module")
def sso_slug(hub: Hub, idp: IdpServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An account whose domain enforces SSO through ``idp``, set up with `flask sso configure`."""
    owner = hub.person("sso-owner", accounts=(ACCOUNT,))
    slug = owner.slugs[0]
    metadata = tmp_path_factory.mktemp("sso") / "idp-metadata.xml"
    metadata.write_text(idp.metadata_xml)
    output = hub.cli(
        "sso",
        "configure",
        slug,
        "--domain",
        DOMAIN,
        "--metadata",
        str(metadata),
        "--enforce",
        "--verified",
    )
    assert "enforced" in output, output
    # The IdP learns the SP from the metadata the app serves, as an IdP administrator would.
    sp_metadata = requests.get(f"{hub.url}/sso/{slug}/metadata", timeout=10)
    assert sp_metadata.status_code == 200
    idp.trust_sp(sp_metadata.text)
    return slug


def _to_the_idp(page: Page, idp: IdpServer, shots: Shots, email: str) -> None:
    """Type the email at /sign_in, press Continue, and arrive at the IdP's sign-in page."""
    page.goto("/sign_in")
    email_field(page).fill(email)
    shots(page, "email-step")
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(idp.url)}/sso/redirect\?SAMLRequest="))
    expect(page.get_by_role("heading", name=f"Sign in to {TITLE}")).to_be_visible()
    shots(page, "idp-sign-in")
    page.get_by_label("Work email").fill(email)
    page.get_by_role("button", name="Sign in").click()


def _expect_signed_in_member(page: Page, hub: Hub, idp: IdpServer, slug: str, email: str) -> None:
    expect(page).to_have_url(f"{hub.url}/a/{slug}/")
    expect_account_home(page, ACCOUNT)
    expect(page.get_by_text("Account · Member")).to_be_visible()  # provisioned at first sign-in
    expect(page.locator(".topbar .who")).to_have_attribute("title", email)
    assert idp.errors == []


def test_enforced_domain_signs_in_through_the_idp(
    page: Page, hub: Hub, idp: IdpServer, sso_slug: str, shots: Shots
) -> None:
    """With JavaScript: email step → IdP on the other port → signed in on the account home."""
    email = f"ana-{secrets.token_hex(3)}@{DOMAIN}"
    _to_the_idp(page, idp, shots, email)
    _expect_signed_in_member(page, hub, idp, sso_slug, email)
    shots(page, "account-home")


def test_enforced_domain_signs_in_through_the_idp_without_javascript(
    new_page: NewPage, hub: Hub, idp: IdpServer, sso_slug: str, shots: Shots
) -> None:
    """Without JavaScript: the email step's answer moves on to the IdP by itself (no redirect
    of the form, which its CSP form-action would block), and the person presses the IdP's
    Continue button to post the answer back."""
    page = new_page(javascript=False)
    email = f"bo-{secrets.token_hex(3)}@{DOMAIN}"
    _to_the_idp(page, idp, shots, email)
    expect(page.get_by_role("heading", name="Signed in")).to_be_visible()
    shots(page, "idp-answer")
    page.get_by_role("button", name="Continue").click()
    _expect_signed_in_member(page, hub, idp, sso_slug, email)
    shots(page, "account-home")
