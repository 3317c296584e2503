"""Signing in with the keyboard alone: labels, tab order, Enter, focus and its visible ring."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.browser.flows import expect_account_home
from tests.browser.harness import Hub
from tests.browser.harness import Shots

pytestmark = pytest.mark.browser

# The focused element's own description, and whether a focus ring shows: an outline or a
# box-shadow that is not "none" and has width.
_FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow !== "none" && style.boxShadow !== "";
  const label = el.labels && el.labels.length ? el.labels[0].textContent.trim() : null;
  return {tag: el.tagName.toLowerCase(), id: el.id, type: el.type || null,
          text: (el.textContent || "").trim(), label: label, ring: outline || shadow,
          outline: style.outlineStyle + " " + style.outlineWidth, shadow: style.boxShadow};
}"""


def _focused(page: Page) -> dict[str, object]:
    return page.evaluate(_FOCUSED)


def test_sign_in_with_the_keyboard_only(page: Page, hub: Hub, shots: Shots) -> None:
    """Only Tab, typing and Enter: the labelled email field has focus and a visible ring, Tab
    reaches Continue (ringed too), Enter submits, focus moves to the password field, and Enter
    signs in."""
    person = hub.person("keys", accounts=("Keyboard Club",))
    page.goto("/sign_in")
    expect(page.get_by_label("Email", exact=True)).to_be_focused()  # autofocus

    email = _focused(page)
    assert email["id"] == "email" and email["label"] == "Email", email
    assert email["ring"], f"no focus indicator on the email field: {email}"
    page.keyboard.type(person.email)

    page.keyboard.press("Tab")
    button = _focused(page)
    assert (button["tag"], button["text"]) == ("button", "Continue"), button
    assert button["ring"], f"no focus indicator on Continue: {button}"
    shots(page, "continue-focused")

    page.keyboard.press("Enter")
    password = page.get_by_label("Password", exact=True)
    expect(password).to_be_focused()
    field = _focused(page)
    assert (field["id"], field["type"], field["label"]) == ("password", "password", "Password")
    assert field["ring"], f"no focus indicator on the password field: {field}"
    shots(page, "password-focused")

    page.keyboard.type(person.password)
    page.keyboard.press("Enter")
    expect_account_home(page, "Keyboard Club")
    shots(page, "signed-in")
