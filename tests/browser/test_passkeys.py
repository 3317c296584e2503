"""Passkeys in Chromium with a CDP virtual authenticator (internal transport, resident keys,
user verification): register one on /settings, sign in with it from the email step without
a password, and use it as the second factor after a password."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.browser.flows import expect_account_home
from tests.browser.flows import sign_in
from tests.browser.flows import sign_out
from tests.browser.harness import Hub
from tests.browser.harness import NewPage
from tests.browser.harness import Shots

pytestmark = pytest.mark.browser


# Counts the WebAuthn sign-in requests a page makes (window.passkeyRequests), so a test can
# wait for one to have started. Playwright adds it to every page, outside the CSP.
_COUNT_REQUESTS = """
window.passkeyRequests = 0;
if (navigator.credentials) {
  const get = navigator.credentials.get.bind(navigator.credentials);
  navigator.credentials.get = (options) => { window.passkeyRequests += 1; return get(options); };
}
"""


def _virtual_authenticator(page: Page) -> tuple[Any, str]:
    page.add_init_script(_COUNT_REQUESTS)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def presence(cdp: Any, authenticator: str, enabled: bool) -> None:
    """Whether the virtual authenticator answers by itself (a person touching it)."""
    cdp.send(
        "WebAuthn.setAutomaticPresenceSimulation",
        {"authenticatorId": authenticator, "enabled": enabled},
    )


def _sign_out(page: Page, hub: Hub) -> None:
    sign_out(page)
    expect(page).to_have_url(f"{hub.url}/sign_in")


def test_register_a_passkey_then_sign_in_with_it_two_ways(
    new_page: NewPage, hub: Hub, shots: Shots
) -> None:
    page = new_page()
    cdp, authenticator = _virtual_authenticator(page)
    person = hub.person("passkey", accounts=("Passkey Co",))
    sign_in(page, person.email, person.password)
    expect_account_home(page, "Passkey Co")

    page.goto("/settings")
    passkeys = page.locator("#passkeys")
    expect(passkeys.get_by_text("Adding a passkey needs JavaScript")).to_be_hidden()
    # A passkey outlives sessions: even right after signing in, the password is asked again.
    passkeys.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_label("Password", exact=True).fill(person.password)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page).to_have_url(f"{hub.url}/settings#passkeys")
    passkeys.get_by_label("Name (optional)").fill("Test laptop")
    passkeys.get_by_role("button", name="Add a passkey").click()
    expect(passkeys.locator(".passkey-list")).to_contain_text("Test laptop")
    shots(page, "registered")
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(held) == 1 and held[0]["isResidentCredential"]

    # Passwordless, from the email step's autofill (conditional mediation): the virtual
    # authenticator answers as a person picking the passkey offered on the email field would.
    _sign_out(page, hub)
    expect_account_home(page, "Passkey Co")

    # Passwordless, with the button: the autofill request waits (no one picks it), the button
    # replaces it with its own. The virtual authenticator decides when a request starts whether
    # it is touched, so the touch is switched on between the two requests: after the page's
    # autofill request started, before the button makes its own.
    presence(cdp, authenticator, False)
    sign_out(page)
    expect(page).to_have_url(f"{hub.url}/sign_in")
    page.wait_for_function("() => window.passkeyRequests === 1")
    presence(cdp, authenticator, True)
    button = page.get_by_role("button", name="Sign in with a passkey")
    expect(button).to_be_visible()
    button.click()  # stops the autofill request and makes its own, which is answered
    expect_account_home(page, "Passkey Co")

    # As the second factor after the password (the autofill must not answer first).
    presence(cdp, authenticator, False)
    _sign_out(page, hub)
    sign_in(page, person.email, person.password)
    presence(cdp, authenticator, True)
    expect(page).to_have_url(f"{hub.url}/sign_in/mfa")
    shots(page, "second-factor")
    page.get_by_role("button", name="Use a passkey").click()
    expect_account_home(page, "Passkey Co")
    page.goto("/settings")
    expect(page.locator("#passkeys")).to_contain_text("last used")


def test_without_javascript_passkeys_say_so_and_the_rest_works(
    page_no_js: Page, hub: Hub, shots: Shots
) -> None:
    page = page_no_js
    person = hub.person("nojs-passkey", accounts=("No Script Co",))
    page.goto("/sign_in")
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()
    sign_in(page, person.email, person.password)
    expect_account_home(page, "No Script Co")
    page.goto("/settings")
    expect(page.get_by_text("Adding a passkey needs JavaScript")).to_be_visible()
    expect(page.get_by_role("button", name="Add a passkey")).to_be_hidden()
    shots(page, "settings-without-javascript")
