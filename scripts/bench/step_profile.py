"""--profile: where the page's training time goes, by Python function (cProfile in the worker).

The page's own worker (bench/worker_python.js: worker.js unchanged, plus a request that runs
Python in it) trains throughput.TRAINING with the kernel, through the page's protocol: first
unprofiled, for the step time, then for one more run with cProfile switched on around it. The
table is each function's own time per training step (the kernel's JavaScript calls count as
their Python caller's); the test-set pass after the epoch shows as Network.predict's rows.

`--profile cnn` does the same for the cnn preset's network (cnn.CNN_TRAINING), on blocks of
batches of a run stopped before its epoch ends, so no test pass is in its table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cnn import CNN_TRAINING
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


CNN_BLOCKS = {"warmup": 3, "steps": 8, "blocks": 1}


def run(r: Run, cnn: bool = False) -> dict[str, Any]:
    """Step time unprofiled and profiled, and the top functions by own time per step."""
    url, _ = r.servers.start(r.site, isolated=True)  # 5 us timers
    log(f"profile: the page's worker, kernel on, with cProfile ({'cnn' if cnn else 'mlp'})")
    page = WorkerPage(r.context, url, "&python", r.timeout_ms)
    training = CNN_TRAINING if cnn else TRAINING
    batch = int(training["batch_size"])
    try:
        plain = page.rate_blocks(training, **CNN_BLOCKS) if cnn else page.rate(SUBSET, EPOCHS)
        python = "(code) => bench.client.request('python', {code})"
        page.page.evaluate(python, START)
        try:
            if cnn:  # warm-up and all: every batch until the stop is in the table
                profiled = page.rate_blocks(training, **CNN_BLOCKS)
                steps = profiled["batches"]
                profiled_ms = 1000 * batch / profiled["best"]
            else:
                seconds = page.train({**training, "epochs": "1"}, SUBSET)[0]["seconds"]
                steps = SUBSET // batch
                profiled_ms = 1000 * seconds / steps
        finally:
            rows = json.loads(page.page.evaluate(python, STOP)["result"])
    finally:
        page.close()
    for row in rows:
        row["tottime_ms_per_step"] = row["tottime_ms"] / steps
        row["calls_per_step"] = row["calls"] / steps
    return {
        "network": training["hidden"],
        "steps": steps,
        "ms_per_step": 1000 * batch / plain["best"],
        "ms_per_step_profiled": profiled_ms,
        "rows": rows,
    }


def report(pr: dict[str, Any], add: Callable[[str], None]) -> None:
    """The profile's table."""
    add(f"Profile of the page's training step, layers {pr.get('network', '128')} (cProfile, "
        f"kernel on): {pr['ms_per_step']:.2f} ms/step unprofiled, "
        f"{pr['ms_per_step_profiled']:.2f} profiled; own time per step:")  # fmt: skip
    for row in pr["rows"][:15]:
        add(f"   {row['function'][:66]:<68}{row['tottime_ms_per_step']:7.3f} ms"
            f"  x{row['calls_per_step']:.0f}")  # fmt: skip
