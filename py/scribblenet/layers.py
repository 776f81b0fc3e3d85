"""The fully connected layer: Z = X·W + b, with its gradients."""

from __future__ import annotations

import numpy as np

from .initializers import init_weights
from .matmul import MatmulBackend, NumpyBackend

__all__ = ["Dense"]


class Dense:
    """An affine layer owning W (in, out), b (out,), their gradients and its cached input.

    rng=None leaves W at zero, for weights that are loaded next (no random numbers drawn).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        rng: np.random.Generator | None,
        init: str = "he",
        dtype: str | np.dtype = "float32",
        backend: MatmulBackend | None = None,
    ):
        if rng is None:
            self.W = np.zeros((n_in, n_out), dtype=dtype)  # (in, out)
        else:
            self.W = init_weights(init, n_in, n_out, rng, np.dtype(dtype))  # (in, out)
        self.b = np.zeros(n_out, dtype=dtype)  # (out,)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.backend = backend or NumpyBackend()
        self._out: dict[str, np.ndarray] = {}  # reused buffers: no allocation per batch

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        buf = self._out.get(name)
        if buf is None or buf.shape != shape:
            buf = self._out[name] = np.empty(shape, dtype=self.W.dtype)
        return buf

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """Z = X·W + b for X (n, in); caches X for `backward` when training."""
        if not train:
            return self.backend.mm(X, self.W, bias=self.b)  # (n, out), fresh: the caller's
        self.X = X
        Z = self._buffer("Z", (len(X), self.W.shape[1]))  # (n, out), reused
        return self.backend.mm(X, self.W, out=Z, bias=self.b)

    def backward(self, dZ: np.ndarray, need_dX: bool = True) -> np.ndarray | None:
        """Store dW = Xᵀ·dZ and db = Σ dZ; return dX = dZ·Wᵀ (n, in) unless not needed."""
        self.backend.mm_tn(self.X, dZ, out=self.dW)  # (in, out)
        self.backend.sum_rows(dZ, out=self.db)  # (out,)
        if not need_dX:
            return None
        return self.backend.mm_nt(dZ, self.W, out=self._buffer("dX", self.X.shape))  # (n, in)

    @property
    def params(self) -> tuple[np.ndarray, np.ndarray]:
        """(W, b)."""
        return self.W, self.b

    @property
    def grads(self) -> tuple[np.ndarray, np.ndarray]:
        """(dW, db), matching `params`."""
        return self.dW, self.db

    def __repr__(self) -> str:
        n_in, n_out = self.W.shape
        return f"Dense({n_in}, {n_out}, dtype={self.W.dtype})"
