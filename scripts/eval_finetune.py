"""Does fine-tuning on a few of one writer's digits read that writer better, keeping MNIST?

The "writer" is MNIST test handwriting replayed on the page's canvas, either under one
`scribblenet.handwriting` condition (default "mixed": pen, size, slant, rotation, position and a
shaky hand all vary) or as one of the `scribblenet.styles.WRITERS` (a hand of their own plus the
writing conventions MNIST barely has: flag-and-foot 1s, slashed 0s, open-top 4s ...),
preprocessed by `ink_to_mnist` as on the page. Three of its digits per class are the writer's
"My digits"; a disjoint set of its digits is held out. Prints the held-out error rate (overall
and per digit) and the MNIST test accuracy before → after, and the seconds per fine-tune.
`--styles` instead prints how well the model reads MNIST test handwriting replayed under each
`handwriting.CONDITIONS` entry, and each style on its own (MNIST test digits of the style's class,
drawn in it under the "mixed" condition; `scribblenet.style_data.evaluate_styles`).

    PYTHONPATH=py python scripts/eval_finetune.py
    PYTHONPATH=py python scripts/eval_finetune.py --condition "thin pen" --held-out 1000 --runs 3
    PYTHONPATH=py python scripts/eval_finetune.py --writer continental --held-out 500
    PYTHONPATH=py python scripts/eval_finetune.py --writer open --learning-rate 0.02 --no-cv
    PYTHONPATH=py python scripts/eval_finetune.py --styles --per-style 300 --digits 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from eval_handwriting import fixed_test_digits  # scripts/, beside this one
from scribblenet.finetune import DEFAULT_FINETUNE, FinetuneConfig, cross_validate, finetune
from scribblenet.handwriting import (
    CONDITIONS,
    HandwritingReport,
    digit_strokes,
    evaluate_handwriting,
    replay_digits,
)
from scribblenet.mnist import MNIST, load_mnist
from scribblenet.model_io import load_model
from scribblenet.network import Network
from scribblenet.style_data import StyleReport, evaluate_styles
from scribblenet.styles import WRITERS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "web" / "models" / "pretrained.npz"


def per_digit(errors: np.ndarray, y: np.ndarray) -> str:
    """Error rate per class, e.g. "0:12% 1:40% ..."."""
    return " ".join(f"{k}:{errors[y == k].mean():.0%}" for k in range(10) if (y == k).any())


def read_everyone(
    net: Network, data: MNIST, digits: int = 1000, per_style: int = 300
) -> tuple[HandwritingReport, StyleReport]:
    """How well a model reads MNIST test handwriting replayed per condition, and per style.

    Per condition: the first `digits` of a fixed shuffle of the test set, plain, under each of
    `handwriting.CONDITIONS`. Per style: the first `per_style` test digits of the style's class
    in that shuffle, drawn in the style under "mixed".
    """
    X, y = fixed_test_digits(data, len(data.y_test))  # the whole test set, in the fixed order
    conditions = evaluate_handwriting(net.predict, X[:digits], y[:digits])
    return conditions, evaluate_styles(net.predict, X, y, per_style)


def config_from(args: argparse.Namespace) -> FinetuneConfig:
    """The package defaults, with whatever the command line overrides."""
    names = ("epochs", "learning_rate", "copies", "replay", "min_own_rows")
    changes = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    return dataclasses.replace(DEFAULT_FINETUNE, **changes)


def main(argv: list[str] | None = None) -> int:
    """Print the before → after figures for one replayed writer (or the per-style table)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: download and cache)")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--condition", default="mixed", choices=[c.name for c in CONDITIONS])
    who.add_argument("--writer", choices=list(WRITERS), help="a writer with conventions")
    who.add_argument("--styles", action="store_true", help="accuracy per style, then exit")
    parser.add_argument("--per-style", type=int, default=300, help="digits per style (--styles)")
    parser.add_argument("--digits", type=int, default=1000, help="digits per condition (--styles)")
    parser.add_argument("--per-digit", type=int, default=3, help="own digits per class")
    parser.add_argument("--held-out", type=int, default=1000, help="held-out digits")
    parser.add_argument("--runs", type=int, default=3, help="fine-tunes, each on other digits")
    parser.add_argument("--no-cv", action="store_true", help="skip the 5-fold CV per run")
    tuning = parser.add_argument_group("FinetuneConfig overrides (default: the package's)")
    tuning.add_argument("--epochs", type=int)
    tuning.add_argument("--learning-rate", type=float)
    tuning.add_argument("--copies", type=int)
    tuning.add_argument("--replay", type=float)
    tuning.add_argument("--min-own-rows", type=int)
    args = parser.parse_args(argv)

    data = load_mnist(args.data_dir)
    base = load_model(args.model)
    if args.styles:
        conditions, styles = read_everyone(base, data, args.digits, args.per_style)
        print(f"model {args.model}: MNIST test {base.accuracy(data.X_test, data.y_test):.2%}")
        print(conditions.format())
        print(styles.format())
        return 0
    config = config_from(args)
    styled: list[int] = []  # the classes the writer draws in a convention of their own
    if args.writer:
        writer = WRITERS[args.writer]
        styled = sorted(s.digit for s in writer.styles)

        def draw(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
            return writer.render(X, y, seed)[0]

        hand = writer.hand
        ranges = ", ".join(
            f"{k} {getattr(hand, k)[0]:.2f}..{getattr(hand, k)[1]:.2f}"
            for k in ("pen", "height", "slant", "rotation")
        )
        print(f"writer: {writer!r}; hand: {ranges}")
    else:
        condition = next(c for c in CONDITIONS if c.name == args.condition)

        def draw(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
            return replay_digits([digit_strokes(x) for x in X], condition, seed)[0]

        print(f"writer: MNIST test digits replayed as {condition!r}")
    if config != DEFAULT_FINETUNE:
        print(f"fine-tuning with {config}")
    test_before = base.accuracy(data.X_test, data.y_test)
    order = np.random.default_rng(1234).permutation(len(data.y_test))
    held = order[: args.held_out]  # the same held-out digits for every run
    y_held = data.y_test[held]
    X_held = draw(data.X_test[held], y_held, 0)
    wrong_before = base.predict(X_held) != y_held  # (held,)
    err_before = float(wrong_before.mean())
    print(f"held-out {len(held)} digits: error {err_before:.2%} before fine-tuning")
    print(f"  per digit: {per_digit(wrong_before, y_held)}")
    # The other classes' errors are each digit's own (many MNIST writers), not the writer's:
    # a few of their digits cannot teach them, so the conventions are scored apart as well.
    focus = np.isin(y_held, styled)  # (held,)
    rest = order[args.held_out :]
    rows, wrong_after = [], np.zeros(len(held))
    for run in range(args.runs):
        rng = np.random.default_rng(run)
        own = np.concatenate(
            [
                rng.choice(rest[data.y_test[rest] == k], args.per_digit, replace=False)
                for k in range(10)
            ]
        )  # (10 · per_digit,)
        y_own = data.y_test[own]
        X_own = draw(data.X_test[own], y_own, 1)
        net = load_model(args.model)
        start = time.perf_counter()
        trainer = finetune(net, X_own, y_own, data.X_train, data.y_train, rng=rng, config=config)
        for _ in trainer.run():
            pass
        seconds = time.perf_counter() - start
        wrong = net.predict(X_held) != y_held  # (held,)
        wrong_after += wrong / args.runs
        test_after = net.accuracy(data.X_test, data.y_test)
        rows.append((wrong.mean(), test_after, seconds))
        line = (
            f"run {run}: {len(y_own)} own digits, held-out error {err_before:.2%} → "
            f"{wrong.mean():.2%}, MNIST test {test_before:.2%} → {test_after:.2%}, {seconds:.2f} s"
        )
        if not args.no_cv:
            cv = list(
                cross_validate(
                    base, X_own, y_own, data.X_train, data.y_train, rng=rng, config=config
                )
            )[-1]
            line += (
                f"; own digits {cv['folds']}-fold CV {cv['own_before']:.0%} → "
                f"{cv['own_after']:.0%} ({cv['seconds']:.1f} s)"
            )
        print(line)
    err, test, seconds = np.mean(rows, axis=0)
    print(
        f"mean of {args.runs}: held-out error {err_before:.2%} → {err:.2%} "
        f"(×{err / max(err_before, 1e-9):.2f}), MNIST test {test_before:.2%} → {test:.2%}, "
        f"{seconds:.2f} s per fine-tune natively"
    )
    print(f"  per digit after: {per_digit(wrong_after, y_held)}")
    if focus.any():
        print(
            f"  digits in the writer's conventions ({', '.join(map(str, styled))}): error "
            f"{wrong_before[focus].mean():.2%} → {wrong_after[focus].mean():.2%}; the others "
            f"{wrong_before[~focus].mean():.2%} → {wrong_after[~focus].mean():.2%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
