"""End to end, "Teach it your handwriting": the "This is a 0…9" buttons under the pad, My digits
(a gallery kept in IndexedDB across reloads, exported and imported as .npz, bad files refused),
fine-tuning on them as a run like any other (Escape stops it; its result says before → after and
the model card says "fine-tuned"), all of it by keyboard, and nothing leaving the page's origin.

The tests share one page (the `app` fixture) in file order, each leaving the pad clear.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from page_helpers import BOOT_TIMEOUT_MS, DIGITS, SEVEN, draw, wait_ready
from playwright.sync_api import Browser, FileChooser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from session_helpers import npz_bytes

pytestmark = pytest.mark.e2e

FINE_TUNE_TIMEOUT_MS = 600_000  # cross-validation and the run itself, on a busy 2-core machine
RESULT = re.compile(
    r"Your digits \(held out, \d+-fold cross-validation\): \d+\.\d % → \d+\.\d % · "
    r"MNIST test: \d+\.\d % → \d+\.\d % · \d+\.\d s"
)

# 20 drawings: four of each of five digits, each drawn a little differently (size, place, slant).
VARIANTS = [(1.0, 0.0, 0.0, 0.0), (0.8, -0.06, 0.04, 0.12), (1.1, 0.05, -0.03, -0.1),
            (0.9, 0.03, 0.05, 0.2)]  # fmt: skip
LABELS = ["0", "1", "3", "4", "7"]


def variant(strokes, scale: float, dx: float, dy: float, slant: float):
    """The strokes scaled about the centre, moved, and slanted (x shifts with height)."""
    return [
        [(0.5 + (x - 0.5) * scale + slant * (0.5 - y) + dx, 0.5 + (y - 0.5) * scale + dy)
         for x, y in stroke]
        for stroke in strokes
    ]  # fmt: skip


def count(page: Page):
    return page.get_by_test_id("my-digits-count")


def tiles(page: Page, label: int | None = None):
    """The gallery's tiles (of one label)."""
    group = "" if label is None else f'[data-label="{label}"]'
    return page.locator(f"[data-testid=my-digits] > li{group} li[data-id]")


def pad_ink(page: Page) -> int:
    """The sum of the pad's alpha: 0 when it is clear."""
    return page.get_by_test_id("draw-canvas").evaluate(
        """c => c.getContext("2d").getImageData(0, 0, c.width, c.height).data
            .reduce((sum, v, i) => (i % 4 === 3 ? sum + v : sum), 0)"""
    )


def teach(page: Page, strokes, label: int, expected: int) -> None:
    """Draw `strokes`, press "This is a `label`", and wait until My digits holds `expected`."""
    draw(page, strokes)
    page.get_by_test_id(f"teach-digit-{label}").click()
    expect(count(page)).to_have_text(str(expected), timeout=15_000)
    expect(page.get_by_test_id("prediction")).to_have_text("")  # the pad was cleared for the next
    assert pad_ink(page) == 0


def delete_all(page: Page) -> None:
    if count(page).text_content() != "0":
        page.get_by_test_id("digits-clear").click()
    expect(count(page)).to_have_text("0")


def test_a_wrong_prediction_is_taught_with_the_right_digit(app) -> None:
    page = app.page
    expect(count(page)).to_have_text(re.compile(r"^\d+$"))
    before = int(count(page).text_content())
    expect(page.get_by_test_id("teach-hint")).to_contain_text("Wrong? Press the right digit")
    draw(page, SEVEN)
    prediction = page.get_by_test_id("prediction")
    expect(prediction).not_to_have_text("", timeout=15_000)
    wrong = (int(prediction.text_content()) + 1) % 10  # "no, it is a …": any other digit
    assert pad_ink(page) > 0
    button = page.get_by_role("button", name=re.compile(rf"^This is an? {wrong}$"))
    expect(button).to_have_attribute("data-testid", f"teach-digit-{wrong}")
    button.click()
    expect(count(page)).to_have_text(str(before + 1), timeout=15_000)
    expect(prediction).to_have_text("")
    assert pad_ink(page) == 0
    expect(tiles(page, wrong)).to_have_count(1)
    expect(page.get_by_test_id("teach-message")).to_contain_text(f"Kept as a{'n' * (wrong == 8)}")
    # An empty pad: a short message, nothing kept.
    page.get_by_test_id("teach-digit-3").click()
    expect(page.get_by_test_id("teach-message")).to_contain_text("Nothing kept")
    expect(count(page)).to_have_text(str(before + 1))
    # Digit keys are the page's only through the buttons: typed on the pad, they do nothing.
    draw(page, SEVEN)
    page.get_by_test_id("draw-canvas").focus()
    page.keyboard.press("7")
    page.wait_for_timeout(500)
    expect(count(page)).to_have_text(str(before + 1))
    assert pad_ink(page) > 0
    page.keyboard.press("Delete")


def test_twenty_digits_fill_the_gallery_and_survive_a_reload(app) -> None:
    page = app.page
    delete_all(page)
    expect(page.get_by_test_id("fine-tune")).to_be_disabled()
    n = 0
    for digit in LABELS:
        for scale, dx, dy, slant in VARIANTS:
            n += 1
            teach(page, variant(DIGITS[digit], scale, dx, dy, slant), int(digit), n)
    expect(count(page)).to_have_text("20")
    for digit in LABELS:
        expect(tiles(page, int(digit))).to_have_count(4)
    expect(tiles(page)).to_have_count(20)
    # Each tile is the 28×28 image the network saw, with ink, and a Remove button named for it.
    first = tiles(page, 7).first
    assert first.locator("canvas").evaluate(
        "c => [c.width, c.height, getComputedStyle(c).imageRendering]"
    ) == [28, 28, "pixelated"]
    ink = first.locator("canvas").evaluate(
        "c => Math.max(...c.getContext('2d').getImageData(0, 0, 28, 28).data)"
    )
    assert ink > 200
    expect(first.get_by_role("button")).to_have_accessible_name("Remove this 7")
    page.wait_for_timeout(300)  # nothing is left to write, but a reload must not race it
    page.reload()
    wait_ready(page)
    expect(count(page)).to_have_text("20", timeout=15_000)
    for digit in LABELS:
        expect(tiles(page, int(digit))).to_have_count(4)


def test_my_digits_export_and_import_round_trip(app, tmp_path: Path) -> None:
    page = app.page
    expect(count(page)).to_have_text("20")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export my digits").click()
    assert download.value.suggested_filename == "my-digits.npz"
    path = tmp_path / "my-digits.npz"
    download.value.save_as(path)
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == ["images", "labels"]
        images, labels = f["images"], f["labels"]
    assert images.shape == (20, 784) and images.dtype == np.uint8
    assert sorted(labels.tolist()) == sorted([int(d) for d in LABELS] * 4)
    assert (images.max(axis=1) > 200).all()  # every one has ink
    # Delete all is undoable…
    page.get_by_test_id("digits-clear").click()
    expect(count(page)).to_have_text("0")
    expect(tiles(page)).to_have_count(0)
    page.get_by_test_id("digits-offer-button").click()  # Undo
    expect(count(page)).to_have_text("20")
    # …and an exported file brings them back.
    page.get_by_test_id("digits-clear").click()
    expect(count(page)).to_have_text("0")
    page.get_by_test_id("digits-import").set_input_files(str(path))
    expect(count(page)).to_have_text("20", timeout=15_000)
    for digit in LABELS:
        expect(tiles(page, int(digit))).to_have_count(4)
    expect(page.get_by_test_id("my-digits-message")).to_have_text("")
    # Imported digits are added to those there are.
    page.get_by_test_id("digits-import").set_input_files(str(path))
    expect(count(page)).to_have_text("40", timeout=15_000)
    for _ in range(20):  # and each can be removed
        tiles(page).first.get_by_role("button").click()
    expect(count(page)).to_have_text("20")


def bad_files(good: bytes) -> dict[str, tuple[bytes, str]]:
    """{file name: (contents, what the message says)}, made from a good digits file."""
    with np.load(io.BytesIO(good), allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
    return {
        "photo.npz": (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a valid"),
        "truncated.npz": (good[: len(good) // 2], "not a valid"),
        "model.npz": (npz_bytes(W1=np.zeros((784, 4), np.float32)), "not a digits file"),
        "pickle.npz": (
            npz_bytes(images=np.array([print], dtype=object), labels=labels),
            "pickled",
        ),
        "floats.npz": (npz_bytes(images=images.astype(np.float64), labels=labels), "uint8"),
        "labels.npz": (npz_bytes(images=images, labels=labels + 10), "labels must be digits"),
        "counts.npz": (npz_bytes(images=images, labels=labels[:3]), "20 images but 3 labels"),
    }


def test_bad_digit_files_are_refused_and_add_nothing(app, tmp_path: Path) -> None:
    page = app.page
    expect(count(page)).to_have_text("20")
    with page.expect_download() as download:
        page.get_by_test_id("digits-export").click()
    download.value.save_as(tmp_path / "good.npz")
    message = page.get_by_test_id("my-digits-message")
    for name, (data, expected) in bad_files((tmp_path / "good.npz").read_bytes()).items():
        (tmp_path / name).write_bytes(data)
        page.get_by_test_id("digits-import").set_input_files(str(tmp_path / name))
        expect(message).to_contain_text(f"Could not import {name}", timeout=15_000)
        expect(message).to_contain_text(expected)
        expect(message).to_contain_text("My digits are unchanged")
        expect(count(page)).to_have_text("20")


def test_fine_tune_stops_with_escape_and_finishes_with_before_and_after(app) -> None:
    page = app.page
    expect(count(page)).to_have_text("20")
    button, result = page.get_by_test_id("fine-tune"), page.get_by_test_id("fine-tune-result")
    info = page.get_by_test_id("model-info")
    expect(button).to_be_enabled(timeout=BOOT_TIMEOUT_MS)  # once the training data is in
    model = info.text_content()
    points = page.get_by_test_id("cost-chart").get_attribute("data-points")
    # A run like any other: Escape stops it, and the model in use stays.
    button.click()
    expect(result).to_have_text("Fine-tuning…")
    expect(result).to_have_attribute("data-done", "false")
    expect(page.get_by_test_id("stop")).to_be_enabled()
    expect(button).to_be_disabled()
    expect(page.get_by_test_id("train")).to_be_disabled()
    page.keyboard.press("Escape")
    expect(result).to_have_text(re.compile(r"^Fine-tuning stopped; .+ is still in use\.$"))
    expect(result).to_have_attribute("data-done", "false")
    expect(info).to_have_text(model)
    expect(button).to_be_enabled()
    # Again, to the end; drawing is read meanwhile, and the progress line moves.
    button.click()
    expect(page.get_by_test_id("stop")).to_be_enabled()
    draw(page, SEVEN)
    expect(page.get_by_test_id("prediction")).not_to_have_text("", timeout=30_000)
    expect(page.get_by_test_id("progress-text")).not_to_have_text("Starting…", timeout=60_000)
    page.keyboard.press("Delete")
    expect(result).to_have_attribute("data-done", "true", timeout=FINE_TUNE_TIMEOUT_MS)
    expect(result).to_have_text(RESULT)
    print(result.text_content())
    expect(info).to_contain_text("fine-tuned on your digits")
    expect(info).to_have_attribute("data-source", "finetuned")
    expect(page.get_by_test_id("stop")).to_be_disabled()
    expect(page.get_by_test_id("progress")).to_have_js_property("value", 1)
    assert page.get_by_test_id("cost-chart").get_attribute("data-points") == points  # untouched
    entry = page.get_by_test_id("history-entry").first
    expect(entry).to_contain_text("fine-tuned on your digits")
    expect(entry).to_have_attribute("data-current", "true")
    draw(page, DIGITS["3"])  # the fine-tuned model reads drawings
    expect(page.get_by_test_id("prediction")).to_have_text("3", timeout=15_000)
    page.keyboard.press("Delete")
    page.get_by_test_id("reset").click()  # and the pretrained model is one press away
    expect(info).to_contain_text("pretrained")
    page.get_by_test_id("model-offer-button").click()  # Undo: the fine-tuned one again
    expect(info).to_contain_text("fine-tuned on your digits")


def focus_by_tab(page: Page, testid: str) -> None:
    """Press Tab until the element `testid` has the focus."""
    page.evaluate("document.activeElement?.blur()")
    for _ in range(250):  # forward, round the page if need be
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.dataset.testid") == testid:
            return
    pytest.fail(f"Tab never reached {testid}")


def choose_by_keyboard(page: Page) -> FileChooser:
    """Enter on the focused button opens the file chooser; the chooser it opened.

    In a fresh headless Chromium the first chooser after a download is now and then never
    reported (seen in 1 of 4 runs of this test, never by hand): Enter is pressed again then.
    """
    for attempt in range(3):
        try:
            with page.expect_file_chooser(timeout=10_000) as chooser:
                page.keyboard.press("Enter")
            return chooser.value
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def test_all_of_it_by_keyboard(app, tmp_path: Path) -> None:
    page = app.page
    delete_all(page)
    label = page.get_by_test_id("test-digit-label")
    # Keyboard users cannot draw: "Try a test digit" puts MNIST digits on the pad to label.
    for seed, key in [(0.0, "Enter"), (0.3, " "), (0.6, "Enter"), (0.9, " ")]:
        page.evaluate(f"Math.random = () => {seed}")
        focus_by_tab(page, "try-test-digit")
        page.keyboard.press("Enter")
        expect(label).to_have_attribute("data-label", re.compile(r"\d"), timeout=15_000)
        digit = int(label.get_attribute("data-label"))
        page.keyboard.press("Tab")  # the teach buttons come next, 0 first
        expect(page.get_by_test_id("teach-digit-0")).to_be_focused()
        for _ in range(digit):
            page.keyboard.press("Tab")
        expect(page.get_by_test_id(f"teach-digit-{digit}")).to_be_focused()
        before = int(count(page).text_content())
        page.keyboard.press(key)
        expect(count(page)).to_have_text(str(before + 1), timeout=15_000)
        expect(label).to_have_text("")  # the pad was cleared
    # A Remove button by keyboard; the focus stays in the gallery (the next tile's, if any).
    focus_by_tab(page, "remove-digit")
    page.keyboard.press("Enter")
    expect(count(page)).to_have_text("3")
    assert page.evaluate("document.activeElement.closest('[data-testid=my-digits]') !== null")
    focus_by_tab(page, "remove-digit")
    page.keyboard.press(" ")
    expect(count(page)).to_have_text("2")
    # Export, then Delete all and Undo, then Import, by keyboard.
    focus_by_tab(page, "digits-export")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    download.value.save_as(tmp_path / "mine.npz")
    focus_by_tab(page, "digits-clear")
    page.keyboard.press("Enter")
    expect(count(page)).to_have_text("0")
    expect(page.get_by_test_id("digits-offer-button")).to_be_focused()
    page.keyboard.press("Enter")  # Undo
    expect(count(page)).to_have_text("2")
    focus_by_tab(page, "digits-import-button")
    choose_by_keyboard(page).set_files(str(tmp_path / "mine.npz"))
    expect(count(page)).to_have_text("4", timeout=15_000)
    # Fine-tune needs 5 digits of 2 labels: one more, then Enter starts it and Escape stops it.
    expect(page.get_by_test_id("fine-tune-hint")).to_contain_text("at least 5")
    expect(page.get_by_test_id("fine-tune")).to_be_disabled()
    groups = page.locator("[data-testid=my-digits] > li")
    present = {int(groups.nth(i).get_attribute("data-label")) for i in range(groups.count())}
    page.evaluate("Math.random = () => 0.45")
    focus_by_tab(page, "try-test-digit")
    page.keyboard.press("Enter")
    expect(label).to_have_attribute("data-label", re.compile(r"\d"), timeout=15_000)
    other = min(set(range(10)) - present)  # a label not there yet: two labels at least
    page.get_by_test_id(f"teach-digit-{other}").focus()
    page.keyboard.press("Enter")
    expect(count(page)).to_have_text("5", timeout=15_000)
    focus_by_tab(page, "fine-tune")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("fine-tune-result")).to_have_text("Fine-tuning…")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("fine-tune-result")).to_contain_text("Fine-tuning stopped")
    expect(page.get_by_test_id("fine-tune")).to_be_enabled()


# ── the database: My digits came with version 3; older visitors' models must survive it ─────

SEED = {
    # Version 1: one model under "current" in a "models" store.
    1: """async bytes => {
        const db = await new Promise((resolve, reject) => {
            const r = indexedDB.open("scribblenet", 1);
            r.onupgradeneeded = () => r.result.createObjectStore("models");
            r.onsuccess = () => resolve(r.result);
            r.onerror = () => reject(r.error);
        });
        const tx = db.transaction("models", "readwrite");
        const info = {name: "old", n_parameters: 1, source: "uploaded"};
        tx.objectStore("models").put({bytes, info, savedAt: 1}, "current");
        await new Promise(resolve => (tx.oncomplete = resolve));
        db.close();
    }""",
    # Version 2: the history and which entry is current.
    2: """async bytes => {
        const db = await new Promise((resolve, reject) => {
            const r = indexedDB.open("scribblenet", 2);
            r.onupgradeneeded = () => {
                r.result.createObjectStore("history", {keyPath: "id", autoIncrement: true});
                r.result.createObjectStore("meta");
            };
            r.onsuccess = () => resolve(r.result);
            r.onerror = () => reject(r.error);
        });
        const tx = db.transaction(["history", "meta"], "readwrite");
        const info = {name: "old", n_parameters: 1, source: "uploaded"};
        tx.objectStore("history").add({bytes, info, savedAt: 1});
        tx.objectStore("meta").put(1, "current");
        await new Promise(resolve => (tx.oncomplete = resolve));
        db.close();
    }""",
}


@pytest.mark.parametrize("version", sorted(SEED))
def test_an_older_database_keeps_its_model_and_gains_my_digits(
    browser: Browser, site_url: str, version: int
) -> None:
    context = browser.new_context(service_workers="block")
    try:
        context.route("**/favicon.ico", lambda route: route.fulfill(status=204))  # for the JSON
        page = context.new_page()
        page.goto(f"{site_url}manifest.json")  # the site's origin, without the page's scripts
        page.evaluate(
            f"""async () => {{
                const bytes = await (await fetch("models/pretrained.npz")).arrayBuffer();
                await ({SEED[version]})(bytes);
            }}"""
        )
        page.goto(site_url)
        wait_ready(page)
        expect(page.get_by_test_id("model-info")).to_contain_text("saved in this browser")
        entry = page.get_by_test_id("history-entry")
        expect(entry).to_have_count(1)
        expect(entry).to_have_attribute("data-current", "true")
        teach(page, DIGITS["7"], 7, 1)
        page.reload()
        wait_ready(page)
        expect(count(page)).to_have_text("1", timeout=15_000)
        expect(page.get_by_test_id("history-entry")).to_have_count(1)
    finally:
        context.close()


def test_nothing_left_the_page(app) -> None:
    app.assert_stayed_local()
