"""End to end, the drawing pad and the prediction: digits drawn with the mouse, drawings that are
not digits, the Delete key, and the pad on a phone.

The tests share one page (the `app` fixture) in file order, each leaving the pad clear.
"""

from __future__ import annotations

import math

import pytest
from page_helpers import DIGITS, SEVEN, draw, probabilities, wait_ready
from playwright.sync_api import expect

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
