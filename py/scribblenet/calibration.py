"""How far to trust a prediction: calibrated probabilities and a digit / unsure / not-digit verdict.

A softmax network names some digit for any input. On real digits the pretrained model is already
well calibrated (expected calibration error 0.3 %), but a line, a block or a letter gets the same
"100 %". So a drawing is judged by three tests, each measured on data rather than guessed:

1. Temperature scaling (Guo et al., 2017): p = softmax(z / T), T minimising the cross-entropy of
   held-out labelled digits. It never changes the most likely digit, only how sure it sounds;
   "unsure" is a calibrated max probability below `UNSURE_BELOW`.
2. Shape: a solid block (ink thicker than any MNIST stroke) or a flat line (far wider than high),
   with limits beyond the extremes of the 60,000 MNIST training digits.
3. Likeness: the pixel distance from the drawing (as the network sees it) to the nearest of the
   `HELD_OUT` reference digits; further than `NEAREST_BEYOND`, it looks like no real digit. The
   network's own hidden layer (a class-Gaussian Mahalanobis distance) was tried and caught
   fewer non-digits at the same cost in real digits (scripts/calibrate.py's notes).

T is fitted per model, on the page's held-out MNIST test images (`Calibration.fit`), which are
also the reference digits; before the dataset is there `Calibration()` uses T = 1 and shape alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .network import Network

__all__ = [
    "FLAT_BELOW",
    "HELD_OUT",
    "NEAREST_BEYOND",
    "THICK_FROM",
    "UNSURE_BELOW",
    "Calibration",
    "Judgement",
    "expected_calibration_error",
    "fit_temperature",
    "model_digest",
    "shape_features",
    "softmax_t",
]

# The held-out digits: MNIST test images [0, HELD_OUT). Temperature scaling never changes the
# argmax, so the test accuracy measured on all 10,000 is unaffected by fitting T on them.
HELD_OUT = 2000
# Chosen with scripts/calibrate.py (pretrained model) for ≤ ~2.5 % false rejects on real digits.
# On its choice split, unsure + not-a-digit: 2.3 % of MNIST test digits, 1.9 % of replayed drawn
# digits, 54 % of generated non-digits; on the separate report split 2.0 %, 2.1 % and 53 %.
UNSURE_BELOW = 0.7  # calibrated max probability below this: "not sure"
NEAREST_BEYOND = 8.2  # Euclidean distance over the 784 pixels (each 0..1) to the nearest of the
# HELD_OUT digits: the 99th percentile of real digits' (choice split), 1 % of them lie further
# Shape limits, beyond the extremes of the 60,000 MNIST training digits (28×28, ink ≥ 50 %):
THICK_FROM = 5  # ink surviving this many 3×3 erosions; MNIST's thickest digit survives 4
FLAT_BELOW = 0.45  # bounding-box height / width; 7 MNIST digits (0.012 %) are below, none < 0.4

_T_RANGE = (0.05, 20.0)  # temperatures searched
_MIN_FIT = 500  # fewest held-out digits a temperature is fitted on


def softmax_t(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax(z / T) in float64: (n, k) logits → (n, k) probabilities."""
    z = np.asarray(logits, dtype=np.float64) / temperature  # (n, k)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return p


def _nll(logits: np.ndarray, labels: np.ndarray, beta: float) -> float:
    """Mean cross-entropy of softmax(β·z) against labels."""
    z = beta * logits  # (n, k)
    top = z.max(axis=1)
    log_sum = top + np.log(np.exp(z - top[:, None]).sum(axis=1))  # (n,)
    return float(np.mean(log_sum - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the cross-entropy of softmax(logits / T) (golden-section search).

    The cross-entropy is convex in β = 1/T, so a 1-D search on β finds the optimum; float64.
    """
    z = np.asarray(logits, dtype=np.float64)  # (n, k)
    y = np.asarray(labels).astype(np.intp)  # (n,)
    if z.ndim != 2 or y.shape != (len(z),) or len(z) == 0:
        raise ValueError(f"need logits (n, k) and labels (n,), got {z.shape} and {y.shape}")
    lo, hi = 1 / _T_RANGE[1], 1 / _T_RANGE[0]  # β range
    g = (np.sqrt(5) - 1) / 2
    a, b = lo + (1 - g) * (hi - lo), lo + g * (hi - lo)
    fa, fb = _nll(z, y, a), _nll(z, y, b)
    while hi - lo > 1e-6 * hi:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - g) * (hi - lo)
            fa = _nll(z, y, a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = _nll(z, y, b)
    return float(2 / (lo + hi))


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 15
) -> float:
    """ECE: Σ_bins (share of images) · |accuracy − mean confidence|, equal-width confidence bins."""
    p = np.asarray(probabilities, dtype=np.float64)  # (n, k)
    confidence = p.max(axis=1)  # (n,)
    correct = p.argmax(axis=1) == np.asarray(labels)  # (n,)
    bins = np.minimum((confidence * n_bins).astype(np.intp), n_bins - 1)  # (n,)
    gap = np.bincount(bins, correct - confidence, minlength=n_bins)  # Σ (correct − confidence)
    return float(np.abs(gap).sum() / max(len(p), 1))


def shape_features(images: np.ndarray) -> np.ndarray:
    """(n, 784) or (n, 28, 28) uint8 → (n, 2) float: [thickness, flatness].

    thickness: how many 3×3 erosions the ink (pixels ≥ 128) survives; flatness: the height of its
    bounding box over its width (0 for no ink).
    """
    mask: np.ndarray = np.asarray(images).reshape(-1, 28, 28) >= 128  # (n, 28, 28)
    n = len(mask)
    thickness = np.zeros(n)
    cur = mask
    for k in range(1, 15):
        p = np.pad(cur, ((0, 0), (1, 1), (1, 1)))  # (n, 30, 30)
        cur = np.logical_and.reduce(
            [p[:, dy : dy + 28, dx : dx + 28] for dy in range(3) for dx in range(3)]
        )
        alive = cur.any(axis=(1, 2))
        if not alive.any():
            break
        thickness[alive] = k
    rows = np.any(mask, axis=2)  # (n, 28)
    cols = np.any(mask, axis=1)  # (n, 28)
    height = np.where(rows.any(axis=1), 28 - rows[:, ::-1].argmax(axis=1) - rows.argmax(axis=1), 0)
    width = np.where(cols.any(axis=1), 28 - cols[:, ::-1].argmax(axis=1) - cols.argmax(axis=1), 0)
    return np.stack([thickness, height / np.maximum(width, 1)], axis=1)


def model_digest(net: Network) -> str:
    """A short hash of the output layer's weights: changes whenever the model does."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.ascontiguousarray(net.dense[-1].W).tobytes())
    h.update(np.ascontiguousarray(net.dense[-1].b).tobytes())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Judgement:
    """What to tell the user about a batch of drawings."""

    probabilities: np.ndarray  # (n, 10) calibrated
    verdict: np.ndarray  # (n,) str: "digit" | "unsure" | "not_digit"
    reason: np.ndarray  # (n,) str: "", "unsure", "block", "flat", "far"

    def message(self, i: int = 0) -> str:
        """One short sentence for drawing i ("" for a confident digit)."""
        reason = str(self.reason[i])
        if reason == "unsure":
            top = np.argsort(self.probabilities[i])[::-1]
            first, second = int(top[0]), int(top[1])
            if self.probabilities[i, second] < 0.1:
                return f"Not sure — it might be a {first}"
            return f"Not sure — it might be a {first} or a {second}"
        return {
            "block": "That doesn't look like a digit — it is a filled shape",
            "flat": "That doesn't look like a digit — it is much wider than high",
            "far": "That doesn't look like a digit",
        }.get(reason, "")


@dataclass(frozen=True, eq=False)
class Calibration:
    """One model's temperature and the real digits a drawing is compared with.

    `Calibration()` is the uncalibrated default: T = 1, no distance test (shape tests still apply).
    """

    temperature: float = 1.0
    reference: np.ndarray | None = None  # (HELD_OUT, 784) float32 held-out digits in [0, 1]

    @classmethod
    def fit(cls, net: Network, X: np.ndarray, y: np.ndarray) -> Calibration:
        """Fit T on held-out labelled digits X (n, 784) uint8, y (n,); keep X as the reference.

        Fewer than `_MIN_FIT` digits say too little (a model right on all of them would get
        T → 0): `Calibration()`. `NEAREST_BEYOND` was measured against `HELD_OUT` reference
        digits; with fewer, every distance is larger, so the distance test is left out.
        """
        y = np.asarray(y).astype(np.intp)
        if len(y) < _MIN_FIT:
            return cls()
        temperature = fit_temperature(net.forward(X), y)
        reference = np.asarray(X, dtype=np.float32) / 255 if len(y) >= HELD_OUT else None
        return cls(temperature, reference)

    def nearest(self, images: np.ndarray) -> np.ndarray:
        """Euclidean distance (n,) from each image (n, 784) uint8 to its nearest reference digit."""
        if self.reference is None:
            return np.zeros(len(images))
        x = np.asarray(images, dtype=np.float32).reshape(-1, 784) / 255  # (n, 784)
        R = self.reference  # (m, 784)
        d2 = (R * R).sum(axis=1)[None, :] - 2 * x @ R.T  # (n, m), up to + ‖x‖²
        d2 += (x * x).sum(axis=1)[:, None]
        distance: np.ndarray = np.sqrt(np.maximum(d2.min(axis=1), 0.0)).astype(np.float64)
        return distance

    def judge(
        self,
        net: Network,
        images: np.ndarray,
        unsure_below: float = UNSURE_BELOW,
        nearest_beyond: float = NEAREST_BEYOND,
    ) -> Judgement:
        """Calibrated probabilities and a verdict for MNIST-style images (n, 784) uint8."""
        X = np.asarray(images, dtype=np.uint8).reshape(-1, 784)
        p = softmax_t(net.forward(X), self.temperature)  # (n, 10)
        features = shape_features(X)  # (n, 2)
        reason = np.full(len(X), "", dtype=object)
        reason[p.max(axis=1) < unsure_below] = "unsure"
        reason[self.nearest(X) > nearest_beyond] = "far"
        reason[features[:, 1] < FLAT_BELOW] = "flat"
        reason[features[:, 0] >= THICK_FROM] = "block"
        verdict = np.where(reason == "unsure", "unsure", "not_digit").astype(object)
        verdict[reason == ""] = "digit"
        return Judgement(p, verdict, reason)
