"""A person in two accounts signs in, sees the account picker and picks one."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.browser.flows import expect_account_home
from tests.browser.flows import sign_in
from tests.browser.harness import Hub
from tests.browser.harness import Shots

pytestmark = pytest.mark.browser


def test_person_in_two_accounts_picks_one(page: Page, hub: Hub, shots: Shots) -> None:
    """Sign-in lands on the picker listing both accounts; choosing one opens its home."""
    person = hub.person("twofold", accounts=("Alpha Works", "Beta Labs"))
    alpha, beta = person.slugs

    sign_in(page, person.email, person.password)
    expect(page).to_have_url(f"{hub.url}/accounts")
    expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()
    choices = page.locator("#account-picker .picker-item")
    expect(choices).to_have_count(2)
    for name, slug in (("Alpha Works", alpha), ("Beta Labs", beta)):
        expect(choices.filter(has_text=name)).to_have_attribute("href", f"/a/{slug}/")
    shots(page, "picker")

    choices.filter(has_text="Beta Labs").click()
    expect(page).to_have_url(f"{hub.url}/a/{beta}/")
    expect_account_home(page, "Beta Labs")
    expect(page.get_by_text("Account · Owner")).to_be_visible()
    shots(page, "beta-home")

    # The other account is one step away, through the switcher in the top bar.
    switcher = page.locator(".switcher summary")
    expect(switcher).to_contain_text("Beta Labs")  # it names the current account
    switcher.click()
    page.get_by_role("link", name="Alpha Works", exact=True).click()
    expect(page).to_have_url(f"{hub.url}/a/{alpha}/")
    expect_account_home(page, "Alpha Works")
