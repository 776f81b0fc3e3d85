"""protocol.js lists every message the page and the Python worker exchange, and no other.

The ?debug page records the type of every message it sends and receives
(`window.scribblenet.messageTypes`, kept by WorkerClient). This module drives one such page
through every request, reply and event, failures and restarts included, then reads the tables
at the top of protocol.js and checks both ways: every type seen is listed, every type listed
was seen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import page_helpers as ph
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

# A run whose full batch of the debug page's 2,000 images is split into micro-batches (512
# hidden units), so that a chunk ends part-way through a batch: "progress" events.
SPLIT = {**ph.TINY, "hidden": "512", "batch_size": "full", "epochs": "50"}
FOREIGN = "http://127.0.0.2:9/steal"


def documented(protocol_js: str) -> dict[str, set[str]]:
    """The message types in protocol.js's tables: {"request", "reply", "event", "not_sent"}.

    A row starts a new entry when its first column is filled; a reply cell is read with its
    continuation lines, without the payloads in {…} and the notes in (…).
    """
    lines = [line[2:] for line in protocol_js.splitlines() if line.startswith("//")]
    types: dict[str, set[str]] = {k: set() for k in ("request", "reply", "event", "not_sent")}
    replies: list[str] = []  # the reply cell of each request, its continuation lines joined
    table = None
    reply_col = 0
    for text in lines:
        words = text.split()
        if not words:
            table = None
        elif words[0] in ("request", "event") and table is None:
            table, reply_col = words[0], text.find("reply")
        elif table and words[0].startswith("─"):
            continue
        elif table == "request":
            if re.match(r"  [a-z_]+ ", text):
                types["request"].add(words[0])
                replies.append("")
            replies[-1] += " " + text[reply_col:]
        elif table == "event" and re.match(r"  [a-z_]+ ", text):
            types["event"].add(words[0])
            if "not sent" in text:
                types["not_sent"].add(words[0])
    for cell in replies:
        while (stripped := re.sub(r"\{[^{}]*\}|\([^()]*\)", "", cell)) != cell:
            cell = stripped
        types["reply"] |= set(re.findall(r"[a-z_]+", cell))
    # The reply every request may get instead of its own, named in the introduction.
    types["reply"] |= set(re.findall(r'type: "([a-z_]+)"', "\n".join(lines[:4])))
    return types


@pytest.fixture(scope="module")
def table(dist_dir: Path) -> dict[str, set[str]]:
    return documented((dist_dir / "protocol.js").read_text(encoding="utf-8"))


def test_the_table_reads_as_written(table: dict[str, set[str]]) -> None:
    assert {"init", "train", "stop", "debug", "ping"} <= table["request"]
    assert {"ready", "started", "prediction", "model", "fetched", "error", "pong"} <= table["reply"]
    assert {"stage", "batch", "done", "fatal"} <= table["event"]
    assert table["not_sent"] == {"crash"}
    assert not table["reply"] & {"ok", "empty", "true", "subset", "reason"}  # payloads left out


def restarted(page: Page, kill: Callable[[], object]) -> None:
    """Kill the worker with `kill()` and wait until a new one can predict and train."""
    old = page.evaluate_handle("window.scribblenet.worker")
    kill()
    page.wait_for_function("w => w !== window.scribblenet.worker", arg=old, timeout=20_000)
    expect(page.get_by_test_id("status")).to_contain_text("Ready again", timeout=ph.BOOT_TIMEOUT_MS)
    expect(page.get_by_test_id("train")).to_be_enabled(timeout=ph.BOOT_TIMEOUT_MS)


def test_every_message_sent_is_in_the_table_and_back(
    debug_app, table: dict[str, set[str]], tmp_path: Path
) -> None:
    page = debug_app.page
    # Start-up (init, stage, dataset) and the form's first check (configure) are behind us.
    ph.draw(page, ph.ONE)  # predict
    expect(page.get_by_test_id("prediction")).to_have_text("1", timeout=15_000)
    page.get_by_test_id("try-test-digit").click()  # test_digit
    expect(page.get_by_test_id("test-digit-label")).not_to_have_text("", timeout=15_000)

    ph.fill_form(page, SPLIT)  # batch and progress events; pause, resume and stop
    ph.start_training(page)
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("status")).to_contain_text("Paused")
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("status")).to_contain_text("Training…")
    page.get_by_test_id("stop").click()
    ph.wait_idle(page)
    ph.fill_form(page, ph.TINY)  # a run to its end: epoch and done
    page.get_by_test_id("train").click()
    ph.wait_idle(page)
    expect(page.get_by_test_id("status")).to_contain_text("finished")

    # A confusion cell's images (mistakes); the matrix came with the data (confusion), the
    # drawing's explanation (explain) and the weights (weights) with the first prediction.
    page.locator('[data-testid="confusion-cell"][data-true="4"][data-pred="9"]').click()
    expect(page.get_by_test_id("gallery")).to_be_visible(timeout=30_000)
    for i, digit in enumerate([ph.ONE, ph.SEVEN] * 3):  # digitize, six digits of two labels
        ph.draw(page, digit)
        page.get_by_test_id(f"teach-digit-{7 if i % 2 else 1}").click()
        expect(page.get_by_test_id("my-digits-count")).to_have_text(str(i + 1), timeout=15_000)
    with page.expect_download() as download:  # digits_export
        page.get_by_test_id("digits-export").click()
    digits = tmp_path / "my-digits.npz"
    download.value.save_as(digits)
    page.get_by_test_id("digits-import").set_input_files(str(digits))  # digits_import
    expect(page.get_by_test_id("my-digits-count")).to_have_text("12", timeout=15_000)
    page.get_by_test_id("fine-tune").click()  # finetune: finetune events, then done
    expect(page.get_by_test_id("fine-tune-result")).to_have_attribute(
        "data-done", "true", timeout=120_000
    )

    model = ph.download_model(page, tmp_path / "model.npz")  # export
    page.get_by_test_id("upload").set_input_files(str(model))  # import
    expect(page.get_by_test_id("model-info")).to_contain_text("uploaded")
    page.get_by_test_id("reset").click()  # reset
    expect(page.get_by_test_id("model-info")).to_contain_text("pretrained")
    for _ in range(40):  # idle for half the 4 s watchdog: the page pings the worker
        if "pong" in page.evaluate("window.scribblenet.messageTypes.received"):
            break
        page.wait_for_timeout(250)

    assert "heap" in ph.debug_request(page, "memory")
    fetched = page.evaluate(
        """url => window.scribblenet.client.request("debug", { action: "fetch", url })""",
        FOREIGN,
    )
    assert fetched["ok"] is False
    assert "debug: an error raised in Python" in ph.debug_request(page, "python_error")["error"]
    restarted(page, lambda: ph.debug_request(page, "throw"))  # debugged, then a crash
    restarted(page, lambda: ph.debug_request(page, "fatal"))  # error, then a fatal event
    restarted(page, lambda: ph.debug_request(page, "close"))  # debugged, then silence
    ph.wait_ready(page)

    types = page.evaluate("window.scribblenet.messageTypes")
    sent, received = set(types["sent"]), set(types["received"])
    print(f"sent {sorted(sent)}; received {sorted(received)}")
    assert sent - table["request"] == set(), "requests missing from protocol.js"
    assert received - table["reply"] - table["event"] == set(), "messages missing from protocol.js"
    assert table["request"] - sent == set(), "listed requests never sent"
    never = (table["reply"] | (table["event"] - table["not_sent"])) - received
    assert never == set(), "listed replies or events never received"
