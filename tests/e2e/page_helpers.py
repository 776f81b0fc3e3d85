"""Driving the page in the e2e tests: digits as pen strokes, the form, waiting, broken responses.

A plain module rather than fixtures: parametrize lists need the digits at import time. The
shared pages themselves (`app`, `debug_app`) are fixtures in conftest.py.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route, expect

BOOT_TIMEOUT_MS = 90_000  # a cold Pyodide start on a busy 2-core CI machine

# A small, quick run. Every field is set, so the tests do not depend on the form's first preset.
TINY = {"hidden": "16", "activation": "relu", "init": "he", "optimizer": "adam",
        "learning_rate": "0.01", "lr_schedule": "constant", "batch_size": "100", "epochs": "1",
        "seed": "0", "dtype": "float32"}  # fmt: skip


def arc(cx, cy, rx, ry, a0, a1, n=24):
    """Points along an ellipse from angle a0 to a1 (radians, 0 = top, clockwise)."""
    angles = [a0 + (a1 - a0) * k / n for k in range(n + 1)]
    return [(cx + rx * math.sin(a), cy - ry * math.cos(a)) for a in angles]


# Digits as pen strokes in pad coordinates (0..1, y down), drawn the way a person would.
PI = math.pi
DIGITS = {
    "0": [arc(0.5, 0.5, 0.2, 0.32, 0, 2 * PI, 40)],
    "1": [[(0.52, 0.18), (0.50, 0.50), (0.48, 0.82)]],
    "2": [[*arc(0.5, 0.35, 0.18, 0.16, -0.5 * PI, 0.6 * PI), (0.3, 0.8), (0.72, 0.8)]],
    "3": [arc(0.5, 0.33, 0.17, 0.14, -0.45 * PI, 0.9 * PI)
          + arc(0.5, 0.63, 0.19, 0.17, 0.1 * PI, 1.45 * PI)],
    "4": [[(0.55, 0.18), (0.28, 0.6), (0.75, 0.6)], [(0.6, 0.4), (0.6, 0.84)]],
    "5": [[(0.68, 0.2), (0.36, 0.2), (0.33, 0.46),
           *arc(0.5, 0.62, 0.19, 0.19, -0.3 * PI, 1.3 * PI)]],
    "6": [[(0.62, 0.18), (0.42, 0.42), *arc(0.5, 0.64, 0.17, 0.18, 1.4 * PI, 3.4 * PI)]],
    "7": [[(0.28, 0.20), (0.72, 0.20), (0.58, 0.45), (0.45, 0.82)]],
    "8": [arc(0.5, 0.34, 0.15, 0.15, PI, 3 * PI), arc(0.5, 0.65, 0.18, 0.17, 0, 2 * PI)],
    "9": [[*arc(0.5, 0.36, 0.17, 0.16, 0.5 * PI, 2.5 * PI), (0.66, 0.5), (0.6, 0.84)]],
}  # fmt: skip
ONE, SEVEN = DIGITS["1"], DIGITS["7"]


def is_local(url: str) -> bool:
    """True for URLs of the test server (and data:/blob: URLs, which never leave the page)."""
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1"


# ── waiting ───────────────────────────────────────────────────────────────────────────────


def wait_ready(page: Page) -> None:
    """The page can predict (the status says so in data-ready)."""
    expect(page.get_by_test_id("status")).to_have_attribute(
        "data-ready", "true", timeout=BOOT_TIMEOUT_MS
    )


def next_frames(page: Page) -> None:
    """Wait two animation frames: the charts redraw (and update their data-*) once a frame."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def wait_idle(page: Page) -> None:
    """Training over: Train enabled again, Stop disabled, and the charts drawn up to date."""
    expect(page.get_by_test_id("stop")).to_be_disabled(timeout=60_000)
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=60_000)
    next_frames(page)


# ── drawing and predicting ───────────────────────────────────────────────────────────────────


def draw(page: Page, strokes) -> None:
    """Replay strokes on the pad with the mouse."""
    canvas = page.get_by_test_id("draw-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            # A pointer event every ~12 px, like a real pen moving at a steady pace.
            page.mouse.move(x1, y1, steps=max(1, round(math.hypot(x1 - x0, y1 - y0) / 12)))
        page.mouse.up()


def probabilities(page: Page) -> list[float]:
    return page.locator("#probabilities li").evaluate_all(
        "items => items.map(li => Number(li.dataset.p))"
    )


def predicted(page: Page, strokes=ONE) -> list[float]:
    """Draw, wait for the answer, return the probabilities; leaves the drawing on the pad."""
    page.get_by_test_id("clear").click()
    draw(page, strokes)
    prediction = page.get_by_test_id("prediction")
    expect(prediction).not_to_have_text("", timeout=15_000)
    expect(prediction).to_have_attribute("aria-busy", "false", timeout=15_000)
    return probabilities(page)


# ── training and the model file ──────────────────────────────────────────────────────────────


def fill_form(page: Page, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = page.locator(f"#train-form [name={name}]")
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def start_training(page: Page) -> None:
    """Click Train and wait for the first batches on the chart."""
    page.get_by_test_id("train").click()
    expect(page.get_by_test_id("stop")).to_be_enabled()  # started: the charts were reset
    expect(page.get_by_test_id("cost-chart")).not_to_have_attribute(
        "data-points", "0", timeout=30_000
    )


def download_model(page: Page, path: Path) -> Path:
    """Click Download and save the model file at `path`."""
    with page.expect_download() as download:
        page.get_by_test_id("download").click()
    download.value.save_as(path)
    return path


# ── the ?debug page's hooks and broken responses ─────────────────────────────────────────────


def debug_request(page: Page, action: str) -> dict:
    """Send a debug request to the worker (pages opened with ?debug); the reply or {error}."""
    return page.evaluate(
        """action => window.scribblenet.client.request("debug", { action })
            .catch(err => ({ error: err.message }))""",
        action,
    )


def break_response(how: str):
    """A route handler: a 404, or the real response truncated or with its first bytes flipped."""

    def handler(route: Route) -> None:
        if how == "404":
            route.fulfill(status=404, body="not found")
            return
        response = route.fetch()
        body = response.body()
        if how == "truncate":
            body = body[: len(body) // 2]
        else:  # flip the low bit of the first bytes
            body = bytes(b ^ 1 for b in body[:64]) + body[64:]
        route.fulfill(response=response, body=body)

    return handler
