"""Two-step sign-in as a person does it: set up an authenticator app, sign out, sign in with a
code, sign in with a recovery code, and change the email through the mailed link; with
JavaScript on and off. The codes come from pyotp, as from the person's phone."""

from __future__ import annotations

import time

import pyotp
import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from terminus_hub.accounts.settings_views import EMAIL_CHANGED
from tests.browser.flows import expect_account_home
from tests.browser.flows import sign_in
from tests.browser.flows import sign_out
from tests.browser.harness import Hub
from tests.browser.harness import NewPage
from tests.browser.harness import Shots

pytestmark = pytest.mark.browser


def _sign_out(page: Page, hub: Hub) -> None:
    sign_out(page)
    expect(page).to_have_url(f"{hub.url}/sign_in")


def _code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_authenticator_app_recovery_code_and_email_change(
    new_page: NewPage, hub: Hub, shots: Shots, javascript: bool
) -> None:
    page = new_page(javascript=javascript)
    person = hub.person("twostep", accounts=("Two Step Co",))
    sign_in(page, person.email, person.password)
    expect_account_home(page, "Two Step Co")

    # Set up the app: scan (read the key), type the code it shows.
    page.goto("/settings")
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").input_value()
    shots(page, "enrol")
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_text("That code does not match")).to_be_visible()
    page.get_by_label("Code").fill(_code(secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator("ol.codes li").all_inner_texts()
    assert len(codes) == 10
    copy = page.get_by_role("button", name="Copy")
    expect(copy).to_be_visible() if javascript else expect(copy).to_be_hidden()
    shots(page, "recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator("#second-factor")).to_contain_text("Recovery codes left: 10 of 10")

    # Sign out; the password alone is no longer enough.
    _sign_out(page, hub)
    sign_in(page, person.email, person.password)
    expect(page).to_have_url(f"{hub.url}/sign_in/mfa")
    shots(page, "code-step")
    used = _code(secret, steps_ahead=1)  # not the one just used to turn it on
    page.get_by_label("Code").fill(used)
    page.get_by_role("button", name="Sign in").click()
    expect_account_home(page, "Two Step Co")

    # A recovery code instead of the phone.
    _sign_out(page, hub)
    sign_in(page, person.email, person.password)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Sign in").click()
    expect_account_home(page, "Two Step Co")
    expect(page.get_by_text("You signed in with a recovery code. 9 left")).to_be_visible()

    # The email, changed through the link mailed to the new address.
    new_email = hub.unique_email("twostep-new")
    page.goto("/settings")
    page.get_by_label("New email").fill(new_email)
    page.locator("#email-current-password").fill(person.password)
    page.get_by_role("button", name="Change email").click()
    expect(page.get_by_text(f"We sent a link to {new_email}")).to_be_visible()
    page.goto(hub.mail.link(new_email))
    page.get_by_role("button", name="Use this email").click()
    expect(page.get_by_text(EMAIL_CHANGED.format(email=new_email))).to_be_visible()
    shots(page, "email-changed")

    _sign_out(page, hub)
    sign_in(page, new_email, person.password)
    expect(page).to_have_url(f"{hub.url}/sign_in/mfa")
    page.get_by_label("Code").fill(used)  # a code works once
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    page.get_by_label("Code").fill(codes[1])
    page.get_by_role("button", name="Sign in").click()
    expect_account_home(page, "Two Step Co")
