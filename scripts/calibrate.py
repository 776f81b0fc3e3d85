"""Measure the digit / unsure / not-a-digit criterion of `scribblenet.calibration` for a model.

Prints, for the pretrained model (or --model):

- the temperature fitted on the page's held-out slice (MNIST test [0, 2000), 16 grey levels as the
  page's dataset has them) and the expected calibration error before and after, on the report
  half of the other test images;
- how many MNIST training digits the shape limits reject;
- a sweep of the two thresholds (unsure-below probability, distance quantile) on the CHOICE data:
  a random half of MNIST test [2000, 10000), replayed handwriting of 300 of those digits under all
  12 conditions (seed 1) and generated non-digits (seed 1) — calibration.py's constants are
  picked from this;
- the REPORT table with the module's constants, on data the choice never saw: the other half,
  replayed handwriting of 500 of its digits (seed 2) and non-digits drawn with seed 2.
  (A random split: the second 5,000 MNIST test digits are harder than the first.)

Replayed digits and non-digits are drawn with `ink_from_strokes` and read with `ink_to_mnist`,
as on the page; a drawing `ink_to_mnist` refuses ("draw a digit", "fills the canvas") counts as
rejected.

    PYTHONPATH=py python scripts/calibrate.py            # about a minute on 2 cores
    PYTHONPATH=py python scripts/calibrate.py --quick    # fewer drawings, for a look

Notes, measured while building this (pretrained model, choice data, false rejects on real
digits held at 2.5 %; not re-run here):
the calibrated probability alone catches 21 % of the non-digits; a Mahalanobis distance in the
network's last hidden layer (class means and a shared covariance fitted on the held-out digits)
34 %; the pixel distance to the nearest held-out digit 53 % (a cosine distance did worse), and
adding the Mahalanobis distance to it gained 1–2 points, so the module uses the pixel distance.
On real MNIST the pretrained model is already calibrated (T ≈ 0.91, ECE ≈ 0.3 %): it is the
non-digits that are over-confident, which temperature scaling cannot fix on its own.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from scribblenet import calibration as cal
from scribblenet.calibration import Calibration, expected_calibration_error, shape_features
from scribblenet.compact import dequantize, quantize
from scribblenet.handwriting import CONDITIONS, digit_strokes, replay_digits
from scribblenet.ink import ink_from_strokes, ink_to_mnist
from scribblenet.mnist import load_mnist
from scribblenet.model_io import load_model
from scribblenet.network import Network

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "web" / "models" / "pretrained.npz"
PAGE_LEVELS = 16  # grey levels of the page's dataset (web/data/README.md)

Strokes = list[list[tuple[float, float]]]

# Letters and signs no digit looks like, as polylines in a unit box (x right, y down).
LETTERS: dict[str, Strokes] = {
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.22, 0.6), (0.78, 0.6)]],
    "E": [[(0.9, 0), (0, 0), (0, 1), (0.9, 1)], [(0, 0.5), (0.7, 0.5)]],
    "F": [[(0.9, 0), (0, 0), (0, 1)], [(0, 0.5), (0.7, 0.5)]],
    "H": [[(0, 0), (0, 1)], [(0.8, 0), (0.8, 1)], [(0, 0.5), (0.8, 0.5)]],
    "K": [[(0, 0), (0, 1)], [(0.8, 0), (0, 0.6)], [(0.25, 0.42), (0.85, 1)]],
    "M": [[(0, 1), (0.05, 0), (0.45, 0.65), (0.85, 0), (0.9, 1)]],
    "N": [[(0, 1), (0, 0), (0.75, 1), (0.75, 0)]],
    "R": [
        [(0, 1), (0, 0), (0.5, 0), (0.75, 0.12), (0.75, 0.38), (0.5, 0.5), (0, 0.5)],
        [(0.35, 0.5), (0.8, 1)],
    ],
    "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "V": [[(0, 0), (0.4, 1), (0.8, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.35), (0.75, 1), (1, 0)]],
    "X": [[(0, 0), (0.8, 1)], [(0.8, 0), (0, 1)]],
    "Y": [[(0, 0), (0.45, 0.5), (0.9, 0)], [(0.45, 0.5), (0.45, 1)]],
    "k": [[(0, 0), (0, 1)], [(0.6, 0.4), (0, 0.75)], [(0.2, 0.65), (0.65, 1)]],
    "m": [
        [(0, 1), (0, 0.3)],
        [(0, 0.45), (0.2, 0.3), (0.4, 0.45), (0.4, 1)],
        [(0.4, 0.45), (0.6, 0.3), (0.8, 0.45), (0.8, 1)],
    ],
    "w": [[(0, 0.3), (0.2, 1), (0.4, 0.5), (0.6, 1), (0.8, 0.3)]],
    "#": [
        [(0.4, 0), (0.3, 1)],
        [(0.75, 0), (0.65, 1)],
        [(0, 0.33), (1, 0.33)],
        [(0, 0.67), (1, 0.67)],
    ],
    "*": [[(0.5, 0), (0.5, 1)], [(0.07, 0.25), (0.93, 0.75)], [(0.07, 0.75), (0.93, 0.25)]],
    "+": [[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)]],
}


def _resample(points: np.ndarray, step: float) -> np.ndarray:
    """Points every `step` units along a polyline, both ends kept."""
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])  # (k,)
    t = np.linspace(0, arc[-1], max(math.ceil(arc[-1] / step) + 1, 2))
    return np.stack([np.interp(t, arc, points[:, 0]), np.interp(t, arc, points[:, 1])], 1)


def place(
    strokes: Sequence[Sequence[Sequence[float]] | np.ndarray], rng: np.random.Generator, size: int
) -> tuple[list[np.ndarray], float]:
    """Put a shape on the canvas like `handwriting.replay`'s "mixed" condition.

    Its long side (not its height: a line has none) is 0.3–0.85 of the canvas; slant ±0.35,
    rotation ±10°, a shaky hand, pen 0.025–0.13 of the canvas, anywhere it fits.
    """
    lines = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes]
    points = np.concatenate(lines)
    lo, hi = points.min(axis=0), points.max(axis=0)
    scale = rng.uniform(0.3, 0.85) * size / max(float((hi - lo).max()), 1e-9)
    slant, angle = rng.uniform(-0.35, 0.35), math.radians(rng.uniform(-10, 10))
    c, s = math.cos(angle), math.sin(angle)
    A = np.array([[c, s], [-s, c]]) @ np.array([[1.0, -slant], [0.0, 1.0]]) * scale
    placed = []
    for line in lines:
        p = (line - (lo + hi) / 2) @ A.T
        if len(p) > 1:  # the shaky hand of handwriting.replay: smooth noise every 3 px
            p = _resample(p, 3.0)
            noise = rng.normal(0, 0.008 * size * math.sqrt(7), (len(p) + 6, 2))
            p = p + np.stack([np.convolve(noise[:, k], np.ones(7) / 7, "valid") for k in (0, 1)], 1)
        placed.append(p)
    pen = rng.uniform(0.025, 0.13) * size
    allp = np.concatenate(placed)
    low = np.minimum(-size / 2 - (allp.min(axis=0) - pen / 2), 0.0)
    high = np.maximum(size / 2 - (allp.max(axis=0) + pen / 2), 0.0)
    shift = size / 2 + rng.uniform(low, high)
    return [p + shift for p in placed], pen


def scribble(rng: np.random.Generator) -> list[np.ndarray]:
    """A random tangle: 6–24 random points joined by a smoothed path."""
    n = int(rng.integers(6, 25))
    knots = rng.uniform(0, 1, (n, 2))
    t = np.linspace(0, n - 1, 8 * n)
    path = np.stack([np.interp(t, np.arange(n), knots[:, k]) for k in (0, 1)], 1)
    return [np.stack([np.convolve(path[:, k], np.ones(5) / 5, "valid") for k in (0, 1)], 1)]


def spiral(rng: np.random.Generator) -> list[np.ndarray]:
    """1.5–4 turns of an Archimedean spiral, either way round."""
    t = np.linspace(0, rng.uniform(1.5, 4) * 2 * math.pi, 200)
    r, way = t / t[-1], rng.choice([-1, 1])
    return [np.stack([r * np.cos(way * t), r * np.sin(way * t) * rng.uniform(0.7, 1.3)], 1)]


def zigzag(rng: np.random.Generator) -> list[np.ndarray]:
    """3–7 teeth at any angle."""
    n = int(rng.integers(3, 8))
    x = np.linspace(0, 0.4 * n, 2 * n + 1)
    y = np.where(np.arange(2 * n + 1) % 2, rng.uniform(0.3, 1.0), 0.0)
    a = rng.uniform(0, math.pi)
    return [
        np.stack([x, y], 1) @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    ]


def line(angle: float) -> list[np.ndarray]:
    """A straight stroke at `angle` degrees from the horizontal."""
    a = math.radians(angle)
    return [np.array([[0.0, 0.0], [math.cos(a), -math.sin(a)]])]


def hatch(rng: np.random.Generator) -> list[np.ndarray]:
    """A block coloured in with the pen: 4–8 strokes back and forth."""
    n, h = int(rng.integers(4, 9)), rng.uniform(0.6, 1.4)
    points = [(x, i / (n - 1) * h) for i in range(n) for x in ((0, 1) if i % 2 == 0 else (1, 0))]
    return [np.array(points, dtype=np.float64)]


def solid_block(rng: np.random.Generator, size: int) -> np.ndarray:
    """Canvas ink: a filled rectangle over 10–45 % of the canvas, aspect 0.6–1.7, anywhere."""
    area = rng.uniform(0.10, 0.45) * size * size
    aspect = math.exp(rng.uniform(math.log(0.6), -math.log(0.6)))
    w = min(math.sqrt(area * aspect), 0.98 * size)
    h = min(area / w, 0.98 * size)
    top, left = int(rng.uniform(0, size - h)), int(rng.uniform(0, size - w))
    ink = np.zeros((size, size), np.uint8)
    ink[top : top + int(h), left : left + int(w)] = 255
    return ink


def non_digit_kinds() -> dict[str, Callable[[np.random.Generator], list[np.ndarray]]]:
    """Name → a generator of strokes in arbitrary units (placed on the canvas by `place`)."""
    kinds: dict[str, Callable[[np.random.Generator], list[np.ndarray]]] = {
        "scribble": scribble,
        "spiral": spiral,
        "zig-zag": zigzag,
        "horizontal line": lambda r: line(r.uniform(-12, 12)),
        "diagonal line": lambda r: line(r.choice([-1, 1]) * r.uniform(30, 60)),
        "cross": lambda r: [np.array(s, float) for s in LETTERS["X" if r.random() < 0.5 else "+"]],
        "coloured-in block": hatch,
    }
    for name, strokes in LETTERS.items():
        kinds[f"letter {name}"] = lambda r, s=strokes: [np.array(p, float) for p in s]  # type: ignore[misc]
    return kinds


def draw_non_digits(n: int, seed: int, size: int = 280) -> dict[str, tuple[np.ndarray, int]]:
    """Per kind: (MNIST-style images (m, 784) uint8 that ink_to_mnist accepted, refused count)."""
    out = {}
    kinds = {**non_digit_kinds(), "solid block": None}
    for k, (name, make) in enumerate(kinds.items()):
        images, refused = [], 0
        for i in range(n):
            rng = np.random.default_rng([seed, k, i])
            if make is None:
                ink = solid_block(rng, size)
            else:
                strokes, pen = place(make(rng), rng, size)
                ink = ink_from_strokes(strokes, size=size, width=pen)
            try:
                images.append(ink_to_mnist(ink).reshape(784))
            except ValueError:
                refused += 1
        out[name] = (np.array(images, dtype=np.uint8).reshape(-1, 784), refused)
    return out


def replayed(
    images: np.ndarray, labels: np.ndarray, seed: int
) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """MNIST digits redrawn under each handwriting condition: [(name, images, labels, refused)]."""
    strokes = [digit_strokes(image) for image in images]
    out = []
    for condition in CONDITIONS:
        drawn, ok = replay_digits(strokes, condition, seed)
        out.append((condition.name, drawn[ok], labels[ok], int((~ok).sum())))
    return out


def pooled(
    sets: list[tuple[str, np.ndarray, np.ndarray, int]],
) -> tuple[np.ndarray, np.ndarray, int]:
    """All conditions' drawings together: (images, labels, refused)."""
    return (
        np.concatenate([X for _, X, _, _ in sets]),
        np.concatenate([y for _, _, y, _ in sets]),
        sum(r for _, _, _, r in sets),
    )


def counts(calibration: Calibration, net: Network, X: np.ndarray) -> tuple[int, int, np.ndarray]:
    """(unsure, not_digit, verdicts) for images X with the module's constants."""
    if len(X) == 0:
        return 0, 0, np.zeros(0, dtype=object)
    verdict = calibration.judge(net, X).verdict
    return int((verdict == "unsure").sum()), int((verdict == "not_digit").sum()), verdict


def evidence(
    calibration: Calibration, net: Network, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: (calibrated max probability, distance to the nearest reference, bad shape)."""
    p = cal.softmax_t(net.forward(X), calibration.temperature).max(axis=1) if len(X) else X[:, 0]
    F = shape_features(X)
    return p, calibration.nearest(X), (F[:, 0] >= cal.THICK_FROM) | (F[:, 1] < cal.FLAT_BELOW)


def main(argv: list[str] | None = None) -> int:
    """Fit, sweep on the choice data, report on the report data."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="fewer drawings (a rough look)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    net = load_model(args.model)
    data = load_mnist(args.data_dir)
    page = dequantize(quantize(data.X_test, PAGE_LEVELS), PAGE_LEVELS)  # what the page holds
    n_choice, n_report, n_fit, n_shapes = (100, 150, 10, 15) if args.quick else (300, 500, 60, 100)

    # ── calibration ────────────────────────────────────────────────────────────────────────
    held = slice(0, cal.HELD_OUT)
    calibration = Calibration.fit(net, page[held], data.y_test[held])  # as the page
    halves = np.random.default_rng(0).permutation(np.arange(cal.HELD_OUT, len(data.y_test)))
    choice, report = np.sort(halves[: len(halves) // 2]), np.sort(halves[len(halves) // 2 :])
    X_rep, y_rep = data.X_test[report], data.y_test[report]
    Z = net.forward(X_rep).astype(np.float64)
    before = cal.softmax_t(Z, 1.0)
    after = cal.softmax_t(Z, calibration.temperature)
    nll = [float(-np.log(p[np.arange(len(y_rep)), y_rep]).mean()) for p in (before, after)]
    print(f"model {args.model.name}; temperature T = {calibration.temperature:.4f} fitted on MNIST")
    print(f"test [0, {cal.HELD_OUT}) at {PAGE_LEVELS} grey levels; on the report half:")
    print(f"  ECE {expected_calibration_error(before, y_rep):.2%} → ", end="")
    print(f"{expected_calibration_error(after, y_rep):.2%}; NLL {nll[0]:.4f} → {nll[1]:.4f}")
    print(f"  accuracy {np.mean(after.argmax(1) == y_rep):.2%} (unchanged by T)")

    # ── shape limits on the training digits ──────────────────────────────────────────────
    F = shape_features(data.X_train)  # (60000, 2)
    thick, flat = F[:, 0] >= cal.THICK_FROM, F[:, 1] < cal.FLAT_BELOW
    print(f"\nshape on the {len(F):,} MNIST training digits: thickness max {F[:, 0].max():.0f};")
    print(f"  flatness 0.1 % quantile {np.quantile(F[:, 1], 0.001):.3f}, min {F[:, 1].min():.3f};")
    print(f"  thickness >= {cal.THICK_FROM}: {thick.sum()}, flatness < {cal.FLAT_BELOW}: ", end="")
    print(f"{flat.sum()}: {np.mean(thick | flat):.3%} rejected")

    # ── choice data: sweep ──────────────────────────────────────────────────────────────
    pick = choice[np.random.default_rng(1).permutation(len(choice))[:n_choice]]
    choice_replay, _, choice_refused = pooled(replayed(data.X_test[pick], data.y_test[pick], 1))
    real = [
        (evidence(calibration, net, data.X_test[choice]), 0),
        (evidence(calibration, net, choice_replay), choice_refused),
    ]
    fake = [(evidence(calibration, net, X), r) for X, r in draw_non_digits(n_fit, 1).values()]
    both = np.concatenate([near for (_, near, _), _ in real])
    print(f"\nCHOICE sweep ({len(choice)} MNIST test digits, {n_choice} replayed × 12 conditions,")
    print(f"{n_fit} of each non-digit kind): share not called a digit (refused ones included)")
    print(
        f"{'unsure<':>8}{'nearest>':>10}{'(real q)':>10}{'MNIST':>8}{'replay':>8}{'non-digit':>11}"
    )

    def rejected(ev: tuple[np.ndarray, np.ndarray, np.ndarray], refused: int, u: float, r: float):
        p, near, bad = ev
        return (int(((p < u) | (near > r) | bad).sum()) + refused) / (len(p) + refused)

    for q in (0.95, 0.97, 0.98, 0.99, 0.995, 1.0):
        r = float(np.quantile(both, q)) if q < 1 else float("inf")
        for u in (0.5, 0.6, 0.7, 0.8, 0.9):
            fr = [rejected(ev, refused, u, r) for ev, refused in real]
            caught = np.mean([rejected(ev, refused, u, r) for ev, refused in fake])
            print(f"{u:>8.2f}{r:>10.2f}{q:>10.3f}{fr[0]:>8.2%}{fr[1]:>8.2%}{caught:>11.1%}")

    # ── report data ─────────────────────────────────────────────────────────────────────
    pick = report[np.random.default_rng(2).permutation(len(report))[:n_report]]
    report_replay = replayed(data.X_test[pick], data.y_test[pick], 2)
    report_fake = draw_non_digits(n_shapes, seed=2)
    print(f"\nREPORT (unsure below {cal.UNSURE_BELOW}, nearest beyond {cal.NEAREST_BEYOND},")
    print(f"thickness from {cal.THICK_FROM}, flatness below {cal.FLAT_BELOW}), on data not used to")
    print("choose them. Real digits: 'misread' = the most likely digit is wrong, 'wrong' = called")
    print("a digit and wrong. Non-digits: 'read as' = the digit most of those called digits got.")
    header = (
        f"{'drawings':<32}{'n':>6}{'digit':>8}{'unsure':>8}{'not digit':>10}{'refused':>9}"
        f"{'misread':>9}{'wrong':>7}  read as"
    )
    print(header)
    print("-" * len(header))

    def row(name: str, X: np.ndarray, refused: int, y: np.ndarray | None = None) -> float:
        """Print one line of the table; return the share not called a digit."""
        n = len(X) + refused
        unsure, not_digit, verdict = counts(calibration, net, X)
        digit = n - refused - unsure - not_digit
        cells = [(digit, 8), (unsure, 8), (not_digit, 10), (refused, 9)]
        predicted = net.predict(X) if len(X) else np.zeros(0, dtype=np.intp)
        line = f"{name:<32}{n:>6}" + "".join(f"{c / n:>{w}.1%}" for c, w in cells)
        if y is not None:
            wrong = predicted != y
            line += f"{wrong.sum() / n:>9.1%}{(wrong & (verdict == 'digit')).sum() / n:>7.1%}"
        elif digit:
            votes = np.bincount(predicted[verdict == "digit"], minlength=10)
            line += f"{'':>16}  {int(votes.argmax())} ({votes.max() / digit:.0%})"
        print(line)
        return 1 - digit / n

    row("MNIST test, report half", X_rep, 0, y_rep)
    X, y, refused = pooled(report_replay)
    row(f"replayed handwriting ({n_report}×12)", X, refused, y)
    for name, X, y, refused in report_replay:
        row(f"  {name}", X, refused, y)
    print("-" * len(header))
    caught = [row(name, X, refused) for name, (X, refused) in report_fake.items()]
    print("-" * len(header))
    print(f"non-digits, mean over {len(caught)} kinds: {np.mean(caught):.1%} not called a digit")
    print(f"\n({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
