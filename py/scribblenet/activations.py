"""Element-wise non-linearities, each a layer with `forward` and `backward`."""

from __future__ import annotations

import numpy as np

from .matmul import MatmulBackend, NumpyBackend

__all__ = ["Activation", "LeakyReLU", "ReLU", "Sigmoid", "Tanh", "make_activation"]


class Activation:
    """Base class: caches what `backward` needs during `forward`.

    `backend` runs the element-wise kernels it has (ReLU's); NumPy by default.
    """

    name = "activation"
    A: np.ndarray  # the output, kept by `forward` for `backward`

    def __init__(self, backend: MatmulBackend | None = None):
        self.backend = backend or NumpyBackend()

    def forward(self, Z: np.ndarray) -> np.ndarray:
        """Apply the non-linearity; may overwrite Z, which the caller no longer needs."""
        raise NotImplementedError

    def backward(self, dA: np.ndarray) -> np.ndarray:
        """Chain rule: dZ = dA * f'(Z); may overwrite dA."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sigmoid(Activation):
    """σ(z) = 1 / (1 + e^(-z))."""

    name = "sigmoid"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        """σ(Z), computed as ½(1 + tanh(z/2)) which never overflows."""
        A: np.ndarray = np.multiply(Z, 0.5, out=Z)
        np.tanh(A, out=A)
        A += 1.0
        A *= 0.5
        self.A = A
        return A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        """dA · σ(1 − σ)."""
        A = self.A
        dA *= A
        dA *= 1.0 - A
        return dA


class Tanh(Activation):
    """tanh(z)."""

    name = "tanh"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        """tanh(Z)."""
        self.A = np.tanh(Z, out=Z)
        return self.A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        """dA · (1 − tanh²)."""
        A = self.A
        dA *= 1.0 - A * A
        return dA


class ReLU(Activation):
    """max(z, 0), forward and backward on the backend (e.g. the WebAssembly kernel)."""

    name = "relu"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        """max(Z, 0)."""
        self.A = self.backend.relu(Z)
        return self.A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        """dA where the unit was active, 0 elsewhere."""
        return self.backend.relu_backward(dA, self.A)


class LeakyReLU(Activation):
    """z if z > 0 else αz, so units never die completely."""

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01, backend: MatmulBackend | None = None):
        if not 0 < alpha < 1:
            raise ValueError(f"leaky ReLU slope must be in (0, 1), got {alpha}")
        super().__init__(backend)
        self.alpha = alpha

    def forward(self, Z: np.ndarray) -> np.ndarray:
        """max(Z, αZ)."""
        self.A = np.maximum(Z, self.alpha * Z, out=Z)
        return self.A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        """dA · (1 if active else α)."""
        dA *= np.where(self.A > 0, 1.0, self.alpha).astype(dA.dtype, copy=False)
        return dA

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"


_BY_NAME = {cls.name: cls for cls in (Sigmoid, Tanh, ReLU, LeakyReLU)}


def make_activation(name: str, backend: MatmulBackend | None = None) -> Activation:
    """Return a fresh activation layer by name (sigmoid, tanh, relu, leaky_relu) on `backend`."""
    try:
        cls = _BY_NAME[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose from {', '.join(_BY_NAME)}"
        ) from None
    return cls(backend=backend)
