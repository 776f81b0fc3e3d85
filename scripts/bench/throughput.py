"""Sections 2-4, training speed: examples/s of one MLP, 784-128-10 ReLU, Adam, float32, batch 128.

- kernel and NumPy: the page's own worker (web/worker.js, started by bench/worker.html and
  driven through protocol.js) trains on the first 8,192 (NumPy: 2,048) images of the site's
  dataset, with the WebAssembly SIMD kernel or, with ``?debug&kernel=numpy``, plain NumPy.
  The kernel twice: on a cross-origin isolated origin, where it multiplies on a pool of kernel
  workers (web/gemm/threads.js: every core, at most 4), and on a plain origin as GitHub Pages
  serves a first visit (no isolation, so no SharedArrayBuffer: one thread);
- native: the same Session and Trainer on the same images in CPython, BLAS on one thread
  (bench/native_rate.py in a subprocess);
- TF.js: the same MLP trained by TensorFlow.js's wasm backend in the same browser
  (bench/tfjs.html): a minimize() loop and model.fit(); threads asked for on an isolated origin.

Our three figures are the Trainer's own examples/s of each epoch after the first (the rate the
page shows while training: gather, forward, backward, update; not the test pass after each
epoch), checked natively against the wall clock. TF.js's is the wall clock of blocks of 20
steps that read the cost back, as ours do.
The machine is shared, so each is the best of several, and the rounds interleave all of them so
that drifting load hits each alike; the median of the per-round ratios is reported too.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import BENCH, ROOT, Run, fmt, guarded, log, verdict

__all__ = ["report", "run", "targets"]

# The training that is timed, as the page's form would send it.
TRAINING = {"hidden": "128", "activation": "relu", "init": "he", "optimizer": "adam",
            "learning_rate": "0.001", "lr_schedule": "constant", "batch_size": "128",
            "seed": "0", "dtype": "float32"}  # fmt: skip
KERNEL_RUN = {"subset": 8192, "epochs": 6}  # 64 steps an epoch; the first epoch warms up
NUMPY_RUN = {"subset": 2048, "epochs": 3}  # ten times slower: fewer steps
TFJS_RUN = {"hidden": [128], "batch": 128, "steps": 20, "repeats": 5, "n": 8192}
ROWS = [
    ("kernel", "browser, the page's worker: NumPy + wasm SIMD kernel, threads"),
    ("kernel_1t", "browser, the page's worker: the same, 1 thread (not isolated)"),
    ("numpy", "browser, the page's worker: plain NumPy"),
    ("native", "native CPython + NumPy/OpenBLAS, 1 thread"),
    ("tfjs", "browser: TF.js wasm SIMD, minimize() loop"),
    ("tfjs_fit", "browser: TF.js wasm SIMD, model.fit()"),
    ("tfjs_threads", "browser: TF.js wasm SIMD, threads asked (isolated)"),
]
RATIOS = [("kernel_vs_numpy", "kernel / NumPy", ["numpy"], None),
          ("kernel_vs_tfjs", "kernel / best TF.js wasm", ["tfjs", "tfjs_threads", "tfjs_fit"], 6.0),
          ("kernel_vs_native", "kernel / native 1 thread", ["native"], 1.0),
          ("kernel_1t_vs_native", "kernel 1 thread / native", ["native"], None),
          ("threads_vs_1t", "kernel threads / 1 thread", ["kernel_1t"], None)]  # fmt: skip


def best_of_epochs(per_epoch: list[float]) -> dict[str, Any]:
    """{"best", "median", "rates"} of the epochs' examples/s, the first (warm-up) left out."""
    rates = per_epoch[1:]
    if not rates:
        raise ValueError(f"{len(per_epoch)} epoch(s) reported: nothing to time after the first")
    return {"best": max(rates), "median": statistics.median(rates), "rates": rates}


class WorkerPage:
    """bench/worker.html in a tab: the page's own worker, spoken to through its protocol."""

    def __init__(self, context: Any, url: str, query: str, timeout_ms: int):
        self.page = context.new_page()
        self.timeout_ms = timeout_ms
        self.page.goto(f"{url}bench/worker.html?debug{query}")
        self.page.evaluate("() => bench.client.request('init', {savedModel: null})")
        found = self._wait("e.type === 'dataset' || (e.type === 'stage' && e.state === 'error')")
        if found["type"] != "dataset":
            raise RuntimeError(f"stage {found['stage']}: {found.get('detail')}")
        self.backend = found.get("backend")
        self.isolated = self.page.evaluate("crossOriginIsolated")
        self.cores = self.page.evaluate("navigator.hardwareConcurrency")

    def _wait(self, condition: str) -> dict[str, Any]:
        """The first recorded event for which the JS `condition` on `e` holds, once there is one."""
        find = f"() => bench.events.find((e) => {condition})"
        self.page.wait_for_function(find, timeout=self.timeout_ms, polling=100)
        return self.page.evaluate(find)

    def train(self, config: dict[str, str], subset: int) -> list[dict[str, Any]]:
        """Send "train" as the page does (plus the debug-only subset); the epoch events."""
        self.page.evaluate("() => { bench.events.length = 0; }")
        started = self.page.evaluate(
            "([config, subset]) => bench.client.request('train', {config, subset})",
            [config, subset],
        )
        if not started.get("ok"):
            raise ValueError(f"the worker refused the settings: {started.get('errors')}")
        done = self._wait("e.type === 'done'")
        if done.get("reason") != "finished":
            raise RuntimeError(f"training ended: {done.get('reason')} {done.get('message', '')}")
        return [e for e in self.page.evaluate("bench.events") if e["type"] == "epoch"]

    def rate(self, subset: int, epochs: int) -> dict[str, Any]:
        """Examples/s of `epochs` epochs of TRAINING on `subset` images (the first not counted)."""
        trained = self.train({**TRAINING, "epochs": str(epochs)}, subset)
        result = best_of_epochs([e["examples_per_s"] for e in trained])
        return {**result, "backend": self.backend, "isolated": self.isolated,
                "cores": self.cores, "subset": subset}  # fmt: skip

    def rate_blocks(
        self, config: dict[str, str], warmup: int, steps: int, blocks: int
    ) -> dict[str, Any]:
        """Examples/s over `blocks` blocks of `steps` batches after `warmup` batches, by the
        Trainer's own clock; the run is stopped before its epoch ends (no test pass)."""
        batch = int(config["batch_size"])
        last = warmup + steps * blocks
        self.page.evaluate("() => { bench.events.length = 0; }")
        started = self.page.evaluate(
            "([config, subset]) => bench.client.request('train', {config, subset})",
            [{**config, "epochs": "1"}, (last + 1) * batch],
        )
        if not started.get("ok"):
            raise ValueError(f"the worker refused the settings: {started.get('errors')}")
        self._wait(f"e.type === 'batch' && e.batch >= {last}")
        self.page.evaluate("() => bench.client.request('stop')")
        self._wait("e.type === 'done'")
        batches = [e for e in self.page.evaluate("bench.events") if e["type"] == "batch"]
        # The Trainer's clock at each batch: examples seen / the epoch's examples per second.
        clock = {e["batch"]: (e["seen"], e["seen"] / e["examples_per_s"]) for e in batches}
        rates = []
        for b in range(blocks):
            (seen0, t0), (seen1, t1) = clock[warmup + b * steps], clock[warmup + (b + 1) * steps]
            rates.append((seen1 - seen0) / (t1 - t0))
        return {"best": max(rates), "median": statistics.median(rates), "rates": rates,
                "backend": self.backend, "batches": len(batches)}  # fmt: skip

    def close(self) -> None:
        """Close the tab (and so the worker)."""
        self.page.close()


class TfjsPage:
    """bench/tfjs.html in a tab; `rate(...)` trains the MLP with TF.js's wasm backend."""

    def __init__(self, context: Any, url: str, main_thread: bool, threads: int | None):
        self.page = context.new_page()
        self.page.goto(url + "bench/tfjs.html" + ("?main=1" if main_thread else ""))
        self.page.wait_for_function("() => window.benchReady === true")
        self.threads = threads

    def rate(self, fit: bool = False, **run: Any) -> dict[str, Any]:
        """Examples/s (best of TFJS_RUN's blocks, or `run`'s) and the backend's settings."""
        message = {**TFJS_RUN, **run, "threads": self.threads, "fit": fit}
        return self.page.evaluate("(m) => bench(m)", message)

    def close(self) -> None:
        """Close the tab."""
        self.page.close()


def native_rate(
    site: Path, config: dict[str, str] = TRAINING, subset: int = KERNEL_RUN["subset"],
    epochs: int = KERNEL_RUN["epochs"],
) -> dict[str, Any]:  # fmt: skip
    """bench/native_rate.py on the site's dataset, in a subprocess with BLAS on one thread."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py")}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    manifest = json.loads((site / "manifest.json").read_text(encoding="utf-8"))
    config = {**config, "epochs": str(epochs)}
    cmd = [sys.executable, str(BENCH / "native_rate.py"), str(site / manifest["dataset"]),
           json.dumps(config), str(subset)]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr else "failed")
    rates = json.loads(result.stdout)
    return {**best_of_epochs(rates["trainer"]), "wall_clock": best_of_epochs(rates["wall"])}


def run(r: Run, only: set[str]) -> dict[str, Any]:
    """Kernel, NumPy, native and TF.js (those in `only`), interleaved round by round."""
    rounds = max(2, r.repeats)
    plain_url, _ = r.servers.start(r.site)  # as GitHub Pages: not isolated, TF.js gets no threads
    # Isolated: SharedArrayBuffer for TF.js's threads, and 5 us timers instead of 100 us.
    iso_url, _ = r.servers.start(r.site, isolated=True)
    pages: dict[str, Any] = {}
    if "throughput" in only:
        log("throughput: the page's worker, with the kernel and with plain NumPy")
        pages["kernel"] = guarded("kernel", WorkerPage, r.context, iso_url, "", r.timeout_ms)
        pages["kernel_1t"] = guarded(
            "kernel_1t", WorkerPage, r.context, plain_url, "", r.timeout_ms
        )
        pages["numpy"] = guarded(
            "numpy", WorkerPage, r.context, iso_url, "&kernel=numpy", r.timeout_ms
        )
    if "tfjs" in only:
        pages["tfjs"] = guarded("tfjs", TfjsPage, r.context, plain_url, False, None)
        # Threads need SharedArrayBuffer (an isolated origin); on the page's thread, since
        # TF.js starts its thread pool from there.
        pages["tfjs_threads"] = guarded("tfjs threads", TfjsPage, r.context, iso_url, True, 2)
    out: dict[str, Any] = {"rounds": []}
    for i in range(rounds):
        log(f"throughput: round {i + 1}/{rounds}")
        got: dict[str, Any] = {}
        for key, page in pages.items():
            if isinstance(page, dict):  # it did not start: its error
                got[key] = page
            elif key in ("kernel", "kernel_1t"):
                got[key] = guarded(key, page.rate, **KERNEL_RUN)
            elif key == "numpy":
                if i in (0, rounds - 1):  # slow: two rounds are enough
                    got[key] = guarded(key, page.rate, **NUMPY_RUN)
            else:
                res = guarded(key, page.rate, fit=(i == 0 and key == "tfjs"))
                got[key] = res.get("custom", res)
                out[f"{key}_info"] = {k: v for k, v in res.items() if k not in ("custom", "fit")}
                if "fit" in res:
                    got["tfjs_fit"] = res["fit"]
        if "native" in only:
            got["native"] = guarded("native", native_rate, r.site)
        record_round(out, got)
    close_pages(pages)
    out["ratios"] = ratios_of(out)
    return out


def record_round(out: dict[str, Any], got: dict[str, Any]) -> None:
    """Add one round's figures: its bests to out["rounds"], and each key's best run to out[key]."""
    out["rounds"].append({k: v.get("best") for k, v in got.items()})
    for key, value in got.items():
        prev = out.get(key)
        if not isinstance(prev, dict) or value.get("best", 0) > prev.get("best", 0):
            out[key] = value


def close_pages(pages: dict[str, Any]) -> None:
    """Close the pages that started (the others are the error dicts `guarded` returned)."""
    for page in pages.values():
        if not isinstance(page, dict):
            page.close()


def ratios_of(tp: dict[str, Any]) -> dict[str, Any]:
    """kernel / NumPy, kernel / best TF.js, kernel / native: of the bests, and the median of
    the same ratio within each round (less sensitive to load that changed between rounds)."""

    def ratio(row: dict[str, Any], mine: str, other: list[str]) -> float | None:
        values = [row[k] for k in other if row.get(k)]
        return row[mine] / max(values) if row.get(mine) and values else None

    out: dict[str, Any] = {}
    best = {k: v["best"] for k, v in tp.items() if isinstance(v, dict) and v.get("best")}
    for name, _, other, _ in RATIOS:
        mine = "kernel_1t" if name.startswith("kernel_1t") else "kernel"
        v = ratio(best, mine, other)
        if v is not None:
            out[name] = v
        per_round = [x for x in (ratio(row, mine, other) for row in tp.get("rounds", [])) if x]
        if per_round:
            out[f"{name}_median_per_round"] = statistics.median(per_round)
    return out


def report(tp: dict[str, Any], add: Callable[[str], None]) -> None:
    """Sections 2-4 of the table."""
    add("2-4. Training, MLP 784-128-10 ReLU, Adam, float32, batch 128: examples/s (best; median)")
    for key, label in ROWS:
        v = tp.get(key)
        if isinstance(v, dict) and "best" in v:
            median = f"  {v['median']:>9,.0f}" if v.get("median") else ""
            add(f"   {label:<56}{v['best']:>9,.0f}{median}")
        elif isinstance(v, dict) and "error" in v:
            add(f"   {label:<56}ERROR {v['error']}")
    wall = (tp.get("native") or {}).get("wall_clock", {}).get("best")
    if wall:
        # The figures above are the Trainer's own clock; natively it can be checked.
        off = abs(wall / tp["native"]["best"] - 1) >= 0.1
        add(f"   (native, by the wall clock from each epoch's first batch to its last: {wall:,.0f}"
            f"{': the Trainer clock is off' if off else ''})")  # fmt: skip
    for key, origin in (("kernel", "isolated origin"), ("kernel_1t", "plain origin")):
        v = tp.get(key) or {}
        if v.get("backend"):
            add(f"   ({key}, {origin}: crossOriginIsolated {v.get('isolated')}, "
                f"{v.get('cores')} cores; multiplied with: {v['backend']})")  # fmt: skip
    info = tp.get("tfjs_threads_info") or {}
    if info:
        add(f"   (TF.js {info.get('version')}: asked for 2 threads, runs {info.get('threads')}; "
            f"multithread build {info.get('multithread')}, "
            f"isolated {info.get('crossOriginIsolated')})")  # fmt: skip
    ratios = tp.get("ratios", {})
    for key, text, _, target in RATIOS:
        v = ratios.get(key)
        goal = ""
        if target is not None:
            goal = f"   target >= {target:.2f}: " + verdict(None if v is None else v >= target)
        per_round = ratios.get(f"{key}_median_per_round")
        add(f"   ratio {text:<26}{fmt(v, '.2f', 'x'):>7} of bests, "
            f"{fmt(per_round, '.2f', 'x'):>7} median within rounds{goal}")  # fmt: skip


def targets(tp: dict[str, Any]) -> dict[str, tuple[Any, bool | None]]:
    """The speed targets: (ratio of bests, met?)."""
    ratios = tp.get("ratios", {})
    out = {}
    for key, text, _, target in RATIOS:
        if target is not None:
            v = ratios.get(key)
            ok = None if v is None else v >= target
            out[f"in-browser training: {text} >= {target:.2f}"] = (v, ok)
    return out
