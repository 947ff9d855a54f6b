"""The review page in headless Chromium: Debian's /usr/bin/chromium driven by Playwright (no downloaded
browser). conftest.py's ``browser`` and ``shots`` fixtures are made from these."""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# No sandbox (containers have no user namespaces), no GPU, and nothing that reaches the network by itself.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 860}
TIMEOUT_MS = 10_000


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed (with Playwright's driver) on leaving."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_folder(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A fresh temp folder for screenshots, its path printed so that a run's pictures can be found."""
    folder = tmp_path_factory.mktemp("review_screenshots")
    request.config.pluginmanager.get_plugin("terminalreporter").write_line(f"review screenshots: {folder}")
    return folder


def open_page(browser: Browser, url: str, viewport: dict | None = None) -> Page:
    """A new page at ``url``, ready; ``page.errors`` collects uncaught script errors."""
    page = browser.new_page(viewport=viewport or VIEWPORT)
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return page


def word(name: str) -> re.Pattern:
    """Matches a class attribute that contains the class ``name``."""
    return re.compile(rf"(^|\s){name}(\s|$)")


def card(page: Page, cid: str) -> Locator:
    """The curation grid's card of clip ``cid``."""
    return page.locator(f'.card[data-id="{cid}"]')
