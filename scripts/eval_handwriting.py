"""How well does a model read digits drawn on the page's canvas? Replay MNIST test handwriting.

Each MNIST test digit is thinned to its pen path, redrawn on a 280×280 canvas under the
conditions of `scribblenet.handwriting.CONDITIONS` (pen width, size, position, slant, rotation,
shaky hand), preprocessed by `ink_to_mnist` as on the page, and classified.

    PYTHONPATH=py python scripts/eval_handwriting.py                       # the pretrained model
    PYTHONPATH=py python scripts/eval_handwriting.py --model my.npz --digits 1000
    PYTHONPATH=py python scripts/eval_handwriting.py --no-normalize-width  # without pen evening
    PYTHONPATH=py python scripts/eval_handwriting.py --montage /tmp/replayed.png
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from scribblenet.handwriting import CONDITIONS, digit_strokes, evaluate_handwriting, replay_digits
from scribblenet.ink import ink_to_mnist
from scribblenet.mnist import MNIST, load_mnist
from scribblenet.model_io import load_model

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "web" / "models" / "pretrained.npz"


def fixed_test_digits(data: MNIST, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n digits of a fixed shuffle of the MNIST test set: images (n, 784), labels (n,).

    Never trained on, and any n is a fair sample of all ten classes.
    """
    pick = np.random.default_rng(1234).permutation(len(data.y_test))[:n]
    return data.X_test[pick], data.y_test[pick]


def save_montage(images: np.ndarray, preprocess, seed: int, path: Path, n: int = 16) -> None:
    """One row of original digits, then one row per condition, as a PNG (ink dark on white)."""
    strokes = [digit_strokes(image) for image in images[:n]]
    rows = [images[:n]] + [replay_digits(strokes, c, seed, 280, preprocess)[0] for c in CONDITIONS]
    tiles = np.stack(rows).reshape(len(rows), n, 28, 28)  # (rows, n, 28, 28)
    sheet = tiles.transpose(0, 2, 1, 3).reshape(len(rows) * 28, n * 28)
    Image.fromarray(255 - sheet).resize((n * 28 * 3, len(rows) * 28 * 3)).save(path)


def main(argv: list[str] | None = None) -> int:
    """Print per-condition accuracy (and optionally write JSON and a montage)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--digits", type=int, default=500, help="test digits per condition")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-normalize-width", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--montage", type=Path, help="write a PNG of replayed digits here")
    args = parser.parse_args(argv)

    net = load_model(args.model)
    data = load_mnist()
    images, labels = fixed_test_digits(data, args.digits)
    preprocess = functools.partial(ink_to_mnist, normalize_width=not args.no_normalize_width)

    start = time.perf_counter()
    report = evaluate_handwriting(
        net.predict, images, labels, seed=args.seed, preprocess=preprocess
    )
    seconds = time.perf_counter() - start
    clean = net.accuracy(data.X_test, data.y_test)
    print(f"model {args.model}: clean MNIST test accuracy {clean:.2%}")
    print(report.format())
    print(f"({seconds:.0f} s)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "accuracy": report.accuracy,
                    "rejected": report.rejected,
                    "overall": report.overall,
                    "digits": report.n,
                },
                indent=2,
            )
        )
    if args.montage:
        save_montage(images, preprocess, args.seed, args.montage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
