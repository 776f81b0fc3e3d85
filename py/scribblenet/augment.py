"""Training-time augmentation of 28×28 digits: random affine warps, elastic wobble, pen width.

Everything is vectorised over the batch in plain NumPy (no SciPy: it must run under Pyodide):
each output pixel is mapped back into its source image and sampled bilinearly, so a batch of
128 digits takes a couple of milliseconds. Randomness comes only from the generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "HANDWRITING_AUGMENTATION",
    "Augmentation",
    "affine_matrices",
    "augment_batch",
    "change_stroke",
    "elastic_fields",
    "warp",
]

SIDE = 28
CENTRE = (SIDE - 1) / 2  # warps pivot on the middle of the image


def _as_images(images: np.ndarray) -> np.ndarray:
    """(n, 784) or (n, 28, 28) pixels → float32 (n, 28, 28) in the same 0..255 scale."""
    x = np.asarray(images)
    if x.ndim == 2 and x.shape[1] == SIDE * SIDE:
        return x.reshape(-1, SIDE, SIDE).astype(np.float32)
    if x.ndim == 3 and x.shape[1:] == (SIDE, SIDE):
        return x.astype(np.float32)
    raise ValueError(f"images must have shape (n, 784) or (n, 28, 28), got {x.shape}")


def _like(result: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Back to the input's shape and dtype (uint8 is rounded and clipped)."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        result = np.clip(np.rint(result), 0, 255).astype(np.uint8)
    else:
        result = result.astype(x.dtype, copy=False)
    return result.reshape(x.shape)


def affine_matrices(
    n: int,
    rng: np.random.Generator,
    shift: float = 2.0,
    rotation: float = 12.0,
    scale: tuple[float, float] = (0.9, 1.1),
    shear: float = 0.25,
) -> np.ndarray:
    """Random affine maps, uniform within the given ranges.

    Parameters
    ----------
    n : how many.
    rng : the generator to draw from.
    shift : largest shift in pixels, per axis.
    rotation : largest rotation in degrees, either way.
    scale : (low, high) zoom factor range.
    shear : largest horizontal shear (slant), either way.

    Returns
    -------
    float64 (n, 2, 3): forward maps [A | t] on (row, col) about the image centre.
    """
    angle = np.radians(rng.uniform(-rotation, rotation, n))  # (n,)
    zoom = rng.uniform(scale[0], scale[1], n)  # (n,)
    slant = rng.uniform(-shear, shear, n)  # (n,)
    t = rng.uniform(-shift, shift, (n, 2))  # (n, 2)
    cos, sin = np.cos(angle), np.sin(angle)
    # Rotation on (row, col) with rows pointing down, then a slant of columns by row.
    R = np.stack([np.stack([cos, sin], 1), np.stack([-sin, cos], 1)], 1)  # (n, 2, 2)
    S = np.zeros((n, 2, 2))
    S[:, 0, 0] = S[:, 1, 1] = 1
    S[:, 1, 0] = -slant  # col shifts against row: positive slant leans right (/)
    A = zoom[:, None, None] * (R @ S)  # (n, 2, 2)
    return np.concatenate([A, t[:, :, None]], axis=2)  # (n, 2, 3)


def elastic_fields(
    n: int, rng: np.random.Generator, strength: float = 1.0, grid: int = 4
) -> np.ndarray:
    """Smooth random displacement fields: a coarse grid of offsets, bilinearly upsampled.

    Parameters
    ----------
    n : how many.
    rng : the generator to draw from.
    strength : standard deviation of the displacement in pixels.
    grid : coarse grid side; smaller means smoother, larger wobblier.

    Returns
    -------
    float64 (n, 28, 28, 2) displacements (row, col) in pixels.
    """
    if grid < 2:
        raise ValueError(f"elastic grid must be >= 2, got {grid}")
    coarse = rng.normal(0, strength, (n, grid, grid, 2))  # (n, g, g, 2)
    pos = np.linspace(0, grid - 1, SIDE)  # (28,) coarse coordinate of each pixel
    lo = np.minimum(pos.astype(int), grid - 2)
    frac = pos - lo
    W = np.zeros((SIDE, grid))  # (28, g) interpolation weights
    W[np.arange(SIDE), lo] = 1 - frac
    W[np.arange(SIDE), lo + 1] = frac
    field = W @ coarse.transpose(0, 3, 1, 2) @ W.T  # (n, 2, 28, 28)
    return field.transpose(0, 2, 3, 1)  # (n, 28, 28, 2)


def warp(
    images: np.ndarray, matrices: np.ndarray, displacement: np.ndarray | None = None
) -> np.ndarray:
    """Apply forward affine maps (and optional displacement fields) by bilinear resampling.

    Parameters
    ----------
    images : (n, 784) or (n, 28, 28) pixels, uint8 or float.
    matrices : (n, 2, 3) forward maps [A | t] on (row, col) about the image centre.
    displacement : optional (n, 28, 28, 2) offsets added to where each output pixel samples.

    Returns
    -------
    Images of the same shape and dtype; ink pulled in from outside the frame is background.
    """
    x = _as_images(images)  # (n, 28, 28)
    n = len(x)
    M = np.asarray(matrices, dtype=np.float64)
    if M.shape != (n, 2, 3):
        raise ValueError(f"need one (2, 3) matrix per image: ({n}, 2, 3), got {M.shape}")
    # Inverse map: output pixel p came from A⁻¹ (p - c - t) + c. Written out per component:
    # batched 2×2 matmuls and 2-D fancy indexing are several times slower in NumPy.
    A_inv = np.linalg.inv(M[:, :, :2]).astype(np.float32)  # (n, 2, 2)
    t = M[:, :, 2].astype(np.float32)  # (n, 2)
    r, c = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
    dy = (r.ravel() - CENTRE).astype(np.float32) - t[:, :1]  # (n, 784)
    dx = (c.ravel() - CENTRE).astype(np.float32) - t[:, 1:]  # (n, 784)
    # + 1: coordinates in the image padded below with a zero border.
    sy = A_inv[:, 0, :1] * dy + A_inv[:, 0, 1:] * dx + (CENTRE + 1)  # (n, 784)
    sx = A_inv[:, 1, :1] * dy + A_inv[:, 1, 1:] * dx + (CENTRE + 1)  # (n, 784)
    if displacement is not None:
        d = np.asarray(displacement, dtype=np.float32).reshape(n, -1, 2)  # (n, 784, 2)
        sy += d[..., 0]
        sx += d[..., 1]
    # Positions are clipped into the zero border, so ink from outside the frame reads as 0.
    np.clip(sy, 0, SIDE + 0.999, out=sy)
    np.clip(sx, 0, SIDE + 0.999, out=sx)
    y0 = np.minimum(sy.astype(np.int32), SIDE)  # floor (non-negative); top + 1 stays inside
    x0 = np.minimum(sx.astype(np.int32), SIDE)
    fy, fx = sy - y0.astype(np.float32), sx - x0.astype(np.float32)  # (n, 784) in [0, 1)
    width = SIDE + 2
    flat = np.pad(x, ((0, 0), (1, 1), (1, 1))).ravel()  # (n · 900,)
    base = y0 * width + x0 + np.arange(n, dtype=np.int32)[:, None] * (width * width)  # (n, 784)
    top = flat.take(base) * (1 - fx) + flat.take(base + 1) * fx
    bottom = flat.take(base + width) * (1 - fx) + flat.take(base + width + 1) * fx
    out = top + fy * (bottom - top)  # (n, 784)
    return _like(out, images)


def change_stroke(images: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """Thicken (amount > 0) or thin (< 0) strokes by blending with a grey dilation/erosion.

    Parameters
    ----------
    images : (n, 784) or (n, 28, 28) pixels, uint8 or float.
    amounts : (n,) in [-1, 1]; ±1 is a full 3×3-cross dilation/erosion (about ±2 px of width).

    Returns
    -------
    Images of the same shape and dtype.
    """
    x = _as_images(images)  # (n, 28, 28)
    a = np.asarray(amounts, dtype=np.float32).reshape(-1, 1, 1)  # (n, 1, 1)
    if len(a) != len(x):
        raise ValueError(f"need one amount per image ({len(x)}), got {len(a)}")
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    cross = [p[:, 1:-1, 1:-1], p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]]
    dilated = np.maximum.reduce(cross)  # (n, 28, 28)
    eroded = np.minimum.reduce(cross)
    target = np.where(a > 0, dilated, eroded)
    out = x + np.abs(a) * (target - x)  # (n, 28, 28)
    # Thinning also fades a stroke's core; restore each digit's peak so ink stays dark.
    peak_in = x.max(axis=(1, 2), keepdims=True)
    peak_out = out.max(axis=(1, 2), keepdims=True)
    out *= np.where(peak_out > 0, peak_in / np.maximum(peak_out, 1e-12), 1)
    return _like(out, images)


@dataclass(frozen=True)
class Augmentation:
    """Augmentation settings; calling an instance augments a batch: `aug(images, rng)`.

    This is the callable `Trainer(..., augment=...)` takes.
    """

    shift: float = 2.0  # largest shift in pixels, per axis
    rotation: float = 12.0  # largest rotation in degrees, either way
    scale: tuple[float, float] = (0.9, 1.1)  # zoom range
    shear: float = 0.25  # largest slant (column shift per row), either way
    elastic: float = 0.0  # elastic wobble, pixels (0 = off)
    stroke: float = 0.0  # largest pen-width change as a fraction of a full dilation/erosion

    def __post_init__(self) -> None:
        for name in ("shift", "rotation", "shear", "elastic"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {self.scale}")
        if not 0 <= self.stroke <= 1:
            raise ValueError(f"stroke must be in [0, 1], got {self.stroke!r}")

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment a batch: same shape and dtype out."""
        return augment_batch(images, rng, **asdict(self))


def augment_batch(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    shift: float = 2.0,
    rotation: float = 12.0,
    scale: tuple[float, float] = (0.9, 1.1),
    shear: float = 0.25,
    elastic: float = 0.0,
    stroke: float = 0.0,
) -> np.ndarray:
    """Randomly change each digit's pen width, then warp it (affine plus optional wobble).

    Parameters
    ----------
    images : (n, 784) or (n, 28, 28) pixels, uint8 or float.
    rng : the generator to draw from.
    shift, rotation, scale, shear, elastic, stroke : ranges, as in `Augmentation`.

    Returns
    -------
    Augmented images of the same shape and dtype.
    """
    n = len(images)
    if n == 0:
        return np.array(images, copy=True)
    x = images
    if stroke > 0:
        x = change_stroke(x, rng.uniform(-stroke, stroke, n))
    M = affine_matrices(n, rng, shift, rotation, (scale[0], scale[1]), shear)  # (n, 2, 3)
    D = elastic_fields(n, rng, elastic) if elastic > 0 else None  # (n, 28, 28, 2)
    return warp(x, M, D)


# What web/models/pretrained.npz was trained with: drawn digits vary more than MNIST's, in slant,
# pen width and wobble as well as position (`scribblenet train --augment handwriting`).
HANDWRITING_AUGMENTATION = Augmentation(
    shift=2.0, rotation=12.0, scale=(0.9, 1.1), shear=0.3, elastic=0.6, stroke=0.6
)
