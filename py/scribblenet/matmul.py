"""The matrix-product seam: every product the network takes goes through a backend.

NumPy is the default; in the browser a WebAssembly SIMD kernel can be plugged in with
`Network.set_backend`, since NumPy under Pyodide has no optimised BLAS.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MatmulBackend", "NumpyBackend"]


class MatmulBackend:
    """The three products forward and backward passes need."""

    name = "abstract"

    def mm(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A @ B: (n, k) @ (k, m) -> (n, m)."""
        raise NotImplementedError

    def mm_tn(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Aᵀ @ B: (k, n)ᵀ @ (k, m) -> (n, m); the weight gradient Xᵀ·dZ."""
        raise NotImplementedError

    def mm_nt(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A @ Bᵀ: (n, k) @ (m, k)ᵀ -> (n, m); the input gradient dZ·Wᵀ."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NumpyBackend(MatmulBackend):
    """Plain `np.matmul`: BLAS natively, a reference loop under Pyodide."""

    name = "numpy"

    def mm(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A @ B."""
        return np.matmul(A, B, out=out)

    def mm_tn(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Aᵀ @ B."""
        return np.matmul(A.T, B, out=out)

    def mm_nt(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A @ Bᵀ."""
        return np.matmul(A, B.T, out=out)
