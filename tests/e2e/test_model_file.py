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
