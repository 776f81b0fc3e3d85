"""Convolution, max-pooling and flattening layers on NHWC activations (n, h, w, c).

A convolution is one matrix product: im2col lays each k×k×c_in patch out as a row of `cols`
(n·oh·ow, k·k·c_in), so Z = cols·W + b runs on the same MatmulBackend as Dense. The backend
also runs im2col, its gradient col2im and max-pooling (NumPy's code unless it has a kernel).
"""

from __future__ import annotations

import numpy as np

from .initializers import init_weights
from .matmul import MatmulBackend, NumpyBackend

__all__ = ["PADDINGS", "Conv2D", "Flatten", "MaxPool2D", "eval_chunk"]

PADDINGS = ("valid", "same")
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Examples per im2col when not training: predicting on thousands of images at once would
# otherwise build a `cols` of hundreds of MB (25× the input for a 5×5 kernel).
_EVAL_CHUNK = 256
_EVAL_FLOATS = 1 << 21  # and at most this many numbers of patches: 8 MB in float32


def eval_chunk(patch_floats: int) -> int:
    """Examples per im2col when not training, for patches of `patch_floats` numbers each."""
    return max(1, min(_EVAL_CHUNK, _EVAL_FLOATS // max(patch_floats, 1)))


def _check_size(name: str, value: int) -> None:
    """Raise unless value is an int >= 1 (bools and floats such as 3.0 are refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


class _Buffers:
    """Arrays reused across batches; a smaller batch gets a view of the first rows."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A zero-initialised (on allocation only) array of `shape`, kept under `name`."""
        buf = self._arrays.get(name)
        if buf is None or buf.dtype != dtype or buf.shape[1:] != shape[1:] or len(buf) < shape[0]:
            # Zeros, not empty: a padded input's border is never written and must stay 0.
            buf = self._arrays[name] = np.zeros(shape, dtype=dtype)
        return buf[: shape[0]]


class Conv2D:
    """A 2-D convolution, stride 1, owning W (k·k·c_in, c_out), b (c_out,) and their gradients.

    Parameters
    ----------
    in_channels, out_channels : c_in and c_out.
    kernel : side k of the square kernel.
    padding : "valid" (none: output (h − k + 1, w − k + 1)) or "same" (zeros around: output
        (h, w); an even k pads the extra row/column at the bottom/right, as TensorFlow does).
    rng : draws the initial W; None leaves W at zero for weights that are loaded next.
    init : initialiser scheme (see `init_weights`), with fan-in k·k·c_in.
    dtype : float32 or float64, the dtype of W, b and every output.
    backend : where the three matrix products, im2col and col2im run; NumPy by default.

    Row (i·k + j)·c_in + c of W holds kernel row i, column j, input channel c: so
    `W.reshape(k, k, c_in, c_out)` is the kernel in TensorFlow's HWIO layout.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        padding: str = "valid",
        rng: np.random.Generator | None = None,
        init: str = "he",
        dtype: str | np.dtype = "float32",
        backend: MatmulBackend | None = None,
    ):
        _check_size("in_channels", in_channels)
        _check_size("out_channels", out_channels)
        _check_size("kernel", kernel)
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
        if np.dtype(dtype) not in _DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        self.in_channels, self.out_channels, self.kernel = in_channels, out_channels, kernel
        self.padding = padding
        fan_in = kernel * kernel * in_channels
        if rng is None:
            self.W = np.zeros((fan_in, out_channels), dtype=dtype)  # (k·k·c_in, c_out)
        else:
            self.W = init_weights(init, fan_in, out_channels, rng, np.dtype(dtype))
        self.b = np.zeros(out_channels, dtype=dtype)  # (c_out,)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.backend = backend or NumpyBackend()
        self._buffers = _Buffers()

    def sharing(self) -> Conv2D:
        """A layer with these very W and b arrays but its own gradients, caches and buffers.

        For a pass that must not disturb a run in progress, e.g. an input gradient taken
        between the batches of training.
        """
        twin = Conv2D(self.in_channels, self.out_channels, self.kernel, self.padding, None,
                      dtype=self.W.dtype, backend=self.backend)  # fmt: skip
        twin.W, twin.b = self.W, self.b  # (k·k·c_in, c_out), (c_out,): shared, not copied
        return twin

    def output_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """(oh, ow, c_out) of one example for an input example of shape (h, w, c_in)."""
        h, w, c = shape
        if c != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {c}")
        if self.padding == "same":
            return h, w, self.out_channels
        k = self.kernel
        if h < k or w < k:
            raise ValueError(f"input {h}×{w} is smaller than the {k}×{k} kernel")
        return h - k + 1, w - k + 1, self.out_channels

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """Convolve a batch; caches the patches for `backward` when training.

        Parameters
        ----------
        X : (n, h, w, c_in) inputs.
        train : True keeps what `backward` needs and writes into a reused buffer; False
            returns a fresh array the caller may keep.

        Returns
        -------
        Z : (n, oh, ow, c_out) pre-activations, in this layer's dtype.
        """
        if X.ndim != 4:
            raise ValueError(f"input must have shape (n, h, w, {self.in_channels}), got {X.shape}")
        n = len(X)
        oh, ow, c_out = self.output_shape(X.shape[1:])
        if train:
            self.x_shape = X.shape
            self.cols = self._im2col(X, "train")  # (n·oh·ow, k·k·c_in), kept for dW
            Z = self._buffers.get("Z", (len(self.cols), c_out), self.W.dtype)  # (n·oh·ow, c_out)
            self.backend.mm(self.cols, self.W, out=Z, bias=self.b)
        else:
            Z = np.empty((n * oh * ow, c_out), dtype=self.W.dtype)  # (n·oh·ow, c_out)
            rows = oh * ow  # rows of Z per example
            chunk = eval_chunk(rows * self.W.shape[0])
            for start in range(0, n, chunk):
                X_chunk = X[start : start + chunk]  # (m, h, w, c_in)
                cols = self._im2col(X_chunk, "eval")  # (m·oh·ow, k·k·c_in)
                Z_chunk = Z[start * rows : start * rows + len(cols)]  # (m·oh·ow, c_out)
                self.backend.mm(cols, self.W, out=Z_chunk, bias=self.b)
        return Z.reshape(n, oh, ow, c_out)

    def backward(self, dZ: np.ndarray, need_dX: bool = True) -> np.ndarray | None:
        """Store dW = colsᵀ·dZ and db = Σ dZ; return dX (n, h, w, c_in) unless not needed.

        dX is a view of a buffer reused by the next call.
        """
        n, oh, ow, c_out = dZ.shape
        dZ2 = dZ.reshape(n * oh * ow, c_out)  # (n·oh·ow, c_out), a view when dZ is contiguous
        self.backend.mm_tn(self.cols, dZ2, out=self.dW)  # (k·k·c_in, c_out)
        self.backend.sum_rows(dZ2, out=self.db)  # (c_out,)
        if not need_dX:
            return None
        dcols = self._buffers.get("dcols", self.cols.shape, self.W.dtype)  # (n·oh·ow, k·k·c_in)
        self.backend.mm_nt(dZ2, self.W, out=dcols)
        k = self.kernel
        dpatches = dcols.reshape(n, oh, ow, k, k, self.in_channels)  # a view of dcols
        dX = self._buffers.get("dX", self.x_shape, self.W.dtype)  # (n, h, w, c_in)
        return self.backend.col2im(dpatches, self._pad, dX)  # the padding's gradient dropped

    @property
    def _pad(self) -> int:
        """Zero rows above (and columns left of) the input: (k − 1) // 2 for "same", else 0."""
        return (self.kernel - 1) // 2 if self.padding == "same" else 0

    def _im2col(self, X: np.ndarray, mode: str) -> np.ndarray:
        """Every k×k×c_in patch of X (n, h, w, c_in) as a row: (n·oh·ow, k·k·c_in)."""
        n, _, _, c = X.shape
        k = self.kernel
        oh, ow, _ = self.output_shape(X.shape[1:])
        cols = self._buffers.get(f"{mode}cols", (n * oh * ow, k * k * c), self.W.dtype)
        self.backend.im2col(X, self._pad, cols.reshape(n, oh, ow, k, k, c))  # fills cols
        return cols

    @property
    def params(self) -> tuple[np.ndarray, np.ndarray]:
        """(W, b)."""
        return self.W, self.b

    @property
    def grads(self) -> tuple[np.ndarray, np.ndarray]:
        """(dW, db), matching `params`."""
        return self.dW, self.db

    def __repr__(self) -> str:
        return (
            f"Conv2D({self.in_channels}, {self.out_channels}, kernel={self.kernel}, "
            f"padding={self.padding!r}, dtype={self.W.dtype})"
        )


class MaxPool2D:
    """Max over non-overlapping size×size windows (stride = size); no parameters.

    Rows and columns past the last whole window are dropped (floor) and get zero gradient.
    Each window's gradient goes to one position, its maximum; on ties, to the first in
    row-major order within the window.
    """

    params: tuple[np.ndarray, ...] = ()  # nothing to train, but the same interface as Dense
    grads: tuple[np.ndarray, ...] = ()

    def __init__(self, size: int = 2, backend: MatmulBackend | None = None):
        _check_size("pool size", size)
        self.size = size
        # Each window's argmax as its offset i·size + j: a byte up to 16×16 windows.
        self._arg_dtype = np.dtype(np.uint8 if size <= 16 else np.uint16)
        self.backend = backend or NumpyBackend()
        self._buffers = _Buffers()

    def output_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """(h // size, w // size, c) for an input example of shape (h, w, c)."""
        h, w, c = shape
        if h < self.size or w < self.size:
            raise ValueError(f"input {h}×{w} is smaller than the {self.size}×{self.size} pool")
        return h // self.size, w // self.size, c

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """Y (n, h // size, w // size, c), each the max of its window of X (n, h, w, c).

        When training, Y is a reused buffer and each window's argmax is kept for `backward`.
        """
        if X.ndim != 4:
            raise ValueError(f"input must have shape (n, h, w, c), got {X.shape}")
        shape = (len(X), *self.output_shape(X.shape[1:]))  # (n, oh, ow, c)
        if not train:
            Y = np.empty(shape, dtype=X.dtype)  # a fresh array the caller may keep
            return self.backend.maxpool(X, self.size, Y)
        self.x_shape, self.dtype = X.shape, X.dtype
        Y = self._buffers.get("Y", shape, X.dtype)
        self.arg = self._buffers.get("arg", shape, self._arg_dtype)  # (n, oh, ow, c)
        return self.backend.maxpool(X, self.size, Y, self.arg)

    def backward(self, dY: np.ndarray) -> np.ndarray:
        """dX (n, h, w, c): dY at each window's argmax, 0 elsewhere; a reused buffer."""
        dX = self._buffers.get("dX", self.x_shape, self.dtype)
        return self.backend.maxpool_backward(dY, self.arg, self.size, dX)

    def __repr__(self) -> str:
        return f"MaxPool2D(size={self.size})"


class Flatten:
    """(n, h, w, c) → (n, h·w·c), and the gradient back; no parameters."""

    params: tuple[np.ndarray, ...] = ()  # nothing to train, but the same interface as Dense
    grads: tuple[np.ndarray, ...] = ()

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int]:
        """(h·w·c,) for an input example of shape (h, w, c)."""
        return (int(np.prod(shape)),)

    def forward(self, X: np.ndarray, train: bool = True) -> np.ndarray:
        """X as rows (n, h·w·c): a view when X is contiguous."""
        if train:
            self.x_shape = X.shape
        return X.reshape(len(X), int(np.prod(X.shape[1:])))

    def backward(self, dY: np.ndarray) -> np.ndarray:
        """dY (n, h·w·c) back in the input's shape (n, h, w, c)."""
        return dY.reshape(self.x_shape)

    def __repr__(self) -> str:
        return "Flatten()"
