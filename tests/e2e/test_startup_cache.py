"""End to end, the extension modules of the start-up (web/dynlibs.js): numpy's and Pillow's .so
files the page loads before it can predict, compiled by streaming from startup/dynlibs/, then
loaded back into the restored snapshot (which holds numpy, Pillow and the Session already
imported) or, without the snapshot, handed to Python's import. When they are missing, corrupt or
turned off, or the snapshot's links cannot be made exactly as recorded, the page starts without
the snapshot and imports them from the wheels as before, the stages say so, and it predicts all
the same.
"""

from __future__ import annotations

import json
from urllib.request import urlopen

import pytest
from page_helpers import BOOT_TIMEOUT_MS, predicted, wait_ready
from playwright.sync_api import Browser, Route, expect

pytestmark = pytest.mark.e2e

DYNLIBS = "**/startup/dynlibs/**"
# An empty custom section ("x"), appended: still a valid module that compiles, but other bytes.
CUSTOM_SECTION = bytes([0, 2, 1, ord("x")])


def open_page(browser: Browser, url: str, route=None):
    """A new context and page at `url` (dynlib requests through `route`); returns once ready."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    if route:
        context.route(DYNLIBS, route)
    page = context.new_page()
    page.goto(url)
    wait_ready(page)
    return context, page, requests


def holds_imports(site_url: str) -> bool:
    """Whether this build's snapshot holds numpy & co (build_startup.mjs; off by default)."""
    with urlopen(f"{site_url}manifest.json") as response:
        return bool(json.load(response)["snapshot_link"]["libs"])


def detail(page, stage: str) -> str:
    return page.locator(f'#stages [data-stage="{stage}"]').get_attribute("data-detail") or ""


def test_extension_modules_are_compiled_ahead(browser: Browser, site_url: str) -> None:
    context, page, requests = open_page(browser, f"{site_url}?debug")
    try:
        startup = page.evaluate("window.scribblenet.startup")
        assert startup == {"snapshot": True, "bytecode": True, "dynlibs": True, "notes": []}
        fetched = [url for url in requests if "/startup/dynlibs/" in url]
        assert any("_multiarray_umath" in url for url in fetched), fetched
        assert all(url.endswith(".wasm") for url in fetched), fetched
        p = predicted(page)
        assert max(p) == p[1]  # the drawing is a "1"
    finally:
        context.close()


def appended(route: Route) -> None:
    response = route.fetch()
    route.fulfill(response=response, body=response.body() + CUSTOM_SECTION)


def not_found(route: Route) -> None:
    route.fulfill(status=404, body="not found")


@pytest.mark.console_errors_expected
@pytest.mark.parametrize(
    ("route", "note"),
    [(not_found, "HTTP 404"), (appended, "is corrupt (its sha256 does not match the manifest)")],
    ids=["404", "other bytes that compile"],
)
def test_broken_extension_modules_only_slow_the_start(browser, site_url, route, note) -> None:
    context, page, _ = open_page(browser, f"{site_url}?debug", route)
    try:
        if holds_imports(site_url):  # a snapshot holding numpy is not restored without them
            assert "started without the start-up snapshot" in detail(page, "runtime")
            assert note in detail(page, "runtime")
        assert "compiling extension modules on import" in detail(page, "packages")
        assert note in detail(page, "packages")
        startup = page.evaluate("window.scribblenet.startup")
        assert startup["snapshot"] is not holds_imports(site_url)
        assert startup["dynlibs"] is False
        assert startup["bytecode"] is True
        p = predicted(page)
        assert max(p) == p[1]
        expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    finally:
        context.close()


@pytest.mark.parametrize(
    ("field", "value", "note"),
    [
        ("table_before", 1, "function table of"),
        ("got_sha256", "0" * 64, "the global offset table differs"),
    ],
    ids=["table", "offset table"],
)
def test_snapshot_not_linked_as_recorded_is_refused(browser, site_url, field, value, note):
    """A restored runtime whose libraries would not link as recorded is dropped for a new one."""
    if not holds_imports(site_url):
        pytest.skip("this build's snapshot holds no extension modules")

    def changed_link(route: Route) -> None:
        response = route.fetch()
        manifest = json.loads(response.body())
        manifest["snapshot_link"][field] = value
        route.fulfill(response=response, body=json.dumps(manifest))

    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    context.route("**/manifest.json", changed_link)
    try:
        page = context.new_page()
        page.goto(f"{site_url}?debug")
        wait_ready(page)
        assert note in detail(page, "runtime")
        startup = page.evaluate("window.scribblenet.startup")
        assert startup["snapshot"] is False and startup["dynlibs"] is True  # preloaded instead
        p = predicted(page)
        assert max(p) == p[1]
        expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    finally:
        context.close()


def test_nosnapshot_still_preloads_them(browser: Browser, site_url: str) -> None:
    context, page, requests = open_page(browser, f"{site_url}?debug&nosnapshot")
    try:
        startup = page.evaluate("window.scribblenet.startup")
        assert startup == {"snapshot": False, "bytecode": True, "dynlibs": True, "notes": []}
        assert any("/startup/dynlibs/" in url for url in requests)
        p = predicted(page)
        assert max(p) == p[1]
    finally:
        context.close()


def test_nodynlibs_neither_downloads_nor_preloads_them(browser: Browser, site_url: str) -> None:
    context, page, requests = open_page(browser, f"{site_url}?debug&nodynlibs")
    try:
        assert not any("/startup/dynlibs/" in url for url in requests)
        assert "turned off by ?nodynlibs" in detail(page, "packages")
        startup = page.evaluate("window.scribblenet.startup")
        assert startup["dynlibs"] is False
        assert startup["snapshot"] is not holds_imports(site_url)
        p = predicted(page)
        assert max(p) == p[1]
    finally:
        context.close()


def test_repeat_visit_compiles_them_from_the_service_worker(browser: Browser, site_url) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    served: dict[str, bool] = {}
    context.on("response", lambda r: served.update({r.url: r.from_service_worker}))
    try:
        page = context.new_page()
        page.goto(f"{site_url}?debug")
        wait_ready(page)
        page.evaluate("async () => { await navigator.serviceWorker.ready; }")
        page.reload()
        wait_ready(page)
        assert page.evaluate("() => navigator.serviceWorker.controller !== null")
        assert page.evaluate("window.scribblenet.startup.dynlibs") is True
        dynlibs = {url: sw for url, sw in served.items() if "/startup/dynlibs/" in url}
        assert dynlibs and all(dynlibs.values()), dynlibs  # the second visit's, from its cache
        p = predicted(page)
        assert max(p) == p[1]
    finally:
        context.close()
