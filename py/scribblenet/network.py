"""A multilayer perceptron: Dense and activation layers composed, with a softmax output."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from .activations import Activation, make_activation
from .config import NetworkConfig
from .layers import Dense
from .losses import SoftmaxCrossEntropy, softmax
from .matmul import MatmulBackend, NumpyBackend

__all__ = ["Network"]

_EVAL_CHUNK = 4096  # rows per forward pass when predicting, to bound memory on big inputs


class Network:
    """inputs → [Dense → activation] × len(hidden) → Dense → softmax.

    Parameters
    ----------
    config : the architecture (sizes, activation, initialiser, dtype).
    rng : the generator that draws the initial weights; default seed 0.
    initialize : False leaves every weight at zero and draws nothing, for a network whose
        weights are loaded next (model files: loading one then never imports numpy.random,
        which the page's start-up would otherwise wait for).
    """

    def __init__(
        self,
        config: NetworkConfig,
        rng: np.random.Generator | None = None,
        *,
        initialize: bool = True,
    ):
        if not isinstance(config, NetworkConfig):
            raise ValueError(f"config must be a NetworkConfig, got {type(config).__name__}")
        if not initialize:
            rng = None
        elif rng is None:
            rng = np.random.default_rng(0)
        self.config = config
        self.dtype = np.dtype(config.dtype)
        self.backend: MatmulBackend = NumpyBackend()
        sizes = config.sizes
        self.dense = [
            Dense(n_in, n_out, rng, config.init, self.dtype, self.backend)
            for n_in, n_out in pairwise(sizes)
        ]
        self.activations: list[Activation] = [
            make_activation(config.activation) for _ in config.hidden
        ]
        self.loss = SoftmaxCrossEntropy()
        self.metadata: dict[str, Any] = {}  # provenance, kept by model files

    def set_backend(self, backend: MatmulBackend) -> None:
        """Route every matrix product through `backend` (e.g. a WebAssembly kernel)."""
        self.backend = backend
        for layer in self.dense:
            layer.backend = backend

    def _as_input(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """X as this network's dtype; uint8 pixels / 255, into `out` (same shape) if given."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.config.n_inputs:
            raise ValueError(f"input must have shape (n, {self.config.n_inputs}), got {X.shape}")
        if X.dtype == np.uint8:  # raw pixels: the one normalisation every model uses
            # Cast, then divide in dtype: one pass, no temporary.
            scaled: np.ndarray = np.divide(X, self.dtype.type(255), out=out, dtype=self.dtype)
            return scaled
        return np.ascontiguousarray(X, dtype=self.dtype)

    def forward(self, X: np.ndarray, train: bool = False) -> np.ndarray:
        """Logits Z (n, n_classes) for inputs X (n, n_inputs); uint8 pixels are scaled to [0, 1]."""
        A = self._as_input(X)
        for layer, act in zip(self.dense, self.activations, strict=False):
            A = act.forward(layer.forward(A, train))  # (n, units)
        return self.dense[-1].forward(A, train)  # (n, n_classes)

    def loss_and_grad(self, X: np.ndarray, y: np.ndarray, weight_decay: float = 0.0) -> float:
        """Mean cross-entropy (+ ½λ‖W‖²) on a batch; fills every layer's dW and db.

        Parameters
        ----------
        X : (n, n_inputs) inputs. y : (n,) labels or (n, n_classes) targets.

        Returns
        -------
        The cost as a float. Gradients are left in `gradients()`.
        """
        Z = self.forward(X, train=True)  # (n, k)
        cost = self.loss.forward(Z, y)
        dA = self.loss.backward()  # (n, k)
        for i in range(len(self.dense) - 1, -1, -1):
            if i < len(self.dense) - 1:
                dA = self.activations[i].backward(dA)
            dX = self.dense[i].backward(dA, need_dX=i > 0)
            if dX is None:  # the first layer: no input gradient needed
                break
            dA = dX
        if weight_decay:
            for layer in self.dense:
                cost += 0.5 * weight_decay * float(np.vdot(layer.W, layer.W))
                layer.dW += weight_decay * layer.W
        return cost

    def hidden_activations(self, X: np.ndarray) -> list[np.ndarray]:
        """Every hidden layer's output for inputs X (n, n_inputs): [(n, h1), (n, h2), …].

        Fresh activation layers: the network's own keep what a run in progress cached.
        """
        A = self._as_input(X)
        outputs = []
        for layer in self.dense[:-1]:
            A = make_activation(self.config.activation).forward(layer.forward(A, train=False))
            outputs.append(A)  # (n, units)
        return outputs

    def input_gradient(self, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """∂ log p(class) / ∂ input, (n, n_inputs): how each input pixel moves a class's score.

        Parameters
        ----------
        X : (n, n_inputs) inputs; uint8 pixels are scaled to [0, 1] and the gradient is with
            respect to those scaled values.
        classes : (n,) the class whose log-probability to differentiate, per row.

        Nothing cached by training is touched (no layer's dW or cached input), so this is safe
        between the chunks of a run in progress.
        """
        classes = np.asarray(classes, dtype=np.intp)
        A = self._as_input(X)  # (n, n_inputs)
        if classes.shape != (len(A),):
            raise ValueError(f"need one class per row: {len(A)}, got shape {classes.shape}")
        if len(A) and (classes.min() < 0 or classes.max() >= self.config.n_classes):
            raise ValueError(f"classes must be in [0, {self.config.n_classes})")
        activations = []
        for layer in self.dense[:-1]:
            act = make_activation(self.config.activation)  # its own cache for backward
            A = act.forward(layer.forward(A, train=False))  # (n, units)
            activations.append(act)
        dZ = -softmax(self.dense[-1].forward(A, train=False))  # (n, k): ∂ log p_c / ∂ Z = 1_c − P
        dZ[np.arange(len(dZ)), classes] += 1
        for layer, act in zip(self.dense[:0:-1], activations[::-1], strict=True):
            dZ = act.backward(dZ @ layer.W.T)  # (n, units of the layer below)
        dX: np.ndarray = dZ @ self.dense[0].W.T  # (n, n_inputs)
        return dX

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes), each row summing to 1."""
        X = np.asarray(X)
        parts = [
            softmax(self.forward(X[i : i + _EVAL_CHUNK])) for i in range(0, len(X), _EVAL_CHUNK)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.config.n_classes), self.dtype)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most likely class per row, (n,) int."""
        X = np.asarray(X)
        parts = [
            self.forward(X[i : i + _EVAL_CHUNK]).argmax(axis=1)
            for i in range(0, len(X), _EVAL_CHUNK)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, np.intp)

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Fraction of rows classified correctly, in [0, 1]."""
        y = np.asarray(y)
        if y.ndim == 2:
            y = y.argmax(axis=1)
        if len(y) != len(X):
            raise ValueError(f"got {len(X)} inputs but {len(y)} labels")
        return float((self.predict(X) == y).mean()) if len(y) else 0.0

    def parameters(self) -> list[np.ndarray]:
        """[W1, b1, W2, b2, …], the arrays themselves (updates are in place)."""
        return [p for layer in self.dense for p in layer.params]

    def gradients(self) -> list[np.ndarray]:
        """[dW1, db1, …], matching `parameters()`."""
        return [g for layer in self.dense for g in layer.grads]

    def named_parameters(self) -> dict[str, np.ndarray]:
        """{"W1": …, "b1": …, …} in layer order, as stored in model files."""
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.dense, start=1):
            out[f"W{i}"], out[f"b{i}"] = layer.W, layer.b
        return out

    def load_parameters(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy arrays (as from `named_parameters`) into this network, checking shapes."""
        own = self.named_parameters()
        if set(arrays) != set(own):
            raise ValueError(f"expected parameters {sorted(own)}, got {sorted(arrays)}")
        for name, p in own.items():
            if arrays[name].shape != p.shape:
                raise ValueError(f"{name} must have shape {p.shape}, got {arrays[name].shape}")
        for name, p in own.items():
            p[...] = arrays[name]

    def copy_parameters(self) -> dict[str, np.ndarray]:
        """A snapshot of every parameter, independent of further training."""
        return {k: v.copy() for k, v in self.named_parameters().items()}

    @property
    def n_parameters(self) -> int:
        """Total count of trainable numbers."""
        return sum(p.size for p in self.parameters())

    def __repr__(self) -> str:
        c = self.config
        arch = "-".join(str(s) for s in c.sizes)
        return (
            f"Network({arch}, activation={c.activation}, init={c.init}, dtype={c.dtype}, "
            f"params={self.n_parameters:,})"
        )
