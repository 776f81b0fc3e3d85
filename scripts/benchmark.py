"""Native benchmark on full MNIST: the tutorial's configuration next to scribblenet's default.

Prints time, test accuracy and peak memory for each. Not a test: figures depend on the machine.

    python scripts/benchmark.py [--data-dir DIR] [--threads N]

Each configuration runs in its own process so that peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_TRAIN = 60_000  # full MNIST


def _run_tutorial(data_dir: str | None) -> dict:
    from scribblenet.mnist import load_mnist
    from scribblenet.tutorial import NeuralNetwork, pre_process_data

    data = load_mnist(data_dir)
    start = time.perf_counter()
    train_x, train_y, test_x, test_y = pre_process_data(*data)
    ann = NeuralNetwork([50, 10]).fit(train_x, train_y, 0.1, 100, verbose=False)
    accuracy = ann.predict(test_x, test_y) / 100
    return {"seconds": time.perf_counter() - start, "test_accuracy": accuracy}


def _run_default(data_dir: str | None) -> dict:
    """`scribblenet train` as it comes; its time and test accuracy, from the model it saves."""
    from scribblenet import cli
    from scribblenet.model_io import load_model

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.npz"
        status = cli.main(
            ["train", "--out", str(out), *(["--data-dir", data_dir] if data_dir else [])]
        )
        if status != 0:
            raise SystemExit(f"scribblenet train exited with {status}")
        training = load_model(out).metadata["training"]
    net, train = training["network"], training["train"]
    return {
        "seconds": training["seconds"],
        "test_accuracy": training["test_accuracy"],
        # Per second of training, the test-set pass after each epoch included.
        "examples_per_s": N_TRAIN * training["epochs_completed"] / training["seconds"],
        "config": f"784-{'-'.join(map(str, net['hidden']))}-10 {net['activation']}, "
        f"{train['optimizer']} lr {train['learning_rate']:g}, batch {train['batch_size']}, "
        f"{train['epochs']} epochs, {train['lr_schedule']} schedule",
    }


def _child(which: str, data_dir: str | None) -> None:
    result = (_run_tutorial if which == "tutorial" else _run_default)(data_dir)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    """Run both configurations and print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: download and cache)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS threads")
    parser.add_argument("--child", choices=["tutorial", "default"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.data_dir)
        return
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "OPENBLAS_NUM_THREADS": str(args.threads),
    }
    results = {}
    for which in ("tutorial", "default"):
        cmd = [sys.executable, __file__, "--child", which]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        results[which] = json.loads(out.strip().splitlines()[-1])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.threads} BLAS threads, Python {platform.python_version()}")  # fmt: skip
    print(f"default config: {results['default']['config']}")
    print(f"{'configuration':<34}{'time (s)':>10}{'test acc':>10}{'peak RSS (MB)':>15}")
    rows = [("tutorial [50] sigmoid, GD, 100 it", results["tutorial"]),
            ("scribblenet default (CLI)", results["default"])]  # fmt: skip
    for name, r in rows:
        print(
            f"{name:<34}{r['seconds']:>10.1f}{r['test_accuracy']:>10.2%}{r['peak_rss_mb']:>15.0f}"
        )
    d = results["default"]
    verdict = "met" if d["test_accuracy"] >= 0.983 and d["seconds"] <= 60 else "NOT met"
    print(f"target ≥ 98.30 % in ≤ 60 s: {verdict} ({d['examples_per_s']:,.0f} examples/s)")


if __name__ == "__main__":
    main()
