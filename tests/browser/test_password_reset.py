"""Forgot password, the reset mail, a new password, and signing in with it; JavaScript on/off."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from terminus_hub.core.recovery import FORGOT_SENT
from terminus_hub.core.recovery import PASSWORD_CHANGED
from terminus_hub.core.signin import INCORRECT
from tests.browser.flows import email_field
from tests.browser.flows import enter_password
from tests.browser.flows import expect_account_home
from tests.browser.flows import form_error
from tests.browser.flows import sign_in
from tests.browser.harness import Hub
from tests.browser.harness import NewPage
from tests.browser.harness import Shots

pytestmark = pytest.mark.browser

NEW_PASSWORD = "marble kettle orbiting finches"


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_forgot_password_reset_by_mail_then_sign_in(
    new_page: NewPage, hub: Hub, shots: Shots, javascript: bool
) -> None:
    """From the sign-in page a person asks for a reset link, sets a new password through the
    mailed link, and signs in with it; the old password no longer works."""
    page = new_page(javascript=javascript)
    person = hub.person("forgetful", accounts=("Forgetful Co",))
    page.goto("/sign_in")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(f"{hub.url}/password/forgot")
    email_field(page).fill(person.email)
    shots(page, "forgot")
    page.get_by_role("button", name="Email me a reset link").click()
    expect(page.get_by_text(FORGOT_SENT.format(minutes=60))).to_be_visible()  # the default
    shots(page, "link-sent")

    link = hub.mail.link(person.email)
    assert link.startswith(f"{hub.url}/password/reset/"), link
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password").fill(NEW_PASSWORD)
    shots(page, "new-password")
    page.get_by_role("button", name="Set new password").click()
    expect(page).to_have_url(f"{hub.url}/sign_in")
    expect(page.get_by_text(PASSWORD_CHANGED)).to_be_visible()

    sign_in(page, person.email, person.password)  # the old one
    expect(form_error(page)).to_have_text(INCORRECT)
    enter_password(page, NEW_PASSWORD)
    expect_account_home(page, "Forgetful Co")
    shots(page, "signed-in")
