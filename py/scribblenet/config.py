"""Frozen, validated configuration for the network and its training."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple, Self

__all__ = [
    "ACTIVATIONS",
    "DTYPES",
    "INITS",
    "LR_SCHEDULES",
    "MAX_ACTIVATION_FLOATS",
    "MAX_CHANNELS",
    "MAX_CONV_LAYERS",
    "MAX_EPOCHS",
    "MAX_KERNEL",
    "MAX_LAYERS",
    "MAX_UNITS",
    "OPTIMIZERS",
    "ConvLayer",
    "NetworkConfig",
    "TrainConfig",
    "conv_layer",
]

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu")
INITS = ("he", "glorot", "lecun", "tutorial")
DTYPES = ("float32", "float64")
OPTIMIZERS = ("sgd", "momentum", "adam")
LR_SCHEDULES = ("constant", "cosine")
MAX_UNITS = 4096  # per layer: bigger ones exhaust a browser tab long before they learn anything
MAX_LAYERS = 8
MAX_EPOCHS = 1000
MAX_LEARNING_RATE = 1000.0
MAX_CONV_LAYERS = 8
MAX_CHANNELS = 256  # per conv layer
MAX_KERNEL = 28  # a kernel as large as a whole MNIST image
# Numbers a training pass keeps per image (patches, outputs and their gradients): 8 M is 32 MB
# in float32, far beyond any useful digit network, and it stops a model file from asking for
# gigabytes of patches (conv28x256same over 256 channels) through a handful of parameters.
MAX_ACTIVATION_FLOATS = 1 << 23
_CONV_TOKEN = re.compile(r"conv(\d+)x(\d+)(same|valid)?|pool(\d+)")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")


def _check_float(name: str, value: Any, low: float, high: float, *, open_low: bool) -> None:
    ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok_type or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    too_low = value <= low if open_low else value < low
    if too_low or value > high:
        bound = ">" if open_low else ">="
        raise ValueError(f"{name} must be {bound} {low} and <= {high}, got {value!r}")


class _DictMixin:
    """to_dict/from_dict that round-trip through JSON."""

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as JSON-friendly plain values."""
        d = asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Build from a dict; unknown keys are an error so typos do not pass silently."""
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__} must be built from a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        return cls(**d)


class ConvLayer(NamedTuple):
    """One layer of the convolutional front, as a token spells it: conv5x16, conv3x8same, pool2."""

    kind: str  # "conv" or "pool"
    size: int  # the kernel's side k, or the pooling window's side
    channels: int = 0  # a conv's output channels; 0 for a pool (it keeps its input's)
    padding: str = "valid"  # conv: "valid" shrinks the image by k − 1, "same" keeps its size

    @property
    def token(self) -> str:
        """The normalised spelling, e.g. conv5x16 (valid is the default), conv3x32same, pool2."""
        if self.kind == "pool":
            return f"pool{self.size}"
        return f"conv{self.size}x{self.channels}" + ("same" if self.padding == "same" else "")

    def output_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """(h, w, c) of one image after this layer; a side below 1 means it does not fit."""
        h, w, c = shape
        if self.kind == "pool":
            return h // self.size, w // self.size, c
        if self.padding == "same":
            return h, w, self.channels
        return h - self.size + 1, w - self.size + 1, self.channels


def _digits(text: str) -> int:
    return int(text) if len(text) <= 9 else 10**9  # int() of a pasted novel is slow


def conv_layer(token: Any) -> ConvLayer:
    """Parse one conv-front token: convKxC (valid padding), convKxCsame, or poolN.

    Raises ValueError, naming the token, when it is malformed or its sizes are out of range.
    """
    match = _CONV_TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise ValueError(
            f"conv layer {str(token)[:40]!r} is not understood: use convKxC, convKxCsame or "
            "poolN, e.g. conv5x16, conv3x32same, pool2"
        )
    kernel, channels, padding, pool = match.groups()
    name = token if len(token) <= 24 else token[:21] + "..."
    if pool is not None:
        if not 2 <= _digits(pool) <= MAX_KERNEL:
            raise ValueError(f"{name}: the pool size must be from 2 to {MAX_KERNEL}")
        return ConvLayer("pool", int(pool))
    if not 1 <= _digits(kernel) <= MAX_KERNEL:
        raise ValueError(f"{name}: the kernel size must be from 1 to {MAX_KERNEL}")
    if not 1 <= _digits(channels) <= MAX_CHANNELS:
        raise ValueError(f"{name}: the channels must be from 1 to {MAX_CHANNELS}")
    return ConvLayer("conv", int(kernel), int(channels), padding or "valid")


@dataclass(frozen=True)
class NetworkConfig(_DictMixin):
    """Architecture of a classifier: inputs → [conv front] → hidden layers → softmax.

    With a conv front the inputs are square one-channel images (n_inputs = side²), run through
    each conv (followed by the activation) and pool in turn, then flattened into the first
    dense layer. Parameter names, in order: conv1_W, conv1_b, … for the convolutions (W of
    shape (k·k·c_in, c_out)), then W1, b1, … for the dense layers, exactly as in an MLP.
    """

    n_inputs: int = 784  # 28×28 pixels, flattened row-major
    hidden: tuple[int, ...] = (128,)  # units per hidden layer; () is softmax regression
    n_classes: int = 10  # digits 0-9
    activation: str = "relu"  # hidden-layer (and conv) non-linearity
    init: str = "he"  # he suits ReLU; glorot/lecun suit sigmoid/tanh; tutorial = randn/sqrt(fan_in)
    dtype: str = "float32"  # float32 is twice as fast; float64 for gradient checks
    conv: tuple[str, ...] = ()  # conv front as normalised tokens, e.g. ("conv5x16", "pool2")

    def __post_init__(self) -> None:
        hidden = self.hidden
        if isinstance(hidden, int | str) or not hasattr(hidden, "__iter__"):
            raise ValueError(f"hidden must be a list of layer sizes, got {hidden!r}")
        hidden = tuple(hidden)
        object.__setattr__(self, "hidden", hidden)
        _check_int("n_inputs", self.n_inputs, 1, 1 << 20)
        _check_int("n_classes", self.n_classes, 2, 1 << 16)
        if len(hidden) > MAX_LAYERS:
            raise ValueError(f"at most {MAX_LAYERS} hidden layers are allowed, got {len(hidden)}")
        for units in hidden:
            _check_int("hidden layer size", units, 1, MAX_UNITS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("init", self.init, INITS)
        _check_choice("dtype", self.dtype, DTYPES)
        self._check_conv()

    def _check_conv(self) -> None:
        conv = self.conv
        if isinstance(conv, str) or not hasattr(conv, "__iter__"):
            raise ValueError(f"conv must be a list of layers such as conv5x16, got {conv!r:.40}")
        layers = [conv_layer(token) for token in conv]
        object.__setattr__(self, "conv", tuple(layer.token for layer in layers))
        if not layers:
            return
        n_convs = sum(layer.kind == "conv" for layer in layers)
        if n_convs > MAX_CONV_LAYERS:
            raise ValueError(f"at most {MAX_CONV_LAYERS} conv layers are allowed, got {n_convs}")
        if layers[0].kind != "conv":
            raise ValueError(
                f"{layers[0].token} must follow a conv layer; start with e.g. conv5x16"
            )
        side = math.isqrt(self.n_inputs)
        if side * side != self.n_inputs:
            raise ValueError(f"conv layers need square images; {self.n_inputs} inputs are not")
        shape = (side, side, 1)
        for layer in layers:
            out = layer.output_shape(shape)
            if out[0] < 1:
                raise ValueError(f"{layer.token} shrinks the {shape[0]}×{shape[1]} image below 1×1")
            shape = out
        if (floats := self.activation_floats_per_example) > MAX_ACTIVATION_FLOATS:
            raise ValueError(
                f"these conv layers need {floats:,} numbers per image; at most "
                f"{MAX_ACTIVATION_FLOATS:,} are allowed"
            )

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-friendly values; an MLP's has no "conv" key."""
        d = super().to_dict()
        if not self.conv:  # so an MLP's dict and model file are byte-for-byte as before
            del d["conv"]
        return d

    @property
    def conv_layers(self) -> tuple[ConvLayer, ...]:
        """The conv front, parsed: () for an MLP."""
        return tuple(conv_layer(token) for token in self.conv)

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """(h, w, c) of one image entering the conv front and after each of its layers."""
        if not self.conv:
            return []
        side = math.isqrt(self.n_inputs)
        shapes = [(side, side, 1)]
        for layer in self.conv_layers:
            shapes.append(layer.output_shape(shapes[-1]))
        return shapes

    @property
    def sizes(self) -> tuple[int, ...]:
        """Widths of the dense layers from their input to the output, e.g. (784, 128, 10).

        With a conv front the first is the flattened features' size, e.g. (512, 128, 10).
        """
        shapes = self.conv_shapes()
        n_features = math.prod(shapes[-1]) if shapes else self.n_inputs
        return (n_features, *self.hidden, self.n_classes)

    @property
    def spec(self) -> str:
        """The layers as a person types them: "256,128", or "conv5x16,pool2,dense128"."""
        if not self.conv:
            return ",".join(str(units) for units in self.hidden)
        return ",".join([*self.conv, *(f"dense{units}" for units in self.hidden)])

    @property
    def architecture(self) -> str:
        """A short name: "784-128-10", or "28x28-conv5x16-pool2-2304-128-10" with a conv front."""
        dense = [str(s) for s in self.sizes]
        if not self.conv:
            return "-".join(dense)
        side = math.isqrt(self.n_inputs)
        return "-".join([f"{side}x{side}", *self.conv, *dense])

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """{name: shape} of every parameter, in order: conv1_W, conv1_b, …, W1, b1, …."""
        shapes: dict[str, tuple[int, ...]] = {}
        convs = [
            (layer, shape)
            for layer, shape in zip(self.conv_layers, self.conv_shapes(), strict=False)
            if layer.kind == "conv"
        ]
        for i, (layer, (_, _, c_in)) in enumerate(convs, start=1):
            k, c_out = layer.size, layer.channels
            shapes[f"conv{i}_W"], shapes[f"conv{i}_b"] = (k * k * c_in, c_out), (c_out,)
        for i, (n_in, n_out) in enumerate(itertools.pairwise(self.sizes), start=1):
            shapes[f"W{i}"], shapes[f"b{i}"] = (n_in, n_out), (n_out,)
        return shapes

    @property
    def n_parameters(self) -> int:
        """Weights and biases of a network with this configuration."""
        return sum(math.prod(shape) for shape in self.parameter_shapes().values())

    @property
    def flops_per_example(self) -> int:
        """Arithmetic of one training pass (forward and backward) per image.

        About 6 per use of a weight: a multiply-add forward, two backward (dW and dX). A dense
        weight is used once per image, a conv weight once per output pixel; for an MLP this is
        exactly 6 × n_parameters.
        """
        flops = sum(6 * (n_in * n_out + n_out) for n_in, n_out in itertools.pairwise(self.sizes))
        for layer, shape in zip(self.conv_layers, self.conv_shapes(), strict=False):
            if layer.kind == "conv":
                oh, ow, c_out = layer.output_shape(shape)
                flops += 6 * (layer.size**2 * shape[2] * c_out + c_out) * oh * ow
        return flops

    @property
    def activation_floats_per_example(self) -> int:
        """Numbers one training pass keeps per image: inputs, outputs, patches and gradients.

        For an MLP: the scaled input, then Z, A and dA of each layer. A conv adds its patches
        (and their gradient, except in the first layer), its output and, below the first, the
        gradient of its (padded) input; a pool its output, argmax and input gradient.
        """
        sizes = self.sizes
        floats = self.n_inputs + 3 * sum(sizes[1:])
        shapes = self.conv_shapes()
        if shapes:
            floats += sizes[0]  # the first dense layer's dX, the flattened features' gradient
        for i, (layer, shape) in enumerate(zip(self.conv_layers, shapes, strict=False)):
            h, w, c = shape
            oh, ow, c_out = layer.output_shape(shape)
            if layer.kind == "pool":
                floats += 2 * oh * ow * c + h * w * c  # Y, argmax (bytes, counted whole), dX
                continue
            k = layer.size
            patches = oh * ow * k * k * c
            padded = (oh + k - 1) * (ow + k - 1) * c  # the input, padded for "same"
            floats += patches + oh * ow * c_out + (padded if layer.padding == "same" else 0)
            if i > 0:
                floats += patches + padded  # dcols and dX
        return floats


@dataclass(frozen=True)
class TrainConfig(_DictMixin):
    """How to train: optimiser, step size, batching, regularisation and seed."""

    optimizer: str = "adam"  # sgd | momentum | adam
    learning_rate: float = 1e-3  # adam likes 1e-3; plain sgd needs ~0.1
    batch_size: int | None = 128  # None means full-batch gradient descent (the tutorial's)
    epochs: int = 5  # passes over the training set
    weight_decay: float = 0.0  # L2 penalty ½·λ·‖W‖² on weights (not biases)
    momentum: float = 0.9  # used by the momentum optimiser only
    lr_schedule: str = "constant"  # cosine anneals to 0 by the last step
    seed: int = 0  # weights and shuffling both follow from it

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_float("learning rate", self.learning_rate, 0.0, MAX_LEARNING_RATE, open_low=True)
        if self.batch_size is not None:
            _check_int("batch size", self.batch_size, 1, 1 << 24)
        _check_int("epochs", self.epochs, 1, MAX_EPOCHS)
        _check_float("weight decay", self.weight_decay, 0.0, 1.0, open_low=False)
        _check_float("momentum", self.momentum, 0.0, 0.999, open_low=False)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _check_int("seed", self.seed, 0, 2**32 - 1)
