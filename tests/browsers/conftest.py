"""Cross-browser smoke tests: the browsers Debian ships, driven over their own WebDriver servers.

- Firefox ESR over Marionette (`marionette_driver`, which starts `firefox-esr --marionette`
  headless with a fresh profile on a free port);
- WebKitGTK's MiniBrowser through `WebKitWebDriver` (Debian's webkit2gtk-driver) with selenium
  pointed at that binary: nothing is downloaded. It needs a display: run under `xvfb-run -a`.

Each test skips, saying why, only when its browser or driver binary is absent; anything else
that goes wrong fails. The figures measured (ready time, stages, examples/s, backend) are
printed at the end of the run. Under Pyodide nothing here is collected.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

if sys.platform == "emscripten":
    collect_ignore_glob = ["test_*.py"]  # no browsers, sockets or subprocesses in Pyodide
    FIGURES: list = []
else:
    from browser_drivers import (
        FIGURES,
        FIREFOX,
        WEBKIT_DRIVER,
        Driven,
        executable,
        minibrowser,
        start_firefox,
        start_webkit,
    )


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Driven]]:
    """launch(kind, env=None): a started browser (skips if its binary is absent)."""
    started: list[Driven] = []

    def start(kind: str, env: dict[str, str] | None = None) -> Driven:
        if kind == "firefox":
            if not executable(FIREFOX):
                pytest.skip(f"no Firefox at {FIREFOX} (apt-get install firefox-esr)")
            browser = start_firefox(tmp_path)
        else:
            if not executable(WEBKIT_DRIVER):
                pytest.skip(
                    f"no WebKitWebDriver at {WEBKIT_DRIVER} (apt-get install webkit2gtk-driver)"
                )
            if not executable(minibrowser()):
                pytest.skip("no WebKitGTK MiniBrowser under /usr/lib/*/webkit2gtk-4.*/")
            if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
                pytest.fail("WebKitGTK needs a display: run these tests under `xvfb-run -a`")
            browser = start_webkit(tmp_path, env or {})
        started.append(browser)
        return browser

    yield start
    for browser in started:
        browser.quit()


def pytest_terminal_summary(terminalreporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("cross-browser figures (this machine)")
    for row in FIGURES:
        terminalreporter.write_line(
            "  ".join(f"{key}={value}" for key, value in row.items() if value is not None)
        )
