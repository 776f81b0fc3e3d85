"""What every section of the browser benchmark shares: the site copy, the servers, the hooks.

The site is built into a temporary directory (or copied from --dist); the benchmark-only pages
of scripts/bench/ and TensorFlow.js's files (node_modules, devDependencies) are added beside it
as <site>/bench/, and it is served on 127.0.0.1 under /scribblenet/. Every `Servers.start` is a
new port, i.e. a new origin: an empty cache and no service worker from another measurement.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import build_site  # scripts/, not a package
import serve

__all__ = [
    "BASE",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "PAGE_HOOKS",
    "Run",
    "Servers",
    "fmt",
    "guarded",
    "log",
    "stage_site",
    "verdict",
]

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench"  # benchmark-only pages, served as <site>/bench/
CHROMIUM = os.environ.get("SCRIBBLENET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BASE = "/scribblenet/"
TFJS_FILES = (
    "@tensorflow/tfjs/dist/tf.min.js",
    "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm",
)
# Runs in every tab before the page's scripts: notes when the status line turns ready, keeps
# the page's worker (the first Worker the page makes, in spawn.js) for requests of our own, and
# records the worker's messages with page timestamps (ms since navigation start).
PAGE_HOOKS = """
(() => {
  const bench = (window.__bench = { readyAt: null, clickAt: null, events: [], lastBatch: null });
  new MutationObserver(() => {
    const el = document.querySelector('[data-testid="status"]');
    if (bench.readyAt === null && el?.dataset.ready === "true") bench.readyAt = performance.now();
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-ready"] });
  const Native = window.Worker;
  if (!Native) return;
  window.Worker = class extends Native {
    constructor(...args) {
      super(...args);
      bench.worker ??= this;
      this.addEventListener("message", ({ data }) => {
        if (!data || typeof data !== "object") return;
        const t = performance.now();
        if (data.type === "batch") {
          bench.lastBatch = { t, epoch: data.epoch, examples_per_s: data.examples_per_s };
          return;
        }
        if (["stage", "dataset", "epoch", "done", "ready", "started"].includes(data.type)) {
          const { confusion, model, ...rest } = data;
          const rate = bench.lastBatch?.examples_per_s;
          bench.events.push({ t, ...rest, in_page_examples_per_s: rate });
        }
      });
    }
  };
})();
"""


@dataclass
class Run:
    """One benchmark run: the browser, the site, the servers and the command-line options."""

    context: Any  # playwright's persistent BrowserContext
    servers: Servers
    site: Path
    profile: Path  # the Chromium profile directory (its processes are found by it)
    repeats: int
    timeout_ms: int
    notes: list[str]  # printed above the table


def log(message: str) -> None:
    """Progress to stderr, so stdout holds only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def short_error(exc: BaseException) -> dict[str, str]:
    """{"error": the exception's type and first line}."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return {"error": f"{type(exc).__name__}: {first}"}


def guarded(label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one measurement; on failure log it and return {"error": ...} so the run goes on."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        log(f"{label}: {short_error(exc)['error']}")
        return short_error(exc)


def fmt(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    """A number formatted, or a dash for a missing figure."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:{spec}}{suffix}"


def verdict(ok: bool | None) -> str:
    """PASS / FAIL / n/a for a target."""
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


# ── The site copy ─────────────────────────────────────────────────────────────────────────────
def stage_site(tmp: Path, dist: Path | None, notes: list[str]) -> Path:
    """Build (or copy) the site into `tmp`, add bench/ and TF.js; the site's directory."""
    site = tmp / "site"
    if dist is not None:
        shutil.copytree(dist, site)
    else:
        web = tmp / "web"
        shutil.copytree(ROOT / "web", web, ignore=shutil.ignore_patterns("__pycache__"))
        model = web / build_site.MODEL_PATH
        if not model.is_file():
            notes.append("web/models/pretrained.npz missing: an untrained placeholder was used")
            placeholder_model(model)
        log("building the site (scripts/build_site.py) into a temporary directory")
        build_site.build(site, web)
    shutil.copytree(BENCH, site / "bench", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    vendor = site / "bench" / "vendor" / "tfjs"
    vendor.mkdir(parents=True)
    # Another node_modules may hold TF.js (npm ci --omit=dev leaves it out of the project's).
    modules = Path(os.environ.get("SCRIBBLENET_TFJS_MODULES", ROOT / "node_modules"))
    for rel in TFJS_FILES:
        src = modules / rel
        if src.is_file():
            shutil.copy2(src, vendor / src.name)
        else:
            notes.append(f"{modules}/{rel} missing (npm ci): no TF.js figures")
    return site


def placeholder_model(path: Path) -> None:
    """An untrained 784-128-10 model file: loading and predicting cost the same as a real one."""
    sys.path.insert(0, str(ROOT / "py"))
    import numpy as np

    from scribblenet.config import NetworkConfig
    from scribblenet.model_io import save_model
    from scribblenet.network import Network

    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(Network(NetworkConfig(hidden=(128,)), np.random.default_rng(0)), path)


# ── Servers ───────────────────────────────────────────────────────────────────────────────────
class Traffic:
    """Thread-safe tally of what a server sent: body bytes per path, requests, 304s."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start counting afresh."""
        with self.lock:
            self.requests, self.not_modified = 0, 0
            self.paths: Counter[str] = Counter()

    def add(self, path: str, n: int) -> None:
        """Count n body bytes sent for path."""
        with self.lock:
            self.paths[path] += n

    def status(self, code: int) -> None:
        """Count one response with this status."""
        with self.lock:
            self.requests += 1
            self.not_modified += code == 304

    def snapshot(self) -> dict[str, Any]:
        """{"bytes", "requests", "not_modified", "sent": {path: bytes}} so far."""
        with self.lock:
            return {
                "bytes": sum(self.paths.values()),
                "requests": self.requests,
                "not_modified": self.not_modified,
                "sent": {p: n for p, n in self.paths.items() if n},
            }


class BenchHandler(serve.SubPathHandler):
    """serve.py's handler with a chosen Cache-Control, optional isolation headers and a tally."""

    quiet = True
    cache_control = "max-age=600"  # what GitHub Pages sends
    isolated = False  # COOP/COEP: SharedArrayBuffer (TF.js threads) and 5 us timers
    traffic: Traffic

    def end_headers(self) -> None:
        """Add the caching (and isolation) headers."""
        self.send_header("Cache-Control", self.cache_control)
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        super().end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Tally instead of logging."""
        if str(code).isdigit():
            self.traffic.status(int(code))

    def copyfile(self, source: Any, outputfile: Any) -> None:
        """Send a file's body, counting its bytes."""
        sent = 0
        try:
            while chunk := source.read(1 << 16):
                outputfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser cancelled the request (a tab closed mid-download)
        self.traffic.add(self.path, sent)


class Servers:
    """Starts servers on fresh ports (fresh origins) and stops them all at the end."""

    def __init__(self) -> None:
        self.running: list[http.server.ThreadingHTTPServer] = []

    def start(
        self, site: Path, cache_control: str = "max-age=600", isolated: bool = False
    ) -> tuple[str, Traffic]:
        """Serve `site` under BASE; (the site's URL, its traffic tally)."""
        traffic = Traffic()
        attrs = {"cache_control": cache_control, "isolated": isolated, "traffic": traffic}
        handler = type("Handler", (BenchHandler,), {"base": BASE, **attrs})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(site))
        )
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.running.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}{BASE}", traffic

    def stop(self) -> None:
        """Shut every server down."""
        for server in self.running:
            server.shutdown()
            server.server_close()
