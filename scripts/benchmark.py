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
import time


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
    from scribblenet.cli import DEFAULT_NETWORK, DEFAULT_TRAINING
    from scribblenet.mnist import load_mnist
    from scribblenet.network import Network
    from scribblenet.training import Trainer, trainer_rngs

    data = load_mnist(data_dir)
    start = time.perf_counter()
    init_rng, data_rng = trainer_rngs(DEFAULT_TRAINING.seed)
    net = Network(DEFAULT_NETWORK, init_rng)
    trainer = Trainer(net, DEFAULT_TRAINING, *data, rng=data_rng)
    rates = [e["examples_per_s"] for e in trainer.run() if e["type"] == "epoch"]
    return {
        "seconds": time.perf_counter() - start,
        "test_accuracy": trainer.history["test_accuracy"][-1],
        "examples_per_s": sum(rates) / len(rates),
        "config": f"{net!r}, {DEFAULT_TRAINING.optimizer} lr {DEFAULT_TRAINING.learning_rate:g}, "
        f"batch {DEFAULT_TRAINING.batch_size}, {DEFAULT_TRAINING.epochs} epochs, "
        f"{DEFAULT_TRAINING.lr_schedule} schedule",
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
