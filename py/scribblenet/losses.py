"""Softmax and cross-entropy, fused so the gradient is simply (P − Y) / n."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["SoftmaxCrossEntropy", "log_softmax", "one_hot", "softmax"]


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of logits Z (n, k); subtracting each row's max avoids overflow."""
    Zs = Z - Z.max(axis=1, keepdims=True)  # (n, k), every row's max is 0
    logP: np.ndarray = Zs - np.log(np.exp(Zs).sum(axis=1, keepdims=True))
    return logP


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits Z (n, k): probabilities that sum to 1 per row."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))  # (n, k)
    P: np.ndarray = E / E.sum(axis=1, keepdims=True)
    return P


def one_hot(y: npt.ArrayLike, n_classes: int = 10, dtype: npt.DTypeLike = "float32") -> np.ndarray:
    """Integer labels y (n,) → one-hot rows (n, n_classes)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-D array, got shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}), got {y.min()}..{y.max()}")
    Y = np.zeros((len(y), n_classes), dtype=dtype)
    Y[np.arange(len(y)), y.astype(np.intp)] = 1
    return Y


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(Z) against labels; `backward` gives dL/dZ."""

    def forward(self, Z: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy −(1/n) Σ log p(true class).

        Parameters
        ----------
        Z : (n, k) logits.
        y : (n,) integer labels, or (n, k) target distributions (one-hot rows).

        Returns
        -------
        The cost as a Python float (the true mean, not divided by k).
        """
        n = len(Z)
        if len(y) != n:
            raise ValueError(f"got {n} predictions but {len(y)} labels")
        logP = log_softmax(Z)  # (n, k)
        self.P: np.ndarray = np.exp(logP)  # (n, k); overwritten by backward
        self.predicted = Z.argmax(axis=1)  # (n,), kept because backward reuses P
        if y.ndim == 1:
            self.y = y.astype(np.intp, copy=False)
            return float(-logP[np.arange(n), self.y].mean())
        if y.shape != Z.shape:
            raise ValueError(f"targets of shape {y.shape} do not match logits {Z.shape}")
        self.y = y
        return float(-(y * logP).sum() / n)

    def backward(self) -> np.ndarray:
        """dL/dZ = (P − Y) / n, shape (n, k)."""
        dZ = self.P  # reuse: P is not needed after this
        n = len(dZ)
        if self.y.ndim == 1:
            dZ[np.arange(n), self.y] -= 1
        else:
            dZ -= self.y
        dZ /= n
        return dZ

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()"
