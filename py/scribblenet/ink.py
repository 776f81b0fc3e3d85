"""Canvas ink → MNIST-style 28×28 digit: crop, even out the pen width, fit 20×20, centre by mass.

MNIST digits were scaled to fit a 20×20 box (keeping their aspect ratio, antialiased) and placed in
a 28×28 field with their centre of mass at the centre. Drawn digits go through the same recipe plus
one step MNIST did not need: a canvas pen has one width whatever the size of the digit, so a digit
drawn small comes out bold and one drawn large comes out hairline. The stroke is therefore
thickened or thinned (grey dilation/erosion at 4× the final resolution) so that, after scaling, it
is as wide as a typical MNIST stroke.

What cannot be a digit raises instead of returning garbage: no ink, a speck or a single dot raise
`EmptyInkError` ("draw a digit"), ink covering most of the canvas raises `ValueError`. A larger
filled shape is returned as it is (no stroke width to even out): telling shapes that are not
digits from digits is `calibration`'s job, which knows what digits look like.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "BRUSH_FRACTION",
    "MNIST_STROKE_WIDTH",
    "EmptyInkError",
    "image_to_ink",
    "ink_from_strokes",
    "ink_to_mnist",
    "load_ink_image",
    "skeletonize",
    "stroke_width",
]

SIZE = 28  # output side, pixels
BOX = 20  # the digit's long side is scaled to this
CENTRE = 14.0  # MNIST's mean centre of mass (row, col) in pixel-index coordinates
WORK = 4  # stroke width is adjusted at WORK× the output resolution
NOISE = 0.2  # ink fainter than this does not count towards the bounding box
FULL = 0.6  # ink over more than this fraction of the canvas is not one digit
MIN_SPAN = 0.03  # ink spanning less than this fraction of the canvas is a speck
# A blob (no stroke longer than it is wide) spanning at most this fraction of the canvas is a dot,
# a tap of the pen (the page's pen is 0.08 wide); a bigger one is a filled shape, which is passed
# on so that `calibration` can say it is not a digit (a block is not "only a dot").
MAX_DOT = 0.25
# Median width of MNIST strokes in 28×28 pixels (ink area / skeleton length, measured on the
# training set with `stroke_width` after scaling each digit's long side to 20 pixels).
MNIST_STROKE_WIDTH = 2.2
# A pen this fraction of the canvas side gives MNIST-like strokes for a digit ~2/3 the canvas high.
BRUSH_FRACTION = 0.08
SUPERSAMPLE = 4  # strokes are rendered at this multiple of the canvas size, then averaged


class EmptyInkError(ValueError):
    """There is no digit to read: the canvas is empty or holds only a speck or a dot."""


def _as_float_ink(ink: np.ndarray | Image.Image) -> np.ndarray:
    """Validate a 2-D ink array (uint8 0..255, bool, or float 0..1) → float32 (H, W) in [0, 1]."""
    if isinstance(ink, Image.Image):
        return image_to_ink(ink)
    x = np.asarray(ink)
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"ink must be a non-empty 2-D array (height, width), got shape {x.shape}")
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise ValueError(
                f"integer ink must lie in [0, 255], got values from {x.min()} to {x.max()}"
            )
        return x.astype(np.float32) / 255
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"ink must be an integer, bool or float array, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError("ink must not contain NaN or infinity")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"float ink must lie in [0, 1], got values from {x.min():g} to {x.max():g}"
        )
    return x.astype(np.float32)


def image_to_ink(image: Image.Image) -> np.ndarray:
    """Ink intensity of a picture of a digit, whatever its mode and polarity.

    Transparent pixels are background; dark-on-light and light-on-dark pictures are told apart
    by the median of their border, which is background in any picture of one digit.

    Parameters
    ----------
    image : a PIL image in any mode (L, RGB, RGBA, LA, P, I, F, ...).

    Returns
    -------
    float32 (H, W) in [0, 1], 1 = full ink, 0 = background.
    """
    grey: np.ndarray
    if image.mode in ("I", "I;16", "F"):
        grey = np.asarray(image, dtype=np.float32)
        lo, hi = float(grey.min()), float(grey.max())
        grey = (grey - lo) / (hi - lo) if hi > lo else np.zeros_like(grey)  # (H, W)
        alpha = None
    else:
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        rgba = image.convert("RGBA") if has_alpha else None
        grey = np.asarray(image.convert("L"), dtype=np.float32) / 255  # (H, W)
        alpha = np.asarray(rgba, dtype=np.float32)[:, :, 3] / 255 if rgba is not None else None
        if alpha is not None and alpha.min() > 0.98:
            alpha = None  # fully opaque: the colours alone say where the ink is
    if alpha is not None:
        # A canvas export: ink drawn in some colour over transparency. The alpha is the ink.
        return alpha.astype(np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    # Dark ink on a light background, or light ink on a dark one.
    grey = background - grey if background > 0.5 else grey - background
    top = float(grey.max())
    if top <= 0:
        return np.zeros_like(grey)
    return np.clip(grey / top, 0, 1).astype(np.float32)


def load_ink_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a picture of one digit (PNG, JPEG, ...) as ink: float32 (H, W) in [0, 1]."""
    with Image.open(path) as image:
        image.load()
        return image_to_ink(image)


def skeletonize(mask: np.ndarray) -> np.ndarray:
    """Zhang–Suen thinning of a binary image to 1-pixel-wide lines.

    Parameters
    ----------
    mask : (H, W) bool (or anything nonzero = foreground).

    Returns
    -------
    (H, W) bool skeleton, a subset of `mask` with the same connectivity.
    """
    img = np.pad(np.asarray(mask, dtype=bool), 1)  # (H+2, W+2): border pixels get neighbours
    core = img[1:-1, 1:-1]  # a view: writes update img
    while True:
        removed_any = False
        for step in (0, 1):
            # Neighbours P2..P9 clockwise from north, each (H, W).
            p = [
                img[:-2, 1:-1],
                img[:-2, 2:],
                img[1:-1, 2:],
                img[2:, 2:],
                img[2:, 1:-1],
                img[2:, :-2],
                img[1:-1, :-2],
                img[:-2, :-2],
            ]
            q = [n.astype(np.uint8) for n in p]
            count = sum(q)  # (H, W) foreground neighbours
            # 0→1 transitions around the ring: exactly one means removal keeps it connected.
            transitions = sum((q[i] == 0) & (q[(i + 1) % 8] == 1) for i in range(8))
            n, e, s, w = p[0], p[2], p[4], p[6]
            # The two sub-steps peel south-east and north-west borders in turn.
            side = ~(n & e & s) & ~(e & s & w) if step == 0 else ~(n & e & w) & ~(n & s & w)
            remove = core & (count >= 2) & (count <= 6) & (transitions == 1) & side
            if remove.any():
                core &= ~remove
                removed_any = True
        if not removed_any:
            return core.copy()


def stroke_width(x: np.ndarray, threshold: float = 0.5) -> tuple[float, np.ndarray]:
    """Mean pen width of ink, from its area, skeleton length and number of stroke ends.

    A round-capped stroke of width w along a path of length L covers w·L plus half a disc of
    diameter w at each end, so w solves (π/8)·ends·w² + L·w = area.

    Parameters
    ----------
    x : (H, W) float ink in [0, 1].
    threshold : ink above this fraction of the maximum is foreground for the skeleton.

    Returns
    -------
    (width, skeleton): the width in pixels and the (H, W) bool skeleton.
    """
    top = float(x.max())
    if top <= 0:
        return 0.0, np.zeros(x.shape, dtype=bool)
    skeleton = skeletonize(x > threshold * top)  # (H, W)
    p = np.pad(skeleton, 1)
    c, right, down, left = p[1:-1, 1:-1], p[1:-1, 2:], p[2:, 1:-1], p[1:-1, :-2]
    straight = int((c & right).sum() + (c & down).sum())
    # A diagonal step counts √2 unless an L-shaped pair of straight steps already covers it.
    diagonal = int((c & p[2:, 2:] & ~right & ~down).sum() + (c & p[2:, :-2] & ~left & ~down).sum())
    length = max(straight + math.sqrt(2) * diagonal, 1.0)
    neighbours = sum(
        p[1 + dy : p.shape[0] - 1 + dy, 1 + dx : p.shape[1] - 1 + dx].astype(np.uint8)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )  # (H, W)
    ends = int((c & (neighbours == 1)).sum())
    area = float(x.sum()) / top
    if ends == 0:
        return area / length, skeleton
    a = math.pi / 8 * ends
    return (math.sqrt(length * length + 4 * a * area) - length) / (2 * a), skeleton


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the True pixels, bottom/right exclusive."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _reach(skeleton: np.ndarray) -> int:
    """The longer side of a skeleton's bounding box, 0 if it is empty."""
    if not skeleton.any():
        return 0
    top, bottom, left, right = _bbox(skeleton)
    return max(bottom - top, right - left)


def _resize(x: np.ndarray, long_side: float, resample: Image.Resampling) -> np.ndarray:
    """Scale float ink so its longer side is `long_side` pixels, keeping the aspect ratio."""
    h, w = x.shape
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # Pillow wants (width, height)
    image = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32))  # mode "F"
    return np.asarray(image.resize(size, resample), dtype=np.float32)


def _disc_offsets(radius: float) -> list[tuple[int, int]]:
    r = math.floor(radius)
    return [
        (dy, dx)
        for dy in range(-r, r + 1)
        for dx in range(-r, r + 1)
        if dy * dy + dx * dx <= radius * radius
    ]


def _morph(x: np.ndarray, radius: float, dilate: bool) -> np.ndarray:
    """Grey dilation (max) or erosion (min) of x by a disc; x is padded so nothing is cut off."""
    r = math.floor(radius)
    pad = r if dilate else 0
    src = np.pad(x, r + pad)  # (H + 2r + 2pad, W + ...)
    h, w = x.shape[0] + 2 * pad, x.shape[1] + 2 * pad
    out = np.zeros((h, w), np.float32) if dilate else np.ones((h, w), np.float32)
    combine = np.maximum if dilate else np.minimum
    for dy, dx in _disc_offsets(radius):
        combine(out, src[r + dy : r + dy + h, r + dx : r + dx + w], out=out)
    return out


def _adjust_width(work: np.ndarray, width: float, target: float) -> np.ndarray:
    """Dilate or erode ink (WORK× resolution) so its width is `target` after the final fit.

    Changing the width by d also lengthens the long side L by d, which changes the final scale
    BOX / (L + d); solving (width + d) · BOX / (L + d) = target for d gives it in closed form.
    """
    long_side = max(work.shape)
    t = target  # output pixels
    d = (t * long_side - BOX * width) / (BOX - t)  # work pixels
    d = min(max(d, -0.6 * width), long_side / 2)  # never erode a stroke away
    if d >= 1:
        return _morph(work, d / 2, dilate=True)
    if d <= -1:
        return _morph(work, -d / 2, dilate=False)
    return work


def _place_by_mass(box: np.ndarray) -> np.ndarray:
    """Paste a digit (h, w ≤ 28) into 28×28 with its centre of mass nearest (14, 14)."""
    h, w = box.shape
    mass = float(box.sum())
    rows, cols = np.arange(h), np.arange(w)
    cy = float(box.sum(axis=1) @ rows) / mass
    cx = float(box.sum(axis=0) @ cols) / mass
    top = min(max(round(CENTRE - cy), 0), SIZE - h)  # clipped: all the ink stays in frame
    left = min(max(round(CENTRE - cx), 0), SIZE - w)
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top : top + h, left : left + w] = box
    return out


def ink_to_mnist(
    ink: np.ndarray | Image.Image,
    *,
    normalize_width: bool = True,
    target_width: float = MNIST_STROKE_WIDTH,
) -> np.ndarray:
    """Turn a drawing of one digit into an MNIST-style 28×28 image.

    Crops to the ink, evens out the pen width (see the module docstring), scales the long side to
    20 pixels with antialiasing and places the result in 28×28 with its centre of mass at (14, 14).

    Parameters
    ----------
    ink : (H, W) array, uint8 0..255 or float 0..1 (higher = more ink: the canvas alpha channel,
        any size), or a PIL image (see `image_to_ink`).
    normalize_width : thicken/thin strokes towards `target_width` output pixels.
    target_width : stroke width in 28×28 pixels to aim for.

    Returns
    -------
    uint8 (28, 28), 0 = background, 255 = full ink.

    Raises
    ------
    EmptyInkError : no ink, only a speck, or a single dot ("draw a digit ...").
    ValueError : ink covering most of the canvas, or an invalid array.
    """
    x = _as_float_ink(ink)  # (H, W) in [0, 1]
    mask = x > NOISE
    if not mask.any():
        raise EmptyInkError("draw a digit")
    if mask.mean() > FULL:
        raise ValueError("the drawing fills the canvas; clear it and draw one digit")
    top, bottom, left, right = _bbox(mask)
    span = max(bottom - top, right - left)
    if span < max(2, MIN_SPAN * max(x.shape)):
        raise EmptyInkError("draw a digit (the ink is only a speck)")
    crop = x[top:bottom, left:right]  # (h, w)

    # Work at WORK× the output resolution: enough to measure and change the stroke width finely.
    up = span < BOX * WORK
    work = _resize(crop, BOX * WORK, Image.Resampling.BILINEAR if up else Image.Resampling.BOX)
    work = np.clip(work, 0, 1)  # (≤80, ≤80)
    width, skeleton = stroke_width(work)
    if _reach(skeleton) < width:
        # Zhang–Suen thinning can erase a thick "/" line whole; its mirror image thins well.
        width, skeleton = stroke_width(work[:, ::-1])
    blob = _reach(skeleton) < width  # the pen moved less than its own width
    if blob and span <= MAX_DOT * max(x.shape):
        raise EmptyInkError("draw a digit (the ink is only a dot)")

    if normalize_width and not blob:  # a filled shape has no stroke width to even out
        adjusted = _adjust_width(work, width, target_width)
        kept = adjusted > NOISE
        if kept.any():  # erosion is bounded, but never trade a digit for nothing
            top, bottom, left, right = _bbox(kept)
            work = adjusted[top:bottom, left:right]
        box = _resize(work, BOX, Image.Resampling.BOX)
    else:
        box = _resize(crop, BOX, Image.Resampling.BOX if span > BOX else Image.Resampling.BILINEAR)
    box = np.clip(box, 0, 1)  # (≤20, ≤20)
    peak = float(box.max())
    if peak <= 0:
        raise EmptyInkError("draw a digit")
    box /= peak  # MNIST strokes are saturated at their centre
    out = _place_by_mass(box)  # (28, 28)
    return np.round(out * 255).astype(np.uint8)


def ink_from_strokes(
    strokes: Sequence[Sequence[Sequence[float]]] | Sequence[np.ndarray],
    size: int = 280,
    width: float | None = None,
) -> np.ndarray:
    """Render pen strokes the way the page's canvas does: round caps and joins.

    Parameters
    ----------
    strokes : polylines, each a sequence of (x, y) points in canvas pixels (x right, y down);
        a one-point stroke is a dot.
    size : canvas side in pixels.
    width : pen width in pixels; default `BRUSH_FRACTION · size`.

    Returns
    -------
    uint8 (size, size) ink, 255 = full ink.
    """
    if size < 1:
        raise ValueError(f"canvas size must be >= 1, got {size}")
    width = BRUSH_FRACTION * size if width is None else float(width)
    if not width > 0:
        raise ValueError(f"pen width must be > 0, got {width}")
    # Drawn at 4× and box-filtered down: antialiased edges, like the browser's canvas.
    scale = SUPERSAMPLE
    image = Image.new("L", (size * scale, size * scale), 0)
    draw = ImageDraw.Draw(image)
    r = width * scale / 2
    for stroke in strokes:
        points = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)  # (k, 2) x, y
        if not np.isfinite(points).all():
            raise ValueError("stroke points must be finite numbers")
        xy = [((px + 0.5) * scale - 0.5, (py + 0.5) * scale - 0.5) for px, py in points]
        if len(xy) > 1:
            draw.line(xy, fill=255, width=max(1, round(2 * r)))
        half = max(r - 0.5, 0.0)  # Pillow's ellipse box includes both edge pixels
        for px, py in xy:  # round caps and joins
            draw.ellipse((px - half, py - half, px + half, py + half), fill=255)
    if scale > 1:
        image = image.reduce(scale)
    return np.asarray(image, dtype=np.uint8)
