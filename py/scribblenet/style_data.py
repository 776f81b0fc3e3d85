"""MNIST digits drawn in the writing conventions it lacks: a training supplement and a test.

Styles work on pen strokes, and tracing a digit's skeleton takes milliseconds, far too slow for
every batch of every epoch. So `styled_supplement` draws a fixed set once per training run: MNIST
*training* digits of each style's class redrawn in that style, plus plain redrawn digits of every
class, each placed on the canvas under conditions drawn afresh (pen, size, slant, rotation,
position, a shaky hand, sparse pointer events) and preprocessed by `ink_to_mnist` as on the page.
Batch augmentation then varies them further while training. `evaluate_styles` scores a
classifier on *test* digits drawn in each style, as `handwriting.evaluate_handwriting` does per
condition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .handwriting import CONDITIONS, Condition, digit_strokes, replay
from .ink import ink_from_strokes, ink_to_mnist
from .styles import STYLES, Style, _style, render, stylise

__all__ = [
    "MIXED",
    "VARIED",
    "StyleReport",
    "evaluate_styles",
    "styled_supplement",
    "varied_condition",
]

MIXED = next(c for c in CONDITIONS if c.name == "mixed")  # the styles are tested under it
# A little wider than the tested conditions on every axis, so none of them is an edge case.
VARIED = Condition(
    "varied",
    pen=(0.02, 0.14),
    height=(0.28, 0.9),
    slant=(-0.4, 0.4),
    rotation=(-16.0, 16.0),
    offset=1.0,
)
MAX_WOBBLE = 0.014  # / canvas side; "shaky" is 0.012
MAX_POINTER_STEP = 0.09  # / canvas side; "coarse pointer" is 0.08


def varied_condition(rng: np.random.Generator) -> Condition:
    """`VARIED` with a wobble and pointer spacing of its own; half the hands are smooth."""
    wobble = rng.uniform(0, MAX_WOBBLE) if rng.random() < 0.5 else 0.0
    step = rng.uniform(0, MAX_POINTER_STEP) if rng.random() < 0.5 else 0.0
    return replace(VARIED, wobble=float(wobble), pointer_step=float(step))


def _draw(strokes: Sequence[np.ndarray], rng: np.random.Generator, size: int) -> np.ndarray | None:
    """One digit's strokes on a canvas under a fresh varied condition: (784,) uint8, or None."""
    placed, pen = replay(strokes, varied_condition(rng), rng, size)
    try:
        return ink_to_mnist(ink_from_strokes(placed, size=size, width=pen)).reshape(784)
    except ValueError:
        return None  # the page would refuse it too: nothing to learn from


def styled_supplement(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    per_style: int = 3000,
    plain: int = 12000,
    styles: Iterable[Style | str] = tuple(STYLES.values()),
    size: int = 280,
) -> tuple[np.ndarray, np.ndarray]:
    """Training digits redrawn on a canvas, in each style and plain, labels unchanged.

    Parameters
    ----------
    images : uint8 (n, 784) training digits (never test digits: the styles are tested on those).
    labels : (n,) their digits.
    rng : picks the digits and draws every style's jitter and every drawing's condition.
    per_style : digits of each style's class drawn in that style (with replacement if fewer).
    plain : digits of any class redrawn without a style: the canvas path itself.
    styles : the conventions to draw, `Style`s or names in `STYLES`.
    size : canvas side in pixels.

    Returns
    -------
    (images uint8 (m, 784), labels uint8 (m,)), styled first; m is a little under
    per_style · len(styles) + plain when `ink_to_mnist` refuses a drawing (rare).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 2 or images.shape[1] != 784 or len(images) != len(labels):
        raise ValueError(
            f"need images (n, 784) and labels (n,), got {images.shape} and {labels.shape}"
        )
    if per_style < 0 or plain < 0:
        raise ValueError(f"per_style and plain must be >= 0, got {per_style} and {plain}")
    jobs: list[tuple[int, Style | None]] = []  # (row of images, its style or None)
    for convention in map(_style, styles):
        rows = np.flatnonzero(labels == convention.digit)  # (k,)
        if len(rows) == 0 and per_style:
            raise ValueError(f"no digit {convention.digit} to draw as a {convention.name!r}")
        if per_style:
            picked = rng.choice(rows, per_style, replace=per_style > len(rows))  # (per_style,)
            jobs += [(int(i), convention) for i in picked]
    if plain:
        jobs += [
            (int(i), None) for i in rng.choice(len(labels), plain, replace=plain > len(labels))
        ]
    strokes: dict[int, list[np.ndarray]] = {}  # a digit picked twice is traced once
    X, y = [], []
    for i, style in jobs:
        if i not in strokes:
            strokes[i] = digit_strokes(images[i])
        lines = strokes[i]
        if not lines:
            continue  # a blank image: no pen path
        if style is not None:
            lines = stylise(lines, int(labels[i]), style, rng)
        x = _draw(lines, rng, size)
        if x is not None:
            X.append(x)
            y.append(labels[i])
    return (
        np.array(X, dtype=np.uint8).reshape(-1, 784),
        np.array(y, dtype=np.uint8),
    )


@dataclass(frozen=True)
class StyleReport:
    """Accuracy of reading digits drawn in each style, and what the misread ones were read as."""

    accuracy: dict[str, float]  # style name → fraction read right
    read_as: dict[str, np.ndarray]  # style name → (10,) counts of each wrong guess
    n: dict[str, int]  # style name → digits drawn in it
    condition: str  # how they were drawn on the canvas

    @property
    def worst(self) -> float:
        """The lowest accuracy of any style: a convention read badly is read badly by everyone."""
        return min(self.accuracy.values())

    def format(self) -> str:
        """A plain-text table, one style per line, with the commonest wrong guesses."""
        lines = [f"{'style':<20}{'accuracy':>9}   read as (when wrong), under {self.condition!r}"]
        for name, acc in self.accuracy.items():
            wrong, n = self.read_as[name], self.n[name]
            top = [k for k in np.argsort(-wrong, kind="stable")[:3] if wrong[k]]
            lines.append(
                f"{name:<20}{acc:>9.1%}   " + ", ".join(f"{k} {wrong[k] / n:.0%}" for k in top)
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"StyleReport(worst={self.worst:.4f}, styles={len(self.accuracy)})"


def evaluate_styles(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    per_style: int,
    styles: Iterable[Style | str] = tuple(STYLES.values()),
    condition: Condition = MIXED,
    seed: int = 0,
) -> StyleReport:
    """Score a classifier on digits drawn in each style: the first `per_style` of its class.

    Parameters
    ----------
    predict : uint8 images (n, 784) → predicted digits (n,).
    images : uint8 (n, 784) digits no model trained on (e.g. a fixed shuffle of MNIST test).
    labels : (n,) their digits.
    per_style : digits per style.
    styles : the conventions, `Style`s or names in `STYLES`.
    condition : how they are drawn on the canvas (`styles.render`).
    seed : the same seed gives the same drawings.

    Returns
    -------
    A `StyleReport`; a drawing preprocessing refuses counts as misread (read as nothing).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    accuracy, read_as, n = {}, {}, {}
    for style in map(_style, styles):
        pick = np.flatnonzero(labels == style.digit)[:per_style]
        if len(pick) == 0:
            raise ValueError(f"no digit {style.digit} to draw as a {style.name!r}")
        X, ok = render(images[pick], labels[pick], (style,), condition, seed)  # (k, 784), (k,)
        guess = np.asarray(predict(X))  # (k,)
        right = (guess == labels[pick]) & ok  # (k,)
        accuracy[style.name] = float(right.mean())
        read_as[style.name] = np.bincount(guess[~right & ok], minlength=10)  # (10,)
        n[style.name] = len(pick)
    return StyleReport(accuracy, read_as, n, condition.name)
