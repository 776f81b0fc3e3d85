"""End to end, a link that reproduces a run: the training form lives in the address's query
(?preset=fast&hidden=256,128&epochs=5), a link fills the form and checks it as typing would, it
never starts training by itself, and "Copy link" copies it (or shows it to copy by hand).

Each test opens its own page at its own address; every page must stay on the test server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlsplit

import pytest
from page_helpers import BOOT_TIMEOUT_MS, TINY, fill_form, is_local, wait_idle, wait_ready
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e


@contextmanager
def opened(browser: Browser, url: str, **context_args) -> Iterator[Page]:
    """A page at `url` in a new context, ready to train; nothing may leave the test server."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, service_workers="block", **context_args
    )
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    try:
        page = context.new_page()
        page.goto(url)
        wait_ready(page)
        expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
        yield page
        assert [u for u in requests if not is_local(u)] == []
    finally:
        context.close()


def form_values(page: Page) -> dict[str, str]:
    return page.locator("#train-form [name]").evaluate_all(
        "els => Object.fromEntries(els.map(el => [el.name, el.value]))"
    )


def query(page: Page) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(page.url).query, keep_blank_values=True)


def expect_not_training(page: Page) -> None:
    page.wait_for_timeout(1000)  # had anything started, it would show by now
    expect(page.get_by_test_id("progress-text")).to_have_text("Not training")
    expect(page.get_by_test_id("stop")).to_be_disabled()


def test_a_link_fills_the_form_and_does_not_train(browser: Browser, site_url: str) -> None:
    link = f"{site_url}?preset=tutorial&hidden=256,128&epochs=5"
    with opened(browser, link) as page:
        values = form_values(page)
        # The link's own values, and the preset's for the rest.
        assert (values["hidden"], values["epochs"]) == ("256,128", "5")
        tutorial = {"activation": "sigmoid", "init": "tutorial", "optimizer": "sgd",
                    "learning_rate": "0.1", "batch_size": "full", "seed": "1"}  # fmt: skip
        assert {name: values[name] for name in tutorial} == tutorial
        assert values["preset"] == "custom"  # no preset has exactly these values
        expect(page.locator("#train-form .error:not(:empty)")).to_have_count(0)
        expect(page.get_by_test_id("preset-note")).to_contain_text("MB")  # the check ran
        expect_not_training(page)
        # Edits go back into the address, readably (commas as commas), based on the preset.
        page.locator("#epochs").fill("7")
        expect(page).to_have_url(f"{site_url}?preset=tutorial&hidden=256,128&epochs=7")
        page.get_by_test_id("preset").select_option("quick")
        expect(page).to_have_url(f"{site_url}?preset=quick")
        page.locator("#seed").fill("3")
        page.locator("#activation").select_option("tanh")
        expect(page).to_have_url(f"{site_url}?preset=quick&activation=tanh&seed=3")


def test_a_link_with_bad_values_shows_the_usual_messages(browser: Browser, site_url: str) -> None:
    link = f"{site_url}?preset=quick&learning_rate=-1&hidden=64,abc&activation=bogus"
    with opened(browser, link) as page:
        expect(page.locator("#learning_rate-error")).to_contain_text("learning rate must be > 0")
        expect(page.locator("#hidden-error")).to_contain_text("whole numbers")
        expect(page.locator("#activation-error")).to_contain_text("must be one of")
        for field in ("learning_rate", "hidden", "activation"):
            expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#activation")).to_have_value("bogus")  # kept, so the message says why
        expect(page.locator("#epochs")).to_have_value("1")  # the rest: the quick preset's
        expect_not_training(page)
        page.get_by_test_id("train").click()  # refused, the messages kept
        expect(page.locator("#learning_rate-error")).to_contain_text("learning rate must be > 0")
        expect_not_training(page)
        # Choosing a real activation drops the bogus one from the menu.
        page.locator("#activation").select_option("relu")
        expect(page.locator("#activation option[value=bogus]")).to_have_count(0)
        expect(page.locator("#activation-error")).to_be_hidden()


def test_a_link_with_an_unknown_preset_says_so(browser: Browser, site_url: str) -> None:
    with opened(browser, f"{site_url}?preset=warp-speed&epochs=2") as page:
        expect(page.get_by_test_id("form-error")).to_contain_text("warp-speed")
        expect(page.locator("#epochs")).to_have_value("2")
        page.locator("#seed").fill("4")  # an edit: the message has been read
        expect(page.get_by_test_id("form-error")).to_be_hidden()
        expect_not_training(page)


def test_other_query_keys_are_kept_and_the_link_beats_a_saved_model(
    browser: Browser, site_url: str
) -> None:
    """?debug and subset stay as they were; a model restored from this browser (trained with
    other settings) does not overwrite the link's settings when the page opens."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    try:
        page = context.new_page()
        page.goto(f"{site_url}?debug&subset=500")
        wait_ready(page)
        expect(page.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
        fill_form(page, {**TINY, "hidden": "24"})
        assert page.url.startswith(f"{site_url}?debug&subset=500&")
        assert ("hidden", "24") in query(page)
        page.get_by_test_id("train").click()
        wait_idle(page)
        expect(page.get_by_test_id("status")).to_contain_text("finished")  # kept as current

        second = context.new_page()
        second.goto(f"{site_url}?debug&subset=500&preset=quick&hidden=40")
        wait_ready(second)
        expect(second.get_by_test_id("model-info")).to_contain_text("784-24-10")  # restored
        expect(second.get_by_test_id("train")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
        expect(second.locator("#hidden")).to_have_value("40")
        assert form_values(second)["epochs"] == "1"  # quick's
        assert second.url == f"{site_url}?debug&subset=500&preset=quick&hidden=40"
        expect_not_training(second)
    finally:
        context.close()


def test_copy_link_copies_the_address(browser: Browser, site_url: str) -> None:
    link = f"{site_url}?preset=deep&epochs=2"
    with opened(browser, link, permissions=["clipboard-read", "clipboard-write"]) as page:
        page.locator("#seed").fill("9")
        page.get_by_test_id("copy-link").click()
        expect(page.get_by_test_id("link-note")).to_have_text("Link copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == f"{site_url}?preset=deep&epochs=2&seed=9" == page.url
        expect(page.get_by_test_id("link-field")).to_be_hidden()
        page.locator("#seed").fill("10")  # the copied link is not this one any more
        expect(page.get_by_test_id("link-note")).to_have_text("")
    # The copied link, opened, gives the same form.
    with opened(browser, copied) as page:
        values = form_values(page)
        assert (values["hidden"], values["epochs"], values["seed"]) == ("256,128", "2", "9")


def test_without_a_clipboard_the_link_is_shown_to_copy(browser: Browser, site_url: str) -> None:
    refuse = """Object.defineProperty(navigator, "clipboard", { value: {
        writeText: () => Promise.reject(new DOMException("refused", "NotAllowedError")) } });"""
    context_page = opened(browser, f"{site_url}?preset=fast&batch_size=full")
    with context_page as page:
        page.add_init_script(refuse)
        page.reload()
        wait_ready(page)
        page.get_by_test_id("copy-link").click()
        expect(page.get_by_test_id("link-note")).to_have_text("Copy this link:")
        field = page.get_by_test_id("link-field")
        expect(field).to_be_visible()
        expect(field).to_have_value(f"{site_url}?preset=fast&batch_size=full")
        expect(field).to_be_focused()
        selected = field.evaluate("el => el.value.slice(el.selectionStart, el.selectionEnd)")
        assert selected == field.input_value()
