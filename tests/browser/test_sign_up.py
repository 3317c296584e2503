"""Sign up, confirm the emailed link, sign in: with JavaScript (htmx steps) and without."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from terminus_hub.auth.views import CONFIRMED
from tests.browser.flows import email_field
from tests.browser.flows import enter_password
from tests.browser.flows import expect_account_home
from tests.browser.harness import PASSWORD
from tests.browser.harness import Hub
from tests.browser.harness import Shots

pytestmark = pytest.mark.browser


def _sign_up_and_confirm(page: Page, hub: Hub, shots: Shots, name: str) -> str:
    """Fill the sign-up form, open the mailed link, press Confirm; return the email."""
    email = hub.unique_email("ada")
    page.goto("/sign_up")
    shots(page, "sign-up")
    page.get_by_label("Your name").fill(name)
    email_field(page).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(f"{hub.url}/sign_up/check_email")
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    shots(page, "check-email")

    link = hub.mail.link(email)
    assert link.startswith(f"{hub.url}/confirm/"), link
    page.goto(link)
    expect(page.get_by_role("heading", name="Confirm your email")).to_be_visible()
    shots(page, "confirm")
    page.get_by_role("button", name="Confirm my email").click()

    expect(page).to_have_url(f"{hub.url}/sign_in")
    expect(page.get_by_text(CONFIRMED)).to_be_visible()
    expect(email_field(page)).to_have_value(email)  # remembered from the link
    return email


def test_sign_up_confirm_and_sign_in_with_javascript(page: Page, hub: Hub, shots: Shots) -> None:
    """A new person signs up, confirms by mail and signs in; the email step swaps in the
    password step without reloading the page and puts the cursor in the password field."""
    _sign_up_and_confirm(page, hub, shots, "Ada Lovelace")
    shots(page, "sign-in-email-step")

    page.evaluate("window.__marker = 1")
    page.get_by_role("button", name="Continue").click()
    password = page.get_by_label("Password", exact=True)
    expect(password).to_be_visible()
    expect(password).to_be_focused()
    assert page.evaluate("window.__marker") == 1, "the password step reloaded the page"
    expect(page).to_have_url(f"{hub.url}/sign_in")
    shots(page, "sign-in-password-step")

    enter_password(page, PASSWORD)
    expect_account_home(page, "Ada Lovelace")
    shots(page, "account-home")


def test_sign_up_confirm_and_sign_in_without_javascript(
    page_no_js: Page, hub: Hub, shots: Shots
) -> None:
    """The same journey with JavaScript off: every step is a whole page and still works."""
    page = page_no_js
    _sign_up_and_confirm(page, hub, shots, "Grace Hopper")

    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{hub.url}/sign_in/email")  # a full page, not a swap
    password = page.get_by_label("Password", exact=True)
    expect(password).to_be_focused()  # the page's autofocus, no script needed
    expect(page.get_by_role("button", name="Show")).to_be_hidden()  # needs JavaScript
    shots(page, "sign-in-password-step")

    enter_password(page, PASSWORD)
    expect_account_home(page, "Grace Hopper")
    shots(page, "account-home")
