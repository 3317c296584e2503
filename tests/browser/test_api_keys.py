"""An owner creates an API key (shown once, copied), revokes it, and the API refuses it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from terminus_hub.accounts.views import KEY_REVOKED
from terminus_hub.api_tokens import display_prefix
from tests.browser.flows import expect_account_home
from tests.browser.flows import sign_in
from tests.browser.harness import Hub
from tests.browser.harness import NewPage
from tests.browser.harness import Shots

pytestmark = pytest.mark.browser

TOKEN = re.compile(r"^thub_[0-9A-Za-z]{32}$")
KEY_NAME = "CI pipeline"


def _create_key(page: Page, hub: Hub, shots: Shots) -> tuple[str, str]:
    """Sign in as a new owner, create a key on the keys page; return (slug, token shown)."""
    person = hub.person("owner", accounts=("Keymakers",))
    slug = person.slugs[0]
    sign_in(page, person.email, person.password)
    expect_account_home(page, "Keymakers")
    page.get_by_role("link", name="API keys").click()
    expect(page).to_have_url(f"{hub.url}/a/{slug}/api_keys")
    expect(page.get_by_text("No keys yet.")).to_be_visible()
    page.get_by_label("Key name").fill(KEY_NAME)
    page.get_by_role("button", name="Create key").click()

    shown = page.locator("#new-key-value")
    expect(shown).to_be_visible()
    expect(page.get_by_role("heading", name=f"Your new key “{KEY_NAME}”")).to_be_visible()
    token = shown.inner_text().strip()
    assert TOKEN.match(token), token
    expect(page.locator("#key-list")).to_contain_text(KEY_NAME)
    expect(page.locator("#key-list")).to_contain_text(display_prefix(token) + "…")
    assert token not in page.locator("#key-list").inner_text()
    return slug, token


def _revoke_key(page: Page, hub: Hub, shots: Shots, token: str) -> None:
    """Delete the key through its confirmation; it leaves the list and the API refuses it."""
    row = page.locator("#key-list tbody tr", has_text=KEY_NAME)
    delete_key = row.get_by_role("button", name="Delete key")
    expect(delete_key).to_be_hidden()  # behind the confirmation
    row.get_by_text("Delete", exact=True).click()
    expect(row).to_contain_text(f"Requests using “{KEY_NAME}” will fail at once.")
    shots(page, "confirm-revoke")
    delete_key.click()
    expect(page.get_by_text(KEY_REVOKED.format(name=KEY_NAME))).to_be_visible()
    expect(page.locator("#key-list tbody tr")).to_have_count(0)
    expect(page.get_by_text("No keys yet.")).to_be_visible()
    shots(page, "revoked")

    refused = hub.api("/api/v1/account", token)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "invalid_token"


def test_key_shown_once_copied_then_revoked_with_javascript(
    new_page: NewPage, hub: Hub, shots: Shots
) -> None:
    """The new key appears once with a working Copy button that copies exactly the token; the
    token works; a reload no longer shows it; after revoking, the API answers 401."""
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    slug, token = _create_key(page, hub, shots)
    expect(page).to_have_url(f"{hub.url}/a/{slug}/api_keys")  # swapped in, not a new page
    expect(page.locator("#new-key-value")).to_be_focused()
    shots(page, "key-shown-once")

    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token

    works = hub.api("/api/v1/account", token)
    assert works.status_code == 200, works.text
    assert works.json()["slug"] == slug

    page.reload()
    expect(page.locator("#key-list")).to_contain_text(KEY_NAME)
    expect(page.locator("#new-key-value")).to_have_count(0)
    assert token not in page.content()

    _revoke_key(page, hub, shots, token)


def test_key_shown_once_then_revoked_without_javascript(
    page_no_js: Page, hub: Hub, shots: Shots
) -> None:
    """Without JavaScript the key page still works: the key is shown once in a code block (no
    Copy button, which needs a script), is gone on the next visit, and can be revoked."""
    page = page_no_js
    slug, token = _create_key(page, hub, shots)
    expect(page.get_by_role("button", name="Copy")).to_be_hidden()
    shots(page, "key-shown-once")
    assert hub.api("/api/v1/account", token).status_code == 200

    # A fresh visit (a reload here would send the create form again, as any POST page would).
    page.goto(f"/a/{slug}/api_keys")
    expect(page.locator("#key-list")).to_contain_text(KEY_NAME)
    expect(page.locator("#new-key-value")).to_have_count(0)
    assert token not in page.content()

    _revoke_key(page, hub, shots, token)
