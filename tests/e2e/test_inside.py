"""End to end, inside the network: why a drawing was read so (saliency, runner-up, nearest test
images, activations), the first layer's weights (live while training), and the test images
behind each confusion-matrix cell, by mouse and by keyboard.

The tests share the plain page (`app`) and then the ?debug page (`debug_app`), in file order,
each leaving its page idle; both must have asked nothing of any other host.
"""

from __future__ import annotations

import re

import pytest
from page_helpers import BOOT_TIMEOUT_MS, ONE, SEVEN, TINY, fill_form, predicted, wait_idle
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.e2e

# What a canvas holds: its size, how many distinct colours, and a checksum of its pixels.
PIXELS = """canvas => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set();
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) {
        const rgb = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
        colours.add(rgb);
        sum = (sum * 31 + rgb) % 2147483647;
    }
    return { width: canvas.width, height: canvas.height, colours: colours.size, sum };
}"""


def pixels(canvas: Locator) -> dict:
    return canvas.evaluate(PIXELS)


def painted(canvas: Locator, at_least: int = 2) -> bool:
    """The canvas shows a picture: more than `at_least - 1` colours."""
    return pixels(canvas)["colours"] >= at_least


# ── Why did it say that? ────────────────────────────────────────────────────────────────────


def test_a_drawing_is_explained(app) -> None:
    page = app.page
    explain = page.get_by_test_id("explain")
    expect(explain).to_be_hidden()  # nothing drawn yet
    # The nearest test images need the test set: wait for the data (Train is enabled then).
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    predicted(page, SEVEN)
    expect(page.get_by_test_id("prediction")).to_have_text("7")
    expect(explain).to_be_visible(timeout=30_000)
    expect(explain).to_have_attribute("data-digit", "7")
    expect(explain).to_have_attribute("aria-busy", "false")

    runner_up = page.get_by_test_id("runner-up").inner_text()
    assert re.fullmatch(r"Runner-up: [0-689] \((< 0\.1|\d+\.\d) %\)", runner_up), runner_up

    saliency = page.get_by_test_id("saliency")
    assert pixels(saliency)["width"] == 28
    assert painted(saliency, 20)  # a map in many shades, not a blank square
    expect(page.locator("#saliency-caption")).to_contain_text("gradient of log p(7)")
    red_and_blue = saliency.evaluate("""c => {
        const d = c.getContext("2d").getImageData(0, 0, 28, 28).data;
        let red = 0, blue = 0;
        for (let i = 0; i < d.length; i += 4) {
            if (d[i] > d[i + 2] + 40) red++;
            if (d[i + 2] > d[i] + 40) blue++;
        }
        return [red, blue];
    }""")
    assert min(red_and_blue) > 0, red_and_blue  # ink that helps the 7, and ink that counts against

    neighbours = page.get_by_test_id("neighbours").locator("figure")
    expect(neighbours).to_have_count(8)
    labels = neighbours.evaluate_all(
        "figs => figs.map(f => f.querySelector('figcaption').textContent)"
    )
    assert all(re.fullmatch(r"\d", label) for label in labels), labels
    assert labels.count("7") >= 4, labels  # as the network sees it, a 7 is near other 7s
    for k in range(8):
        assert painted(neighbours.nth(k).locator("canvas"))
    expect(page.get_by_test_id("neighbours").locator("xpath=..")).to_contain_text(
        "Closest MNIST test images, as the last hidden layer sees them"
    )

    strips = page.get_by_test_id("activations").locator("canvas")
    expect(strips).to_have_count(1)  # the pretrained model: 784-256-10
    assert pixels(strips.first)["width"] == 256
    assert painted(strips.first, 3)
    assert "units" in strips.first.get_attribute("aria-label")


def test_the_latest_drawing_is_explained_and_clear_hides_it(app) -> None:
    page = app.page
    explain = page.get_by_test_id("explain")
    predicted(page, ONE)
    expect(explain).to_have_attribute("data-digit", "1", timeout=30_000)
    before = pixels(page.get_by_test_id("saliency"))["sum"]
    predicted(page, SEVEN)  # Clear, then another digit: its own explanation replaces the first
    expect(explain).to_have_attribute("data-digit", "7", timeout=30_000)
    assert pixels(page.get_by_test_id("saliency"))["sum"] != before
    page.get_by_test_id("clear").click()
    expect(explain).to_be_hidden()
    page.wait_for_timeout(500)  # an answer still on its way would not bring it back
    expect(explain).to_be_hidden()


# ── What it has learned: the confusion matrix without training, and its cells' images ───────


def cell(page: Page, true: int, pred: int) -> Locator:
    return page.locator(f'[data-testid="confusion-cell"][data-true="{true}"][data-pred="{pred}"]')


def biggest_mistake(page: Page) -> tuple[int, int, int]:
    """The off-diagonal cell with the most images: (true, pred, count)."""
    return page.get_by_test_id("confusion-cell").evaluate_all("""cells => cells
        .filter(c => c.dataset.true !== c.dataset.pred)
        .map(c => [Number(c.dataset.true), Number(c.dataset.pred), Number(c.textContent)])
        .sort((a, b) => b[2] - a[2])[0]""")


def expect_gallery(page: Page, title: str, count: int) -> None:
    gallery = page.get_by_test_id("gallery")
    expect(gallery).to_be_visible()
    expect(gallery.locator("h4")).to_have_text(title, timeout=30_000)
    items = gallery.locator("li")
    expect(items).to_have_count(count)
    for k in range(count):
        assert painted(items.nth(k).locator("canvas"))
        assert re.fullmatch(r"\d+\.\d %", items.nth(k).locator("span").inner_text())


def test_the_current_models_matrix_shows_without_training(app) -> None:
    page = app.page
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)  # data are in
    table = page.get_by_test_id("confusion")
    expect(table).to_contain_text("current model", timeout=30_000)
    expect(page.get_by_test_id("confusion-cell")).to_have_count(100)
    total = sum(int(t) for t in page.get_by_test_id("confusion-cell").all_inner_texts())
    assert total == 10_000
    first = cell(page, 4, 9)
    expect(first).to_have_attribute("role", "button")
    assert re.fullmatch(r"true 4, predicted 9: \d+ images?", first.get_attribute("aria-label"))
    # One Tab stop for the matrix, not a hundred: the first cell until another is focused.
    expect(page.locator('[data-testid="confusion-cell"][tabindex="0"]')).to_have_count(1)
    expect(cell(page, 0, 0)).to_have_attribute("tabindex", "0")


def test_a_confusion_cell_opens_its_images_with_the_mouse(app) -> None:
    page = app.page
    gallery = page.get_by_test_id("gallery")
    expect(gallery).to_be_hidden()
    true, pred, count = biggest_mistake(page)
    assert count > 0
    cell(page, true, pred).click()
    noun = "image" if count == 1 else "images"
    first = ", most confident first" if count > 1 else ""
    expect_gallery(page, f"True {true}, predicted {pred} — {count} {noun}{first}", min(24, count))
    shown = gallery.locator("li").evaluate_all(
        "lis => lis.map(li => Number(li.dataset.probability))"
    )
    assert shown == sorted(shown, reverse=True)  # the most confident mistakes first
    assert all(p > 0.2 for p in shown[:1])  # it chose `pred`: that was its likeliest digit
    page.get_by_test_id("gallery-close").click()
    expect(gallery).to_be_hidden()


def test_a_confusion_cell_opens_its_images_from_the_keyboard(app) -> None:
    page = app.page
    gallery = page.get_by_test_id("gallery")
    page.get_by_test_id("copy-link").focus()  # the last control before the charts
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.testid") == "confusion-cell":
            break
    focused = page.evaluate(
        "[document.activeElement.dataset.true, document.activeElement.dataset.pred]"
    )
    true, pred, _ = biggest_mistake(page)
    assert focused == [str(true), str(pred)], focused  # Tab comes back to the cell last chosen
    for key in ["ArrowUp"] * true + ["ArrowLeft"] * pred:  # to the first cell, by arrows
        page.keyboard.press(key)
    expect(cell(page, 0, 0)).to_be_focused()
    page.keyboard.press("Tab")  # one Tab stop for the whole matrix: out of it
    assert page.evaluate("document.activeElement.dataset.testid") != "confusion-cell"
    page.keyboard.press("Shift+Tab")
    expect(cell(page, 0, 0)).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    count = int(cell(page, 2, 1).inner_text())
    noun = "image" if count == 1 else "images"
    first = ", most confident first" if count > 1 else ""
    expect_gallery(page, f"True 2, predicted 1 — {count} {noun}{first}", min(24, count))
    expect(page.get_by_test_id("progress-text")).to_have_text("Not training")  # Enter did not train
    page.keyboard.press("ArrowRight")  # to the diagonal: the least confident correct 2s
    page.keyboard.press(" ")
    expect_gallery(page, "True 2, predicted 2 — the least confident correct ones", 24)
    shown = gallery.locator("li").evaluate_all(
        "lis => lis.map(li => Number(li.dataset.probability))"
    )
    assert shown == sorted(shown)
    page.get_by_test_id("gallery-close").focus()
    page.keyboard.press("Escape")
    expect(gallery).to_be_hidden()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')").startswith(
        "true 2, predicted 2:"
    )  # the focus is back on the cell it came from
    expect(page.get_by_test_id("stop")).to_be_disabled()


def test_the_pretrained_models_weights_are_drawn(app) -> None:
    page = app.page
    weights = page.get_by_test_id("weights")
    expect(weights).to_have_attribute("data-tiles", "64", timeout=30_000)
    size = pixels(weights)
    assert (size["width"], size["height"]) == (8 * 29 + 1, 8 * 29 + 1)  # 8×8 tiles, 1 px apart
    assert painted(weights, 50)
    expect(page.locator("#weights-caption")).to_contain_text("first 64 of its 256 hidden units")


def test_nothing_was_asked_of_another_host(app) -> None:
    app.assert_stayed_local()


# ── While training: the weights move, epoch by epoch ────────────────────────────────────────

# Every drawing of the weights canvas, as it happens: its data-epoch and a checksum.
WATCH_WEIGHTS = f"""() => {{
    const canvas = document.querySelector('[data-testid="weights"]');
    const pixels = {PIXELS};
    window.weightFrames = [];
    new MutationObserver(() => window.weightFrames.push(
        {{ epoch: canvas.dataset.epoch, ...pixels(canvas) }}
    )).observe(canvas, {{ attributes: true, attributeFilter: ["data-epoch", "data-tiles"] }});
}}"""


def test_the_weights_change_between_epochs_while_training(debug_app) -> None:
    page = debug_app.page
    page.evaluate(WATCH_WEIGHTS)
    fill_form(page, {**TINY, "hidden": "32", "epochs": "4"})
    page.get_by_test_id("train").click()
    wait_idle(page)
    expect(page.get_by_test_id("status")).to_contain_text("finished")
    weights = page.get_by_test_id("weights")
    expect(weights).to_have_attribute("data-epoch", "4", timeout=30_000)
    expect(weights).to_have_attribute("data-tiles", "32")
    frames = page.evaluate("window.weightFrames")
    epochs = [int(f["epoch"]) for f in frames if f["epoch"] != ""]
    assert epochs == sorted(epochs), epochs  # never back to older weights
    assert len(set(epochs)) >= 3, epochs  # seen during the run, not only at its end
    by_epoch = {int(f["epoch"]): f["sum"] for f in frames if f["epoch"] != ""}
    assert len(set(by_epoch.values())) == len(by_epoch), by_epoch  # each epoch's differ
    assert (pixels(weights)["width"], pixels(weights)["height"]) == (6 * 29 + 1, 6 * 29 + 1)
    assert "hidden units, after epoch 4" in page.locator("#weights-caption").inner_text()
    # A finished run keeps its last epoch's matrix (same model): no second "confusion" pass.
    expect(page.get_by_test_id("confusion")).to_contain_text("after epoch 4")


def test_a_reset_shows_the_pretrained_models_weights_and_matrix_again(debug_app) -> None:
    page = debug_app.page
    page.get_by_test_id("reset").click()
    expect(page.get_by_test_id("model-info")).to_contain_text("pretrained")
    expect(page.get_by_test_id("weights")).to_have_attribute("data-tiles", "64", timeout=30_000)
    expect(page.get_by_test_id("confusion")).to_contain_text("current model", timeout=30_000)
    expect(page.get_by_test_id("confusion")).to_contain_text("784-256-10")
