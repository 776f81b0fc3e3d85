"""--profile: where the page's training time goes, by Python function (cProfile in the worker).

The page's own worker (bench/worker_python.js: worker.js unchanged, plus a request that runs
Python in it) trains throughput.TRAINING with the kernel, through the page's protocol: first
unprofiled, for the step time, then for one more run with cProfile switched on around it. The
table is each function's own time per training step (the kernel's JavaScript calls count as
their Python caller's); the test-set pass after the epoch shows as Network.predict's rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from harness import Run, log
from throughput import TRAINING, WorkerPage

__all__ = ["report", "run"]

SUBSET, EPOCHS = 8192, 3  # 64 steps an epoch; the profiled run is one epoch
START = """
import cProfile, json, pstats  # before profiling starts: importing is not the page's training
_bench_profile = cProfile.Profile()
_bench_profile.enable()
"""
STOP = """
_bench_profile.disable()
_stats = pstats.Stats(_bench_profile).stats.items()
_rows = [{"function": f"{file.rsplit('/', 1)[-1]}:{line}({name})", "calls": calls,
          "tottime_ms": 1000 * own, "cumtime_ms": 1000 * total}
         for (file, line, name), (_, calls, own, total, _) in _stats]
del _bench_profile, _stats
json.dumps(sorted(_rows, key=lambda row: -row["tottime_ms"])[:30])
"""


def run(r: Run) -> dict[str, Any]:
    """Step time unprofiled and profiled, and the top functions by own time per step."""
    url, _ = r.servers.start(r.site, isolated=True)  # 5 us timers
    log("profile: the page's worker, kernel on, with cProfile")
    page = WorkerPage(r.context, url, "&python", r.timeout_ms)
    try:
        plain = page.rate(SUBSET, EPOCHS)
        python = "(code) => bench.client.request('python', {code})"
        page.page.evaluate(python, START)
        try:
            profiled = page.train({**TRAINING, "epochs": "1"}, SUBSET)[0]
        finally:
            rows = json.loads(page.page.evaluate(python, STOP)["result"])
    finally:
        page.close()
    steps = SUBSET // int(TRAINING["batch_size"])
    for row in rows:
        row["tottime_ms_per_step"] = row["tottime_ms"] / steps
        row["calls_per_step"] = row["calls"] / steps
    return {
        "steps": steps,
        "ms_per_step": 1000 * int(TRAINING["batch_size"]) / plain["best"],
        "ms_per_step_profiled": 1000 * profiled["seconds"] / steps,
        "rows": rows,
    }


def report(pr: dict[str, Any], add: Callable[[str], None]) -> None:
    """The profile's table."""
    add(f"Profile of the page's training step (cProfile, kernel on): "
        f"{pr['ms_per_step']:.2f} ms/step unprofiled, {pr['ms_per_step_profiled']:.2f} profiled;"
        " own time per step:")  # fmt: skip
    for row in pr["rows"][:15]:
        add(f"   {row['function'][:66]:<68}{row['tottime_ms_per_step']:7.3f} ms"
            f"  x{row['calls_per_step']:.0f}")  # fmt: skip
