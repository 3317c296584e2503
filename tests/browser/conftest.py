"""Fixtures of the browser suite: the running app, an IdP on another port, and chromium.

One set of servers serves the whole suite (see ``harness.py``): the app under gunicorn with its
database and a real SMTP sink, plus the IdP web site of ``idp_server.py``. Debian's chromium is
driven by Playwright, with a fresh context for every page a test opens.

Each flow saves its key screens under ``screenshots/<test>/``. A failing test also leaves a
screenshot and the HTML of each of its pages under ``failures/``; its report shows their paths
and the app's log of that test, and the run ends by naming them all again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import Playwright
from playwright.sync_api import ViewportSize
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright

from tests.browser.harness import WITHOUT_JAVASCRIPT
from tests.browser.harness import Hub
from tests.browser.harness import NewPage
from tests.browser.harness import Shots
from tests.browser.harness import file_stem
from tests.browser.harness import running_hub
from tests.browser.idp_server import IdpServer

HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE / "screenshots"
FAILURES = HERE / "failures"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1000, "height": 700}
WAIT_MS = 15_000  # the longest a page or an expectation waits (two cores, maybe a benchmark)

_failure_paths: list[str] = []
_PAGES = pytest.StashKey[list[Page]]()
_LOG_MARK = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """The app under gunicorn, migrated by `flask db upgrade`, mailing to a real SMTP sink."""
    with running_hub(tmp_path_factory.mktemp("hub")) as running:
        yield running


@pytest.fixture(scope="session")
def idp(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpServer]:
    """The identity provider's web site, on its own port."""
    server = IdpServer(tmp_path_factory.mktemp("idp"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's chromium (Playwright's own browser download is never used)."""
    shutil.rmtree(FAILURES, ignore_errors=True)  # only this run's failures are left there
    expect.set_options(timeout=WAIT_MS)
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def new_page(browser: Browser, hub: Hub, request: pytest.FixtureRequest) -> Iterator[NewPage]:
    """Open a page in a fresh context (``javascript=False`` for a browser without JavaScript)."""
    contexts = []
    pages = request.node.stash.setdefault(_PAGES, [])
    request.node.stash[_LOG_MARK] = len(hub.log())

    def make(javascript: bool = True, permissions: list[str] | None = None) -> Page:
        context = browser.new_context(
            base_url=hub.url,
            java_script_enabled=javascript,
            viewport=VIEWPORT,
            permissions=permissions or [],
        )
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        if not javascript:
            WITHOUT_JAVASCRIPT.add(page)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: NewPage) -> Page:
    """A page in a fresh context, JavaScript on."""
    return new_page()


@pytest.fixture
def page_no_js(new_page: NewPage) -> Page:
    """A page in a fresh context with JavaScript off."""
    return new_page(javascript=False)


@pytest.fixture
def shots(request: pytest.FixtureRequest, hub: Hub) -> Shots:
    """Screenshots of this test's key screens, in screenshots/<test>/ (emptied first)."""
    folder = SCREENSHOTS / file_stem(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Shots(folder, hub.url)


# -- reports ------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failure: save each page's screenshot and HTML, and add the app's log of this test."""
    report = yield
    if report.when != "call" or not report.failed:
        return report
    saved = []
    for n, page in enumerate(item.stash.get(_PAGES, []), start=1):
        if page.is_closed():
            continue
        stem = FAILURES / f"{file_stem(item.name)}-page{n}"
        FAILURES.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=f"{stem}.png", full_page=True)
            saved.append(f"{stem}.png")
            Path(f"{stem}.html").write_text(page.content())
            saved.append(f"{stem}.html")
        except Exception as exc:  # a crashed page must not hide the test's own failure
            saved.append(f"{stem}: not saved ({exc!r})")
    if saved:
        _failure_paths.extend(f"{item.nodeid}: {path}" for path in saved)
        report.sections.append(("browser failure artifacts", "\n".join(saved)))
    hub = getattr(item, "funcargs", {}).get("hub")
    if isinstance(hub, Hub):
        logged = hub.log()[item.stash.get(_LOG_MARK, 0) :]
        report.sections.append(("app log (this test)", logged[-20_000:]))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the failure screenshots and HTML at the end of the run, where CI output shows them."""
    if _failure_paths:
        terminalreporter.section("browser failure artifacts")
        for line in _failure_paths:
            terminalreporter.write_line(line)
