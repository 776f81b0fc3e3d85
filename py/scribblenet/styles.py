"""Writing conventions MNIST barely contains, drawn onto a digit's pen strokes.

Real people's misread digits are mostly conventions: the continental 1 with a flag and a foot,
the slashed or dotted zero, the crossed 7, the open-top 4, the 9 with a straight stem. Each
`Style` here changes the polylines `handwriting.digit_strokes` traces from an MNIST digit
(x right, y down, 28×28 pixel units), sized and placed by the digit's own bounding box and
jittered by the generator it is given; the label never changes. A `Writer` is one consistent
person: the same conventions on every digit and a hand (slant, pen, size) drawn once, replayed
on the canvas and preprocessed by `ink_to_mnist` exactly as `handwriting.replay_digits` does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .handwriting import Condition, digit_strokes, name_salt, replay_digits
from .ink import ink_to_mnist

__all__ = [
    "STYLES",
    "WRITERS",
    "Style",
    "Writer",
    "crossed_seven",
    "dotted_zero",
    "flag_and_foot_one",
    "open_top_four",
    "render",
    "slashed_zero",
    "straight_stem_nine",
    "stylise",
    "stylise_digits",
]

Strokes = list[np.ndarray]  # polylines, each float (k, 2) of (x, y)


def _bounds(strokes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi), each (2,) (x, y): the bounding box of all the points."""
    points = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes])
    return points.min(axis=0), points.max(axis=0)


def _copy(strokes: Sequence[np.ndarray]) -> Strokes:
    """Float (k, 2) copies: a style never changes the strokes it is given."""
    return [np.array(s, dtype=np.float64).reshape(-1, 2) for s in strokes]


def _segment(centre: np.ndarray, length: float, angle: float) -> np.ndarray:
    """A (2, 2) stroke through `centre`, `angle` radians clockwise from +x on screen."""
    half = 0.5 * length * np.array([math.cos(angle), math.sin(angle)])  # (2,)
    return np.stack([centre - half, centre + half])


def flag_and_foot_one(
    strokes: Sequence[np.ndarray], rng: np.random.Generator, foot: bool | None = None
) -> Strokes:
    """A continental 1: a flag from the top down-left and (optionally) a foot along the bottom.

    Parameters
    ----------
    strokes : the 1's polylines, (k, 2) arrays of (x, y), y down.
    rng : draws the flag's length (30–45 % of the height) and angle, the foot's width.
    foot : add a horizontal foot; None: a fair coin decides.

    Returns
    -------
    The polylines with one or two strokes added.
    """
    out = _copy(strokes)
    points = np.concatenate(out)  # (m, 2)
    lo, hi = _bounds(out)
    h = max(hi[1] - lo[1], 1.0)
    top = points[np.argmin(points[:, 1])]  # (2,)
    length = rng.uniform(0.30, 0.45) * h
    angle = math.radians(rng.uniform(25, 55))  # below the horizontal
    out.append(np.stack([top, top + length * np.array([-math.cos(angle), math.sin(angle)])]))
    if foot if foot is not None else rng.random() < 0.5:
        bottom = points[np.argmax(points[:, 1])]  # (2,)
        width = rng.uniform(0.35, 0.6) * h
        centre = bottom + np.array([rng.uniform(-0.1, 0.1) * width, 0.0])
        out.append(_segment(centre, width, math.radians(rng.uniform(-4, 4))))
    return out


def slashed_zero(strokes: Sequence[np.ndarray], rng: np.random.Generator) -> Strokes:
    """A 0 struck through from lower left to upper right, overshooting the loop a little."""
    out = _copy(strokes)
    lo, hi = _bounds(out)
    size = hi - lo  # (2,) width, height
    start = np.array([lo[0], hi[1]]) + rng.uniform(-0.06, 0.06, 2) * size  # lower left
    end = np.array([hi[0], lo[1]]) + rng.uniform(-0.06, 0.06, 2) * size  # upper right
    overshoot = rng.uniform(0.03, 0.12, 2)  # at each end, as a fraction of the slash
    d = end - start
    out.append(np.stack([start - overshoot[0] * d, end + overshoot[1] * d]))
    return out


def dotted_zero(strokes: Sequence[np.ndarray], rng: np.random.Generator) -> Strokes:
    """A 0 with a dot (a short dab of the pen) near its centre."""
    out = _copy(strokes)
    lo, hi = _bounds(out)
    size = hi - lo  # (2,)
    centre = (lo + hi) / 2 + rng.uniform(-0.08, 0.08, 2) * size
    out.append(_segment(centre, rng.uniform(0.0, 0.08) * size[1], rng.uniform(0, math.pi)))
    return out


def _crossings(strokes: Sequence[np.ndarray], y: float) -> np.ndarray:
    """x of every point where the polylines cross the horizontal line at `y`."""
    xs = []
    for s in strokes:
        a, b = s[:-1], s[1:]  # (k-1, 2) segment ends
        hit = (a[:, 1] - y) * (b[:, 1] - y) <= 0
        hit &= a[:, 1] != b[:, 1]  # a horizontal segment has no single crossing
        t = (y - a[hit, 1]) / (b[hit, 1] - a[hit, 1])  # (h,)
        xs.append(a[hit, 0] + t * (b[hit, 0] - a[hit, 0]))
    return np.concatenate(xs) if xs else np.zeros(0)


def crossed_seven(strokes: Sequence[np.ndarray], rng: np.random.Generator) -> Strokes:
    """A 7 with a short horizontal bar across its stem at about mid-height."""
    out = _copy(strokes)
    lo, hi = _bounds(out)
    h = max(hi[1] - lo[1], 1.0)
    y = lo[1] + rng.uniform(0.45, 0.62) * h
    xs = _crossings(out, y)
    # The stem is what the line crosses; a curl or a hooked bar may cross it too: take the middle.
    stem = float(np.median(xs)) if len(xs) else (lo[0] + hi[0]) / 2
    width = rng.uniform(0.3, 0.5) * h
    centre = np.array([stem + rng.uniform(-0.12, 0.12) * width, y])
    out.append(_segment(centre, width, math.radians(rng.uniform(-6, 6))))
    return out


def _template(
    unit: Sequence[np.ndarray], strokes: Sequence[np.ndarray], width: tuple[float, float]
) -> Strokes:
    """Template strokes in a unit box, scaled into the digit's box (width clipped to a range)."""
    lo, hi = _bounds(strokes)
    h = max(hi[1] - lo[1], 1.0)
    w = float(np.clip(hi[0] - lo[0], width[0] * h, width[1] * h))
    corner = np.array([(lo[0] + hi[0] - w) / 2, lo[1]])  # (2,) top left, centred on the digit
    return [corner + np.asarray(u) * np.array([w, h]) for u in unit]


def open_top_four(strokes: Sequence[np.ndarray], rng: np.random.Generator) -> Strokes:
    """A 4 in two strokes, an "L" and a vertical, whose tops do not meet (drawn from a template)."""
    u = rng.uniform
    bar = u(0.55, 0.7)  # height of the crossbar, from the top
    arm = np.array([[u(0.05, 0.3), u(0.0, 0.12)], [u(0.0, 0.1), bar], [u(0.9, 1.0), bar]])
    arm[2, 1] += u(-0.04, 0.02)
    x = u(0.6, 0.78)
    stem = np.array([[x, u(0.0, 0.1)], [x + u(-0.08, 0.04), 1.0]])
    return _template([arm, stem], strokes, (0.5, 0.9))


def straight_stem_nine(strokes: Sequence[np.ndarray], rng: np.random.Generator) -> Strokes:
    """A 9 as a loop on top and a straight stem down from its right side (from a template)."""
    u = rng.uniform
    ry = u(0.19, 0.25)  # loop half-height, in digit heights
    rx = ry * u(0.75, 1.05)
    tilt = math.radians(u(-10, 10))
    # Anticlockwise on screen from the loop's right side, once round and a little more.
    t = np.linspace(0, 2 * math.pi + u(0.0, 0.3), 32)  # (32,)
    ex, ey = rx * np.cos(t), -ry * np.sin(t)  # (32,) each, y down
    cos, sin = math.cos(tilt), math.sin(tilt)
    loop = np.stack([cos * ex - sin * ey, sin * ex + cos * ey], 1)  # (32, 2)
    loop += np.array([0.5, ry])
    right = loop[0]  # where the stem leaves the loop
    stem = np.array([right, [right[0] + u(-0.06, 0.03), 1.0]])
    return _template([np.concatenate([loop, stem[1:]])], strokes, (1.0, 1.0))


@dataclass(frozen=True)
class Style:
    """A writing convention for one digit: `apply(strokes, rng)` returns the new strokes."""

    name: str
    digit: int
    apply: Callable[[Sequence[np.ndarray], np.random.Generator], Strokes]

    def __repr__(self) -> str:
        return f"Style({self.name!r}, digit={self.digit})"


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("flag one", 1, functools.partial(flag_and_foot_one, foot=False)),
        Style("flag-and-foot one", 1, functools.partial(flag_and_foot_one, foot=True)),
        Style("slashed zero", 0, slashed_zero),
        Style("dotted zero", 0, dotted_zero),
        Style("crossed seven", 7, crossed_seven),
        Style("open-top four", 4, open_top_four),
        Style("straight-stem nine", 9, straight_stem_nine),
    )
}


def _style(style: Style | str) -> Style:
    """A `Style` itself, or the one of that name in `STYLES`."""
    if isinstance(style, Style):
        return style
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {sorted(STYLES)}")
    return STYLES[style]


def stylise(
    strokes: Sequence[np.ndarray], label: int, style: Style | str, rng: np.random.Generator
) -> Strokes:
    """Draw one digit's strokes in a writing convention; the label stays the same.

    Parameters
    ----------
    strokes : the digit's polylines, (k, 2) arrays of (x, y), y down (as from `digit_strokes`).
    label : the digit; it must be the one the style is for.
    style : a `Style` or the name of one in `STYLES`.
    rng : the generator the style's sizes, angles and positions are jittered with.

    Returns
    -------
    New polylines (the input is not changed).
    """
    chosen = _style(style)
    if int(label) != chosen.digit:
        raise ValueError(f"style {chosen.name!r} is for the digit {chosen.digit}, got a {label}")
    if not strokes or all(len(s) == 0 for s in strokes):
        raise ValueError("a digit needs at least one stroke to stylise")
    return chosen.apply(strokes, rng)


def _by_digit(styles: Sequence[Style | str]) -> dict[int, Style]:
    """Digit → its style; a writer cannot draw one digit two ways."""
    chosen = [_style(s) for s in styles]
    by_digit = {s.digit: s for s in chosen}
    if len(by_digit) != len(chosen):
        raise ValueError(f"at most one style per digit, got {[s.name for s in chosen]}")
    return by_digit


def stylise_digits(
    images: np.ndarray,
    labels: np.ndarray,
    styles: Sequence[Style | str],
    seed: int | Sequence[int] = 0,
) -> list[Strokes]:
    """Trace each digit's strokes and draw those of a styled class in its convention.

    Parameters
    ----------
    images : uint8 (n, 784) MNIST-style digits.
    labels : (n,) their digits.
    styles : at most one per digit; digits of other classes keep their own strokes.
    seed : digit i always gets the same jitter for the same seed.

    Returns
    -------
    Per digit, its polylines in 28×28 pixel units.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 2 or images.shape[1] != 784 or len(images) != len(labels):
        raise ValueError(
            f"need images (n, 784) and labels (n,), got {images.shape} and {labels.shape}"
        )
    by_digit = _by_digit(styles)
    key = [seed] if isinstance(seed, int) else list(seed)
    out = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        strokes = digit_strokes(image)
        style = by_digit.get(int(label))
        if style is not None and strokes:
            strokes = stylise(strokes, int(label), style, np.random.default_rng([*key, i]))
        out.append(strokes)
    return out


def render(
    images: np.ndarray,
    labels: np.ndarray,
    styles: Sequence[Style | str],
    condition: Condition,
    seed: int = 0,
    size: int = 280,
    preprocess: Callable[[np.ndarray], np.ndarray] = ink_to_mnist,
) -> tuple[np.ndarray, np.ndarray]:
    """Stylise digits, redraw them on a canvas under `condition` and preprocess the ink.

    Parameters
    ----------
    images : uint8 (n, 784) MNIST-style digits.
    labels : (n,) their digits (unchanged by any style).
    styles : at most one per digit.
    condition : how the strokes are placed and drawn (see `handwriting.replay`).
    seed : the same seed gives the same styles' jitter and the same placement.
    size : canvas side in pixels.
    preprocess : canvas ink (size, size) → (28, 28) uint8, normally `ink_to_mnist`.

    Returns
    -------
    (images uint8 (n, 784), accepted bool (n,)), as from `handwriting.replay_digits`.
    """
    strokes = stylise_digits(images, labels, styles, (seed, name_salt(condition.name)))
    return replay_digits(strokes, condition, seed, size, preprocess)


@dataclass(frozen=True)
class Writer:
    """One consistent person: the same conventions on every digit, a hand drawn once from `seed`.

    Use `hand` for the canvas condition (slant, pen, size, ...) and `render` for their digits.
    """

    name: str
    styles: tuple[Style, ...]
    seed: int = 0  # draws the hand

    def __post_init__(self) -> None:
        _by_digit(self.styles)

    @property
    def hand(self) -> Condition:
        """The writer's way of drawing: narrow ranges around a slant, pen and size of their own."""
        rng = np.random.default_rng([self.seed, name_salt(self.name)])
        slant, pen = rng.uniform(-0.3, 0.3), rng.uniform(0.03, 0.11)
        height, turn = rng.uniform(0.4, 0.75), rng.uniform(-6.0, 6.0)
        return Condition(
            self.name,
            pen=(0.85 * pen, 1.15 * pen),
            height=(height - 0.1, height + 0.1),
            slant=(slant - 0.08, slant + 0.08),
            rotation=(turn - 4.0, turn + 4.0),
            offset=1.0,  # a visitor draws anywhere on the pad
            wobble=float(rng.uniform(0.003, 0.01)),
            pointer_step=float(rng.uniform(0.0, 0.04)),
        )

    def strokes(self, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> list[Strokes]:
        """Each digit's polylines in this writer's conventions (see `stylise_digits`)."""
        return stylise_digits(images, labels, self.styles, (seed, name_salt(self.name)))

    def render(
        self, images: np.ndarray, labels: np.ndarray, seed: int = 0, size: int = 280
    ) -> tuple[np.ndarray, np.ndarray]:
        """MNIST digits as this writer draws them on the page, preprocessed.

        Parameters
        ----------
        images : uint8 (n, 784) MNIST-style digits (their shapes are the writer's letterforms).
        labels : (n,) their digits.
        seed : the same seed gives the same drawings.
        size : canvas side in pixels.

        Returns
        -------
        (images uint8 (n, 784), accepted bool (n,)), as from `handwriting.replay_digits`.
        """
        return render(images, labels, self.styles, self.hand, seed, size)

    def __repr__(self) -> str:
        return f"Writer({self.name!r}, styles={[s.name for s in self.styles]}, seed={self.seed})"


WRITERS: dict[str, Writer] = {
    w.name: w
    for w in (
        Writer("continental", tuple(STYLES[s] for s in (
            "flag-and-foot one", "crossed seven", "slashed zero")), seed=1),
        Writer("open", tuple(STYLES[s] for s in (
            "open-top four", "straight-stem nine", "dotted zero")), seed=2),
        Writer("swiss", tuple(STYLES[s] for s in (
            "flag one", "crossed seven", "open-top four")), seed=4),
        Writer("plain", (), seed=3),  # a hand of their own, no conventions: the control
    )
}  # fmt: skip
