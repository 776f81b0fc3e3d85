"""Section 8, the cnn preset's network in the page: training speed, a drawing's reading, and how
long the worker keeps a request waiting while it trains.

- speed: examples/s of conv5x16,pool2,conv5x32,pool2,dense128 (ReLU, Adam, float32, batch 128)
  in the page's worker with the WebAssembly SIMD kernel and with plain NumPy (its rate by the
  Trainer's own clock over blocks of batches after a warm-up; the run is stopped before its
  epoch ends, since a CNN's pass over the 10,000 test images costs more than the batches),
  natively on one BLAS thread (bench/native_rate.py, epochs after the first) and with TF.js's
  wasm backend (bench/tfjs_core.js: im2col convolutions, as its wasm backend cannot train
  tf.conv2d). Interleaved round by round, as in throughput.py.
- responsiveness: "predict" requests sent one after another (10 ms apart) while the page's
  worker trains the CNN on a few batches an epoch, so that the epochs' test passes dominate;
  each request's wait, with the test pass scored in one call (the Trainer before it was
  time-sliced, patched in through bench/worker_python.js) and in parts (as it is now).
  The request waiting as the run ends is timed on its own: the first reading by a new model
  also fits its calibration on 2,000 test images.
- reading: then "predict" requests for a drawn 1 (280×280 alpha) with the trained CNN current
  (the median), and one "explain" (it reads the test set once per model).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from harness import Run, fmt, guarded, log
from throughput import (
    TRAINING,
    TfjsPage,
    WorkerPage,
    close_pages,
    native_rate,
    record_round,
)

from scribblenet.hyperparams import PRESETS

__all__ = ["CNN_TRAINING", "report", "run", "targets"]

_PRESET = next(p for p in PRESETS if p.key == "cnn").values
# The cnn preset's network and optimiser, at the throughput section's constant learning rate.
CNN_TRAINING = {**TRAINING, "hidden": _PRESET["hidden"], "learning_rate": _PRESET["learning_rate"]}
KERNEL_BLOCKS = {"warmup": 2, "steps": 6, "blocks": 3}
NUMPY_BLOCKS = {"warmup": 1, "steps": 2, "blocks": 2}
NATIVE_RUN = {"subset": 2048, "epochs": 3}
TFJS_CNN = {"cnn": True, "steps": 4, "repeats": 3, "n": 1024}
RESPONSIVE_RUN = {"subset": 512, "epochs": 2}  # 4 batches, then 10,000 test images, twice
READINGS = 15
ROWS = [
    ("kernel", "browser, the page's worker: NumPy + wasm SIMD kernel"),
    ("numpy", "browser, the page's worker: plain NumPy"),
    ("native", "native CPython + NumPy/OpenBLAS, 1 thread"),
    ("tfjs", "browser: TF.js wasm SIMD (im2col convs), minimize() loop"),
]
RATIOS = [("kernel_vs_numpy", "kernel / NumPy", "numpy"),
          ("kernel_vs_tfjs", "kernel / TF.js wasm", "tfjs"),
          ("kernel_vs_native", "kernel / native 1 thread", "native")]  # fmt: skip
READING_MS = 50  # target: a drawing read by a CNN within 50 ms in the worker

# The Trainer as it was: the epoch's whole test set in one call (undone by UNPATCH).
PATCH = """
import scribblenet.training as _bench_training
_bench_init = _bench_training.Trainer.__init__
def _bench_one_call(self, *args, **kwargs):
    _bench_init(self, *args, **kwargs)
    self.test_part = 1 << 30
_bench_training.Trainer.__init__ = _bench_one_call
"""
UNPATCH = "_bench_training.Trainer.__init__ = _bench_init"
# A vertical stroke on a 280×280 pad, as the page's drawing pad sends it (alpha channel).
DRAWN_ONE = """
() => {
  const alpha = new Uint8Array(280 * 280);
  for (let y = 50; y < 230; y++) for (let x = 132; x < 150; x++) alpha[y * 280 + x] = 255;
  return alpha;
}
"""
# Train, and meanwhile send "predict" after "predict"; each one's start and wait (ms).
PROBE = f"""
async ([config, subset]) => {{
  const drawn = {DRAWN_ONE};
  bench.events.length = 0;
  const started = await bench.client.request("train", {{ config, subset }});
  if (!started.ok) throw new Error(JSON.stringify(started.errors));
  const probes = [];
  while (!bench.events.some((e) => e.type === "done")) {{
    const alpha = drawn();
    const t = performance.now();
    await bench.client.request("predict", {{ alpha: alpha.buffer, width: 280, height: 280 }},
                               [alpha.buffer]);
    probes.push({{ t, ms: performance.now() - t }});
    await new Promise((resolve) => setTimeout(resolve, 10));
  }}
  const events = bench.events.filter((e) => ["batch", "epoch", "done"].includes(e.type))
    .map(({{ t, type, batch, n_batches, reason }}) => ({{ t, type, batch, n_batches, reason }}));
  return {{ probes, events }};
}}
"""
# Requests of one kind, one after another: each one's wait (ms).
TIMED = f"""
async ([type, n]) => {{
  const drawn = {DRAWN_ONE};
  const waits = [];
  for (let i = 0; i < n; i++) {{
    const alpha = drawn();
    const t = performance.now();
    const reply = await bench.client.request(type, {{ alpha: alpha.buffer, width: 280,
                                                      height: 280 }}, [alpha.buffer]);
    if (reply.empty) throw new Error(reply.message);
    waits.push(performance.now() - t);
  }}
  return waits;
}}
"""


def waits_while_training(page: WorkerPage, one_call: bool) -> dict[str, Any]:
    """Predict requests' waits while a CNN trains; the test passes' lengths (ms).

    The request that is waiting when the run ends is left out of the training's figures: the
    first reading by a new model also fits its calibration (2,000 test images), and is shown as
    `first_after_ms`.
    """
    python = "(code) => bench.client.request('python', {code})"
    if one_call:
        page.page.evaluate(python, PATCH)
    config = {**CNN_TRAINING, "epochs": str(RESPONSIVE_RUN["epochs"])}
    try:
        got = page.page.evaluate(PROBE, [config, RESPONSIVE_RUN["subset"]])
    finally:
        if one_call:
            page.page.evaluate(python, UNPATCH)
    events, probes = got["events"], got["probes"]
    done = events[-1]
    if done["type"] != "done" or done["reason"] != "finished":
        raise RuntimeError(f"the run ended: {done}")
    training = [p["ms"] for p in probes if p["t"] + p["ms"] < done["t"]]
    after = [p["ms"] for p in probes if p["t"] + p["ms"] >= done["t"]]
    # A test pass: from its epoch's last batch to the epoch event (both in one chunk, and so
    # posted at the same moment, when it is scored in one call).
    last_batches = [e["t"] for e in events if e["type"] == "batch" and e["batch"] == e["n_batches"]]
    ends = [e["t"] for e in events if e["type"] == "epoch"]
    return {
        "requests": len(training),
        "longest_ms": max(training),
        "median_ms": statistics.median(training),
        "first_after_ms": max(after, default=None),
        "test_pass_ms": [b - a for a, b in zip(last_batches, ends, strict=True)],
    }


def responsiveness(r: Run, url: str) -> dict[str, Any]:
    """Waits with the test pass in one call and in parts; then a drawing's reading."""
    page = WorkerPage(r.context, url, "&python", r.timeout_ms)
    try:
        out: dict[str, Any] = {}
        for key, one_call in (("one_call", True), ("in_parts", False)):
            log(f"cnn: predict requests while training, test pass {key.replace('_', ' ')}")
            out[key] = guarded(key, waits_while_training, page, one_call)
        log("cnn: a drawing read by the trained CNN")
        out["reading"] = guarded("reading", readings, page)
    finally:
        page.close()
    return out


def readings(page: WorkerPage) -> dict[str, Any]:
    """A drawing's "predict" waits with the just-trained CNN current, and one "explain"."""
    waits = page.page.evaluate(TIMED, ["predict", READINGS])
    explain = page.page.evaluate(TIMED, ["explain", 1])
    return {"median_ms": statistics.median(waits), "best_ms": min(waits),
            "explain_ms": explain[0]}  # fmt: skip


def speed(r: Run, iso_url: str, plain_url: str) -> dict[str, Any]:
    """Kernel, NumPy, native and TF.js examples/s of the CNN, interleaved round by round."""
    log("cnn: the page's worker with the kernel and with plain NumPy; TF.js")
    pages: dict[str, Any] = {
        "kernel": guarded("kernel", WorkerPage, r.context, iso_url, "", r.timeout_ms),
        "numpy": guarded("numpy", WorkerPage, r.context, iso_url, "&kernel=numpy", r.timeout_ms),
        "tfjs": guarded("tfjs", TfjsPage, r.context, plain_url, False, None),
    }
    out: dict[str, Any] = {"rounds": []}
    rounds = max(1, r.repeats)
    for i in range(rounds):
        log(f"cnn: speed, round {i + 1}/{rounds}")
        got: dict[str, Any] = {}
        for key, page in pages.items():
            if isinstance(page, dict):  # it did not start: its error
                got[key] = page
            elif key == "tfjs":
                got[key] = guarded(key, page.rate, **TFJS_CNN)
                got[key] = {**got[key].get("custom", {}), **got[key]}
            else:
                blocks = KERNEL_BLOCKS if key == "kernel" else NUMPY_BLOCKS
                got[key] = guarded(key, page.rate_blocks, CNN_TRAINING, **blocks)
        got["native"] = guarded("native", native_rate, r.site, CNN_TRAINING, **NATIVE_RUN)
        record_round(out, got)
    close_pages(pages)
    best = {k: v["best"] for k, v in out.items() if isinstance(v, dict) and v.get("best")}
    out["ratios"] = {
        name: best["kernel"] / best[other]
        for name, _, other in RATIOS
        if best.get("kernel") and best.get(other)
    }
    return out


def run(r: Run) -> dict[str, Any]:
    """Speed, responsiveness and reading of the cnn preset's network."""
    plain_url, _ = r.servers.start(r.site)  # TF.js as on GitHub Pages (no threads)
    iso_url, _ = r.servers.start(r.site, isolated=True)  # 5 us timers
    return {
        "speed": guarded("cnn speed", speed, r, iso_url, plain_url),
        "responsiveness": guarded("cnn responsiveness", responsiveness, r, iso_url),
    }


def report(cnn: dict[str, Any], add: Callable[[str], None]) -> None:
    """Section 8 of the table."""
    sp = cnn.get("speed") or {}
    add("8. CNN conv5x16,pool2,conv5x32,pool2,dense128 ReLU, Adam, float32, batch 128: "
        "examples/s (best; median)")  # fmt: skip
    for key, label in ROWS:
        v = sp.get(key)
        if isinstance(v, dict) and "best" in v:
            median = f"  {v['median']:>9,.0f}" if v.get("median") else ""
            add(f"   {label:<58}{v['best']:>9,.1f}{median}")
        elif isinstance(v, dict) and "error" in v:
            add(f"   {label:<58}ERROR {v['error']}")
    if (tf := sp.get("tfjs")) and tf.get("conv2d_error"):
        add(f"   (TF.js {tf.get('version')} wasm, tf.conv2d's gradient: {tf['conv2d_error'][:90]})")
    for key, text, _ in RATIOS:
        add(f"   ratio {text:<26}{fmt(sp.get('ratios', {}).get(key), '.2f', 'x'):>7} of bests")
    resp = cnn.get("responsiveness") or {}
    add("   A predict request's wait while the worker trains it (4 batches an epoch), ms:")
    first_after = None
    for key, label, one_call in (("one_call", "test pass in one call (before)", True),
                                 ("in_parts", "test pass in parts (now)", False)):  # fmt: skip
        v = resp.get(key) or {}
        if "error" in v:
            add(f"      {label}: ERROR {v['error']}")
        elif v:
            passes = ", ".join(f"{ms / 1000:.1f} s" for ms in v["test_pass_ms"])
            add(f"      {label:<32} longest {v['longest_ms']:>7,.0f}, median "
                f"{v['median_ms']:>5,.0f} ({v['requests']} requests"
                f"{'' if one_call else f'; test passes {passes}'})")  # fmt: skip
            first_after = v.get("first_after_ms")
    if first_after is not None:
        add(f"      then the first reading by the new model (it fits its calibration on 2,000 test "
            f"images): {first_after:,.0f}")  # fmt: skip
    reading = resp.get("reading") or {}
    if "error" in reading:
        add(f"   A drawing read by the trained CNN: ERROR {reading['error']}")
    elif reading:
        add(f"   A drawing read by the trained CNN in the worker: {reading['median_ms']:.1f} ms "
            f"median (best {reading['best_ms']:.1f}); its first explanation "
            f"{reading['explain_ms']:,.0f} ms (it reads the 10,000 test images)")  # fmt: skip


def targets(cnn: dict[str, Any]) -> dict[str, tuple[Any, bool | None]]:
    """A drawing read by a CNN within READING_MS; a request's wait while it trains."""
    reading = (cnn.get("responsiveness") or {}).get("reading") or {}
    ms = reading.get("median_ms")
    waits = (cnn.get("responsiveness") or {}).get("in_parts") or {}
    longest = waits.get("longest_ms")
    return {
        f"a drawing read by a CNN in the worker <= {READING_MS} ms (median, ms)": (
            ms, None if ms is None else ms <= READING_MS),
        "CNN training: longest predict wait <= 500 ms (ms)": (
            longest, None if longest is None else longest <= 500),
    }  # fmt: skip
