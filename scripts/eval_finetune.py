"""Does fine-tuning on a few of one writer's digits read that writer better, keeping MNIST?

The "writer" is MNIST test handwriting replayed on the page's canvas under one
`scribblenet.handwriting` condition (default "mixed": pen, size, slant, rotation, position and a
shaky hand all vary), preprocessed by `ink_to_mnist` as on the page. Three of its digits per
class are the writer's "My digits"; a disjoint set of its digits is held out. Prints the held-out
error rate and the MNIST test accuracy before → after, and the seconds per fine-tune.

    PYTHONPATH=py python scripts/eval_finetune.py
    PYTHONPATH=py python scripts/eval_finetune.py --condition "thin pen" --held-out 1000 --runs 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from scribblenet.finetune import cross_validate, finetune
from scribblenet.handwriting import CONDITIONS, digit_strokes, replay_digits
from scribblenet.mnist import load_mnist
from scribblenet.model_io import load_model

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "web" / "models" / "pretrained.npz"


def main(argv: list[str] | None = None) -> int:
    """Print the before → after figures for one replayed writer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: download and cache)")
    parser.add_argument("--condition", default="mixed", choices=[c.name for c in CONDITIONS])
    parser.add_argument("--per-digit", type=int, default=3, help="own digits per class")
    parser.add_argument("--held-out", type=int, default=1000, help="held-out digits")
    parser.add_argument("--runs", type=int, default=3, help="fine-tunes, each on other digits")
    args = parser.parse_args(argv)

    data = load_mnist(args.data_dir)
    base = load_model(args.model)
    condition = next(c for c in CONDITIONS if c.name == args.condition)
    test_before = base.accuracy(data.X_test, data.y_test)
    order = np.random.default_rng(1234).permutation(len(data.y_test))
    held = order[: args.held_out]  # the same held-out digits for every run
    X_held, ok = replay_digits([digit_strokes(data.X_test[i]) for i in held], condition, seed=0)
    y_held = data.y_test[held]
    err_before = 1 - base.accuracy(X_held, y_held)
    print(f"writer: MNIST test digits replayed as {condition!r} ({int(ok.sum())} drawn)")
    print(f"held-out {len(held)} digits: error {err_before:.2%} before fine-tuning")
    rest = order[args.held_out :]
    rows = []
    for run in range(args.runs):
        rng = np.random.default_rng(run)
        own = np.concatenate(
            [
                rng.choice(rest[data.y_test[rest] == k], args.per_digit, replace=False)
                for k in range(10)
            ]
        )  # (10 · per_digit,)
        X_own, _ = replay_digits([digit_strokes(data.X_test[i]) for i in own], condition, seed=1)
        y_own = data.y_test[own]
        net = load_model(args.model)
        start = time.perf_counter()
        trainer = finetune(net, X_own, y_own, data.X_train, data.y_train, rng=rng)
        for _ in trainer.run():
            pass
        seconds = time.perf_counter() - start
        err_after = 1 - net.accuracy(X_held, y_held)
        test_after = net.accuracy(data.X_test, data.y_test)
        cv = list(cross_validate(base, X_own, y_own, data.X_train, data.y_train, rng=rng))[-1]
        rows.append((err_after, test_after, seconds))
        print(
            f"run {run}: {len(y_own)} own digits, held-out error {err_before:.2%} → "
            f"{err_after:.2%}, MNIST test {test_before:.2%} → {test_after:.2%}, "
            f"{seconds:.2f} s; own digits {cv['folds']}-fold CV {cv['own_before']:.0%} → "
            f"{cv['own_after']:.0%} ({cv['seconds']:.1f} s)"
        )
    err, test, seconds = np.mean(rows, axis=0)
    print(
        f"mean of {args.runs}: held-out error {err_before:.2%} → {err:.2%} "
        f"(×{err / max(err_before, 1e-9):.2f}), MNIST test {test_before:.2%} → {test:.2%}, "
        f"{seconds:.2f} s per fine-tune natively"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
