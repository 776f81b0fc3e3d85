"""Matrix products on the WebAssembly SIMD kernel of ``web/gemm``, for NumPy under Pyodide.

NumPy in Pyodide has no optimised BLAS. ``web/gemm/gemm.js`` instantiates a hand-written
simd128 GEMM on Pyodide's own heap and registers it as the JS module ``scribblenet_gemm``;
this backend hands it the data pointers of float32 arrays, so products run in place with no
copies. Anything the kernel does not cover (other dtypes, strided or overlapping arrays, empty
shapes) falls back to NumPy, so results never depend on whether the kernel is there.

The same module also fuses Adam's update (`WasmBackend.adam_update`, bit-identical to
``optimizers.Adam._update``): the Trainer hands it to Adam as its ``fused`` hook. And it runs
the conv layers' element-wise passes (``web/gemm/conv_ops.c``: im2col, col2im, max-pool and
ReLU, forward and backward, and the bias gradient's row sums), bit-identical to
`MatmulBackend`'s NumPy code, which stays the fallback for what they cannot take and for a
gemm.wasm built before them.

Importable natively: the JS module is only looked up when a backend is created.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from scribblenet.matmul import MatmulBackend, NumpyBackend

__all__ = ["CONV_KERNELS", "JS_MODULE", "WasmBackend", "load_wasm_backend", "self_test"]

JS_MODULE = "scribblenet_gemm"  # must match JS_MODULE in web/gemm/gemm.js

_F32 = np.dtype(np.float32)
_U8 = np.dtype(np.uint8)
_INT32_MAX = 2**31 - 1
# The exports of web/gemm/conv_ops.c; a gemm.wasm older than them has none of them.
CONV_KERNELS = ("im2col", "col2im", "maxpool_forward", "maxpool_backward", "relu_forward",
                "relu_backward", "sum_rows")  # fmt: skip


def _layout(X: np.ndarray) -> tuple[str, int] | None:
    """("n", ld) if X is row-major, ("t", ld) if it is the transpose of a row-major array."""
    rows, cols = X.shape
    s0, s1 = X.strides
    # Strides of length-1 axes are meaningless in NumPy; treat them as packed.
    if rows <= 1:
        s0 = 4 * cols
    if cols <= 1:
        s1 = 4
    if s1 == 4 and s0 % 4 == 0 and s0 >= 4 * cols:
        return "n", max(s0 // 4, 1)
    if rows <= 1:
        s0 = 4
    if cols <= 1:
        s1 = 4 * rows
    if s0 == 4 and s1 % 4 == 0 and s1 >= 4 * rows:
        return "t", max(s1 // 4, 1)
    return None


def _address(X: np.ndarray) -> int:
    address: int = X.__array_interface__["data"][0]
    return address


def _fits(outputs: tuple[np.ndarray, ...], inputs: tuple[np.ndarray, ...]) -> bool:
    """True if all are non-empty C-contiguous arrays, the outputs writeable and apart from all."""
    arrays = outputs + inputs
    for a in arrays:
        if not (isinstance(a, np.ndarray) and a.flags.c_contiguous and a.size > 0):
            return False
        if a.size > _INT32_MAX // 4:
            return False
    if not all(out.flags.writeable for out in outputs):
        return False
    return not any(
        np.may_share_memory(out, other)
        for i, out in enumerate(outputs)
        for other in arrays[i + 1 :]
    )


class WasmBackend(MatmulBackend):
    """Float32 products on the WebAssembly SIMD kernel, NumPy for everything else."""

    name = "wasm-simd"

    def __init__(self, kernel: Any = None, min_work: int = 2048) -> None:
        """Wrap the registered kernel module (or any object with the same three functions).

        Parameters
        ----------
        kernel : the ``scribblenet_gemm`` JS module, imported when None; tests pass a stand-in
            with ``gemm_nn``, ``gemm_tn``, ``gemm_nt`` taking
            ``(M, N, K, A, lda, B, ldb, C, ldc, beta, bias)`` with byte addresses,
            optionally ``adam_update`` taking
            ``(n, p, g, m, v, alpha, beta1, beta2, 1 - beta1, 1 - beta2, eps_hat)``, and
            optionally any of `CONV_KERNELS` with the signatures of web/gemm/conv_ops.c.
        min_work : products with fewer multiply-adds (M·N·K) go to NumPy, where the call
            into JavaScript would cost more than it saves.
        """
        if kernel is None:
            kernel = importlib.import_module(JS_MODULE)  # ModuleNotFoundError natively
        self._kernels = {"nn": kernel.gemm_nn, "tn": kernel.gemm_tn, "nt": kernel.gemm_nt}
        # Absent from a gemm.wasm older than the Adam kernel (e.g. a stale browser cache).
        adam = getattr(kernel, "adam_update", None)
        self._adam = adam if callable(adam) else None
        # Absent from a gemm.wasm older than conv_ops.c: those passes then run on NumPy.
        ops = {name: getattr(kernel, name, None) for name in CONV_KERNELS}
        self._ops = {name: op for name, op in ops.items() if callable(op)}
        self.relaxed = bool(getattr(kernel, "relaxed", False))
        self.min_work = int(min_work)
        self.calls = 0  # products the kernel ran (the rest went to NumPy)
        self.adam_calls = 0  # Adam updates the kernel ran
        self.op_calls = 0  # conv passes (im2col, col2im, max-pool, ReLU) the kernel ran

    def __repr__(self) -> str:
        return f"WasmBackend(relaxed={self.relaxed}, min_work={self.min_work})"

    def mm(
        self,
        A: np.ndarray,
        B: np.ndarray,
        out: np.ndarray | None = None,
        bias: np.ndarray | None = None,
    ) -> np.ndarray:
        """A @ B (+ bias): (M, K) @ (K, N) (+ (N,)) -> (M, N); the bias added by the kernel."""
        return self._product(A, B, out, bias)

    def mm_tn(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Aᵀ @ B: (K, M)ᵀ @ (K, N) -> (M, N); the weight gradient Xᵀ·dZ."""
        return self._product(A.T, B, out)

    def mm_nt(self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """A @ Bᵀ: (M, K) @ (N, K)ᵀ -> (M, N); the input gradient dZ·Wᵀ."""
        return self._product(A, B.T, out)

    def adam_update(
        self,
        p: np.ndarray,
        g: np.ndarray,
        m: np.ndarray,
        v: np.ndarray,
        alpha: float,
        beta1: float,
        beta2: float,
        eps_hat: float,
    ) -> bool:
        """One fused Adam step in place on p, m, v; False (nothing done) if the kernel can't.

        Same float32 arithmetic, in the same order, as ``optimizers.Adam._update``:
        ``m = β1·m + (1−β1)·g``, ``v = β2·v + (1−β2)·g²``, ``p -= α·m / (√v + ε̂)``.

        Parameters
        ----------
        p, g, m, v : parameter, gradient, first and second moments; any one shape, all the
            same size, C-contiguous float32 (p, m, v writeable, g not overlapping them).
        alpha, beta1, beta2, eps_hat : bias-corrected step size, decay rates, bias-corrected ε.

        Returns
        -------
        done : True when the kernel updated p, m and v; False when the caller must use NumPy.
        """
        kernel = self._adam
        if kernel is None:
            return False
        arrays = (p, g, m, v)
        n = p.size if isinstance(p, np.ndarray) else 0
        if n == 0 or n > _INT32_MAX // 4:
            return False
        for a in arrays:
            if not (
                isinstance(a, np.ndarray)
                and a.dtype == _F32
                and a.size == n
                and a.flags.c_contiguous
            ):
                return False
        if not (p.flags.writeable and m.flags.writeable and v.flags.writeable):
            return False
        # Element i reads and writes only index i of each array, so exact aliasing would be
        # harmless, but partial overlap would not be; the optimiser never shares them anyway.
        for i, a in enumerate(arrays):
            for b in arrays[i + 1 :]:
                if np.may_share_memory(a, b):
                    return False
        # 1 − β in double, rounded to float32 by the call, as NumPy rounds `g * (1 - β)`.
        kernel(n, _address(p), _address(g), _address(m), _address(v), alpha, beta1, beta2,
               1 - beta1, 1 - beta2, eps_hat)  # fmt: skip
        self.adam_calls += 1
        return True

    def sum_rows(self, A: np.ndarray, out: np.ndarray) -> np.ndarray:
        """`MatmulBackend.sum_rows` on the kernel, in NumPy's order (row by row) for m >= 2."""
        op = self._ops.get("sum_rows")
        arrays = isinstance(A, np.ndarray) and isinstance(out, np.ndarray)
        # One column is a contiguous reduction, which NumPy sums pairwise: left to it.
        if op is None or not arrays or A.ndim != 2 or A.shape[1] < 2 or out.shape != A.shape[1:]:
            return super().sum_rows(A, out)
        if A.dtype != _F32 or out.dtype != _F32 or not _fits((out,), (A,)):
            return super().sum_rows(A, out)
        op(A.shape[0], A.shape[1], _address(A), _address(out))
        self.op_calls += 1
        return out

    def im2col(self, X: np.ndarray, pad: int, out: np.ndarray) -> np.ndarray:
        """`MatmulBackend.im2col` on the kernel for float32 C-contiguous X and out."""
        op = self._ops.get("im2col")
        if op is None or not self._conv_shapes(X, out, pad) or not _fits((out,), (X,)):
            return super().im2col(X, pad, out)
        n, h, w, c = X.shape
        _, oh, ow, k, _, _ = out.shape  # (n, oh, ow, k, k, c)
        op(n, h, w, c, k, pad, pad, oh, ow, _address(X), _address(out))
        self.op_calls += 1
        return out

    def col2im(self, dpatches: np.ndarray, pad: int, out: np.ndarray) -> np.ndarray:
        """`MatmulBackend.col2im` on the kernel, in the same order, so to the same sums."""
        op = self._ops.get("col2im")
        if op is None or not self._conv_shapes(out, dpatches, pad):
            return super().col2im(dpatches, pad, out)
        if not _fits((out,), (dpatches,)):
            return super().col2im(dpatches, pad, out)
        n, h, w, c = out.shape
        _, oh, ow, k, _, _ = dpatches.shape  # (n, oh, ow, k, k, c)
        op(n, h, w, c, k, pad, pad, oh, ow, _address(dpatches), _address(out))
        self.op_calls += 1
        return out

    def maxpool(
        self, X: np.ndarray, size: int, out: np.ndarray, arg: np.ndarray | None = None
    ) -> np.ndarray:
        """`MatmulBackend.maxpool` on the kernel for float32 arrays and a uint8 `arg`."""
        op = self._ops.get("maxpool_forward")
        outputs = (out,) if arg is None else (out, arg)
        if op is None or not self._pool_shapes(X, size, out, arg) or not _fits(outputs, (X,)):
            return super().maxpool(X, size, out, arg)
        n, h, w, c = X.shape
        op(n, h, w, c, size, _address(X), _address(out), 0 if arg is None else _address(arg))
        self.op_calls += 1
        return out

    def maxpool_backward(
        self, dY: np.ndarray, arg: np.ndarray, size: int, out: np.ndarray
    ) -> np.ndarray:
        """`MatmulBackend.maxpool_backward` on the kernel for float32 arrays and a uint8 arg."""
        op = self._ops.get("maxpool_backward")
        if op is None or not self._pool_shapes(out, size, dY, arg):
            return super().maxpool_backward(dY, arg, size, out)
        if not _fits((out,), (dY, arg)):
            return super().maxpool_backward(dY, arg, size, out)
        n, h, w, c = out.shape
        op(n, h, w, c, size, _address(dY), _address(arg), _address(out))
        self.op_calls += 1
        return out

    def relu(self, Z: np.ndarray) -> np.ndarray:
        """`MatmulBackend.relu` on the kernel for a float32 C-contiguous Z."""
        op = self._ops.get("relu_forward")
        if op is None or not isinstance(Z, np.ndarray) or Z.dtype != _F32 or not _fits((Z,), ()):
            return super().relu(Z)
        op(Z.size, _address(Z))
        self.op_calls += 1
        return Z

    def relu_backward(self, dA: np.ndarray, A: np.ndarray) -> np.ndarray:
        """`MatmulBackend.relu_backward` on the kernel for float32 arrays of one shape."""
        op = self._ops.get("relu_backward")
        same = isinstance(dA, np.ndarray) and isinstance(A, np.ndarray) and dA.shape == A.shape
        if op is None or not same or dA.dtype != _F32 or A.dtype != _F32:
            return super().relu_backward(dA, A)
        if not _fits((dA,), (A,)):
            return super().relu_backward(dA, A)
        op(dA.size, _address(dA), _address(A))
        self.op_calls += 1
        return dA

    @staticmethod
    def _conv_shapes(X: np.ndarray, patches: np.ndarray, pad: int) -> bool:
        """True for float32 X (n, h, w, c) and patches (n, oh, ow, k, k, c) the kernel takes."""
        if not (isinstance(X, np.ndarray) and isinstance(patches, np.ndarray)):
            return False
        if X.ndim != 4 or patches.ndim != 6 or X.dtype != _F32 or patches.dtype != _F32:
            return False
        n, _, _, k, k2, c = patches.shape
        return (n, c) == (X.shape[0], X.shape[3]) and k == k2 and 0 <= pad < k

    @staticmethod
    def _pool_shapes(X: np.ndarray, size: int, Y: np.ndarray, arg: np.ndarray | None) -> bool:
        """True for float32 X (n, h, w, c), Y (n, h // size, w // size, c), uint8 arg like Y."""
        arrays = (X, Y) if arg is None else (X, Y, arg)
        if not all(isinstance(a, np.ndarray) and a.ndim == 4 for a in arrays):
            return False
        n, h, w, c = X.shape
        if X.dtype != _F32 or Y.dtype != _F32 or not 1 <= size <= 16:
            return False
        if arg is not None and (arg.dtype != _U8 or arg.shape != Y.shape):
            return False
        return Y.shape == (n, h // size, w // size, c)

    def _product(
        self,
        A: np.ndarray,
        B: np.ndarray,
        out: np.ndarray | None,
        bias: np.ndarray | None = None,
    ) -> np.ndarray:
        """A @ B (+ bias) for views A (M, K) and B (K, N), on the kernel when it can take them."""
        plan = self._plan(A, B, out)
        if plan is None:
            Z = np.matmul(A, B, out=out)  # (M, N)
            if bias is not None:
                Z += bias
            return Z
        name, lda, ldb, ldc = plan
        if out is None:
            out = np.empty((A.shape[0], B.shape[1]), dtype=_F32)  # (M, N)
        M, K = A.shape
        N = B.shape[1]
        fused = bias is not None and self._fusable(bias, N, out)
        b = _address(bias) if fused and bias is not None else 0  # 0: no bias
        self._kernels[name](M, N, K, _address(A), lda, _address(B), ldb, _address(out), ldc, 0.0, b)
        if bias is not None and not fused:
            out += bias
        self.calls += 1
        return out

    @staticmethod
    def _fusable(bias: np.ndarray, N: int, out: np.ndarray) -> bool:
        """True if the kernel can add `bias` itself: N contiguous float32 apart from out."""
        if not (isinstance(bias, np.ndarray) and bias.dtype == _F32 and bias.shape == (N,)):
            return False
        return bias.flags.c_contiguous and not np.may_share_memory(bias, out)

    def _plan(
        self, A: np.ndarray, B: np.ndarray, out: np.ndarray | None
    ) -> tuple[str, int, int, int] | None:
        """(kernel name, lda, ldb, ldc), or None when NumPy must do this product."""
        if not (isinstance(A, np.ndarray) and isinstance(B, np.ndarray)):
            return None
        if A.ndim != 2 or B.ndim != 2 or A.dtype != _F32 or B.dtype != _F32:
            return None
        M, K = A.shape
        K2, N = B.shape
        # Mismatched and empty shapes go to NumPy too, which raises or returns as usual.
        work = M * N * K
        if K != K2 or work == 0 or self.min_work > work or max(M, N, K) > _INT32_MAX // 4:
            return None
        a, b = _layout(A), _layout(B)
        # A stored (K, M) with A = stored.T is the kernel's "tn"; B stored (N, K) is "nt".
        # Aᵀ @ Bᵀ ("tt") is not a product the network takes.
        if a is None or b is None or a[0] + b[0] == "tt":
            return None
        ldc = N
        if out is not None:
            if not isinstance(out, np.ndarray) or out.dtype != _F32 or out.shape != (M, N):
                return None
            c = _layout(out)
            if c is None or c[0] != "n" or not out.flags.writeable:
                return None
            # The kernel writes C while still reading A and B: they must not overlap.
            if np.may_share_memory(out, A) or np.may_share_memory(out, B):
                return None
            ldc = c[1]
        return a[0] + b[0], a[1], b[1], ldc


def _adam_numpy(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    alpha: float,
    beta1: float,
    beta2: float,
    eps_hat: float,
) -> None:
    """Adam's update in NumPy, as ``optimizers.Adam._update`` does it (in place on p, m, v)."""
    tmp = np.multiply(g, 1 - beta1)
    m *= beta1
    m += tmp
    np.multiply(g, g, out=tmp)
    tmp *= 1 - beta2
    v *= beta2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp += eps_hat
    np.divide(m, tmp, out=tmp)
    tmp *= alpha
    p -= tmp


def _adam_self_test(backend: Any, rng: np.random.Generator) -> tuple[bool, float]:
    """(ok, max relative error) of ``backend.adam_update`` against `_adam_numpy`."""
    ok, worst = True, 0.0
    for n in (1, 3, 4, 5, 17, 130, int(rng.integers(1, 3000))):
        p, g = (rng.standard_normal(n).astype(np.float32) for _ in range(2))  # (n,)
        m = (0.1 * rng.standard_normal(n)).astype(np.float32)  # (n,)
        v = (0.01 * rng.uniform(0, 1, n)).astype(np.float32)  # (n,)
        args = (1e-3 * 0.7, 0.9, 0.999, 1e-8 * 0.3)  # alpha, beta1, beta2, eps_hat
        want_p, want_m, want_v = p.copy(), m.copy(), v.copy()
        _adam_numpy(want_p, g.copy(), want_m, want_v, *args)
        if not backend.adam_update(p, g, m, v, *args):
            return False, float("inf")
        for got, exp in zip((p, m, v), (want_p, want_m, want_v), strict=True):
            # Bit-identical is expected; allow an ulp in case an engine's sqrt/div differs.
            err = np.abs(got.astype(np.float64) - exp) / np.spacing(np.abs(exp))  # (n,) in ulps
            worst = max(worst, float(err.max()))
            ok = ok and bool(np.all(err <= 1.0))
    return ok, worst


def _conv_self_test(backend: MatmulBackend, rng: np.random.Generator) -> bool:
    """True if the backend's conv passes and row sums equal NumPy's bit for bit."""
    ref, ok = NumpyBackend(), True

    def same(got: np.ndarray, want: np.ndarray) -> bool:
        return got.shape == want.shape and bool(np.array_equal(got, want, equal_nan=True))

    # (n, h, w, c, k, pad): 1 channel, channels not a multiple of 4, "same" padding, even k.
    for n, h, w, c, k, pad in [(2, 6, 5, 1, 3, 0), (1, 7, 6, 3, 3, 1), (2, 5, 6, 5, 4, 1),
                               (1, 8, 8, 16, 5, 2), (3, 6, 7, 6, 5, 0)]:  # fmt: skip
        oh, ow = h + (k - 1 if pad else 0) - k + 1, w + (k - 1 if pad else 0) - k + 1
        X = rng.standard_normal((n, h, w, c), dtype=np.float32)  # (n, h, w, c)
        P = np.full((n, oh, ow, k, k, c), np.nan, np.float32)  # (n, oh, ow, k, k, c)
        ok = ok and same(backend.im2col(X, pad, P.copy()), ref.im2col(X, pad, P.copy()))
        dP = rng.standard_normal(P.shape, dtype=np.float32)  # (n, oh, ow, k, k, c)
        got = backend.col2im(dP, pad, np.full_like(X, np.nan))  # (n, h, w, c)
        ok = ok and same(got, ref.col2im(dP, pad, np.full_like(X, np.nan)))
    # (n, h, w, c, size): remainders dropped, 1 channel, tails, ties (rounded values).
    for n, h, w, c, size in [(2, 5, 7, 3, 2), (1, 6, 6, 16, 3), (2, 4, 5, 1, 2), (1, 9, 8, 7, 4)]:
        X = np.round(rng.standard_normal((n, h, w, c)), 1).astype(np.float32)  # (n, h, w, c)
        Y = np.empty((n, h // size, w // size, c), np.float32)  # (n, oh, ow, c)
        Y0, arg0 = Y.copy(), np.full(Y.shape, 255, np.uint8)
        arg = arg0.copy()  # (n, oh, ow, c)
        ok = ok and same(backend.maxpool(X, size, Y, arg), ref.maxpool(X, size, Y0, arg0))
        ok = ok and same(arg, arg0)
        dY = rng.standard_normal(Y.shape, dtype=np.float32)  # (n, oh, ow, c)
        got = backend.maxpool_backward(dY, arg, size, np.full_like(X, np.nan))  # (n, h, w, c)
        ok = ok and same(got, ref.maxpool_backward(dY, arg0, size, np.full_like(X, np.nan)))
    for rows, cols in [(1, 2), (5, 3), (37, 16), (130, 33)]:
        dZ = rng.standard_normal((rows, cols), dtype=np.float32)  # (rows, cols)
        want = ref.sum_rows(dZ, np.empty(cols, np.float32))  # (cols,)
        ok = ok and same(backend.sum_rows(dZ, np.full(cols, np.nan, np.float32)), want)
    for size in (1, 7, 130):
        Z = rng.standard_normal(size, dtype=np.float32)  # (size,)
        Z[::5] = 0  # ReLU's gradient at 0 is 0
        A = backend.relu(Z.copy())  # (size,)
        ok = ok and same(A, ref.relu(Z.copy()))
        dA = rng.standard_normal(size, dtype=np.float32)  # (size,)
        ok = ok and same(backend.relu_backward(dA.copy(), A), ref.relu_backward(dA.copy(), A))
    return ok


def self_test(backend: MatmulBackend, rng: np.random.Generator) -> tuple[bool, float]:
    """Compare `backend` with float64 NumPy on random shapes, odd edges included.

    A backend with a fused ``adam_update`` (the kernel's) must also match NumPy's Adam step to
    within an ulp on every element, and its conv passes (im2col, col2im, max-pool, ReLU) NumPy's
    exactly, or the whole backend fails.

    Parameters
    ----------
    backend : the backend under test (e.g. a WasmBackend).
    rng : source of the random matrices.

    Returns
    -------
    ok : True when every product is within float32 rounding of the reference.
    max_abs_err : the largest absolute difference seen.
    """
    shapes = [(1, 1, 1), (3, 17, 5), (2, 16, 1), (17, 3, 33), (5, 10, 128), (33, 31, 29)]
    m, n, k = (int(v) for v in rng.integers(1, 70, 3))  # and one random shape
    shapes += [(128, 128, 20), (64, 10, 300), (m, n, k)]
    # Tiny products would go to NumPy; lift the threshold so the kernel's edge tiles are tested.
    tunable: Any = backend  # a WasmBackend or a stand-in: its threshold is not MatmulBackend's
    min_work = getattr(tunable, "min_work", None)
    if min_work is not None:
        tunable.min_work = 0
    ok, worst = True, 0.0
    try:
        for M, N, K in shapes:
            A = rng.uniform(-1, 1, (M, K)).astype(np.float32)  # (M, K)
            B = rng.uniform(-1, 1, (K, N)).astype(np.float32)  # (K, N)
            A64, B64 = A.astype(np.float64), B.astype(np.float64)
            expected = A64 @ B64  # (M, N)
            # Float32 rounding of any summation order (FMA or not) is within K·u·|A|·|B|.
            tol = (K + 2) * 2.0**-23 * (np.abs(A64) @ np.abs(B64)) + 1e-7  # (M, N)
            for got in (
                backend.mm(A, B),
                backend.mm_tn(np.ascontiguousarray(A.T), B),
                backend.mm_nt(A, np.ascontiguousarray(B.T)),
                backend.mm(A, B, out=np.full((M, N), np.nan, dtype=np.float32)),
            ):
                err = np.abs(got.astype(np.float64) - expected)  # (M, N)
                worst = max(worst, float(err.max()))
                ok = ok and got.shape == (M, N) and bool(np.all(err <= tol))
            bias = rng.uniform(-1, 1, N).astype(np.float32)  # (N,), added by the kernel
            err = np.abs(backend.mm(A, B, bias=bias).astype(np.float64) - expected - bias)
            worst = max(worst, float(err.max()))
            ok = ok and bool(np.all(err <= tol + (K + 2) * 2.0**-23 * np.abs(bias)))
    finally:
        if min_work is not None:
            tunable.min_work = min_work
    if getattr(backend, "_adam", None) is not None:
        adam_ok, _ = _adam_self_test(backend, rng)
        ok = ok and adam_ok
    return ok and _conv_self_test(backend, rng), worst


def load_wasm_backend(rng: np.random.Generator | None = None) -> tuple[WasmBackend | None, str]:
    """The kernel backend if ``gemm.js`` registered it and it passes `self_test`, else None.

    Parameters
    ----------
    rng : random source for the self-test (a fixed seed when None).

    Returns
    -------
    backend : a checked WasmBackend, or None when NumPy should be used.
    reason : a short human-readable note on what was chosen and why.
    """
    try:
        backend = WasmBackend()
    except (ImportError, AttributeError) as err:
        return None, f"WebAssembly kernel not installed ({err})"
    ok, worst = self_test(backend, rng or np.random.default_rng(0))
    if not ok:
        return None, f"WebAssembly kernel failed its self-test (max error {worst:.3g})"
    kind = "relaxed-SIMD FMA" if backend.relaxed else "SIMD"
    return backend, f"WebAssembly {kind} kernel (self-test max error {worst:.2g})"
