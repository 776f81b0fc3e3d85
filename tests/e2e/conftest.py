"""Playwright fixtures: the built site served under /scribblenet/ on a free port, Chromium
launched from /usr/bin/chromium, and the shared pages (`app`, `debug_app`) with every request
recorded: when a module's page closes, it must not have asked anything of another host.

The site is $SCRIBBLENET_DIST if set (an existing build), else built afresh from the work tree
into a temporary directory. Under Pyodide these tests cannot run and are not collected.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SCRIBBLENET_CHROMIUM", "/usr/bin/chromium")

if sys.platform == "emscripten":
    collect_ignore_glob = ["test_*.py"]  # no browser, sockets or subprocesses in Pyodide
else:
    from page_helpers import BOOT_TIMEOUT_MS, is_local, wait_ready
    from playwright.sync_api import Browser, BrowserContext, Page, expect

DEBUG_SUBSET = 2000  # the ?debug page trains on the first 2,000 images


@pytest.fixture(scope="session")
def base_url(site_url: str) -> str:
    """pytest-playwright's base URL: relative page.goto() paths resolve under the site."""
    return site_url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """The system Chromium, quiet: no sandbox (containers), GPU or background traffic."""
    if not Path(CHROMIUM).is_file() and not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@dataclass
class App:
    """The page plus what it did: every URL requested (page and workers) and console errors."""

    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # console errors and uncaught errors
    page_errors: list[str] = field(default_factory=list)  # uncaught errors and rejections
    ready_seconds: float = math.nan
    sent: list[str] = field(default_factory=list)  # "METHOD url" of requests other than GET

    def assert_stayed_local(self) -> None:
        """Nothing went to another host, and nothing was sent up (only GETs)."""
        assert [url for url in self.requests if not is_local(url)] == []
        assert self.sent == []


def open_app(browser: Browser, url: str) -> tuple[BrowserContext, App]:
    """A new context and page at `url`, recording what it does; returns once it can predict."""
    # The service worker would answer repeat requests from its cache and hide them from the
    # request log; test_service_worker_serves_repeat_visits covers it on its own.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = context.new_page()
    app = App(page)

    def record(request) -> None:
        app.requests.append(request.url)
        if request.method != "GET":
            app.sent.append(f"{request.method} {request.url}")

    context.on("request", record)
    page.on("console", lambda m: app.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: (app.errors.append(str(e)), app.page_errors.append(str(e))))
    started = time.perf_counter()
    page.goto(url)
    wait_ready(page)
    app.ready_seconds = time.perf_counter() - started
    return context, app


@pytest.fixture(scope="module")
def app(browser: Browser, site_url: str):
    """A page on the site, ready to predict, shared by the tests of one module (in file order).

    When the module is done, the page must have stayed local and logged no errors.
    """
    context, app = open_app(browser, site_url)
    yield app
    try:
        app.assert_stayed_local()
        assert app.errors == [], app.errors  # no CSP violations, no uncaught errors
    finally:
        context.close()


@pytest.fixture(scope="module")
def debug_app(browser: Browser, site_url: str):
    """Like `app`, opened with ?debug: test hooks (a `debug` worker request), a 4 s watchdog
    and training on the first DEBUG_SUBSET images. Its tests crash the worker, so errors are
    expected; it must still have stayed local.
    """
    context, app = open_app(browser, f"{site_url}?debug&watchdog=4000&subset={DEBUG_SUBSET}")
    expect(app.page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    yield app
    try:
        app.assert_stayed_local()
        assert app.page_errors == [], app.page_errors  # a crash is handled, never uncaught
    finally:
        context.close()


@pytest.fixture(autouse=True)
def no_uncaught_errors(request: pytest.FixtureRequest):
    """Every page a test opens itself must end with no uncaught error or unhandled rejection,
    and no console error unless the test is marked `console_errors_expected` (it breaks files
    on purpose). The shared pages check themselves at the end of their module.
    """
    if "browser" not in request.fixturenames:
        yield
        return
    browser = request.getfixturevalue("browser")
    uncaught: list[str] = []
    console: list[str] = []

    def watch(page: Page) -> None:
        page.on("pageerror", lambda e: uncaught.append(f"{page.url}: {e}"))
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)

    new_context = browser.new_context

    def watched_context(*args, **kwargs) -> BrowserContext:
        context = new_context(*args, **kwargs)
        context.on("page", watch)
        return context

    browser.new_context = watched_context  # type: ignore[method-assign]
    try:
        yield
    finally:
        del browser.new_context  # the class's method again
    assert uncaught == [], uncaught
    if not request.node.get_closest_marker("console_errors_expected"):
        assert console == [], console
