"""Playwright fixtures: the built site served under /scribblenet/ on a free port, Chromium
launched from /usr/bin/chromium, and every request recorded so tests can assert that nothing
leaves 127.0.0.1.

The site is $SCRIBBLENET_DIST if set (an existing build), else built afresh from the work tree
into a temporary directory. Under Pyodide these tests cannot run and are not collected.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SCRIBBLENET_CHROMIUM", "/usr/bin/chromium")

if sys.platform == "emscripten":
    collect_ignore_glob = ["test_*.py"]  # no browser, sockets or subprocesses in Pyodide
else:
    from playwright.sync_api import Browser, Page, expect

BOOT_TIMEOUT_MS = 90_000  # a cold Pyodide start on a busy 2-core CI machine


@pytest.fixture(scope="session")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: $SCRIBBLENET_DIST, or a fresh build of the work tree."""
    given = os.environ.get("SCRIBBLENET_DIST")
    if given:
        path = Path(given).resolve()
        if not (path / "manifest.json").is_file():
            pytest.fail(f"SCRIBBLENET_DIST={given} has no manifest.json: build the site first")
        return path
    out = tmp_path_factory.mktemp("site") / "dist"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "build_site.py"), "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/build_site.py failed:\n{result.stdout}\n{result.stderr}")
    return out


@pytest.fixture(scope="session")
def site_url(dist_dir: Path):
    """URL of the page, served from a thread by scripts/serve.py under /scribblenet/."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        from serve import serve
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    server, url = serve(dist_dir, port=0, base="/scribblenet/")
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def base_url(site_url: str) -> str:
    """pytest-playwright's base URL: relative page.goto() paths resolve under the site."""
    return site_url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """The system Chromium, quiet: no sandbox (containers), GPU or background traffic."""
    if not Path(CHROMIUM).is_file() and not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@dataclass
class App:
    """The page plus what it did: every URL requested (page and workers) and console errors."""

    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ready_seconds: float = math.nan


@pytest.fixture(scope="module")
def app(browser: Browser, site_url: str):
    """A page on the site, ready to predict, shared by the tests of one module."""
    # The service worker would answer repeat requests from its cache and hide them from the
    # request log; test_service_worker_serves_repeat_visits covers it on its own.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = context.new_page()
    app = App(page)
    context.on("request", lambda request: app.requests.append(request.url))
    page.on("console", lambda m: app.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: app.errors.append(str(e)))
    started = time.perf_counter()
    page.goto(site_url)
    expect(page.get_by_test_id("status")).to_have_attribute(
        "data-ready", "true", timeout=BOOT_TIMEOUT_MS
    )
    app.ready_seconds = time.perf_counter() - started
    yield app
    context.close()
