"""Sections 5 and 6, click Train: seconds until an epoch reaches 97.5 %, and memory meanwhile.

The real page (with ``?debug``, which changes nothing but lets us ask the worker for its heap) is
opened in a fresh tab, and so with a fresh worker: its form is left at the default preset or
filled in with --form's settings (``preset=cnn`` chooses a preset; a slow one's caution is
clicked through), Train is clicked, and every epoch's test accuracy is timed from the click (a
convolutional network's goal: 99.0 % in 60 s instead of 97.5 % in 15 s). Meanwhile the renderer
processes' RSS (/proc: the page and its worker) is sampled; the worker's WebAssembly heap
(Pyodide's, which never shrinks) is asked for before the click and after training.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import Run, fmt, log, short_error

__all__ = ["TUNE_FORMS", "report", "run", "targets"]

ACCURACY = 0.975
GOALS = {"mlp": (ACCURACY, 15.0), "cnn": (0.99, 60.0)}  # (test accuracy, seconds) to reach
# Candidates for a quicker default preset (--tune): the "fast" preset's neighbours.
TUNE_FORMS = [
    {"hidden": "256", "learning_rate": "0.007", "lr_schedule": "cosine", "epochs": "2"},
    {"hidden": "128", "learning_rate": "0.01", "lr_schedule": "cosine", "epochs": "2"},
    {"hidden": "256", "learning_rate": "0.01", "lr_schedule": "cosine", "batch_size": "256",
     "epochs": "2"},
]  # fmt: skip
# The worker's own answer to a "debug" request (see protocol.js), sent beside the page's client
# with an id of its own; the page ignores replies it did not ask for.
WORKER_HEAP = """
(id) => new Promise((resolve, reject) => {
  const worker = window.__bench.worker;
  const listen = ({ data }) => {
    if (data?.id !== id) return;
    worker.removeEventListener("message", listen);
    if (data.type === "memory") resolve(data.heap);
    else reject(new Error(data.message ?? data.type));
  };
  worker.addEventListener("message", listen);
  worker.postMessage({ id, type: "debug", action: "memory" });
})
"""


# ── Memory of the renderer processes ──────────────────────────────────────────────────────────
def our_renderers(profile: Path) -> list[int]:
    """Renderer processes of the Chromium using `profile` (the page and its worker live there)."""
    procs: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = re.search(r"^PPid:\s+(\d+)", (entry / "status").read_text(), re.M)
        except OSError:
            continue
        if ppid:
            procs[int(entry.name)] = (int(ppid.group(1)), cmdline)
    roots = {pid for pid, (_, cmd) in procs.items() if str(profile) in cmd and "--type=" not in cmd}

    def ours(pid: int) -> bool:
        for _ in range(10):
            if pid in roots:
                return True
            if pid not in procs:
                return False
            pid = procs[pid][0]
        return False

    return [pid for pid, (_, cmd) in procs.items() if "--type=renderer" in cmd and ours(pid)]


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MB, from /proc."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) / 1024 if match else None


class RssSampler(threading.Thread):
    """Samples the RSS of some processes every 200 ms; keeps each one's peak."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak: dict[int, float] = {}
        self.baseline = {p: rss_mb(p) for p in pids}
        self.stop_event = threading.Event()

    def run(self) -> None:
        """Sample until stopped."""
        while not self.stop_event.wait(0.2):
            for pid in self.pids:
                mb = rss_mb(pid)
                if mb is not None and mb > self.peak.get(pid, 0):
                    self.peak[pid] = mb

    def result(self) -> dict[str, Any]:
        """Stop; the process that grew most: {pid, before_mb, peak_mb}."""
        self.stop_event.set()
        self.join()
        if not self.peak:
            return {}
        pid = max(self.peak, key=lambda p: self.peak[p] - (self.baseline.get(p) or 0))
        return {"pid": pid, "peak_mb": self.peak[pid], "before_mb": self.baseline.get(pid)}


# ── Click Train ───────────────────────────────────────────────────────────────────────────────
def fill_form(page: Any, form: dict[str, str]) -> None:
    """Set the training form's fields as a visitor would."""
    for name, value in form.items():
        field = page.locator(f'#train-form [name="{name}"]')
        if not field.count():
            raise ValueError(f"the page's form has no field {name!r}")
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))


def click_train(r: Run, url: str, form: dict[str, str] | None) -> dict[str, Any]:
    """Load the page, optionally change the form, click Train; time epochs from the click."""
    result: dict[str, Any] = {"form": form or "page default"}
    sampler = None
    page = r.context.new_page()
    try:
        page.goto(url + "?debug")
        page.wait_for_selector('[data-testid="train"]:not([disabled])', timeout=r.timeout_ms)
        fill_form(page, form or {})
        result["settings"] = page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('#train-form [name]')]"
            ".map((el) => [el.name, el.value]))"
        )
        result["heap_before_mb"] = page.evaluate(WORKER_HEAP, 10**9) / 2**20
        sampler = RssSampler(our_renderers(r.profile))
        sampler.start()
        # A slow preset's first click shows its caution ("Train anyway"); the second starts it.
        page.evaluate("""() => {
            const train = document.querySelector('[data-testid="train"]');
            window.__bench.clickAt = performance.now();
            train.click();
            if (train.textContent !== "Train anyway") return;
            window.__bench.clickAt = performance.now();
            train.click();
        }""")
        page.wait_for_function(
            "() => window.__bench.events.some((e) => e.t >= window.__bench.clickAt"
            " && e.type === 'done')",
            timeout=r.timeout_ms,
            polling=100,
        )
        result["heap_after_mb"] = page.evaluate(WORKER_HEAP, 10**9 + 1) / 2**20
        # A visit the service worker serves is cross-origin isolated: the kernel's threads.
        result["isolated"] = page.evaluate("crossOriginIsolated")
        result["backend"] = page.get_by_test_id("backend").text_content()
        data = page.evaluate("({events: window.__bench.events, clickAt: window.__bench.clickAt})")
        result["kind"] = "cnn" if "conv" in result["settings"].get("hidden", "") else "mlp"
        result.update(epochs_from(data["events"], data["clickAt"], GOALS[result["kind"]][0]))
    except Exception as exc:
        result.update(short_error(exc))
    finally:
        if sampler is not None:
            result["renderer_memory"] = sampler.result()
        page.close()
    return result


def epochs_from(
    events: list[dict[str, Any]], click: float, accuracy: float = ACCURACY
) -> dict[str, Any]:
    """The run's epochs (seconds since the click) and when it started, reached `accuracy`, ended."""
    after = [e for e in events if e["t"] >= click]
    epochs = [
        {"epoch": e["epoch"], "test_accuracy": e.get("test_accuracy"),
         "seconds": (e["t"] - click) / 1000,
         "in_page_examples_per_s": e.get("in_page_examples_per_s")}
        for e in after if e["type"] == "epoch"
    ]  # fmt: skip
    started = [e for e in after if e["type"] == "started"]
    done = [e for e in after if e["type"] == "done"]
    reached = [e["seconds"] for e in epochs if (e["test_accuracy"] or 0) >= accuracy]
    return {
        "epochs": epochs,
        "started_s": (started[0]["t"] - click) / 1000 if started else None,
        "done_s": (done[0]["t"] - click) / 1000 if done else None,
        "done_reason": done[0].get("reason") if done else None,
        "seconds_to_target": reached[0] if reached else None,
        "best_accuracy": max((e["test_accuracy"] or 0 for e in epochs), default=None),
    }


def run(r: Run, forms: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Click Train with the page's default preset, then with each of `forms`."""
    url, _ = r.servers.start(r.site)
    results = []
    for form in [None, *forms]:
        log(f"click Train: {form_label(form) if form else 'page default preset'}")
        results.append(click_train(r, url, form))
    return results


# ── Report ────────────────────────────────────────────────────────────────────────────────────
def form_label(form: Any) -> str:
    """A form dict as k=v pairs (or its description)."""
    return form if isinstance(form, str) else ", ".join(f"{k}={v}" for k, v in form.items())


def report(runs: list[dict[str, Any]], add: Callable[[str], None]) -> None:
    """Sections 5 and 6 of the table."""
    add("5. Click Train -> first epoch with >= 97.5 % test accuracy (a CNN: 99.0 %; full 10k "
        "test set)")  # fmt: skip
    for run in runs:
        label = form_label(run.get("form"))
        if "epochs" not in run:
            add(f"   {label}: ERROR {run.get('error')}")
            continue
        goal = 100 * GOALS[run.get("kind", "mlp")][0]
        add(f"   {label}: {fmt(run['seconds_to_target'], '.1f', ' s')} to {goal:.1f} % "
            f"(best {fmt(100 * (run['best_accuracy'] or 0), '.2f', ' %')}, "
            f"set-up {fmt(run.get('started_s'), '.2f', ' s')}, "
            f"done {fmt(run.get('done_s'), '.1f', ' s')})")  # fmt: skip
        add(f"      crossOriginIsolated {run.get('isolated')}; {run.get('backend')}")
        for e in run["epochs"]:
            add(f"      epoch {e['epoch']}: {100 * (e['test_accuracy'] or 0):.2f} % at "
                f"{e['seconds']:.1f} s "
                f"({fmt(e.get('in_page_examples_per_s'), ',.0f')} ex/s)")  # fmt: skip
    add("")
    add("6. Memory while training (MB)")
    for run in runs:
        mem = run.get("renderer_memory") or {}
        add(f"   {form_label(run.get('form'))}: worker heap (Pyodide) "
            f"{fmt(run.get('heap_before_mb'), '.0f')} before Train -> "
            f"{fmt(run.get('heap_after_mb'), '.0f')} after training; renderer RSS "
            f"{fmt(mem.get('before_mb'), '.0f')} -> "
            f"{fmt(mem.get('peak_mb'), '.0f')} peak")  # fmt: skip


def targets(runs: list[dict[str, Any]]) -> dict[str, tuple[Any, bool | None]]:
    """Time to 97.5 % (every form) and the worker's heap (the page's default preset)."""
    out: dict[str, tuple[Any, bool | None]] = {}
    for run in runs:
        label = form_label(run.get("form"))
        v = run.get("seconds_to_target")
        accuracy, seconds = GOALS[run.get("kind", "mlp")]
        out[f"Train -> {100 * accuracy:.1f} % <= {seconds:.0f} s, s ({label})"] = (
            v, None if "epochs" not in run else (v is not None and v <= seconds))  # fmt: skip
    heap = runs[0].get("heap_after_mb") if runs else None
    out["worker memory <= 300 MB (Pyodide heap after training, MB)"] = (
        heap, None if heap is None else heap <= 300)  # fmt: skip
    return out
