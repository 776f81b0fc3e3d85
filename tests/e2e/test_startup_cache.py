"""End to end, the start-up snapshots and extension modules (web/runtime.js, web/dynlibs.js).

The default snapshot holds numpy, Pillow and the Session already imported; numpy's and Pillow's
.so files, compiled by streaming from startup/dynlibs/, are loaded back into it as recorded. When
they are missing, corrupt or turned off, or its links cannot be made exactly as recorded (as in
WebKit), the worker restores the standard-library snapshot instead (downloaded only then) and
hands the compiled modules to Python's import; when that one fails too, it starts without a
snapshot. Each time the stages say so, and the page predicts all the same.
"""

from __future__ import annotations

import json

import pytest
from page_helpers import BOOT_TIMEOUT_MS, predicted, wait_ready
from playwright.sync_api import Browser, Route, expect

pytestmark = pytest.mark.e2e

DYNLIBS = "**/startup/dynlibs/**"
NUMPY_SNAPSHOT = "snapshot-numpy.bin.gz"
STDLIB_SNAPSHOT = "snapshot-stdlib.bin.gz"
# An empty custom section ("x"), appended: still a valid module that compiles, but other bytes.
CUSTOM_SECTION = bytes([0, 2, 1, ord("x")])


def open_page(browser: Browser, url: str, routes=None):
    """A new context and page at `url` ({pattern: handler} routed); returns once ready."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    for pattern, handler in (routes or {}).items():
        context.route(pattern, handler)
    page = context.new_page()
    page.goto(url)
    wait_ready(page)
    return context, page, requests


def detail(page, stage: str) -> str:
    return page.locator(f'#stages [data-stage="{stage}"]').get_attribute("data-detail") or ""


def stage_ms(page, stage: str) -> int:
    return int(page.locator(f'#stages [data-stage="{stage}"]').get_attribute("data-ms"))


def fetched(requests: list[str], name: str) -> bool:
    return any(url.endswith(f"/startup/{name}") for url in requests)


def predicts_and_trains(page) -> None:
    p = predicted(page)
    assert max(p) == p[1]  # the drawing is a "1"
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)


def test_snapshot_with_numpy_is_restored(browser: Browser, site_url: str) -> None:
    context, page, requests = open_page(browser, f"{site_url}?debug")
    try:
        startup = page.evaluate("window.scribblenet.startup")
        # bytecode: installed after the model (null until then); the data stage would say why not.
        assert startup == {"snapshot": "numpy", "bytecode": None, "dynlibs": True, "notes": []}
        assert detail(page, "runtime") == "from the snapshot with NumPy"
        assert detail(page, "packages") == "from the snapshot"
        # The Session's import (~2 s otherwise on a slow machine) is in the snapshot already.
        assert stage_ms(page, "packages") < 300
        assert fetched(requests, NUMPY_SNAPSHOT)
        assert not fetched(requests, STDLIB_SNAPSHOT)  # the fallback: not downloaded
        dynlibs = [url for url in requests if "/startup/dynlibs/" in url]
        assert any("_multiarray_umath" in url for url in dynlibs), dynlibs
        assert all(url.endswith(".wasm") for url in dynlibs), dynlibs
        predicts_and_trains(page)
        assert detail(page, "data") == ""  # the wheels and the bytecode went in after the model
    finally:
        context.close()


def appended(route: Route) -> None:
    response = route.fetch()
    route.fulfill(response=response, body=response.body() + CUSTOM_SECTION)


def not_found(route: Route) -> None:
    route.fulfill(status=404, body="not found")


def flipped(route: Route) -> None:
    response = route.fetch()
    body = bytearray(response.body())
    body[len(body) // 2] ^= 0xFF
    route.fulfill(response=response, body=bytes(body))


@pytest.mark.console_errors_expected
@pytest.mark.parametrize(
    ("route", "note"),
    [(not_found, "HTTP 404"), (appended, "is corrupt (its sha256 does not match the manifest)")],
    ids=["404", "other bytes that compile"],
)
def test_broken_extension_modules_only_slow_the_start(browser, site_url, route, note) -> None:
    context, page, _ = open_page(browser, f"{site_url}?debug", {DYNLIBS: route})
    try:
        # The snapshot with numpy is of no use without them: the standard-library one instead.
        assert "the snapshot with NumPy was not used" in detail(page, "runtime")
        assert "from the standard-library snapshot" in detail(page, "runtime")
        assert note in detail(page, "runtime")
        assert "compiling extension modules on import" in detail(page, "packages")
        assert note in detail(page, "packages")
        startup = page.evaluate("window.scribblenet.startup")
        assert startup["snapshot"] == "stdlib"
        assert startup["dynlibs"] is False
        assert startup["bytecode"] is True
        predicts_and_trains(page)
    finally:
        context.close()


def changed_link(field: str, value):
    """A route for manifest.json that changes the first snapshot's link record."""

    def route(route: Route) -> None:
        response = route.fetch()
        manifest = json.loads(response.body())
        assert manifest["snapshots"][0]["holds"] == "numpy"
        manifest["snapshots"][0]["link"][field] = value
        route.fulfill(response=response, body=json.dumps(manifest))

    return route


@pytest.mark.parametrize(
    ("field", "value", "note"),
    [
        ("table_before", 1, "function table of"),  # as WebKit's linker refuses it
        ("got_sha256", "0" * 64, "the global offset table differs"),
    ],
    ids=["table", "offset table"],
)
def test_refused_snapshot_falls_back_to_the_standard_library_one(
    browser, site_url, field, value, note
):
    """A restored runtime whose libraries would not link as recorded is dropped for the next."""
    routes = {"**/manifest.json": changed_link(field, value)}
    context, page, requests = open_page(browser, f"{site_url}?debug", routes)
    try:
        runtime = detail(page, "runtime")
        assert runtime.startswith(
            "from the standard-library snapshot; the snapshot with NumPy was not used"
        )
        assert note in runtime
        startup = page.evaluate("window.scribblenet.startup")
        assert startup["snapshot"] == "stdlib"
        assert startup["dynlibs"] is True and startup["bytecode"] is True  # preloaded instead
        assert fetched(requests, NUMPY_SNAPSHOT) and fetched(requests, STDLIB_SNAPSHOT)
        predicts_and_trains(page)
    finally:
        context.close()


def test_refusesnapshot_switch_refuses_it(browser: Browser, site_url: str) -> None:
    """?debug&refusesnapshot: the check fails as a refusal would (the cross-browser runs' way)."""
    context, page, requests = open_page(browser, f"{site_url}?debug&refusesnapshot")
    try:
        runtime = detail(page, "runtime")
        assert runtime == (
            "from the standard-library snapshot; the snapshot with NumPy was not used"
            " (the global offset table differs)"
        )
        assert page.evaluate("window.scribblenet.startup")["snapshot"] == "stdlib"
        assert fetched(requests, NUMPY_SNAPSHOT) and fetched(requests, STDLIB_SNAPSHOT)
        predicts_and_trains(page)
    finally:
        context.close()


@pytest.mark.console_errors_expected
@pytest.mark.parametrize("broken", [not_found, flipped], ids=["404", "corrupt"])
def test_refused_snapshot_then_broken_fallback_starts_without(browser, site_url, broken) -> None:
    routes = {
        "**/manifest.json": changed_link("table_before", 1),
        f"**/startup/{STDLIB_SNAPSHOT}": broken,
    }
    context, page, _ = open_page(browser, f"{site_url}?debug", routes)
    try:
        runtime = detail(page, "runtime")
        assert "the snapshot with NumPy was not used (function table of" in runtime
        assert "started without the start-up snapshot" in runtime
        assert STDLIB_SNAPSHOT in runtime  # HTTP 404, or is corrupt
        startup = page.evaluate("window.scribblenet.startup")
        assert startup == {
            "snapshot": False,
            "bytecode": True,
            "dynlibs": True,
            "notes": startup["notes"],
        }
        assert len(startup["notes"]) == 2
        predicts_and_trains(page)
    finally:
        context.close()


def test_stdlibsnapshot_switch_skips_the_numpy_one(browser: Browser, site_url: str) -> None:
    context, page, requests = open_page(browser, f"{site_url}?debug&stdlibsnapshot")
    try:
        startup = page.evaluate("window.scribblenet.startup")
        assert startup == {"snapshot": "stdlib", "bytecode": True, "dynlibs": True, "notes": []}
        assert detail(page, "runtime") == "from the standard-library snapshot"
        assert not fetched(requests, NUMPY_SNAPSHOT) and fetched(requests, STDLIB_SNAPSHOT)
        predicts_and_trains(page)
    finally:
        context.close()


def test_nosnapshot_still_preloads_them(browser: Browser, site_url: str) -> None:
    context, page, requests = open_page(browser, f"{site_url}?debug&nosnapshot")
    try:
        startup = page.evaluate("window.scribblenet.startup")
        assert startup == {"snapshot": False, "bytecode": True, "dynlibs": True, "notes": []}
        assert not fetched(requests, NUMPY_SNAPSHOT) and not fetched(requests, STDLIB_SNAPSHOT)
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
        # The snapshot with numpy needs them: not even downloaded.
        assert startup["snapshot"] == "stdlib"
        assert not fetched(requests, NUMPY_SNAPSHOT)
        p = predicted(page)
        assert max(p) == p[1]
    finally:
        context.close()


ASSET_KEYS = (
    """async () => (await (await caches.open("scribblenet-assets-v1")).keys()).map((r) => r.url)"""
)


def test_repeat_visit_starts_from_the_service_worker(browser: Browser, site_url) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    served: dict[str, bool] = {}
    context.on("response", lambda r: served.update({r.url: r.from_service_worker}))
    try:
        page = context.new_page()
        page.goto(f"{site_url}?debug")
        wait_ready(page)
        page.evaluate("async () => { await navigator.serviceWorker.ready; }")
        stored = page.evaluate(ASSET_KEYS)
        # It keeps the snapshot this visit used, and never downloads the fallback for nothing.
        assert any(f"/startup/{NUMPY_SNAPSHOT}?sha256=" in url for url in stored), stored
        assert not any(STDLIB_SNAPSHOT in url for url in stored), stored
        served.clear()
        page.reload()
        wait_ready(page)
        assert page.evaluate("() => navigator.serviceWorker.controller !== null")
        startup = page.evaluate("window.scribblenet.startup")
        assert startup["snapshot"] == "numpy" and startup["dynlibs"] is True
        dynlibs = {url: sw for url, sw in served.items() if "/startup/dynlibs/" in url}
        assert dynlibs and all(dynlibs.values()), dynlibs  # the second visit's, from its cache
        snapshot = {url: sw for url, sw in served.items() if NUMPY_SNAPSHOT in url}
        assert snapshot and all(snapshot.values()), snapshot
        p = predicted(page)
        assert max(p) == p[1]
    finally:
        context.close()
