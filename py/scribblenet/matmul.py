"""The compute seam: every matrix product, and the conv layers' element-wise passes.

NumPy is the default; in the browser a WebAssembly SIMD kernel can be plugged in with
`Network.set_backend`, since NumPy under Pyodide has no optimised BLAS and slow element-wise
loops. The base class holds the NumPy code of the element-wise passes (im2col, col2im,
max-pool, ReLU): a backend replaces the ones it can run faster and must return the same
values, bit for bit.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["MatmulBackend", "NumpyBackend"]


def _pool_windows(X: np.ndarray, size: int) -> np.ndarray:
    """X (n, h, w, c) as a view (n, h // size, size, w // size, size, c) of its whole windows."""
    n, h, w, c = X.shape
    oh, ow = h // size, w // size
    # Splitting an axis never copies, so writing into this view writes into X.
    return X[:, : oh * size, : ow * size].reshape(n, oh, size, ow, size, c)


class MatmulBackend:
    """The three products forward and backward passes need, and the conv layers' NumPy passes."""

    name = "abstract"

    def mm(
        self,
        A: np.ndarray,
        B: np.ndarray,
        out: np.ndarray | None = None,
        bias: np.ndarray | None = None,
    ) -> np.ndarray:
        """A @ B (+ bias): (n, k) @ (k, m) (+ (m,)) -> (n, m)."""
        raise NotImplementedError

    def mm_tn(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Aᵀ @ B: (k, n)ᵀ @ (k, m) -> (n, m); the weight gradient Xᵀ·dZ."""
        raise NotImplementedError

    def mm_nt(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A @ Bᵀ: (n, k) @ (m, k)ᵀ -> (n, m); the input gradient dZ·Wᵀ."""
        raise NotImplementedError

    def sum_rows(self, A: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Σ of the rows of A (n, m) into out (m,), as np.sum(A, axis=0): a bias gradient."""
        sums: np.ndarray = np.sum(A, axis=0, out=out)
        return sums

    def im2col(self, X: np.ndarray, pad: int, out: np.ndarray) -> np.ndarray:
        """Every k×k patch of X, zero-padded by `pad` above and left, into `out`.

        Parameters
        ----------
        X : (n, h, w, c) inputs.
        pad : zero rows above (and columns left of) X; those below and right follow from
            out's shape: oh = h + pad + pad_below − k + 1.
        out : (n, oh, ow, k, k, c) patches, written: out[b, y, x, i, j] = X[b, y+i−pad, x+j−pad].

        Returns
        -------
        out.
        """
        n, oh, ow, k, _, c = out.shape
        _, h, w, _ = X.shape
        if pad or oh + k - 1 != h or ow + k - 1 != w:
            Xp = np.zeros((n, oh + k - 1, ow + k - 1, c), dtype=out.dtype)  # 0 around X
            Xp[:, pad : pad + h, pad : pad + w] = X[:, : oh + k - 1 - pad, : ow + k - 1 - pad]
            X = Xp
        if c == 1:
            # k² slice copies, each with a long inner loop over ow: measured 1.1× (native) to
            # 3× (Pyodide) faster here than the window view below, whose inner loop is k long.
            for i in range(k):
                for j in range(k):
                    out[:, :, :, i, j] = X[:, i : i + oh, j : j + ow]  # (n, oh, ow, 1)
        else:
            # One strided copy from a window view: 3.5–8× faster than k² slice copies.
            windows = sliding_window_view(X, (k, k), axis=(1, 2))  # (n, oh, ow, c, k, k)
            np.copyto(out, windows.transpose(0, 1, 2, 4, 5, 3))
        return out

    def col2im(self, dpatches: np.ndarray, pad: int, out: np.ndarray) -> np.ndarray:
        """The gradient of `im2col`: each pixel of `out` gets the sum of its patch entries.

        Parameters
        ----------
        dpatches : (n, oh, ow, k, k, c) gradient of the patches.
        pad : as given to `im2col`.
        out : (n, h, w, c), overwritten; each element is 0 plus its entries added in (i, j)
            row-major order (kernels must keep that order to give the same float32 sums).

        Returns
        -------
        out.
        """
        n, oh, ow, k, _, c = dpatches.shape
        _, h, w, _ = out.shape
        padded = pad or oh + k - 1 != h or ow + k - 1 != w
        dXp = np.zeros((n, oh + k - 1, ow + k - 1, c), out.dtype) if padded else out
        if not padded:
            dXp.fill(0)
        # Each patch sends its gradient back to the pixels it was copied from. A loop over the
        # k² offsets adds whole slices; np.add.at would be far slower (most in Pyodide).
        for i in range(k):
            for j in range(k):
                dXp[:, i : i + oh, j : j + ow] += dpatches[:, :, :, i, j]  # (n, oh, ow, c)
        if padded:  # the padding's gradient is dropped
            rows, cols = min(h, oh + k - 1 - pad), min(w, ow + k - 1 - pad)
            out.fill(0)
            out[:, :rows, :cols] = dXp[:, pad : pad + rows, pad : pad + cols]
        return out

    def maxpool(
        self, X: np.ndarray, size: int, out: np.ndarray, arg: np.ndarray | None = None
    ) -> np.ndarray:
        """Max of each whole size×size window of X (n, h, w, c) into out (n, h//size, w//size, c).

        `arg` (unsigned integers, out's shape, wide enough for size²), when given, gets each
        window's argmax as the offset i·size + j; on ties the first in row-major order. A NaN
        in a window wins the max.
        """
        windows = _pool_windows(X, size)  # (n, oh, s, ow, s, c)
        # s² element-wise maxima of strided slices: several times faster than
        # windows.max(axis=(2, 4)), which reduces over two non-adjacent axes.
        np.copyto(out, windows[:, :, 0, :, 0])
        better = None if arg is None else np.empty(out.shape, arg.dtype)  # (n, oh, ow, c)
        if arg is not None:
            arg.fill(0)
        for t in range(1, size * size):
            V = windows[:, :, t // size, :, t % size]  # (n, oh, ow, c), offset t of every window
            if arg is not None and better is not None:
                # Strictly greater, so a tie keeps the earlier offset; t only grows, so the
                # max of t·better is the last strict improvement, without a slow masked copy.
                np.greater(V, out, out=better)
                np.maximum(arg, np.multiply(better, t, out=better), out=arg)
            np.maximum(out, V, out=out)
        return out

    def maxpool_backward(
        self, dY: np.ndarray, arg: np.ndarray, size: int, out: np.ndarray
    ) -> np.ndarray:
        """out (n, h, w, c): dY (n, oh, ow, c) at each window's argmax `arg`, 0 elsewhere."""
        dwindows = _pool_windows(out, size)  # (n, oh, s, ow, s, c), a view into out
        hit = np.empty(arg.shape, np.bool_)  # (n, oh, ow, c)
        for t in range(size * size):
            np.equal(arg, t, out=hit)
            np.multiply(dY, hit, out=dwindows[:, :, t // size, :, t % size])
        _, h, w, _ = out.shape
        # The dropped remainder: zeroed every time, as callers may scale dX in place.
        out[:, (h // size) * size :] = 0
        out[:, :, (w // size) * size :] = 0
        return out

    def relu(self, Z: np.ndarray) -> np.ndarray:
        """max(Z, 0) in place (a −0 or NaN in Z is kept, as np.maximum keeps it); returns Z."""
        out: np.ndarray = np.maximum(Z, 0, out=Z)
        return out

    def relu_backward(self, dA: np.ndarray, A: np.ndarray) -> np.ndarray:
        """dA · (A > 0) in place, A being ReLU's output; returns dA."""
        dA *= A > 0
        return dA

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NumpyBackend(MatmulBackend):
    """Plain `np.matmul`: BLAS natively, a reference loop under Pyodide."""

    name = "numpy"

    def mm(
        self,
        A: np.ndarray,
        B: np.ndarray,
        out: np.ndarray | None = None,
        bias: np.ndarray | None = None,
    ) -> np.ndarray:
        """A @ B (+ bias)."""
        Z = np.matmul(A, B, out=out)  # (n, m)
        if bias is not None:
            Z += bias
        return Z

    def mm_tn(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Aᵀ @ B."""
        return np.matmul(A.T, B, out=out)

    def mm_nt(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A @ Bᵀ."""
        return np.matmul(A, B.T, out=out)
