"""Every page state a person meets, checked the same way: axe-core (WCAG 2.1 A and AA) with no
violations in light and dark, no sideways scroll on 390 and 360 px phones, and screenshots at
1280 and 390 px in both colour schemes (``screenshots/test_every_page_state.../``)."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect
from sqlalchemy import delete
from sqlalchemy import select

from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import Workspace
from tests.browser.a11y import PHONE
from tests.browser.a11y import axe_violations
from tests.browser.a11y import describe
from tests.browser.a11y import sideways_scroll
from tests.browser.flows import email_field
from tests.browser.flows import enter_password
from tests.browser.flows import expect_account_home
from tests.browser.flows import sign_in
from tests.browser.harness import Hub
from tests.browser.harness import Shots
from tests.browser.idp_server import IdpServer

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
NARROWEST = {"width": 360, "height": 740}


class Tour:
    """Check the page as it is now, in every size and scheme; remember what failed."""

    def __init__(self, page: Page, shots: Shots) -> None:
        self.page = page
        self.shots = shots
        self.problems: list[str] = []

    def check(self, state: str) -> None:
        page = self.page
        for scheme in ("light", "dark"):
            # Reduced motion: no colour transition is caught half-way when the scheme flips.
            page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
            for name, size in (("1280", DESKTOP), ("390", PHONE)):
                page.set_viewport_size(size)  # type: ignore[arg-type]
                found = axe_violations(page)
                if found:
                    self.problems.append(f"{state} ({name} px, {scheme}): {describe(found)}")
                if name == "390" and (extra := sideways_scroll(page)) > 0:
                    self.problems.append(
                        f"{state} ({scheme}): {extra} px of sideways scroll at 390"
                    )
                self.shots(page, f"{state}-{name}-{scheme}")
        # The narrowest phone the layout is made for: nothing scrolls sideways there either.
        page.set_viewport_size(NARROWEST)  # type: ignore[arg-type]
        if (extra := sideways_scroll(page)) > 0:
            self.problems.append(f"{state}: {extra} px of sideways scroll at 360")
        page.emulate_media(color_scheme="light")
        page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


def test_every_page_state_passes_axe_and_fits_a_phone(
    page: Page, hub: Hub, idp: IdpServer, shots: Shots, tmp_path: Path
) -> None:
    person = hub.person("tour", accounts=("Tourists", "Second Sightseers"))
    slug = person.slugs[0]
    tour = Tour(page, shots)
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]

    # Before signing in: the email step, the password step with a refusal, sign-up, an error.
    page.goto("/sign_in")
    tour.check("sign-in-email")
    email_field(page).fill(person.email)
    page.get_by_role("button", name="Continue").click()
    enter_password(page, "not the password at all")
    password = page.get_by_label("Password", exact=True)
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_attribute("aria-describedby", re.compile(r"\bsign-in-error\b"))
    tour.check("sign-in-refused")
    page.goto("/sign_up")
    tour.check("sign-up")
    page.goto("/no/such/page")
    tour.check("error-404")

    # Signed in, with two accounts: the picker, then each account page.
    sign_in(page, person.email, person.password)
    expect(page).to_have_url(f"{hub.url}/accounts")
    tour.check("picker")
    page.get_by_role("link", name=re.compile("Tourists")).click()
    expect_account_home(page, "Tourists")
    expect(page.locator(".switcher summary")).to_contain_text("Tourists")
    expect(page.get_by_role("link", name="Home")).to_have_attribute("aria-current", "page")
    tour.check("home")

    page.locator("#workspaces").get_by_role("link", name="Main").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Main")
    expect(page.get_by_text("No records yet.")).to_be_visible()
    tour.check("workspace-empty")

    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_text("No keys yet.")).to_be_visible()
    tour.check("keys-empty")
    page.get_by_label("Key name").fill("Tour pipeline")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key-value")).to_be_visible()
    expect(page.get_by_role("link", name="Done")).to_be_visible()
    tour.check("keys-new-key")
    # On a phone the whole key shows, wrapped, instead of scrolling inside its box.
    page.set_viewport_size(PHONE)
    hidden = "(el) => el.parentElement.scrollWidth - el.parentElement.clientWidth"
    assert page.locator("#new-key-value").evaluate(hidden) == 0
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]

    # Software with the key fills the workspace; the web app lists what it wrote.
    key = page.locator("#new-key-value").inner_text().strip()
    main = hub.api("/api/v1/workspaces", key).json()["data"][0]
    for n, data in enumerate(({"plan": "team", "seats": 12}, {}, {"note": "x" * 300}), start=1):
        body = {"workspace_id": main["id"], "title": f"Tour record {n}", "data": data}
        assert hub.api("/api/v1/records", key, "POST", body).status_code == 201
    page.goto(f"/a/{slug}/workspaces/{main['id']}")
    expect(page.locator("#records tbody tr")).to_have_count(3)
    first = page.locator("#records tr", has_text="Tour record 1")
    first.locator("summary").click()
    expect(first.locator("pre")).to_contain_text('"seats": 12')
    tour.check("workspace-records")
    page.get_by_role("link", name="API keys").click()

    page.get_by_role("link", name="Members").click()
    page.get_by_label("Email").fill(hub.unique_email("invitee"))
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("heading", name="Pending invitations")).to_be_visible()
    tour.check("members-invited")

    page.get_by_role("link", name="Single sign-on").click()
    expect(page).to_have_url(f"{hub.url}/a/{slug}/sso")
    tour.check("sso")
    metadata = tmp_path / "idp-metadata.xml"
    metadata.write_text(idp.metadata_xml)
    page.get_by_label("Email domains").fill("tour-sso.example")
    page.get_by_label("Identity provider metadata (XML file)").set_input_files(metadata)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#domain-tour-sso\\.example")).to_contain_text("Unverified.")
    expect(page.locator("#sso-status")).to_contain_text("not enforced")
    tour.check("sso-configured")

    page.get_by_role("link", name="Audit log").click()
    event = page.locator(".event-text", has_text="created the API key “Tour pipeline”")
    expect(event).to_be_visible()
    tour.check("audit")

    page.locator(".account-tabs").get_by_role("link", name="Settings").click()
    expect(page).to_have_url(f"{hub.url}/a/{slug}/settings")
    tour.check("account-settings")

    # The person's own pages, through their menu.
    page.locator(".menu.person summary").click()
    page.locator(".menu.person").get_by_role("link", name="Sessions").click()
    expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()
    tour.check("sessions")
    page.locator(".menu.person summary").click()
    page.locator(".menu.person").get_by_role("link", name="Settings").click()
    expect(page).to_have_url(f"{hub.url}/settings")
    tour.check("person-settings")
    page.goto("/settings/mfa/totp")
    expect(page.locator(".qr svg")).to_be_visible()
    tour.check("authenticator-setup")
    # On a phone the whole setup key shows in its field, for typing it in by hand.
    page.set_viewport_size(PHONE)
    assert page.locator("#totp-secret").evaluate("(el) => el.scrollWidth - el.clientWidth") == 0
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    secret = page.locator("#totp-secret").input_value()
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    tour.check("recovery-codes")

    # An account made before every account had a workspace (the API keeps the last one now).
    with hub.cli_app.app_context():
        second = db.session.scalar(select(Account).where(Account.slug == person.slugs[1]))
        assert second is not None
        db.session.execute(delete(Workspace).where(Workspace.account_id == second.id))
        db.session.commit()
    page.goto(f"/a/{person.slugs[1]}/")
    expect(page.get_by_text("No workspaces yet.")).to_be_visible()
    tour.check("home-without-workspaces")

    assert not tour.problems, "\n".join(tour.problems)


def test_menus_close_on_escape_and_give_focus_back(page: Page, hub: Hub) -> None:
    person = hub.person("menus", accounts=("Menu One", "Menu Two"))
    sign_in(page, person.email, person.password)
    page.goto(f"/a/{person.slugs[1]}/")
    switcher = page.locator(".switcher")
    switcher.locator("summary").click()
    current = switcher.get_by_role("link", name="Menu Two")
    expect(current).to_have_attribute("aria-current", "true")
    switcher.get_by_role("link", name="Menu One").focus()
    page.keyboard.press("Escape")
    expect(switcher).not_to_have_attribute("open", "")
    expect(switcher.locator("summary")).to_be_focused()


def test_a_role_changes_only_when_change_is_pressed(page: Page, hub: Hub) -> None:
    """Arrow keys on a closed select fire "change": moving through the members table with the
    keyboard must not promote anyone. Change appears once another role is picked, and saves."""
    owner = hub.person("roles", accounts=("Role Play",))
    slug = owner.slugs[0]
    member = hub.person("role-member", accounts=())
    hub.cli("accounts", "add-member", slug, member.email, "--role", "member")
    sign_in(page, owner.email, owner.password)
    page.goto(f"/a/{slug}/members")
    role = page.get_by_label(f"Role of {member.email}")
    change = page.locator("form", has=role).get_by_role("button", name="Change")
    expect(change).to_be_hidden()

    role.focus()
    page.keyboard.press("ArrowDown")
    expect(role).to_have_value("admin")
    expect(change).to_be_visible()
    page.reload()
    expect(page.get_by_label(f"Role of {member.email}")).to_have_value("member")  # nothing sent

    role = page.get_by_label(f"Role of {member.email}")
    role.select_option("admin")
    page.locator("form", has=role).get_by_role("button", name="Change").click()
    expect(page.get_by_label(f"Role of {member.email}")).to_have_value("admin")
    page.reload()
    expect(page.get_by_label(f"Role of {member.email}")).to_have_value("admin")
