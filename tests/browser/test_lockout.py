"""Lockout after failed sign-ins, the unlock mail, and signing in again: JavaScript on and off."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from terminus_hub.auth.recovery_views import UNLOCKED
from terminus_hub.core.signin import INCORRECT
from tests.browser.flows import email_field
from tests.browser.flows import enter_password
from tests.browser.flows import expect_account_home
from tests.browser.flows import form_error
from tests.browser.harness import LOCKOUT_MAX_ATTEMPTS
from tests.browser.harness import Hub
from tests.browser.harness import NewPage
from tests.browser.harness import Shots

pytestmark = pytest.mark.browser


def _failure_screen(page: Page) -> str:
    """What the person sees of a refused sign-in: the message and the form around it."""
    expect(form_error(page)).to_have_text(INCORRECT)
    return page.locator("#sign-in-step").inner_text()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_lockout_then_unlock_by_mail_then_sign_in(
    new_page: NewPage, hub: Hub, shots: Shots, javascript: bool
) -> None:
    """Wrong passwords lock the user; a locked user, even with the right password, gets the
    very same generic message; the mailed unlock link clears the lock and sign-in works."""
    page = new_page(javascript=javascript)
    person = hub.person("locked", accounts=("Lockwood",))
    page.goto("/sign_in")
    email_field(page).fill(person.email)
    page.get_by_role("button", name="Continue").click()

    screens = []
    for attempt in range(LOCKOUT_MAX_ATTEMPTS):
        enter_password(page, f"not the password {attempt}")
        screens.append(_failure_screen(page))
    shots(page, "wrong-password")
    hub.mail.wait(person.email)  # the unlock mail goes out when it locks

    enter_password(page, person.password)  # right password, but locked
    locked_screen = _failure_screen(page)
    shots(page, "locked")
    assert locked_screen == screens[0] == screens[-1]
    expect(page).not_to_have_url(f"{hub.url}/a/{person.slugs[0]}/")

    assert hub.mail.count(person.email) == 1  # one unlock mail, not one per refused attempt
    link = hub.mail.link(person.email)
    assert link.startswith(f"{hub.url}/unlock/"), link
    page.goto(link)
    expect(page.get_by_role("heading", name="Unlock your account")).to_be_visible()
    shots(page, "unlock")
    page.get_by_role("button", name="Unlock my account").click()
    expect(page).to_have_url(f"{hub.url}/sign_in")
    expect(page.get_by_text(UNLOCKED)).to_be_visible()
    expect(email_field(page)).to_have_value(person.email)

    page.get_by_role("button", name="Continue").click()
    enter_password(page, person.password)
    expect_account_home(page, "Lockwood")
    shots(page, "signed-in")
