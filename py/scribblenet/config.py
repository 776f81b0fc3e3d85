"""Frozen, validated configuration for the network and its training."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Self

__all__ = [
    "ACTIVATIONS",
    "DTYPES",
    "INITS",
    "LR_SCHEDULES",
    "MAX_EPOCHS",
    "MAX_LAYERS",
    "MAX_UNITS",
    "OPTIMIZERS",
    "NetworkConfig",
    "TrainConfig",
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


@dataclass(frozen=True)
class NetworkConfig(_DictMixin):
    """Architecture of a fully connected classifier: inputs → hidden layers → softmax."""

    n_inputs: int = 784  # 28×28 pixels, flattened row-major
    hidden: tuple[int, ...] = (128,)  # units per hidden layer; () is softmax regression
    n_classes: int = 10  # digits 0-9
    activation: str = "relu"  # hidden-layer non-linearity
    init: str = "he"  # he suits ReLU; glorot/lecun suit sigmoid/tanh; tutorial = randn/sqrt(fan_in)
    dtype: str = "float32"  # float32 is twice as fast; float64 for gradient checks

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

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer widths from input to output, e.g. (784, 128, 10)."""
        return (self.n_inputs, *self.hidden, self.n_classes)


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
