"""End to end, the kernel's threads: cross-origin isolation comes from the page's own service
worker (web/sw.js adds COOP/COEP; the server, like GitHub Pages, sends none), so a first visit
runs on one thread and is never reloaded for isolation, and a repeat visit in the same browser
is isolated and multiplies on a pool of kernel workers, while the page stays responsive.
"""

from __future__ import annotations

import time

import pytest
from page_helpers import (
    BOOT_TIMEOUT_MS,
    fill_form,
    next_frames,
    predicted,
    start_training,
    wait_idle,
    wait_ready,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

# Big enough products to go to the pool (784·128 hidden units at batch 128), and a long run.
THREADED = {"hidden": "128", "activation": "relu", "init": "he", "optimizer": "adam",
            "learning_rate": "0.001", "lr_schedule": "constant", "batch_size": "128",
            "epochs": "50", "seed": "0", "dtype": "float32"}  # fmt: skip


def open_counting(page: Page, url: str) -> list[str]:
    """Go to `url`, recording every navigation of the main frame (a reload would be one more)."""
    navigations: list[str] = []
    page.on("framenavigated", lambda f: navigations.append(f.url) if f == page.main_frame else None)
    page.goto(url)
    wait_ready(page)
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    return navigations


def test_first_visit_one_thread_no_reload_then_repeat_visit_threads(
    browser: Browser, site_url: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        first = context.new_page()
        navigations = open_counting(first, f"{site_url}?debug")
        assert first.evaluate("crossOriginIsolated") is False
        backend = first.get_by_test_id("backend")
        expect(backend).to_contain_text("1 thread (not cross-origin isolated: first visit)")
        # The service worker installs, and nothing reloads the page to get isolation.
        first.evaluate("async () => { await navigator.serviceWorker.ready; }")
        first.wait_for_timeout(1000)
        assert navigations == [f"{site_url}?debug"]
        assert first.evaluate("navigator.serviceWorker.controller") is None
        first.close()

        cores = context.new_page().evaluate("navigator.hardwareConcurrency")
        repeat = context.new_page()
        navigations = open_counting(repeat, f"{site_url}?debug")
        assert len(navigations) == 1
        assert repeat.evaluate("navigator.serviceWorker.controller !== null")
        assert repeat.evaluate("crossOriginIsolated") is True
        threads = min(cores, 4)
        backend = repeat.get_by_test_id("backend")
        if threads < 2:
            expect(backend).to_contain_text("1 thread (")
            return
        expect(backend).to_contain_text("kernel (self-test max error")
        expect(backend).to_contain_text(f", {threads} threads")
        mid_training_controls_get_through(repeat)
    finally:
        context.close()


def mid_training_controls_get_through(page: Page) -> None:
    """Train on the threaded kernel; pause, predict, resume and stop all answer mid-run."""
    fill_form(page, THREADED)
    start_training(page)
    chart = page.get_by_test_id("cost-chart")
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("status")).to_contain_text("Paused")
    next_frames(page)  # the chart draws what arrived before "paused" on its next frame
    paused_at = chart.get_attribute("data-points")
    page.wait_for_timeout(500)
    assert chart.get_attribute("data-points") == paused_at  # nothing trains while paused
    page.get_by_test_id("pause").click()
    expect(chart).not_to_have_attribute("data-points", paused_at, timeout=10_000)
    p = predicted(page)  # answered while training
    assert max(range(10), key=p.__getitem__) == 1
    rate = page.get_by_test_id("progress-text").text_content()
    print(f"threaded training: {rate}")
    started = time.perf_counter()
    page.get_by_test_id("stop").click()
    expect(page.get_by_test_id("status")).to_contain_text("stopped", timeout=5_000)
    assert time.perf_counter() - started < 3
    wait_idle(page)
    first, last = float(chart.get_attribute("data-first")), float(chart.get_attribute("data-last"))
    assert last < first, (first, last)  # it learned


def test_isolation_headers_come_from_the_service_worker(browser: Browser, site_url: str) -> None:
    """The server sends no COOP/COEP (as GitHub Pages); the service worker adds both."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        first = page.goto(site_url)
        assert first is not None and not first.from_service_worker
        assert "cross-origin-opener-policy" not in first.headers
        page.evaluate("async () => { await navigator.serviceWorker.ready; }")
        repeat = page.goto(site_url)
        assert repeat is not None and repeat.from_service_worker
        assert repeat.headers.get("cross-origin-opener-policy") == "same-origin"
        assert repeat.headers.get("cross-origin-embedder-policy") == "require-corp"
        assert page.evaluate("crossOriginIsolated") is True
        wait_ready(page)
    finally:
        context.close()
