"""A classifier composed of layers: an optional convolutional front, Dense layers, softmax."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np

from .activations import Activation, make_activation
from .config import NetworkConfig
from .conv import Conv2D, Flatten, MaxPool2D
from .layers import Dense
from .losses import SoftmaxCrossEntropy, softmax
from .matmul import MatmulBackend, NumpyBackend

__all__ = ["Network", "eval_rows"]

_EVAL_CHUNK = 4096  # rows per forward pass when predicting, to bound memory on big inputs
# A conv front's outputs per predicting pass: 32 MB in float32 (4096 images through
# conv5x16 alone would be 150 MB, too much for a browser tab).
_EVAL_FLOATS = 1 << 23

FrontLayer = Conv2D | Activation | MaxPool2D


def eval_rows(config: NetworkConfig) -> int:
    """Rows per forward pass when predicting: 4096 for an MLP, fewer behind conv layers."""
    per_row = sum(math.prod(shape) for shape in config.conv_shapes()[1:])  # each output
    return max(1, min(_EVAL_CHUNK, _EVAL_FLOATS // per_row)) if per_row else _EVAL_CHUNK


class Network:
    """inputs → [Conv2D → act (→ MaxPool2D)]… → Flatten → [Dense → act]… → Dense → softmax.

    Without conv layers in its config it is the plain multilayer perceptron. `dense` lists the
    Dense layers from the input up, `convs` the Conv2D layers, and `front` the conv front in
    order (Conv2D, activation and MaxPool2D layers; empty for an MLP).

    Parameters
    ----------
    config : the architecture (conv front, sizes, activation, initialiser, dtype).
    rng : the generator that draws the initial weights (conv layers first); default seed 0.
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
        self.front: list[FrontLayer] = []
        self.convs: list[Conv2D] = []
        for spec, (_, _, c_in) in zip(config.conv_layers, config.conv_shapes(), strict=False):
            if spec.kind == "pool":
                self.front.append(MaxPool2D(spec.size))
                continue
            conv = Conv2D(c_in, spec.channels, spec.size, spec.padding, rng, config.init,
                          self.dtype, self.backend)  # fmt: skip
            self.convs.append(conv)
            self.front += [conv, make_activation(config.activation)]
        self.flatten = Flatten()
        self.dense = [
            Dense(n_in, n_out, rng, config.init, self.dtype, self.backend)
            for n_in, n_out in pairwise(config.sizes)
        ]
        self.activations: list[Activation] = [
            make_activation(config.activation) for _ in config.hidden
        ]
        self.loss = SoftmaxCrossEntropy()
        self.metadata: dict[str, Any] = {}  # provenance, kept by model files

    def _weighted(self) -> list[Conv2D | Dense]:
        """The layers with weights W and biases b: the convolutions, then the dense layers."""
        layers: list[Conv2D | Dense] = [*self.convs, *self.dense]
        return layers

    def set_backend(self, backend: MatmulBackend) -> None:
        """Route every product and conv pass through `backend` (e.g. a WebAssembly kernel)."""
        self.backend = backend
        for layer in [*self._weighted(), *self.front, *self.activations]:
            if not isinstance(layer, Flatten):  # Conv2D, Dense, MaxPool2D, activations
                layer.backend = backend

    def _activation(self) -> Activation:
        """A fresh activation layer of this network's kind, on its backend."""
        return make_activation(self.config.activation, self.backend)

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

    def _features(
        self,
        A: np.ndarray,
        train: bool,
        front: list[FrontLayer] | None = None,
        flatten: Flatten | None = None,
    ) -> np.ndarray:
        """Scaled inputs (n, n_inputs) through the conv front, flattened: (n, features).

        An MLP's inputs pass unchanged. `front` and `flatten` default to the network's own.
        """
        front = self.front if front is None else front
        if not front:
            return A
        h, w, c = self.config.conv_shapes()[0]
        A = A.reshape(len(A), h, w, c)  # (n, 28, 28, 1), a view
        for layer in front:
            if isinstance(layer, Activation):
                # Not training, a fresh one: the layer's own keeps its output for backward.
                A = (layer if train else self._activation()).forward(A)
            else:
                A = layer.forward(A, train)  # (n, h', w', c')
        return (flatten or self.flatten).forward(A, train)  # (n, h'·w'·c'), a view

    def _front_backward(
        self, dA: np.ndarray, front: list[FrontLayer], flatten: Flatten, need_dX: bool
    ) -> np.ndarray | None:
        """Back through the conv front from dA (n, features): dX (n, h, w, c) if need_dX."""
        dA = flatten.backward(dA)  # (n, h', w', c')
        for layer in reversed(front):
            if isinstance(layer, Conv2D):
                dX = layer.backward(dA, need_dX=need_dX or layer is not front[0])
                if dX is None:  # the first layer: no input gradient needed
                    return None
                dA = dX  # (n, h, w, c_in)
            else:
                dA = layer.backward(dA)  # (n, h, w, c)
        return dA

    def forward(self, X: np.ndarray, train: bool = False) -> np.ndarray:
        """Logits Z (n, n_classes) for inputs X (n, n_inputs); uint8 pixels are scaled to [0, 1].

        Behind conv layers a prediction runs in chunks of `eval_rows` images, to bound memory.
        """
        rows = eval_rows(self.config)
        if self.front and not train and len(X) > rows:
            parts = [self.forward(X[i : i + rows]) for i in range(0, len(X), rows)]
            return np.concatenate(parts)  # (n, n_classes)
        A = self._features(self._as_input(X), train)  # (n, features)
        for layer, act in zip(self.dense, self.activations, strict=False):
            A = act.forward(layer.forward(A, train))  # (n, units)
        return self.dense[-1].forward(A, train)  # (n, n_classes)

    def loss_and_grad(self, X: np.ndarray, y: np.ndarray, weight_decay: float = 0.0) -> float:
        """Mean cross-entropy (+ ½λ‖W‖², conv kernels included) on a batch; fills every dW, db.

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
            dX = self.dense[i].backward(dA, need_dX=i > 0 or bool(self.front))
            if dX is None:  # the first layer: no input gradient needed
                break
            dA = dX
        if self.front:
            self._front_backward(dA, self.front, self.flatten, need_dX=False)
        if weight_decay:
            for layer in self._weighted():
                cost += 0.5 * weight_decay * float(np.vdot(layer.W, layer.W))
                layer.dW += weight_decay * layer.W
        return cost

    def hidden_activations(self, X: np.ndarray) -> list[np.ndarray]:
        """Every hidden Dense layer's output for inputs X (n, n_inputs): [(n, h1), (n, h2), …].

        With a conv front these are the dense layers after it (none: []), computed in chunks.
        Fresh activation layers: the network's own keep what a run in progress cached.
        """
        rows = eval_rows(self.config)
        if self.front and len(X) > rows:
            parts = [self.hidden_activations(X[i : i + rows]) for i in range(0, len(X), rows)]
            return [np.concatenate(layer) for layer in zip(*parts, strict=True)]
        A = self._features(self._as_input(X), train=False)  # (n, features)
        outputs = []
        for layer in self.dense[:-1]:
            A = self._activation().forward(layer.forward(A, train=False))
            outputs.append(A)  # (n, units)
        return outputs

    def input_gradient(self, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """∂ log p(class) / ∂ input, (n, n_inputs): how each input pixel moves a class's score.

        Parameters
        ----------
        X : (n, n_inputs) inputs; uint8 pixels are scaled to [0, 1] and the gradient is with
            respect to those scaled values.
        classes : (n,) the class whose log-probability to differentiate, per row.

        Nothing cached by training is touched (no layer's dW or cached input): conv layers are
        run through twins sharing their weights, so this is safe between the chunks of a run
        in progress.
        """
        classes = np.asarray(classes, dtype=np.intp)
        A = self._as_input(X)  # (n, n_inputs)
        if classes.shape != (len(A),):
            raise ValueError(f"need one class per row: {len(A)}, got shape {classes.shape}")
        if len(A) and (classes.min() < 0 or classes.max() >= self.config.n_classes):
            raise ValueError(f"classes must be in [0, {self.config.n_classes})")
        front = [self._twin(layer) for layer in self.front]
        flatten = Flatten()
        A = self._features(A, True, front, flatten)  # (n, features)
        activations = []
        for layer in self.dense[:-1]:
            act = self._activation()  # its own cache for backward
            A = act.forward(layer.forward(A, train=False))  # (n, units)
            activations.append(act)
        dZ = -softmax(self.dense[-1].forward(A, train=False))  # (n, k): ∂ log p_c / ∂ Z = 1_c − P
        dZ[np.arange(len(dZ)), classes] += 1
        for layer, act in zip(self.dense[:0:-1], activations[::-1], strict=True):
            dZ = act.backward(dZ @ layer.W.T)  # (n, units of the layer below)
        dX: np.ndarray = dZ @ self.dense[0].W.T  # (n, features)
        if front:
            dimage = self._front_backward(dX, front, flatten, need_dX=True)  # (n, h, w, 1)
            assert dimage is not None
            dX = dimage.reshape(len(dX), -1).copy()  # (n, n_inputs), off the twins' buffers
        return dX

    def _twin(self, layer: FrontLayer) -> FrontLayer:
        """The same front layer with caches of its own (a conv twin shares W and b)."""
        if isinstance(layer, Conv2D):
            return layer.sharing()
        if isinstance(layer, MaxPool2D):
            return MaxPool2D(layer.size, self.backend)
        return self._activation()

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
        """[conv1_W, conv1_b, …, W1, b1, W2, b2, …], the arrays themselves (updated in place)."""
        return [p for layer in self._weighted() for p in layer.params]

    def gradients(self) -> list[np.ndarray]:
        """[dW, db, …], matching `parameters()`."""
        return [g for layer in self._weighted() for g in layer.grads]

    def named_parameters(self) -> dict[str, np.ndarray]:
        """{"conv1_W", "conv1_b", …, "W1": …, "b1": …, …} in layer order, as in model files.

        An MLP's are W1, b1, W2, b2, …; conv layers come first, as conv<i>_W (k·k·c_in, c_out)
        and conv<i>_b (c_out,), so the dense layers keep their names.
        """
        out: dict[str, np.ndarray] = {}
        for i, conv in enumerate(self.convs, start=1):
            out[f"conv{i}_W"], out[f"conv{i}_b"] = conv.W, conv.b
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
        return (
            f"Network({c.architecture}, activation={c.activation}, init={c.init}, dtype={c.dtype}, "
            f"params={self.n_parameters:,})"
        )
