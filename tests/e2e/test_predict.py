"""End to end, the drawing pad and the prediction: digits drawn with the mouse, drawings that are
not digits and the verdict shown for them, the Delete and Backspace keys, "Try a test digit" by
keyboard, long error messages, the charts' text alternatives and contrast, and the pad on a phone
(it never moves; a second finger does not draw).

The desktop tests share one page (the `app` fixture) in file order, each leaving the pad clear;
the last of them trains. The phone tests share a 390×844 touch page (`phone`).
"""

from __future__ import annotations

import math
import re

import pytest
from page_helpers import (
    BOOT_TIMEOUT_MS,
    DIGITS,
    ONE,
    SEVEN,
    TINY,
    draw,
    fill_form,
    next_frames,
    probabilities,
    wait_idle,
    wait_ready,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("digit", sorted(DIGITS))
def test_drawn_digit_is_recognised(app, digit: str) -> None:
    page = app.page
    strokes = DIGITS[digit]
    prediction = page.get_by_test_id("prediction")
    expect(prediction).to_have_text("")
    draw(page, strokes)
    expect(prediction).to_have_attribute("aria-busy", "false", timeout=10_000)
    expect(prediction).to_have_text(digit)
    p = probabilities(page)
    assert len(p) == 10
    assert math.isclose(sum(p), 1.0, abs_tol=1e-4)
    assert max(range(10), key=p.__getitem__) == int(digit)
    # The 28×28 view shows ink: some pixel is bright.
    rgba = page.get_by_test_id("input28").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)"
    )
    brightest = max(rgba[0::4])
    assert brightest > 200
    page.get_by_test_id("draw-canvas").focus()
    page.keyboard.press("Delete")  # the keyboard way to clear
    expect(prediction).to_have_text("")


def test_drawings_that_are_not_digits_get_a_message(app) -> None:
    page = app.page
    note, prediction = page.get_by_test_id("prediction-note"), page.get_by_test_id("prediction")
    rows = [y / 50 for y in range(1, 50, 2)]  # a pen stroke sweeping the whole pad
    zigzag = [(x if i % 2 else 1 - x, y) for i, y in enumerate(rows) for x in (0.01, 0.99)]
    cases = [
        ("speck", [[(0.5, 0.5), (0.502, 0.5)]], "draw a digit"),
        ("dot", [[(0.3, 0.3)]], "draw a digit"),
        ("tap in the middle", [[(0.5, 0.5)]], "draw a digit"),
        ("full canvas", [zigzag], "fills the canvas"),
    ]
    for _name, strokes, message in cases:
        page.get_by_test_id("clear").click()
        draw(page, strokes)
        expect(prediction).to_have_attribute("aria-busy", "false", timeout=15_000)
        expect(note).to_contain_text(message, timeout=15_000)
        expect(prediction).to_have_text("")
    page.get_by_test_id("clear").click()
    expect(note).to_have_text("")  # an empty pad says nothing and asks nothing of the worker


def test_phone_layout(browser, site_url: str, playwright) -> None:
    """On a phone: one column, nothing overflows sideways, a big pad that reads digits."""
    context = browser.new_context(**playwright.devices["Pixel 7"])
    try:
        page = context.new_page()
        page.goto(site_url)
        pad = page.get_by_test_id("draw-canvas")
        expect(pad).to_be_visible()
        width = page.evaluate("window.innerWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        box = pad.bounding_box()
        assert box["width"] >= 0.8 * width and box["x"] >= 0
        assert pad.evaluate("c => getComputedStyle(c).touchAction") == "none"
        train = page.get_by_test_id("train").bounding_box()
        assert train["y"] > box["y"] + box["height"]  # the pad comes first
        # A smaller pad at a higher pixel ratio reads digits just as well.
        wait_ready(page)
        draw(page, SEVEN)
        expect(page.get_by_test_id("prediction")).to_have_text("7", timeout=10_000)
    finally:
        context.close()


# ── the desktop page, continued ──────────────────────────────────────────────────────────────


def pad_ink(page: Page, x0: float = 0, y0: float = 0, x1: float = 1, y1: float = 1) -> int:
    """How much ink (the sum of alpha) the pad holds in a region (fractions of its side)."""
    return page.get_by_test_id("draw-canvas").evaluate(
        """(c, [x0, y0, x1, y1]) => {
            const [w, h] = [c.width, c.height];
            const box = [Math.floor(x0 * w), Math.floor(y0 * h), Math.ceil((x1 - x0) * w),
                         Math.ceil((y1 - y0) * h)];
            const rgba = c.getContext("2d").getImageData(...box).data;
            let sum = 0;
            for (let i = 3; i < rgba.length; i += 4) sum += rgba[i];
            return sum;
        }""",
        [x0, y0, x1, y1],
    )


def test_backspace_clears_the_pad_but_not_while_typing(app) -> None:
    """Mac keyboards label Backspace "delete": it clears the pad as Delete does."""
    page = app.page
    prediction = page.get_by_test_id("prediction")
    draw(page, ONE)
    expect(prediction).to_have_text("1", timeout=15_000)
    page.get_by_test_id("draw-canvas").focus()
    page.keyboard.press("Backspace")
    expect(prediction).to_have_text("")
    assert pad_ink(page) == 0
    # In a field, Backspace edits the field and leaves the drawing alone.
    draw(page, ONE)
    expect(prediction).to_have_text("1", timeout=15_000)
    hidden = page.locator("#hidden")
    before = hidden.input_value()
    hidden.focus()
    page.keyboard.press("End")
    page.keyboard.press("Backspace")
    expect(hidden).to_have_value(before[:-1])
    expect(prediction).to_have_text("1")
    assert pad_ink(page) > 0
    hidden.fill(before)
    # Said where the keys are said.
    assert "Backspace" in page.get_by_test_id("clear").get_attribute("aria-keyshortcuts").split()
    assert "Backspace" in page.get_by_test_id("draw-canvas").get_attribute("aria-label")
    expect(page.locator("footer")).to_contain_text("Backspace")
    page.get_by_test_id("clear").click()


def show(page: Page, reply: dict) -> None:
    """Show a prediction reply as the worker would send it (predict-panel.js's showPrediction)."""
    page.evaluate(
        "async reply => (await import('./predict-panel.js')).showPrediction(reply)", reply
    )


def test_the_verdict_is_shown_honestly(app) -> None:
    """Verdicts "unsure" and "not_digit" show no confident digit, but the message and the bars."""
    page = app.page
    prediction, note = page.get_by_test_id("prediction"), page.get_by_test_id("prediction-note")
    p = [0.01, 0.40, 0.01, 0.01, 0.01, 0.01, 0.01, 0.52, 0.01, 0.01]
    base = {"empty": False, "digit": 7, "probabilities": p, "input28": [0] * 784}
    for verdict, message in [
        ("unsure", "Not sure — it might be a 7 or a 1"),
        ("not_digit", "That doesn't look like a digit"),
    ]:
        show(page, {**base, "verdict": verdict, "message": message})
        expect(prediction).to_have_text("?")
        expect(prediction).to_have_attribute("data-verdict", verdict)
        expect(note).to_have_text(message)
        assert probabilities(page) == pytest.approx(p)  # the bars still show the probabilities
        expect(page.locator("#probabilities li").nth(7)).to_contain_text("52.0 %")
        expect(page.locator("#probabilities li.top")).to_have_count(0)  # no digit singled out
    for reply in [{**base, "verdict": "digit"}, base]:  # no verdict (older workers): a digit
        show(page, reply)
        expect(prediction).to_have_text("7")
        expect(note).to_have_text("(52.0 % sure)")
        expect(page.locator("#probabilities li.top")).to_have_text(re.compile(r"^7"))
    page.get_by_test_id("clear").click()
    expect(prediction).to_have_text("")
    expect(note).to_have_text("")


def test_a_line_is_not_read_as_a_digit(app) -> None:
    """A horizontal line was read as "2 (97.4 %)": the worker's verdict now says otherwise."""
    page = app.page
    # Once the test set is in (Train enabled), the verdict comes from the calibrated criterion.
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    draw(page, [[(0.2, 0.5), (0.8, 0.5)]])
    prediction = page.get_by_test_id("prediction")
    expect(prediction).to_have_attribute(
        "data-verdict", re.compile("unsure|not_digit"), timeout=15_000
    )
    expect(prediction).to_have_text("?")
    expect(page.get_by_test_id("prediction-note")).not_to_contain_text("sure)")
    assert sum(probabilities(page)) == pytest.approx(1.0, abs=1e-4)
    page.get_by_test_id("clear").click()


def assert_error_wraps_in_its_field(page: Page) -> None:
    """A 300-character value in the hidden-layers field: its error stays in the field's column."""
    hidden = page.locator("#hidden")
    before = hidden.input_value()
    hidden.fill("W" * 300)  # wide letters, no spaces: nowhere to break but anywhere
    error = page.locator("#hidden-error")
    expect(error).to_contain_text("WWWW", timeout=15_000)
    extent = error.evaluate(
        """el => {
            const range = document.createRange();
            range.selectNodeContents(el);
            const text = range.getBoundingClientRect(), box = el.getBoundingClientRect();
            const field = el.closest(".field").getBoundingClientRect();
            return { text: [text.left, text.right], box: [box.left, box.right],
                     field: [field.left, field.right],
                     scroll: el.scrollWidth, client: el.clientWidth };
        }"""
    )
    left, right = extent["field"]
    for name in ("text", "box"):
        assert left - 0.5 <= extent[name][0] and extent[name][1] <= right + 0.5, extent
    assert extent["scroll"] <= extent["client"], extent
    hidden.fill(before)
    expect(error).to_be_hidden(timeout=15_000)


def test_a_long_value_in_an_error_wraps_inside_its_field(app) -> None:
    assert_error_wraps_in_its_field(app.page)


def test_try_a_test_digit_by_keyboard_alone(app) -> None:
    """Tab to "Try a test digit", press Enter: an MNIST test image on the pad, and its reading."""
    page = app.page
    prediction = page.get_by_test_id("prediction")
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)  # test set in
    # The page picks the image with Math.random; pinned, it is test image 8506, a 9, which the
    # pretrained model reads as 9 (100 %). (Seeds 0-299 read right 98 % of the time.)
    page.evaluate("Math.random = () => 0")
    page.evaluate("document.activeElement?.blur()")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.dataset.testid") == "try-test-digit":
            break
    else:
        pytest.fail("Tab never reached the 'Try a test digit' button")
    page.keyboard.press("Enter")
    label = page.get_by_test_id("test-digit-label")
    expect(label).to_have_attribute("data-label", "9", timeout=15_000)
    expect(label).to_contain_text("9")
    expect(prediction).to_have_text("9", timeout=15_000)
    expect(prediction).to_have_attribute("aria-busy", "false")
    assert max(range(10), key=probabilities(page).__getitem__) == 9
    assert pad_ink(page) > 0  # shown on the pad, as ink
    rgba = page.get_by_test_id("input28").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)"
    )
    assert max(rgba[0::4]) > 200  # and read back through the same path as a drawing
    # Another press, another image; Clear empties the pad and the label.
    page.evaluate("Math.random = () => 0.5")
    page.keyboard.press("Enter")
    expect(label).not_to_have_attribute("data-label", "9", timeout=15_000)
    page.keyboard.press("Delete")
    expect(prediction).to_have_text("")
    expect(label).to_have_text("")
    assert pad_ink(page) == 0


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of CSS colours `fg` over `bg` (rgb()/rgba(), bg over white paper)."""

    def channels(css: str) -> tuple[list[float], float]:
        values = [float(v) for v in re.findall(r"[\d.]+", css)]
        return values[:3], values[3] if len(values) > 3 else 1.0

    def luminance(rgb: list[float]) -> float:
        c = [v / 255 for v in rgb]
        c = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    (b, alpha) = channels(bg)
    background = [alpha * v + (1 - alpha) * 255 for v in b]
    f, _ = channels(fg)
    hi, lo = sorted([luminance(f), luminance(background)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def legend_values(page: Page, chart: str) -> list[str]:
    return page.get_by_test_id(chart).locator(".u-legend .u-value").all_inner_texts()


def test_charts_say_their_latest_values_and_the_matrix_is_legible(app) -> None:
    """After an epoch: the charts' names and legends give the latest values (no hover needed,
    which never comes on touch), and every confusion-matrix cell has WCAG AA contrast."""
    page = app.page
    fill_form(page, {**TINY, "epochs": "1"})
    page.get_by_test_id("train").click()
    expect(page.get_by_test_id("stop")).to_be_enabled()
    wait_idle(page)
    expect(page.get_by_test_id("confusion")).to_be_visible()
    page.mouse.move(0, 0)  # not over a chart
    next_frames(page)
    accuracy = page.get_by_test_id("accuracy-chart").get_attribute("aria-label")
    assert re.fullmatch(r"Accuracy chart: epoch 1, train \d+\.\d %, test \d+\.\d %", accuracy)
    cost = page.get_by_test_id("cost-chart").get_attribute("aria-label")
    assert re.match(r"Cost chart: \d+ batches, cost from [\d.]+ to [\d.]+", cost)
    for chart in ("cost-chart", "accuracy-chart"):
        values = legend_values(page, chart)
        assert len(values) == 3, values
        assert not [v for v in values if v.strip() in ("", "-", "--", "–")], values
    assert legend_values(page, "accuracy-chart")[1:] == re.findall(r"\d+\.\d %", accuracy)
    # Hovering shows the point under the cursor; leaving shows the latest again.
    box = page.get_by_test_id("accuracy-chart").locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    page.mouse.move(0, 0)
    next_frames(page)
    assert legend_values(page, "accuracy-chart")[1:] == re.findall(r"\d+\.\d %", accuracy)

    cells = page.locator("#confusion td, #confusion th").evaluate_all(
        """cells => cells.map(td => ({ hit: td.classList.contains("hit"),
            color: getComputedStyle(td).color, bg: getComputedStyle(td).backgroundColor }))"""
    )
    hits = [c for c in cells if c["hit"]]
    assert len(hits) == 10
    worst = min(cells, key=lambda c: contrast(c["color"], c["bg"]))
    assert contrast(worst["color"], worst["bg"]) >= 4.5, worst
    assert min(contrast(c["color"], c["bg"]) for c in hits) >= 4.5


# ── on a phone ───────────────────────────────────────────────────────────────────────────────

# Every change to the page from the moment it says it is ready: where the pad is then (page
# coordinates) and whether the loading stages were all done.
RECORD_PAD = """
window.padBoxes = [];
document.addEventListener("DOMContentLoaded", () => {
  const pad = document.getElementById("pad"), status = document.getElementById("status");
  const record = () => {
    if (status.dataset.ready !== "true" && !window.padBoxes.length) return;
    const r = pad.getBoundingClientRect();
    window.padBoxes.push({ x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height,
      done: document.getElementById("stages").dataset.done === "true" });
  };
  new MutationObserver(record).observe(document.body,
    { subtree: true, childList: true, attributes: true, characterData: true });
});
"""


@pytest.fixture(scope="module")
def phone(browser: Browser, site_url: str):
    """A 390×844 touch phone's page, recording the pad's place from "Ready" on."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        has_touch=True,
        is_mobile=True,
        service_workers="block",
    )
    context.add_init_script(RECORD_PAD)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site_url)
    yield page
    try:
        assert errors == [], errors
    finally:
        context.close()


def test_phone_pad_never_moves(phone: Page) -> None:
    """The pad stays put from "Ready" on: loading finishing, status changes, long messages."""
    page = phone
    wait_ready(page)
    at_ready = page.get_by_test_id("draw-canvas").bounding_box()
    expect(page.locator('#stages [data-stage="data"]')).to_have_attribute(
        "data-state", "done", timeout=BOOT_TIMEOUT_MS
    )
    page.wait_for_timeout(500)
    assert page.get_by_test_id("draw-canvas").bounding_box() == at_ready
    # Messages of every length under the prediction, and a digit.
    rows = [y / 50 for y in range(1, 50, 2)]
    zigzag = [(x if i % 2 else 1 - x, y) for i, y in enumerate(rows) for x in (0.01, 0.99)]
    for strokes, note in [([zigzag], "fills the canvas"), ([[(0.5, 0.5)]], "draw a digit")]:
        page.get_by_test_id("clear").click()
        draw(page, strokes)
        expect(page.get_by_test_id("prediction-note")).to_contain_text(note, timeout=15_000)
        assert page.get_by_test_id("draw-canvas").bounding_box() == at_ready
    page.get_by_test_id("clear").click()
    draw(page, SEVEN)
    expect(page.get_by_test_id("prediction")).to_have_text("7", timeout=15_000)
    page.get_by_test_id("clear").click()
    boxes = page.evaluate("window.padBoxes")
    assert {b["done"] for b in boxes} == {False, True}  # recorded before and after the data
    places = {(b["x"], b["y"], b["width"], b["height"]) for b in boxes}
    assert len(places) == 1, sorted(places)


def touch(cdp, kind: str, points: list[tuple[float, float]]) -> None:
    """A real touch event (CDP): every finger now down, each its own pointerId."""
    fingers = [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": fingers})


def test_phone_second_finger_does_not_draw(phone: Page) -> None:
    """Two fingers on the pad (two pointerIds): only the first, primary one draws."""
    page = phone
    wait_ready(page)
    page.get_by_test_id("clear").click()
    canvas = page.get_by_test_id("draw-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    cdp = page.context.new_cdp_session(page)
    try:
        touch(cdp, "touchStart", [at(0.2, 0.15)])  # the first finger: the top-left corner
        touch(cdp, "touchStart", [at(0.2, 0.15), at(0.8, 0.85)])  # a second, bottom-right
        for k in range(1, 11):
            touch(cdp, "touchMove", [at(0.2 + 0.01 * k, 0.15 + 0.01 * k), at(0.8, 0.85 - 0.01 * k)])
        touch(cdp, "touchEnd", [])
    finally:
        cdp.detach()
    note = page.get_by_test_id("prediction-note")
    expect(note).not_to_have_text("", timeout=15_000)  # the stroke was read
    assert pad_ink(page, 0, 0, 0.4, 0.4) > 0  # the first finger's stroke
    assert pad_ink(page, 0.4, 0.4, 1, 1) == 0  # no second stroke, no zig-zag between them
    page.get_by_test_id("clear").click()


def test_phone_long_value_in_an_error_wraps_inside_its_field(phone: Page) -> None:
    wait_ready(phone)
    assert_error_wraps_in_its_field(phone)
