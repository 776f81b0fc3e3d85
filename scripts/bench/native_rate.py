"""The page's training natively: the in-browser throughput figure's steps, in CPython.

    PYTHONPATH=py OPENBLAS_NUM_THREADS=1 python scripts/bench/native_rate.py DATASET CONFIG SUBSET

DATASET is the site's compact MNIST file, CONFIG the form the page sends with "train" (JSON) and
SUBSET how many training images to use. A `Session` builds the network and trainer from them as
the page's worker does. Prints, per epoch, the Trainer's own examples/s (the figure the page
shows and throughput.py compares) and, as a check of that clock, the wall clock's from the
epoch's first batch to its last: {"trainer": [...], "wall": [...]} (JSON). Run by throughput.py,
which sets the BLAS threads to one.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from scribblenet.compact import read_compact
from scribblenet.session import Session


def epoch_rates(dataset: Path, config: dict[str, str], subset: int) -> dict[str, list[float]]:
    """Train `config` on the first `subset` images; each epoch's examples/s, two clocks."""
    session = Session()
    session.data = read_compact(dataset.read_bytes())
    started = session.start_training(config, subset)
    if not started["ok"]:
        raise SystemExit(f"native_rate: the settings were refused: {started['errors']}")
    assert session.trainer is not None
    rates: dict[str, list[float]] = {"trainer": [], "wall": []}
    first = None  # (time, examples seen) at the epoch's first batch
    for event in session.trainer.run():
        if event["type"] == "batch":
            now = time.perf_counter()
            if event["batch"] == 1:
                first = (now, event["seen"])
            elif event["batch"] == event["n_batches"] and first is not None:
                rates["wall"].append((event["seen"] - first[1]) / (now - first[0]))
        elif event["type"] == "epoch":
            rates["trainer"].append(event["examples_per_s"])
    return rates


if __name__ == "__main__":
    path, form, n = sys.argv[1:4]
    print(json.dumps(epoch_rates(Path(path), json.loads(form), int(n))))
