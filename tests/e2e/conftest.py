"""Browser fixtures: one real `streamlit run app.py` per test session, driven by Debian's headless Chromium.

The server gets its own result database (a temp `ASSOCLENS_DB`) and a free localhost port; it is killed at the end
of the session. Without `chromium` or Playwright the tests skip, unless `ASSOCLENS_REQUIRE_BROWSER=1` (set by
`.ci/run`), where they fail instead. Screenshots go to `artifacts/screenshots/`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    CHROMIUM_ARGS,
    PAGE_TIMEOUT_MS,
    AppServer,
    browser_unavailable,
    open_page,
    screenshot,
    start_server,
    stop_server,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        browser_unavailable("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        browser_unavailable("Playwright is not installed (pip install -r requirements-dev.txt)")
    return path


@pytest.fixture(scope="session")
def app_server(browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app for the whole session, warmed up by one visit to "/" (see test_deep_link.py for why)."""
    folder = tmp_path_factory.mktemp("e2e-server")
    server = start_server(folder / "results.duckdb", folder / "streamlit.log")
    try:
        warm_up(browser, server)
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def browser(chromium_executable: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.e2e_failed = report.failed  # read by the `page` fixture to keep a screenshot of the failure
    return report


def warm_up(browser, server: AppServer) -> None:
    """First visit at the root: the entry point registers its navigation and the model loads once."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    started = time.monotonic()
    open_page(tab, server, "home")
    server.warm_up_s = time.monotonic() - started
    context.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, browser, app_server: AppServer):
    """A fresh browser context (its own Streamlit session) per test; a failed test leaves a screenshot."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    if getattr(request.node, "e2e_failed", False):
        try:
            screenshot(tab, f"FAILED-{request.node.name}")
        except Exception:  # noqa: BLE001 - the page may be gone; the failure itself is what matters
            pass
    context.close()
