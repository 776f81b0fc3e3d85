"""Replay real handwriting on a virtual canvas, to measure how well drawn digits are read.

People's MNIST digits are turned back into pen strokes: each image is thinned to its skeleton
(`ink.skeletonize`), the skeleton is traced into polylines and simplified, and the polylines are
redrawn with `ink.ink_from_strokes` on a 280×280 canvas under a set of named conditions — pen
width, digit size, position, slant, rotation, a shaky hand, sparse pointer events — like the ones
a visitor's drawing varies in. The canvas ink then goes through `ink.ink_to_mnist` and a
classifier, exactly as on the page. The digits are MNIST *test* images, which no model trains on.

Everything is seeded: the same images, conditions and seed give the same report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .ink import ink_from_strokes, ink_to_mnist, skeletonize

__all__ = [
    "CONDITIONS",
    "Condition",
    "HandwritingReport",
    "digit_strokes",
    "evaluate_handwriting",
    "name_salt",
    "replay",
    "replay_digits",
    "trace_skeleton",
]

UPSAMPLE = 4  # skeletons are traced at 4× the 28×28 resolution: smoother strokes
_NEIGHBOURS = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))


@dataclass(frozen=True)
class Condition:
    """How a digit is redrawn; each (low, high) range is sampled uniformly per digit.

    Lengths are fractions of the canvas side, so the same condition works at any canvas size.
    """

    name: str
    pen: tuple[float, float] = (0.08, 0.08)  # pen width / canvas side
    height: tuple[float, float] = (0.65, 0.65)  # digit height (pen centre line) / canvas side
    slant: tuple[float, float] = (0.0, 0.0)  # horizontal shear: x += slant · (centre_y - y)
    rotation: tuple[float, float] = (0.0, 0.0)  # degrees, counter-clockwise
    offset: float = 0.0  # 0 = centred; 1 = anywhere the digit still fits on the canvas
    wobble: float = 0.0  # shaky hand: smooth random wander of the pen / canvas side
    pointer_step: float = 0.0  # pointer events this far apart / canvas side (0 = smooth)

    def __repr__(self) -> str:
        return f"Condition({self.name!r})"


CONDITIONS: tuple[Condition, ...] = (
    Condition("reference"),
    Condition("thin pen", pen=(0.025, 0.025)),
    Condition("thick pen", pen=(0.13, 0.13)),
    Condition("small", height=(0.3, 0.3)),
    Condition("large", height=(0.85, 0.85)),
    Condition("off-centre", height=(0.35, 0.5), offset=1.0),
    Condition("slant right", slant=(0.35, 0.35)),
    Condition("slant left", slant=(-0.35, -0.35)),
    Condition("rotated", rotation=(-15.0, 15.0)),
    Condition("shaky", wobble=0.012),
    Condition("coarse pointer", pointer_step=0.08),
    Condition(
        "mixed",
        pen=(0.025, 0.13),
        height=(0.3, 0.85),
        slant=(-0.35, 0.35),
        rotation=(-10.0, 10.0),
        offset=1.0,
        wobble=0.008,
        pointer_step=0.04,
    ),
)


def _graph(skeleton: np.ndarray) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """8-connected adjacency of skeleton pixels, without diagonals that an L-step covers."""
    pixels = {(int(r), int(c)) for r, c in zip(*np.nonzero(skeleton), strict=True)}
    graph: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for r, c in pixels:
        links = []
        for dr, dc in _NEIGHBOURS:
            q = (r + dr, c + dc)
            if q not in pixels:
                continue
            if dr and dc and ((r + dr, c) in pixels or (r, c + dc) in pixels):
                continue  # a triangle: the two straight steps already join these pixels
            links.append(q)
        graph[(r, c)] = links
    return graph


def trace_skeleton(skeleton: np.ndarray) -> list[np.ndarray]:
    """Trace a 1-pixel-wide skeleton into polylines that cover each of its links once.

    Parameters
    ----------
    skeleton : (H, W) bool, as from `ink.skeletonize`.

    Returns
    -------
    List of float (k, 2) arrays of (x, y) pixel centres; isolated pixels are 1-point polylines.
    """
    graph = _graph(skeleton)
    seen: set[frozenset[tuple[int, int]]] = set()

    def walk(start: tuple[int, int], nxt: tuple[int, int]) -> list[tuple[int, int]]:
        path = [start]
        prev, cur = start, nxt
        seen.add(frozenset((prev, cur)))
        while True:
            path.append(cur)
            if len(graph[cur]) != 2:
                return path  # an end or a junction
            step = graph[cur][0] if graph[cur][1] == prev else graph[cur][1]
            edge = frozenset((cur, step))
            if edge in seen:
                return path  # closed a loop
            seen.add(edge)
            prev, cur = cur, step

    polylines = []
    # Ends and junctions first, so strokes run between them; then pure loops (a "0").
    order = sorted(graph, key=lambda p: (len(graph[p]) == 2, p))
    for p in order:
        if not graph[p]:
            polylines.append([p])
        for q in graph[p]:
            if frozenset((p, q)) not in seen:
                polylines.append(walk(p, q))
    return [np.array([(c, r) for r, c in line], dtype=np.float64) for line in polylines]


def _simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas–Peucker: drop points within `tolerance` of the chord (staircase jaggies)."""
    if len(points) < 3:
        return points
    keep = np.zeros(len(points), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = points[i], points[j]
        seg = b - a
        rel = points[i + 1 : j] - a  # (m, 2)
        norm = math.hypot(*seg)
        if norm == 0:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm  # (m,)
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            keep[i + 1 + k] = True
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return points[keep]


def _smooth(points: np.ndarray, window: int) -> np.ndarray:
    """Resample a polyline at unit spacing and average over `window` points, ends pinned.

    Skeletons of a 28×28 image follow its pixel grid; a pen follows a smooth path.
    """
    if len(points) < 3:
        return points
    steps = np.hypot(*np.diff(points, axis=0).T)  # (k-1,)
    arc = np.concatenate([[0.0], np.cumsum(steps)])  # (k,)
    if arc[-1] < 2:
        return points
    t = np.linspace(0, arc[-1], max(int(arc[-1]) + 1, 2))  # (m,)
    even = np.stack([np.interp(t, arc, points[:, 0]), np.interp(t, arc, points[:, 1])], 1)
    half = min(window // 2, (len(even) - 1) // 2)
    if half < 1:
        return even
    closed = bool(np.allclose(points[0], points[-1]))
    padded = (
        np.concatenate([even[-half - 1 : -1], even, even[1 : half + 1]])
        if closed
        else np.concatenate([np.repeat(even[:1], half, 0), even, np.repeat(even[-1:], half, 0)])
    )
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    smooth = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in (0, 1)], 1)
    if not closed:
        smooth[0], smooth[-1] = even[0], even[-1]
    return smooth


def _prune_spurs(lines: list[np.ndarray], min_length: float) -> list[np.ndarray]:
    """Drop short branches from a free end to a junction: thinning artefacts, not pen moves."""
    ends: dict[tuple[float, float], int] = {}
    for line in lines:
        for p in (line[0], line[-1]):
            ends[tuple(p)] = ends.get(tuple(p), 0) + 1
    kept = []
    for line in lines:
        a, b = ends[tuple(line[0])], ends[tuple(line[-1])]
        length = float(np.hypot(*np.diff(line, axis=0).T).sum()) if len(line) > 1 else 0.0
        if length < min_length and min(a, b) == 1 and max(a, b) >= 3:
            continue
        kept.append(line)
    return kept or lines


def digit_strokes(image: np.ndarray) -> list[np.ndarray]:
    """The pen paths of a 28×28 digit image: its skeleton, traced, pruned and smoothed.

    Parameters
    ----------
    image : uint8 (784,) or (28, 28) MNIST-style digit.

    Returns
    -------
    List of float (k, 2) polylines of (x, y) in 28×28 pixel units.
    """
    x = np.asarray(image, dtype=np.float32).reshape(28, 28) / 255
    big = Image.fromarray(x).resize((28 * UPSAMPLE, 28 * UPSAMPLE), Image.Resampling.BILINEAR)
    skeleton = skeletonize(np.asarray(big) > 0.5)  # (112, 112)
    lines = _prune_spurs(trace_skeleton(skeleton), 1.5 * UPSAMPLE)
    lines = [_simplify(_smooth(p, 2 * UPSAMPLE - 1), 0.12 * UPSAMPLE) for p in lines]
    # Pixel centres at 4× → 28×28 pixel-centre coordinates.
    return [(p + 0.5) / UPSAMPLE - 0.5 for p in lines]


def _resample(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` pixels along a polyline, keeping both ends."""
    steps = np.hypot(*np.diff(points, axis=0).T)  # (k-1,)
    arc = np.concatenate([[0.0], np.cumsum(steps)])  # (k,)
    t = np.linspace(0, arc[-1], max(math.ceil(arc[-1] / spacing) + 1, 2))  # (m,)
    return np.stack([np.interp(t, arc, points[:, 0]), np.interp(t, arc, points[:, 1])], 1)


def _wobble(points: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Resample a stroke every 3 pixels and add smooth noise of about `amplitude` pixels."""
    even = _resample(points, 3.0)  # (m, 2)
    # Smoothing white noise over 7 samples (~20 px) divides its spread by √7; undo that.
    noise = rng.normal(0, amplitude * math.sqrt(7), (len(even) + 6, 2))
    kernel = np.ones(7) / 7
    wander = np.stack([np.convolve(noise[:, k], kernel, mode="valid") for k in (0, 1)], 1)
    return even + wander  # (m, 2)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return float(rng.uniform(low, high)) if high > low else float(low)


def replay(
    strokes: Sequence[np.ndarray], condition: Condition, rng: np.random.Generator, size: int = 280
) -> tuple[list[np.ndarray], float]:
    """Place strokes on a canvas as `condition` says: size, slant, rotation, position, pen.

    Parameters
    ----------
    strokes : (k, 2) polylines of (x, y) in any units.
    condition : ranges to sample from.
    rng : the generator the ranges are sampled with.
    size : canvas side in pixels.

    Returns
    -------
    (canvas strokes as (k, 2) arrays in canvas pixels, pen width in pixels).
    """
    points = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes])
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2
    height = max(hi[1] - lo[1], 1e-6)
    scale = _uniform(rng, condition.height) * size / height
    slant = _uniform(rng, condition.slant)
    angle = math.radians(_uniform(rng, condition.rotation))
    pen = _uniform(rng, condition.pen) * size
    cos, sin = math.cos(angle), math.sin(angle)
    # y points down on a canvas, so a counter-clockwise turn on screen is [[c, s], [-s, c]].
    A = np.array([[cos, sin], [-sin, cos]]) @ np.array([[1.0, -slant], [0.0, 1.0]]) * scale
    placed = [(np.asarray(s, dtype=np.float64).reshape(-1, 2) - centre) @ A.T for s in strokes]
    if condition.wobble > 0:
        placed = [_wobble(p, condition.wobble * size, rng) if len(p) > 1 else p for p in placed]
    if condition.pointer_step > 0:
        # A fast hand with a 60 Hz pointer: the canvas joins sparse samples with straight lines.
        step = condition.pointer_step * size
        placed = [_resample(p, step) if len(p) > 1 else p for p in placed]
    allp = np.concatenate(placed)  # (m, 2), centred on (0, 0)
    # Shifts from the canvas centre that keep all the ink on the canvas (none if it is too big).
    low = np.minimum(-size / 2 - (allp.min(axis=0) - pen / 2), 0.0)  # (2,)
    high = np.maximum(size / 2 - (allp.max(axis=0) + pen / 2), 0.0)  # (2,)
    shift = size / 2 + condition.offset * rng.uniform(low, high) if condition.offset else size / 2
    return [p + shift for p in placed], pen


def name_salt(name: str) -> int:
    """A number from a name, to seed a named condition's (or writer's) draws with."""
    return sum(ord(ch) for ch in name)


def replay_digits(
    strokes: Sequence[Sequence[np.ndarray]],
    condition: Condition,
    seed: int = 0,
    size: int = 280,
    preprocess: Callable[[np.ndarray], np.ndarray] = ink_to_mnist,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw each digit's strokes on a canvas under `condition` and preprocess the ink.

    Parameters
    ----------
    strokes : per digit, its polylines (as from `digit_strokes`).
    condition : how to redraw them.
    seed : digit i under condition c always gets the same random draw for the same seed.
    size : canvas side in pixels.
    preprocess : canvas ink (size, size) uint8 → (28, 28) uint8; may raise ValueError.

    Returns
    -------
    (images uint8 (n, 784), accepted bool (n,)); rejected drawings are all-zero images.
    """
    salt = name_salt(condition.name)  # a condition's draws don't depend on its rank
    images = np.zeros((len(strokes), 784), dtype=np.uint8)
    accepted = np.zeros(len(strokes), dtype=bool)
    for i, lines in enumerate(strokes):
        rng = np.random.default_rng([seed, salt, i])
        placed, pen = replay(lines, condition, rng, size)
        ink = ink_from_strokes(placed, size=size, width=pen)  # (size, size)
        try:
            images[i] = preprocess(ink).reshape(784)
            accepted[i] = True
        except ValueError:
            pass  # counted as a miss: the page would have shown an error instead of a digit
    return images, accepted


@dataclass(frozen=True)
class HandwritingReport:
    """Accuracy of reading replayed handwriting, per condition and overall."""

    accuracy: dict[str, float]  # condition name → fraction read correctly
    rejected: dict[str, int]  # condition name → drawings preprocessing refused
    n: int  # digits per condition

    @property
    def overall(self) -> float:
        """Mean accuracy over all conditions (each has the same digits)."""
        return float(np.mean(list(self.accuracy.values())))

    def format(self) -> str:
        """A plain-text table, one condition per line, then the overall accuracy."""
        lines = [f"{'condition':<14}{'accuracy':>10}{'rejected':>10}"]
        for name, acc in self.accuracy.items():
            lines.append(f"{name:<14}{acc:>9.2%}{self.rejected[name]:>10}")
        lines.append(f"{'overall':<14}{self.overall:>9.2%}   ({self.n} digits per condition)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"HandwritingReport(overall={self.overall:.4f}, n={self.n})"


def evaluate_handwriting(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    conditions: Sequence[Condition] = CONDITIONS,
    seed: int = 0,
    size: int = 280,
    preprocess: Callable[[np.ndarray], np.ndarray] = ink_to_mnist,
) -> HandwritingReport:
    """Redraw handwritten digits on a canvas under each condition and score a classifier.

    Parameters
    ----------
    predict : uint8 images (n, 784) → predicted digits (n,).
    images : uint8 (n, 784) handwritten digits (e.g. MNIST test images the model never saw).
    labels : (n,) their digits.
    conditions : how to redraw them.
    seed : makes the random parts of the conditions repeatable.
    size : canvas side in pixels.
    preprocess : canvas ink → 28×28, normally `ink_to_mnist`.

    Returns
    -------
    A `HandwritingReport`; a drawing preprocessing rejects counts as misread.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 2 or images.shape[1] != 784 or len(images) != len(labels):
        raise ValueError(
            f"need images (n, 784) and labels (n,), got {images.shape} and {labels.shape}"
        )
    if len(images) == 0:
        raise ValueError("need at least one image to evaluate")
    strokes = [digit_strokes(image) for image in images]
    accuracy, rejected = {}, {}
    for condition in conditions:
        X, ok = replay_digits(strokes, condition, seed, size, preprocess)  # (n, 784), (n,)
        predicted = np.asarray(predict(X))  # (n,)
        accuracy[condition.name] = float(((predicted == labels) & ok).mean())
        rejected[condition.name] = int((~ok).sum())
    return HandwritingReport(accuracy, rejected, len(images))
