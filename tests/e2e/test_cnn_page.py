"""End to end, a convolutional network in the page: the cnn preset fills the form; a small CNN
trains on the ?debug page's subset with live charts, pause and stop; its 3×3 filters are drawn;
a drawing gets a prediction and an explanation with the first conv layer's feature maps (an
MLP's has none); the model downloads, uploads back and survives a reload.

The tests share the ?debug page (`debug_app`) in file order, each leaving it idle; it must have
asked nothing of any other host and thrown nothing uncaught.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from page_helpers import (
    ONE,
    TINY,
    download_model,
    fill_form,
    predicted,
    start_training,
    wait_idle,
    wait_ready,
)
from playwright.sync_api import Locator, expect
from test_inside import painted, pixels

pytestmark = pytest.mark.e2e

# 28×28 → conv3x4 26×26×4 → pool2 13×13×4 → 676 → 16 → 10: a second an epoch on 2,000 images.
SMALL_CNN = {**TINY, "hidden": "conv3x4,pool2,dense16", "epochs": "2", "learning_rate": "0.01"}
ARCHITECTURE = "28x28-conv3x4-pool2-676-16-10"


def feature_maps_shown(explain: Locator) -> Locator:
    """The explanation's feature-map figure, once the newest explanation is up."""
    expect(explain).to_be_visible(timeout=30_000)
    expect(explain).to_have_attribute("aria-busy", "false", timeout=30_000)
    return explain.get_by_test_id("feature-maps")


def test_the_cnn_preset_fills_the_form_and_cautions_before_it_starts(debug_app) -> None:
    page = debug_app.page
    page.get_by_test_id("preset").select_option("cnn")
    expect(page.locator("#hidden")).to_have_value("conv5x16,pool2,conv5x32,pool2,dense128")
    expect(page.locator("#train-form .error:not(:empty)")).to_have_count(0)
    expect(page.get_by_test_id("preset-note")).to_contain_text(re.compile(r"min here.*\d\.\d %"))
    page.get_by_test_id("train").click()  # a slow preset asks first
    expect(page.get_by_test_id("preset-note")).to_contain_text("Press Train again")
    expect(page.get_by_test_id("stop")).to_be_disabled()
    fill_form(page, SMALL_CNN)  # an edit: the caution is withdrawn, nothing started


def test_a_small_cnn_trains_pauses_and_stops(debug_app) -> None:
    page = debug_app.page
    fill_form(page, {**SMALL_CNN, "epochs": "50"})
    start_training(page)
    expect(page.get_by_test_id("model-info")).to_contain_text(ARCHITECTURE)
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("status")).to_contain_text("Paused")
    assert predicted(page)  # the network as it is now reads a drawing
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("status")).to_contain_text("Training…")
    page.get_by_test_id("stop").click()
    expect(page.get_by_test_id("status")).to_contain_text("stopped")
    wait_idle(page)
    page.get_by_test_id("clear").click()


def test_a_small_cnn_trains_to_the_end_with_its_filters_drawn(debug_app) -> None:
    page = debug_app.page
    fill_form(page, SMALL_CNN)
    start_training(page)
    wait_idle(page)
    expect(page.get_by_test_id("status")).to_contain_text("finished")
    expect(page.get_by_test_id("model-info")).to_contain_text(ARCHITECTURE)
    chart = page.get_by_test_id("cost-chart")
    total_steps = page.get_by_test_id("progress").get_attribute("data-total-steps")
    expect(chart).to_have_attribute("data-points", total_steps)  # 2 epochs of 20 batches
    assert float(chart.get_attribute("data-last")) < 0.7 * float(chart.get_attribute("data-first"))
    expect(page.get_by_test_id("confusion")).to_contain_text("after epoch 2")
    accuracy = page.evaluate("window.scribblenet.epochs.at(-1).test_accuracy")
    assert accuracy > 0.8, accuracy  # on the full 10,000-image test set

    weights = page.get_by_test_id("weights")
    expect(weights).to_have_attribute("data-epoch", "2", timeout=30_000)
    expect(weights).to_have_attribute("data-side", "3")
    expect(weights).to_have_attribute("data-tiles", "4")
    size = pixels(weights)
    assert (size["width"], size["height"]) == (2 * 28 + 1, 2 * 28 + 1)  # 2×2 filters of 9×3 px
    assert painted(weights, 8)
    caption = page.locator("#weights-caption")
    expect(caption).to_contain_text("First conv layer's 4 filters (3×3), after epoch 2")


def test_a_cnn_reads_and_explains_a_drawing_with_its_feature_maps(debug_app) -> None:
    page = debug_app.page
    probabilities = predicted(page, ONE)
    assert sum(probabilities) == pytest.approx(1, abs=1e-3)
    maps = feature_maps_shown(page.get_by_test_id("explain"))
    expect(maps).to_be_visible()
    expect(maps).to_have_attribute("data-maps", "4")
    expect(maps).to_have_attribute("data-side", "26")  # 28 − 3 + 1
    canvas = maps.locator("canvas")
    size = pixels(canvas)
    assert (size["width"], size["height"]) == (4 * 27 + 1, 27 + 1)  # one row of 4 maps
    assert painted(canvas, 10)  # grey levels where the filters respond
    expect(maps).to_contain_text("first conv layer's 4 feature maps (26×26)")
    expect(page.get_by_test_id("neighbours").locator("figure")).to_have_count(8)
    expect(page.get_by_test_id("activations").locator("canvas")).to_have_count(1)  # dense16
    expect(page.get_by_test_id("saliency")).to_be_visible()


def test_an_mlp_has_no_feature_maps_and_the_cnn_file_comes_back(debug_app, tmp_path: Path) -> None:
    page = debug_app.page
    path = download_model(page, tmp_path / "cnn.npz")
    assert path.read_bytes()[:2] == b"PK"
    fill_form(page, {**TINY, "hidden": "32"})  # an MLP, whatever the pretrained model is
    start_training(page)
    wait_idle(page)
    info = page.get_by_test_id("model-info")
    expect(info).to_contain_text("784-32-10")
    weights = page.get_by_test_id("weights")
    expect(weights).to_have_attribute("data-side", "28", timeout=30_000)
    expect(page.locator("#weights-caption")).to_contain_text("First layer's weights: its 32 hidden")
    predicted(page, ONE)
    expect(feature_maps_shown(page.get_by_test_id("explain"))).to_be_hidden()

    page.get_by_test_id("upload").set_input_files(str(path))
    expect(info).to_contain_text("uploaded")
    expect(info).to_contain_text(ARCHITECTURE)
    expect(weights).to_have_attribute("data-side", "3", timeout=30_000)
    assert predicted(page, ONE)
    expect(feature_maps_shown(page.get_by_test_id("explain"))).to_be_visible()
    page.wait_for_timeout(300)  # the save to IndexedDB follows the upload
    page.reload()
    wait_ready(page)
    expect(info).to_contain_text(ARCHITECTURE)
    expect(info).to_contain_text("saved in this browser")
    expect(weights).to_have_attribute("data-side", "3", timeout=30_000)
    debug_app.assert_stayed_local()
