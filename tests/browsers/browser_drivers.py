"""Starting Firefox ESR (Marionette) and WebKitGTK (WebKitWebDriver + selenium) for the
cross-browser smoke tests, behind one small interface (`Driven`). See conftest.py."""

from __future__ import annotations

import glob
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
FIREFOX = os.environ.get("SCRIBBLENET_FIREFOX", "/usr/bin/firefox-esr")
WEBKIT_DRIVER = os.environ.get("SCRIBBLENET_WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver")

FIGURES: list[dict[str, Any]] = []  # one row per browser run, printed in the summary


def minibrowser() -> str | None:
    """WebKitGTK's MiniBrowser (libwebkit2gtk-4.1-0 ships it beside the web process)."""
    given = os.environ.get("SCRIBBLENET_MINIBROWSER")
    if given:
        return given
    found = sorted(glob.glob("/usr/lib/*/webkit2gtk-4.*/MiniBrowser"))
    return found[-1] if found else None


def executable(path: str | None) -> bool:
    return bool(path) and (Path(path).is_file() or shutil.which(path) is not None)


class Driven:
    """One browser session, whichever the protocol: scripts, raw W3C actions, navigation."""

    def __init__(
        self,
        name: str,
        version: str,
        get: Callable[[str], None],
        js: Callable[..., Any],
        perform: Callable[[list[dict]], None],
        quit: Callable[[], None],
    ) -> None:
        self.name, self.version = name, version
        self.get, self.js, self.perform, self.quit = get, js, perform, quit

    def wait_for(self, script: str, *args: Any, timeout: float = 30.0, what: str = "") -> Any:
        """Poll `script` (a function body returning a value) until it returns a truthy one."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: timed out after {timeout:.0f} s: {what or script}"
                )
            time.sleep(0.1)


def start_firefox(tmp_path: Path) -> Driven:
    # Imported here, its deprecation warnings silenced: mozrunner and mozinfo under
    # marionette_driver import telnetlib and call distro.linux_distribution() (pytest runs with
    # warnings as errors, which stays so for everything else).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from marionette_driver.marionette import Marionette

    # port=0: a free port; bin: Marionette starts `firefox-esr --headless -marionette` itself,
    # with a fresh profile from mozprofile whose automation preferences keep it off the network.
    # While it polls the port it drops unconnected sockets unclosed: their ResourceWarnings are
    # its own, and silenced here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        client = Marionette(
            bin=FIREFOX,
            port=0,
            headless=True,
            app_args=["--headless"],
            gecko_log=str(tmp_path / "gecko.log"),
            startup_timeout=90,
        )
        client.start_session({"pageLoadStrategy": "normal"})
    client.set_window_rect(width=1280, height=900)
    caps = client.session_capabilities

    def quit_() -> None:
        client.cleanup()  # ends the session, closes Firefox and deletes its profile
        # Let go of the profile now: its __del__ would otherwise clean up again at exit, when
        # imports no longer work, and print a traceback.
        if client.instance is not None:
            client.instance.runner = None
            client.instance = None

    return Driven(
        "firefox",
        f"{caps.get('browserName')} {caps.get('browserVersion')}",
        client.navigate,
        # sandbox=None: run in the page itself, so the page's own globals are visible.
        lambda script, *args: client.execute_script(script, script_args=list(args), sandbox=None),
        client.actions.perform,
        quit_,
    )


def start_webkit(tmp_path: Path, env: dict[str, str]) -> Driven:
    from selenium import webdriver
    from selenium.webdriver.remote.command import Command
    from selenium.webdriver.webkitgtk.options import Options
    from selenium.webdriver.webkitgtk.service import Service

    options = Options()
    options.binary_location = minibrowser() or ""
    options.add_argument("--automation")
    # The driver passes its own environment to the browser it starts: LANG decides its language.
    service = Service(
        executable_path=WEBKIT_DRIVER,
        log_output=str(tmp_path / "webkitwebdriver.log"),
        env={**os.environ, **env},
    )
    with warnings.catch_warnings():
        # selenium's own WebKitGTK class still passes remote_server_addr the deprecated way.
        warnings.simplefilter("ignore", DeprecationWarning)
        driver = webdriver.WebKitGTK(options=options, service=service)
    driver.set_window_size(1280, 900)
    caps = driver.capabilities

    def perform(actions: list[dict]) -> None:
        driver.execute(Command.W3C_ACTIONS, {"actions": actions})

    return Driven(
        "webkit",
        f"{caps.get('browserName')} {caps.get('browserVersion')}",
        driver.get,
        driver.execute_script,
        perform,
        driver.quit,
    )
