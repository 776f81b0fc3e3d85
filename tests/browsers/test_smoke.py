"""A new user's visit in Firefox ESR and in WebKitGTK (twice: once under LANG=C.UTF-8, whose
navigator.language "C" Intl rejects), each driven over its own WebDriver server.

Under the site's sub-path, on the ?debug page (a short run on the first SUBSET images, and
uncaught errors recorded by boot.js): the page becomes ready; real WebDriver pointer input
draws a 1 and a 7, read right; the backend line names the kernel this engine should get; a
one-epoch run finishes, a long one is stopped; a reload restores the trained model; no uncaught
error anywhere. Run under `xvfb-run -a` (WebKitGTK needs a display); see conftest.py.
"""

from __future__ import annotations

import itertools
import math
import re
import time

import pytest
from browser_drivers import FIGURES, REPO_ROOT, Driven

pytestmark = [pytest.mark.e2e, pytest.mark.browsers]

SUBSET = 2000  # the ?debug page trains on the first SUBSET images
LONG_EPOCHS = 1000  # the run that is stopped: far longer than the test waits
BOOT_TIMEOUT_S = 120  # a cold Pyodide start in a slower engine on a busy 2-core machine

# Every field set, so the run does not depend on the form's first preset.
TINY = {"hidden": "16", "activation": "relu", "init": "he", "optimizer": "adam",
        "learning_rate": "0.01", "lr_schedule": "constant", "batch_size": "100", "epochs": "1",
        "seed": "0", "dtype": "float32"}  # fmt: skip

# Digits as pen strokes in pad coordinates (0..1, y down), as tests/e2e/page_helpers.py draws them.
ONE = [[(0.52, 0.18), (0.50, 0.50), (0.48, 0.82)]]
SEVEN = [[(0.28, 0.20), (0.72, 0.20), (0.58, 0.45), (0.45, 0.82)]]

LANGS = {  # the environment WebKitWebDriver (and so MiniBrowser) runs in
    "webkit": {"LANG": "en_US.UTF-8", "LANGUAGE": "en_US"},
    "webkit-C.UTF-8": {"LANG": "C.UTF-8", "LANGUAGE": ""},
}


def probes() -> dict[str, list[int]]:
    """The WebAssembly feature probes web/gemm/gemm.js chooses its kernel by."""
    source = (REPO_ROOT / "web" / "gemm" / "gemm.js").read_text()
    found = {}
    for name in ("SIMD_PROBE", "RELAXED_PROBE"):
        body = re.search(rf"const {name} = new Uint8Array\(\[([\d,\s]+)\]\)", source)
        assert body, f"{name} not found in web/gemm/gemm.js"
        found[name] = [int(b) for b in body.group(1).replace("\n", " ").split(",") if b.strip()]
    return found


def expected_backend(browser: Driven) -> str:
    """What the backend line should name in this engine: the relaxed-SIMD kernel where it
    validates, else the SIMD kernel, else NumPy."""
    valid = "return WebAssembly.validate(new Uint8Array(arguments[0]));"
    p = probes()
    if browser.js(valid, p["RELAXED_PROBE"]) and browser.js(valid, p["SIMD_PROBE"]):
        return "WebAssembly relaxed-SIMD FMA kernel"
    if browser.js(valid, p["SIMD_PROBE"]):
        return "WebAssembly SIMD kernel"
    return "NumPy"


# ── the page ─────────────────────────────────────────────────────────────────────────────────

READY = "return document.querySelector('[data-testid=status]')?.dataset.ready === 'true';"
ERRORS = "return window.scribblenetErrors ?? ['boot.js did not run: no error record'];"
STAGES = """return Object.fromEntries([...document.querySelectorAll('#stages li')].map(li =>
  [li.dataset.stage, li.dataset.state === 'done' ? Number(li.dataset.ms) : li.dataset.state]));"""
TEXT = "return document.querySelector(`[data-testid=${arguments[0]}]`).textContent;"
DATA = "return document.querySelector(`[data-testid=${arguments[0]}]`).dataset[arguments[1]];"
CLICK = "document.querySelector(`[data-testid=${arguments[0]}]`).click();"
ENABLED = "return !document.querySelector(`[data-testid=${arguments[0]}]`).disabled;"
PROGRESS_AT = "return [document.querySelector('[data-testid=progress]').value, performance.now()];"
ANSWERED = """const p = document.querySelector('[data-testid=prediction]');
  return p.getAttribute('aria-busy') === 'false' && p.textContent !== '' && p.textContent;"""


def open_page(browser: Driven, url: str) -> float:
    """Navigate and wait until the page can predict; the seconds that took."""
    started = time.perf_counter()
    browser.get(url)
    browser.wait_for(READY, timeout=BOOT_TIMEOUT_S, what="the page ready to predict")
    return time.perf_counter() - started


def draw(browser: Driven, strokes) -> None:
    """Real pointer input (W3C actions, a mouse), a move every ~12 px like a steady pen."""
    rect = browser.js(
        """const c = document.querySelector('[data-testid=draw-canvas]');
           c.scrollIntoView({ block: 'center' });
           const r = c.getBoundingClientRect();
           return [r.left, r.top, r.width, r.height];"""
    )
    left, top, width, height = rect
    actions: list[dict] = []
    for stroke in strokes:
        points = [(left + x * width, top + y * height) for x, y in stroke]
        actions.append(move(*points[0]))
        actions.append({"type": "pointerDown", "button": 0})
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            steps = max(1, round(math.hypot(x1 - x0, y1 - y0) / 12))
            actions += [move(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps)
                        for k in range(1, steps + 1)]  # fmt: skip
        actions.append({"type": "pointerUp", "button": 0})
    browser.perform(
        [
            {
                "type": "pointer",
                "id": "pen",
                "parameters": {"pointerType": "mouse"},
                "actions": actions,
            }
        ]
    )


def move(x: float, y: float) -> dict:
    return {
        "type": "pointerMove",
        "x": round(x),
        "y": round(y),
        "origin": "viewport",
        "duration": 8,
    }


def read_digit(browser: Driven, strokes) -> str:
    browser.js(CLICK, "clear")
    browser.wait_for(
        "return document.querySelector('[data-testid=prediction]').textContent === '';"
    )
    draw(browser, strokes)
    return browser.wait_for(ANSWERED, timeout=20, what="a prediction")


def fill_form(browser: Driven, values: dict[str, str]) -> None:
    """Set the form's fields by their ids, as typing or choosing would (input and change)."""
    browser.js(
        """for (const [id, value] of Object.entries(arguments[0])) {
             const field = document.getElementById(id);
             if (!field) throw new Error(`no field #${id}`);
             field.value = value;
             field.dispatchEvent(new Event('input', { bubbles: true }));
             field.dispatchEvent(new Event('change', { bubbles: true }));
           }""",
        values,
    )


def train(browser: Driven) -> None:
    """Click Train (twice if the preset first asks) and wait until the run has started."""
    browser.wait_for(ENABLED, "train", timeout=BOOT_TIMEOUT_S, what="Train enabled")
    before = browser.js(TEXT, "status")
    browser.js(CLICK, "train")
    deadline = time.monotonic() + 20
    # Started: Stop is enabled, or the status moved on (a short run may be over already).
    while not browser.js(ENABLED, "stop") and browser.js(TEXT, "status") == before:
        if browser.js(TEXT, "train") == "Train anyway":
            browser.js(CLICK, "train")
        assert time.monotonic() < deadline, f"{browser.name}: the run did not start: " + (
            browser.js(TEXT, "form-error") or browser.js(TEXT, "status")
        )
        time.sleep(0.1)


def wait_idle(browser: Driven, timeout: float = 120) -> None:
    browser.wait_for(
        "return document.querySelector('[data-testid=stop]').disabled"
        " && !document.querySelector('[data-testid=train]').disabled;",
        timeout=timeout,
        what="the run over (Stop disabled, Train enabled)",
    )


def progress(browser: Driven) -> float:
    return browser.js("return document.querySelector('[data-testid=progress]').value;")


# ── the test ─────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("case", ["firefox", "webkit", "webkit-C.UTF-8"])
def test_a_visit(launch, site_url: str, case: str) -> None:
    kind = case.split("-")[0]
    browser = launch(kind, LANGS.get(case))
    url = f"{site_url}?debug&subset={SUBSET}"
    assert "/scribblenet/" in url
    row: dict = {"browser": case, "version": browser.version.replace(" ", "-")}
    FIGURES.append(row)

    row["ready_s"] = f"{open_page(browser, url):.1f}"
    language = browser.js("return navigator.language;")
    row["language"] = language
    if case == "webkit-C.UTF-8":
        # The condition this run is for: a language Intl rejects (uPlot's import threw on it).
        assert language == "C", f"WebKitGTK under LANG=C.UTF-8 says {language!r}, not 'C'"
    assert browser.js("return location.pathname;") == "/scribblenet/"

    assert read_digit(browser, ONE) == "1"
    assert read_digit(browser, SEVEN) == "7"

    # The charts loaded (uPlot included), whatever the language.
    assert browser.js("return document.querySelector('[data-testid=charts-note]');") is None

    browser.wait_for(ENABLED, "train", timeout=BOOT_TIMEOUT_S, what="the training data loaded")
    row["stages_ms"] = browser.js(STAGES)
    backend = browser.js(TEXT, "backend")
    row["backend"] = repr(backend.removeprefix("Matrix products: "))
    assert expected_backend(browser) in backend, backend

    # A one-epoch run to its end: the new model is current and kept in IndexedDB.
    fill_form(browser, TINY)
    train(browser)
    wait_idle(browser)
    assert progress(browser) == 1
    assert browser.js(DATA, "model-info", "source") == "trained"
    assert int(browser.js(DATA, "cost-chart", "points")) > 0  # the chart drew the run

    # A long run, stopped after its first batches.
    fill_form(browser, {"epochs": str(LONG_EPOCHS)})
    train(browser)
    # A few epochs in, so that the pace is past the first batches' warm-up; then the pace
    # measured over a second (the line's figure is a single batch's) and the one shown.
    browser.wait_for(
        "return document.querySelector('[data-testid=progress]').value >= 0.02;",
        timeout=60,
        what="the long run 2 % done",
    )
    p0, t0 = browser.js(PROGRESS_AT)
    time.sleep(1.0)
    p1, t1 = browser.js(PROGRESS_AT)
    row["examples_per_s"] = round((p1 - p0) * LONG_EPOCHS * SUBSET / ((t1 - t0) / 1000))
    pace = browser.wait_for(
        "const m = /([\\d,.\\s]+) examples\\/s/"
        ".exec(document.querySelector('[data-testid=progress-text]').textContent);"
        " return m && m[1];",
        timeout=60,
        what="the examples/s figure",
    )
    row["shown_examples_per_s"] = re.sub(r"\D", "", pace)
    browser.js(CLICK, "stop")
    wait_idle(browser, timeout=30)
    assert 0 < progress(browser) < 1
    assert "stopped" in browser.js(TEXT, "status").lower()
    assert browser.js(ERRORS) == []

    # The service worker (web/sw.js) is installed by now; a reload is served through it, and
    # restores the trained model from IndexedDB.
    browser.wait_for(
        "return navigator.serviceWorker.getRegistration()"
        ".then(r => r?.active?.state === 'activated');",
        timeout=60,
        what="the service worker activated",
    )
    row["reload_ready_s"] = f"{open_page(browser, url):.1f}"
    assert browser.js("return navigator.serviceWorker.controller !== null;"), "no service worker"
    browser.wait_for(
        DATA.replace(";", " === 'saved';"),
        "model-info",
        "source",
        what="the trained model restored from IndexedDB",
    )
    assert browser.js(ERRORS) == []
