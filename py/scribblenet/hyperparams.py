"""Every hyperparameter defined once: its field, its parser, its choices and the presets.

The command line builds its options from `FIELDS`, the page builds its form and preset menu from
`settings_schema()` (written to the site as settings.json), and both turn text into configs with
`parse_settings`, so a value means the same thing, and is refused with the same words, everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from .config import (
    ACTIVATIONS,
    DTYPES,
    INITS,
    LR_SCHEDULES,
    MAX_UNITS,
    OPTIMIZERS,
    NetworkConfig,
    TrainConfig,
    conv_layer,
)

__all__ = [
    "DEFAULT_PRESET",
    "FIELDS",
    "MAX_BROWSER_FLOPS",
    "MAX_BROWSER_PARAMETERS",
    "PAGE_PRESET",
    "PRESETS",
    "Field",
    "Preset",
    "Settings",
    "batch_size_error",
    "form_values",
    "n_parameters",
    "parse_field",
    "parse_settings",
    "preset_configs",
    "settings_schema",
]

# A tab's WebAssembly heap holds weights, gradients and optimiser state (~4 copies): keep it small.
MAX_BROWSER_PARAMETERS = 5_000_000
# Arithmetic per image of a training step (`NetworkConfig.flops_per_example`): 15× the cnn
# preset's. Beyond it one pass over the test set alone would hold a tab's worker for minutes.
# No MLP that fits in MAX_BROWSER_PARAMETERS comes near it (6 per parameter).
MAX_BROWSER_FLOPS = 100_000_000
_NETWORK_FIELDS = frozenset(f.name for f in fields(NetworkConfig))
_TRAIN_FIELDS = frozenset(f.name for f in fields(TrainConfig))


@dataclass(frozen=True)
class Field:
    """One hyperparameter as a person types it: label, help, kind of value and allowed choices."""

    name: str  # the NetworkConfig/TrainConfig field, the form control, the CLI flag (--a-b)
    label: str
    kind: str  # layers | int | float | batch | choice
    help: str
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for kind "choice"
    suggestions: tuple[str, ...] = ()  # typical values offered next to a text box
    aliases: tuple[str, ...] = ()  # older CLI spellings that still work

    @property
    def flag(self) -> str:
        """The command-line option, e.g. --learning-rate."""
        return "--" + self.name.replace("_", "-")

    @property
    def input_mode(self) -> str:
        """The on-screen keyboard a phone should offer."""
        return {"int": "numeric", "float": "decimal"}.get(self.kind, "text")


def _labelled(values: tuple[str, ...], labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """(value, label) pairs in the labels' order (the menu's), covering exactly `values`."""
    assert set(labels) == set(values), f"labels for {sorted(labels)} but values {sorted(values)}"
    return tuple(labels.items())


FIELDS: tuple[Field, ...] = (
    Field("hidden", "Layers", "layers",
          "dense units, e.g. 128 or 256,128; conv layers go first, e.g. "
          "conv5x16,pool2,conv5x32,pool2,dense128 (convKxC: C filters of K×K, convKxCsame keeps "
          "the size; poolN: N×N max-pool)",
          suggestions=("128", "256,128", "conv5x16,pool2,conv5x32,pool2,dense128"),
          aliases=("--arch", "--layers")),
    Field("activation", "Activation", "choice", "the hidden layers' non-linearity",
          _labelled(ACTIVATIONS, {"relu": "ReLU", "leaky_relu": "leaky ReLU", "tanh": "tanh",
                                  "sigmoid": "sigmoid"})),
    Field("init", "Initialisation", "choice", "how the first weights are drawn",
          _labelled(INITS, {"he": "He", "glorot": "Glorot", "lecun": "LeCun",
                            "tutorial": "tutorial (randn/√n)"})),
    Field("optimizer", "Optimiser", "choice", "the update rule",
          _labelled(OPTIMIZERS, {"adam": "Adam", "momentum": "SGD + momentum",
                                 "sgd": "gradient descent"})),
    Field("learning_rate", "Learning rate", "float", "step size, e.g. 0.001 for Adam, 0.1 for SGD",
          aliases=("--lr",)),
    Field("batch_size", "Batch size", "batch", "a number, or “full” (or empty) for full-batch",
          suggestions=("32", "64", "128", "256", "full")),
    Field("epochs", "Epochs", "int", "passes over the training set"),
    Field("seed", "Seed", "int", "weights and shuffling both follow from it"),
    Field("lr_schedule", "Schedule", "choice", "how the learning rate changes",
          _labelled(LR_SCHEDULES, {"constant": "constant rate", "cosine": "cosine annealing"}),
          aliases=("--schedule",)),
    Field("dtype", "Precision", "choice", "float32 is twice as fast as float64",
          _labelled(DTYPES, {"float32": "float32", "float64": "float64"})),
    Field("weight_decay", "Weight decay", "float", "L2 penalty on the weights, e.g. 0.0001"),
    Field("momentum", "Momentum", "float", "for SGD + momentum only, e.g. 0.9"),
)  # fmt: skip
_BY_NAME = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class Preset:
    """A named configuration: every field's value as text, and where it is offered."""

    key: str
    label: str
    values: Mapping[str, str] = field(default_factory=dict)
    in_page: bool = True  # False: command line only (too slow, or needs augmentation)
    note: str = ""  # what it takes and reaches in the page, measured (scripts/bench_browser.py)
    caution: str = ""  # said before it starts: slow, or a weak model


_BASE = {"hidden": "128", "activation": "relu", "init": "he", "optimizer": "adam",
         "learning_rate": "0.001", "batch_size": "128", "epochs": "5", "seed": "0",
         "lr_schedule": "constant", "dtype": "float32", "weight_decay": "0",
         "momentum": "0.9"}  # fmt: skip


def _preset(
    key: str, label: str, in_page: bool = True, note: str = "", caution: str = "", **values: str
) -> Preset:
    return Preset(key, label, {**_BASE, **values}, in_page, note, caution)


# `note`: click Train to done, and the final MNIST test accuracy, in the page on this project's
# 2-core machine (scripts/bench_browser.py --only train --form …, 2026-12-02; Chromium 156).
_KEEP = "It becomes the current model when it finishes; the history keeps the one you have now."
PRESETS: tuple[Preset, ...] = (
    _preset("fast", "Fast: 128 ReLU units, Adam 0.007 annealed, 3 epochs (≈ 97.8 %)",
            note="about 5 s here, 97.8 % on the test set",
            learning_rate="0.007", lr_schedule="cosine", epochs="3"),
    _preset("quick", "Quick look: 32 ReLU units, 1 epoch",
            note="about 1 s here, 94.1 % on the test set",
            caution=f"A weak model: about 94 % (the pretrained one reads about 98 %). {_KEEP}",
            hidden="32", learning_rate="0.003", epochs="1"),
    _preset("deep", "Deeper: 256,128 ReLU, Adam, 5 epochs", hidden="256,128", batch_size="64",
            note="about 18 s here, 97.9 % on the test set"),
    # Two conv layers, LeNet-like, tuned for the time to 99.0 % in the page: batch 64 and two
    # cosine-annealed epochs. On the page's data natively (OMP_NUM_THREADS=1, 2026-12-02), seeds
    # 0/1/2 end at 99.16/99.05/99.24 % (lr 0.002: 99.16/99.05/99.11); batch 128 with two epochs
    # ends at 98.99 %, and four (the former preset) reached 99.0 % only at epoch 3, in twice the
    # time. With two BLAS threads on the shared machine, OpenBLAS's waiting threads starve the
    # im2col work between products: ~10× slower, so one thread is the one.
    _preset("cnn", "Convolutional: conv5x16,pool2,conv5x32,pool2,dense128, Adam 0.003 "
            "annealed, batch 64, 2 epochs (≈ 99.1 %)",
            note="under 1 min here (about as long natively), 99.1 % on the test set",
            caution=("Slow: just under a minute here, for about 99.1 % (the pretrained model "
                     f"reads about 98 %). {_KEEP}"),
            hidden="conv5x16,pool2,conv5x32,pool2,dense128", learning_rate="0.003",
            lr_schedule="cosine", batch_size="64", epochs="2"),
    # The tutorial's __main__ exactly: NeuralNetwork([50, 10]).fit(lr=0.1, n_iterations=100).
    _preset("tutorial", "The tutorial's: 50 sigmoid, full-batch gradient descent, lr 0.1",
            note="about 9 min here, 74.2 % on the test set",
            caution=("Slow and weak: about 9 minutes here for about 74 %: the tutorial's own "
                     f"full-batch gradient descent in float64, exactly as it wrote it. {_KEEP}"),
            hidden="50", activation="sigmoid", init="tutorial", optimizer="sgd",
            learning_rate="0.1", batch_size="full", epochs="100", seed="1", dtype="float64"),
    # The CLI default: 98.5 % on the MNIST test set in about half a minute on two cores.
    _preset("default", "Command-line default: 512 ReLU, Adam 0.002 annealed, 12 epochs (≈ 98.5 %)",
            in_page=False, hidden="512", learning_rate="0.002", lr_schedule="cosine", epochs="12"),
    # The recipe of web/models/pretrained.npz (with --augment handwriting).
    _preset("pretrained", "The page's pretrained model: 256 ReLU, Adam 0.002 annealed, 20 epochs",
            in_page=False, hidden="256", learning_rate="0.002", lr_schedule="cosine",
            epochs="20", weight_decay="0.00001"),
)  # fmt: skip
_PRESETS = {p.key: p for p in PRESETS}
DEFAULT_PRESET = "default"  # the command line's
PAGE_PRESET = "fast"  # what the page's form shows first


def _show(value: Any) -> str:
    """repr(value), cut short: a pasted novel must not become the error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_DENSE_TOKEN = re.compile(r"(?:dense)?(\d+)")
_CONV_TOKEN = re.compile(r"conv\d+x\d+(?:same|valid)?|pool\d+")


def _parse_layers(name: str, value: Any) -> tuple[int | str, ...]:
    """The layers spec, e.g. "conv5x16,pool2,dense128": conv/pool tokens, then dense sizes.

    Conv and pool layers come back as normalised tokens (str), dense layers as sizes (int), so
    an MLP's spec is its tuple of sizes, as it always was.
    """
    if isinstance(value, list | tuple):
        parts = [str(v).strip() for v in value]
    else:
        text = str(value).strip()
        parts = [] if text.lower() == "none" else [p for p in re.split(r"[\s,]+", text) if p]
    layers: list[int | str] = []
    dense = ""  # the first dense layer seen: nothing convolutional may follow it
    for typed in parts:
        part = typed.lower()  # "Conv5x16" is conv5x16; messages quote what was typed
        if match := _DENSE_TOKEN.fullmatch(part):
            if len(match[1]) > 9:  # int() of 5,000 digits is slow, then refused anyway
                limit = f"an integer from 1 to {MAX_UNITS}"
                raise ValueError(f"hidden layer size must be {limit}, got {_show(typed)}")
            layers.append(int(match[1]))
            dense = dense or part
        elif _CONV_TOKEN.fullmatch(part):
            if dense:
                raise ValueError(
                    f"{_show(part)[1:-1]} comes after the dense layer {dense}: conv and pool "
                    "layers go first"
                )
            layers.append(conv_layer(part).token)
        else:
            raise ValueError(
                f"layer {_show(typed)} is not understood: use whole numbers (dense units) or "
                "conv5x16, conv3x32same, pool2, dense128, separated by commas"
            )
    return tuple(layers)


def _split_layers(layers: tuple[int | str, ...]) -> dict[str, tuple[Any, ...]]:
    """A parsed spec as NetworkConfig fields: {"conv": tokens, "hidden": sizes}."""
    return {
        "conv": tuple(layer for layer in layers if isinstance(layer, str)),
        "hidden": tuple(layer for layer in layers if not isinstance(layer, str)),
    }


def _parse_int(name: str, value: Any) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"{name} must be a whole number, got {_show(value)}")
    if len(text.lstrip("+-")) > 18:
        raise ValueError(f"{name} is far too large, got {_show(value)}")
    return int(text)


def _parse_batch(name: str, value: Any) -> int | None:
    if value is None or str(value).strip().lower() in ("", "full", "all"):
        return None  # full-batch gradient descent
    size = _parse_int(name, value)
    if size < 1:  # 0 once meant "full batch"; a typed 0 is more likely a slip than a wish for it
        raise ValueError(
            f"batch size must be at least 1, got {size}; leave it empty or type 'full' for "
            "full-batch descent"
        )
    return size


def _parse_float(name: str, value: Any) -> float:
    text = str(value).strip()
    try:
        if len(text) > 64:
            raise ValueError
        number = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {_show(value)}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {_show(value)}")
    return number


def _parse_choice(name: str, value: Any) -> str:
    return str(value).strip()  # the config dataclass checks it against the allowed values


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "layers": _parse_layers,
    "int": _parse_int,
    "float": _parse_float,
    "batch": _parse_batch,
    "choice": _parse_choice,
}


def parse_field(name: str, value: Any) -> Any:
    """Parse and validate one field's value (text or number); ValueError says what is allowed.

    Parameters
    ----------
    name : a field of `FIELDS`, e.g. "learning_rate".
    value : what was typed ("0.01", "256,128", "conv5x16,pool2,dense128", "full") or an
        already typed value.

    Returns
    -------
    The config value: int, float, str, None (full batch), or for the layers a tuple of conv
    and pool tokens (str, e.g. "conv5x16") followed by dense layer sizes (int).
    """
    spec = _BY_NAME.get(name)
    if spec is None:
        raise ValueError(f"unknown setting {str(name)[:40]!r}")
    parsed = _PARSERS[spec.kind](spec.label.lower(), value)
    # Each dataclass validates its own fields: try this one alone against the defaults.
    values = _split_layers(parsed) if spec.kind == "layers" else {name: parsed}
    try:
        (NetworkConfig if name in _NETWORK_FIELDS else TrainConfig)(**values)
    except TypeError as exc:
        raise ValueError(f"{spec.label.lower()}: {exc}") from None
    return parsed


class Settings(NamedTuple):
    """What `parse_settings` made of a form: both configs, or the errors by field."""

    network: NetworkConfig | None
    train: TrainConfig | None
    errors: dict[str, str]

    @property
    def ok(self) -> bool:
        """True when both configs were built."""
        return not self.errors


def n_parameters(network: NetworkConfig) -> int:
    """Weights and biases of a network with this configuration."""
    return network.n_parameters


def parse_settings(
    form: Any,
    *,
    max_parameters: int | None = MAX_BROWSER_PARAMETERS,
    max_flops: int | None = MAX_BROWSER_FLOPS,
) -> Settings:
    """Turn form values (text or numbers) into configs, with one message per bad field.

    Parameters
    ----------
    form : {field: value} for any of `FIELDS`; fields left out keep the config defaults.
    max_parameters : refuse bigger networks (a browser tab's limit); None for no limit.
    max_flops : refuse networks whose training step costs more per image (a tab's limit);
        None for no limit.

    Returns
    -------
    Settings(network, train, errors); the configs are None when errors is non-empty.
    """
    if not isinstance(form, Mapping):
        return Settings(None, None, {"_": f"settings must be fields, got {type(form).__name__}"})
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, raw in form.items():
        try:
            values[str(name)] = parse_field(str(name), raw)
        except (ValueError, OverflowError) as exc:
            errors[str(name)[:40]] = str(exc)
    if errors:
        return Settings(None, None, errors)
    network_values = {k: v for k, v in values.items() if k in _NETWORK_FIELDS}
    if "hidden" in network_values:
        network_values.update(_split_layers(network_values["hidden"]))
    network = NetworkConfig(**network_values)
    train = TrainConfig(**{k: v for k, v in values.items() if k in _TRAIN_FIELDS})
    if max_parameters is not None and network.n_parameters > max_parameters:
        message = (
            f"this network has {network.n_parameters:,} parameters; at most "
            f"{max_parameters:,} fit in a browser tab"
        )
        return Settings(None, None, {"hidden": message})
    if max_flops is not None and network.flops_per_example > max_flops:
        message = (
            f"this network needs {network.flops_per_example / 1e6:,.0f} million operations "
            f"per image and step; at most {max_flops / 1e6:,.0f} million are practical in a "
            "browser tab"
        )
        return Settings(None, None, {"hidden": message})
    return Settings(network, train, {})


def batch_size_error(train: TrainConfig, n_train: int) -> str | None:
    """The message when the batch is bigger than the training set, else None."""
    if train.batch_size is not None and train.batch_size > n_train:
        return f"batch size must be at most {n_train} (the training set size)"
    return None


def preset_configs(key: str, **overrides: Any) -> tuple[NetworkConfig, TrainConfig]:
    """The configs of a preset, some fields replaced; KeyError names the known presets."""
    if key not in _PRESETS:
        raise KeyError(f"unknown preset {key!r}; known: {', '.join(_PRESETS)}")
    settings = parse_settings(
        {**_PRESETS[key].values, **overrides}, max_parameters=None, max_flops=None
    )
    if not settings.ok:
        raise ValueError("; ".join(f"{k}: {v}" for k, v in settings.errors.items()))
    assert settings.network is not None and settings.train is not None
    return settings.network, settings.train


def form_values(network: NetworkConfig, train: TrainConfig) -> dict[str, str]:
    """The text a form shows for these configs: the inverse of `parse_settings`."""
    config = {**network.to_dict(), **train.to_dict()}
    text: dict[str, str] = {}
    for spec in FIELDS:
        value = config[spec.name]
        if spec.kind == "layers":
            text[spec.name] = network.spec  # "256,128", or "conv5x16,pool2,dense128"
        elif spec.kind == "batch" and value is None:
            text[spec.name] = "full"
        else:
            text[spec.name] = repr(value) if isinstance(value, float) else str(value)
    return text


def settings_schema() -> dict[str, Any]:
    """Fields and page presets as JSON-able values: what the page builds its form from."""
    default = _PRESETS[DEFAULT_PRESET].values
    page_presets = [p for p in PRESETS if p.in_page]
    return {
        "fields": [
            {
                "name": f.name,
                "label": f.label,
                "kind": f.kind,
                "help": f.help,
                "default": default[f.name],
                "choices": [{"value": v, "label": label} for v, label in f.choices],
                "suggestions": list(f.suggestions),
                "input_mode": f.input_mode,
            }
            for f in FIELDS
        ],
        "presets": [
            *(
                {
                    "key": p.key,
                    "label": p.label,
                    "values": dict(p.values),
                    "note": p.note,
                    "caution": p.caution,
                }
                for p in page_presets
            ),
            {"key": "custom", "label": "Custom", "values": {}, "note": "", "caution": ""},
        ],
        "initial_preset": PAGE_PRESET,
    }
