"""What every page state the browser suite visits must pass: axe-core, and no sideways scroll.

axe-core is pinned by ``tests/browser/axe/package-lock.json`` and installed by ``make browser``
(``npm ci``). It is run through Playwright's evaluate, which the page's CSP does not govern.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page
from playwright.sync_api import ViewportSize

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 levels A and AA.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PHONE_WIDTH = 390
PHONE: ViewportSize = {"width": PHONE_WIDTH, "height": 844}


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The WCAG 2.1 A/AA violations axe-core finds on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


def sideways_scroll(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: no sideways scroll)."""
    width: int = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


def problems(page: Page, javascript: bool = True) -> list[str]:
    """What is wrong with the page as it is now: axe-core's violations at its present size, and
    sideways scroll on a phone (the viewport is put back afterwards)."""
    if not javascript:
        return _problems_of_copy(page)
    found = []
    if violations := axe_violations(page):
        found.append(f"axe-core: {describe(violations)}")
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    if (extra := sideways_scroll(page)) > 0:
        found.append(f"{extra} px of sideways scroll at {PHONE_WIDTH} px")
    if size is not None:
        page.set_viewport_size(size)
    return found


def _problems_of_copy(page: Page) -> list[str]:
    """A page with JavaScript off never fires a timer, and axe-core waits on timers: check a
    copy of its HTML instead, served at the same address to a page that has JavaScript. The
    copy's scripts are taken out, so it stays the page a browser without JavaScript shows."""
    browser = page.context.browser
    assert browser is not None
    context = browser.new_context(viewport=page.viewport_size)
    try:
        copy = context.new_page()
        html = re.sub(r"<script\b[^>]*>.*?</script>", "", page.content(), flags=re.S | re.I)
        address = page.url
        copy.route(
            lambda url: url == address,
            lambda route: route.fulfill(status=200, content_type="text/html", body=html),
        )
        copy.goto(address)
        return problems(copy)
    finally:
        context.close()


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=2)
