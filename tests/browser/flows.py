"""Steps that several browser flows share, each done the way a person does it."""

from __future__ import annotations

import re

from playwright.sync_api import Locator
from playwright.sync_api import Page
from playwright.sync_api import expect

ACCOUNT_HOME = re.compile(r"^http://[^/]+/a/[^/]+/$")


def email_field(page: Page) -> Locator:
    return page.get_by_label("Email", exact=True)


def sign_in(page: Page, email: str, password: str) -> None:
    """Email step, Continue, password step, Sign in (htmx swaps or full pages alike)."""
    page.goto("/sign_in")
    email_field(page).fill(email)
    page.get_by_role("button", name="Continue").click()
    enter_password(page, password)


def enter_password(page: Page, password: str) -> None:
    """Type the password on the password step, press Sign in, and wait for what follows.

    A refused attempt answers with a step that looks just like the one before, so the old
    step is marked first: whatever comes next (an htmx swap, a whole page, another page
    altogether) no longer carries the mark, and the next action acts on the new screen.
    """
    field = page.get_by_label("Password", exact=True)
    expect(field).to_be_visible()
    step = page.locator("#sign-in-step")
    step.evaluate("element => { element.dataset.answered = 'no'; }")
    field.fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#sign-in-step[data-answered]")).to_have_count(0)


def form_error(page: Page) -> Locator:
    return page.locator("#sign-in-step .form-error")


def expect_account_home(page: Page, name: str) -> None:
    """The account home: its name as the heading and the workspace Main listed."""
    expect(page).to_have_url(ACCOUNT_HOME)
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    workspaces = page.locator("#workspaces")
    expect(workspaces.get_by_role("heading", name="Workspaces")).to_be_visible()
    expect(workspaces.get_by_role("link", name="Main", exact=True)).to_be_visible()


def sign_out(page: Page) -> None:
    """Open the person's menu in the top bar and sign out there."""
    page.locator(".menu.person summary").click()
    page.locator(".menu.person").get_by_role("button", name="Sign out").click()
