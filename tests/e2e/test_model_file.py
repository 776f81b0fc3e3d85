"""End to end, the model file: download and upload, bad files refused with the model unchanged,
Reset, and the trained model kept in the browser across a reload.

The tests share one page (the `app` fixture) in file order; the reload test comes last.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from page_helpers import (
    BOOT_TIMEOUT_MS,
    ONE,
    TINY,
    download_model,
    draw,
    fill_form,
    predicted,
    start_training,
    wait_idle,
    wait_ready,
)
from playwright.sync_api import expect

from session_helpers import huge_declared_size, npz_bytes

pytestmark = pytest.mark.e2e


def hostile_files(good: bytes) -> dict[str, tuple[bytes, str]]:
    """{file name: (contents, what the message says)}, made from the page's own model file."""
    with np.load(io.BytesIO(good)) as f:
        a = {name: f[name] for name in f.files}
    meta = json.loads(a["metadata"].tobytes())
    future = np.frombuffer(json.dumps({**meta, "version": 7}).encode(), np.uint8)
    return {
        "pickle.npz": (npz_bytes(**{**a, "W1": np.array([print], dtype=object)}), "pickled"),
        "shape.npz": (npz_bytes(**{**a, "W1": a["W1"][:100]}), "has shape (100,"),
        "dtype.npz": (npz_bytes(**{**a, "b1": a["b1"].astype(np.int32)}), "has dtype int32"),
        "nan.npz": (npz_bytes(**{**a, "W2": a["W2"] * np.nan}), "NaN or infinite"),
        "truncated.npz": (good[: len(good) // 3], "not a valid"),
        "future.npz": (
            npz_bytes(**{**a, "metadata": future}),
            "unsupported model format version 7",
        ),
        "photo.npz": (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a valid .npz/zip"),
        "zipbomb.npz": (huge_declared_size(good), "refusing to unpack"),
    }


def test_hostile_model_files_are_refused_and_change_nothing(app, tmp_path: Path) -> None:
    page = app.page
    # Once the data is in, the model's calibration is fitted: compare like with like.
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    before = predicted(page)
    good = download_model(page, tmp_path / "good.npz").read_bytes()
    info = page.get_by_test_id("model-info").text_content()
    message = page.get_by_test_id("model-message")
    for name, (data, expected) in hostile_files(good).items():
        (tmp_path / name).write_bytes(data)
        page.get_by_test_id("upload").set_input_files(str(tmp_path / name))
        expect(message).to_contain_text(f"Could not use {name}", timeout=15_000)
        expect(message).to_contain_text(expected)
        expect(message).to_contain_text("current model is unchanged")
        expect(page.get_by_test_id("model-info")).to_have_text(info)
    np.testing.assert_allclose(predicted(page), before, atol=1e-6)
    assert download_model(page, tmp_path / "after.npz").read_bytes() == good
    page.get_by_test_id("clear").click()


def test_model_download_and_upload(app, tmp_path) -> None:
    page = app.page
    path = download_model(page, tmp_path / "model.npz")
    assert path.read_bytes()[:2] == b"PK"  # an .npz is a zip
    page.get_by_test_id("reset").click()
    expect(page.get_by_test_id("model-info")).to_contain_text("pretrained")
    page.get_by_test_id("upload").set_input_files(str(path))
    expect(page.get_by_test_id("model-info")).to_contain_text("uploaded")
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    page.get_by_test_id("upload").set_input_files(str(tmp_path / "bad.npz"))
    expect(page.get_by_test_id("status")).to_contain_text("Could not use bad.npz")


def test_trained_model_survives_reload(app) -> None:
    page = app.page
    fill_form(page, TINY)
    start_training(page)
    wait_idle(page)
    expect(page.get_by_test_id("model-info")).to_contain_text("784-16-10")
    page.wait_for_timeout(300)  # the save to IndexedDB follows the "done" event
    page.reload()
    wait_ready(page)
    info = page.get_by_test_id("model-info")
    expect(info).to_contain_text("784-16-10")
    expect(info).to_contain_text("saved in this browser")
    draw(page, ONE)
    expect(page.get_by_test_id("prediction")).not_to_have_text("", timeout=10_000)


# ── the model history: nothing is lost silently ────────────────────────────────────────────


def history(page) -> list[tuple[str, bool]]:
    """(text, is current) of each history entry, newest first."""
    entries = page.get_by_test_id("history-entry")
    return [
        (entries.nth(i).text_content(), entries.nth(i).get_attribute("data-current") == "true")
        for i in range(entries.count())
    ]


def test_a_stopped_run_goes_to_the_history_without_replacing_the_model(app) -> None:
    page = app.page
    fill_form(page, {**TINY, "hidden": "24"})
    start_training(page)
    wait_idle(page)  # finished: 784-24-10 is current
    info = page.get_by_test_id("model-info")
    expect(info).to_contain_text("784-24-10")
    expect(page.get_by_test_id("history-entry").first).to_have_attribute("data-current", "true")
    count = page.get_by_test_id("history-entry").count()
    fill_form(page, {**TINY, "hidden": "12", "epochs": "200"})
    start_training(page)
    page.keyboard.press("Escape")  # barely trained: it must not replace the finished model
    expect(page.get_by_test_id("status")).to_contain_text("is still in use")
    expect(info).to_contain_text("784-24-10")
    expect(page.get_by_test_id("history-entry")).to_have_count(count + 1)
    newest, current = history(page)[0], history(page)[1]
    assert "784-12-10" in newest[0] and "stopped run" in newest[0] and not newest[1]
    assert "784-24-10" in current[0] and current[1]
    page.get_by_test_id("model-offer-button").click()  # "Use it instead": the user's choice
    expect(info).to_contain_text("784-12-10")
    expect(page.get_by_test_id("history-entry").first).to_have_attribute("data-current", "true")
    expect(page.locator("#hidden")).to_have_value("12")  # the form shows the model's settings


def test_reset_is_undoable_and_the_history_survives_a_reload(app) -> None:
    page = app.page
    info = page.get_by_test_id("model-info")
    before = info.text_content()
    page.get_by_test_id("reset").click()
    expect(info).to_contain_text("pretrained")
    page.get_by_test_id("model-offer-button").click()  # Undo
    expect(info).to_have_text(before)
    entries = history(page)
    page.wait_for_timeout(300)
    page.reload()
    wait_ready(page)
    expect(info).to_contain_text(before.split(" · ")[0])  # the same model, restored
    assert [current for _, current in history(page)] == [c for _, c in entries]
    # Deleting the current entry goes back to the pretrained model; the others stay.
    current = next(i for i, (_, c) in enumerate(history(page)) if c)
    page.get_by_test_id("history-delete").nth(current).click()
    expect(info).to_contain_text("pretrained")
    expect(page.get_by_test_id("history-entry")).to_have_count(len(entries) - 1)


def test_a_failed_upload_does_not_touch_a_run(app, tmp_path: Path) -> None:
    page = app.page
    fill_form(page, {**TINY, "epochs": "200"})
    start_training(page)
    (tmp_path / "notes.npz").write_bytes(b"not a zip at all")
    page.get_by_test_id("upload").set_input_files(str(tmp_path / "notes.npz"))
    expect(page.get_by_test_id("model-message")).to_contain_text("current model is unchanged")
    chart = page.get_by_test_id("cost-chart")
    points = chart.get_attribute("data-points")
    expect(chart).not_to_have_attribute("data-points", points, timeout=10_000)  # still training
    expect(page.get_by_test_id("stop")).to_be_enabled()
    page.get_by_test_id("stop").click()
    wait_idle(page)


def test_an_upload_error_goes_once_something_else_succeeds(app, tmp_path: Path) -> None:
    page = app.page
    message = page.get_by_test_id("model-message")
    (tmp_path / "bad.npz").write_bytes(b"nope")
    page.get_by_test_id("upload").set_input_files(str(tmp_path / "bad.npz"))
    expect(message).to_contain_text("Could not use bad.npz")
    page.get_by_test_id("reset").click()  # a later action that works
    expect(page.get_by_test_id("status")).to_contain_text("Back to the pretrained model")
    expect(message).to_have_text("")
