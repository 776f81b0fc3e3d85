"""The Python half of the browser worker: dataset, current model and trainer behind plain dicts.

Every method returns JSON-able values (dicts, lists, str, int, float, bool, bytes for model
files), so the worker can hand them to JavaScript without keeping Python objects alive. Bad
user input is reported as {"ok": False, "errors": {field: message}} rather than raised.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Generator
from dataclasses import fields
from typing import Any

import numpy as np

from .compact import CompactData, decode_compact_steps
from .config import NetworkConfig, TrainConfig
from .ink import ink_to_mnist
from .matmul import MatmulBackend
from .model_io import ModelFileError, model_from_bytes, model_to_bytes
from .network import Network
from .training import Trainer, trainer_rngs

__all__ = ["MAX_BROWSER_PARAMETERS", "Session", "parse_config"]

# A tab's WebAssembly heap holds weights, gradients and optimiser state (~4 copies): keep it small.
MAX_BROWSER_PARAMETERS = 5_000_000
_NETWORK_FIELDS = ("hidden", "activation", "init", "dtype")
_TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))


def _show(value: Any) -> str:
    """repr(value), cut short: a pasted novel must not become the error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_hidden(value: Any) -> tuple[int, ...]:
    if isinstance(value, list | tuple):
        parts = [str(v).strip() for v in value]
    else:
        parts = [p for p in re.split(r"[\s,]+", str(value).strip()) if p]
    if not all(re.fullmatch(r"\d+", p) for p in parts):
        raise ValueError(
            f"hidden layers must be whole numbers separated by commas, got {_show(value)}"
        )
    if any(len(p) > 9 for p in parts):  # int() of thousands of digits is slow, then refused
        raise ValueError(f"hidden layer size must be an integer from 1 to 4096, got {_show(value)}")
    return tuple(int(p) for p in parts)


def _parse_batch_size(value: Any) -> int | None:
    if value is None or str(value).strip().lower() in ("", "full", "all"):
        return None  # full-batch gradient descent
    size = _parse_int("batch size", value)
    if size < 1:
        # 0 once meant "full batch"; a typed 0 is more likely a slip than a wish for it.
        raise ValueError(
            f"batch size must be at least 1, got {size}; leave it empty or type 'full' for "
            "full-batch descent"
        )
    return size


def _parse_int(name: str, value: Any) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"{name} must be a whole number, got {_show(value)}")
    if len(text.lstrip("+-")) > 18:
        raise ValueError(f"{name} is far too large, got {_show(value)}")
    return int(text)


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


_PARSERS = {
    "hidden": _parse_hidden,
    "batch_size": _parse_batch_size,
    "epochs": lambda v: _parse_int("epochs", v),
    "seed": lambda v: _parse_int("seed", v),
    "learning_rate": lambda v: _parse_float("learning rate", v),
    "weight_decay": lambda v: _parse_float("weight decay", v),
    "momentum": lambda v: _parse_float("momentum", v),
}


def parse_config(form: dict[str, Any]) -> tuple[NetworkConfig | None, TrainConfig | None, dict]:
    """Turn form values (strings or numbers) into configs, collecting one message per bad field.

    Parameters
    ----------
    form : {field: value} with fields of NetworkConfig (hidden, activation, init, dtype) and
        TrainConfig; "hidden" may be "256,128", batch_size ""/"full" for full batch.

    Returns
    -------
    (network_config, train_config, errors); the configs are None when errors is non-empty.
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    if not isinstance(form, dict):
        return None, None, {"_": f"settings must be a dict of fields, got {type(form).__name__}"}
    for name, raw in form.items():
        if name not in _NETWORK_FIELDS and name not in _TRAIN_FIELDS:
            errors[str(name)] = f"unknown setting {str(name)[:40]!r}"
            continue
        try:
            value = _PARSERS.get(name, str)(raw)
            # Each dataclass validates its own fields: try this one alone against the defaults.
            (NetworkConfig if name in _NETWORK_FIELDS else TrainConfig)(**{name: value})
            values[name] = value
        except (ValueError, TypeError, OverflowError) as exc:
            errors[name] = str(exc)
    if errors:
        return None, None, errors
    network = NetworkConfig(**{k: v for k, v in values.items() if k in _NETWORK_FIELDS})
    train = TrainConfig(**{k: v for k, v in values.items() if k in _TRAIN_FIELDS})
    n_params = sum(a * b + b for a, b in itertools.pairwise(network.sizes))
    if n_params > MAX_BROWSER_PARAMETERS:
        errors["hidden"] = (
            f"this network has {n_params:,} parameters; at most {MAX_BROWSER_PARAMETERS:,} fit "
            "in a browser tab"
        )
        return None, None, errors
    return network, train, errors


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays inside events → Python numbers and lists (JSON/JS friendly)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Session:
    """One visitor's state: the dataset, the current network, and a trainer if one is running."""

    def __init__(self) -> None:
        self.data = None  # MNIST namedtuple once load_dataset has run
        self.net: Network | None = None
        self.source = "none"  # where the current weights came from: pretrained|trained|uploaded
        self.trainer: Trainer | None = None
        self.backend: MatmulBackend | None = None
        self._pretrained: bytes | None = None
        self._decoding: Generator[None, None, CompactData] | None = None  # begin_dataset's
        self._before: tuple[Network | None, str] = (None, "none")  # the model training replaced

    def describe(self) -> dict[str, Any]:
        """{architecture, activation, init, n_parameters, source, training} of the current model."""
        if self.net is None:
            return {"architecture": None, "source": self.source}
        c = self.net.config
        return {
            "architecture": "-".join(str(s) for s in c.sizes),
            "hidden": list(c.hidden),
            "activation": c.activation,
            "init": c.init,
            "n_parameters": int(self.net.n_parameters),
            "source": self.source,
            "training": _plain(self.net.metadata.get("training", {})),
        }

    def set_backend(self, backend: MatmulBackend | None) -> None:
        """Route matrix products of this and every later network through `backend`."""
        self.backend = backend
        if self.net is not None and backend is not None:
            self.net.set_backend(backend)

    def use_wasm_backend(self) -> dict[str, Any]:
        """Multiply with the WebAssembly SIMD kernel if the worker installed it; {ok, reason}."""
        from .wasm_matmul import load_wasm_backend

        backend, reason = load_wasm_backend()
        if backend is not None:
            self.set_backend(backend)
        return {"ok": backend is not None, "reason": reason}

    def _use(self, net: Network, source: str) -> dict[str, Any]:
        if self.backend is not None:
            net.set_backend(self.backend)
        self.net, self.source, self.trainer = net, source, None
        return {"ok": True, "model": self.describe()}

    def load_dataset(self, data: bytes) -> dict[str, Any]:
        """Decode the compact dataset; {ok, n_train, n_test} or {ok: False, error}."""
        self.begin_dataset(data)
        while not (result := self.continue_dataset())["done"]:
            pass
        return result

    def begin_dataset(self, data: bytes) -> None:
        """Start decoding the compact dataset; `continue_dataset` does the work in steps."""
        self._decoding = decode_compact_steps(bytes(data))

    def continue_dataset(self) -> dict[str, Any]:
        """Decode one more block of images (a fraction of a second in the browser).

        Returns {done: False} while there is more, then {done: True, ok, n_train, n_test} or
        {done: True, ok: False, error}.
        """
        if self._decoding is None:
            return {"done": True, "ok": False, "error": "no dataset is being decoded"}
        try:
            next(self._decoding)
            return {"done": False}
        except StopIteration as finished:
            self.data = finished.value.mnist
        except ValueError as exc:
            self._decoding = None
            return {"done": True, "ok": False, "error": f"the training data is corrupt: {exc}"}
        self._decoding = None
        n_train, n_test = len(self.data.y_train), len(self.data.y_test)
        return {"done": True, "ok": True, "n_train": n_train, "n_test": n_test}

    def load_model(self, data: bytes, *, source: str = "uploaded") -> dict[str, Any]:
        """Replace the current model by a model file's; {ok, model} or {ok: False, error}.

        source="pretrained" also remembers the bytes for `reset_to_pretrained`.
        """
        try:
            net = model_from_bytes(bytes(data))
        except ModelFileError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a damaged zip member can fail deep inside zlib/zipfile
            return {"ok": False, "error": f"not a valid model file ({type(exc).__name__}: {exc})"}
        if net.config.n_inputs != 784 or net.config.n_classes != 10:
            return {"ok": False, "error": f"not a digit model: layer sizes {net.config.sizes}"}
        if source == "pretrained":
            self._pretrained = bytes(data)
        return self._use(net, source)

    def reset_to_pretrained(self) -> dict[str, Any]:
        """Go back to the model the page shipped with."""
        if self._pretrained is None:
            return {"ok": False, "error": "the pretrained model has not been loaded"}
        return self.load_model(self._pretrained, source="pretrained")

    def export_model(self) -> bytes:
        """The current model as .npz bytes, the same format as the command line writes."""
        if self.net is None:
            raise ValueError("there is no model to export yet")
        return model_to_bytes(self.net)

    def _validate(self, form: dict[str, Any]) -> tuple[Any, Any, dict[str, str]]:
        """parse_config plus the checks that need the data: (network, train, errors)."""
        network, train, errors = parse_config(dict(form))
        if not errors and self.data is not None and train.batch_size is not None:
            n = len(self.data.y_train)
            if train.batch_size > n:
                errors["batch_size"] = f"batch size must be at most {n} (the training set size)"
        return network, train, errors

    def configure(self, form: dict[str, Any]) -> dict[str, Any]:
        """Validate hyperparameters; {ok, network, train} or {ok: False, errors: {field: msg}}."""
        network, train, errors = self._validate(form)
        if errors:
            return {"ok": False, "errors": errors}
        return {"ok": True, "network": network.to_dict(), "train": train.to_dict()}

    def start_training(self, form: dict[str, Any], subset: int | None = None) -> dict[str, Any]:
        """Build a fresh network from the form and a trainer for it; run it with `train_chunk`.

        Parameters
        ----------
        form : hyperparameters, as for `configure`.
        subset : train on the first `subset` training images only (quick demos and tests).
        """
        network, train, errors = self._validate(form)
        if self.data is None:
            errors.setdefault("_", "the training data has not loaded yet")
        elif subset is not None and not (isinstance(subset, int) and subset >= 1):
            errors.setdefault("_", f"subset must be a positive whole number, got {_show(subset)}")
        if errors:
            return {"ok": False, "errors": errors}
        d = self.data
        X_train, y_train = d.X_train[:subset], d.y_train[:subset]  # (n, 784), (n,)
        if train.batch_size is not None and train.batch_size > len(y_train):
            n = len(y_train)
            return {"ok": False, "errors": {"batch_size": f"batch size must be at most {n}"}}
        init_rng, data_rng = trainer_rngs(train.seed)
        net = Network(network, init_rng)
        net.metadata = {"training": {"where": "browser", "config": train.to_dict()}}
        self._before = (self.net, self.source)
        self._use(net, "trained")
        self.trainer = Trainer(net, train, X_train, y_train, d.X_test, d.y_test, rng=data_rng)
        return {
            "ok": True,
            "model": self.describe(),
            "n_train": self.trainer.n_train,
            "n_batches": self.trainer.n_batches,
            "total_steps": self.trainer.total_steps,
            "batch_size": self.trainer.batch_size,
        }

    def train_chunk(self, max_batches: int) -> list[dict[str, Any]]:
        """Train up to `max_batches` batches; the Trainer's events as plain dicts.

        If the first epoch diverges there are no good weights of this run to keep, so the model
        in use before training (the pretrained one, say) comes back; the event says so.
        """
        if self.trainer is None:
            return []
        events = [_plain(e) for e in self.trainer.run(max_batches)]
        for e in events:
            if e["type"] == "epoch" and "test_accuracy" in e:
                self.net.metadata["training"].update(
                    epochs=e["epoch"], test_accuracy=e["test_accuracy"]
                )
            elif e["type"] == "diverged" and e["epoch"] == 1 and self._before[0] is not None:
                net, source = self._before
                rate = self.trainer.config.learning_rate
                self._use(net, source)
                e["kept"] = source
                e["reason"] = (
                    f"the cost became {e['cost']:.4g} in the first epoch (batch {e['batch']}): "
                    f"learning rate {rate:g} is probably too high. "
                    f"Training stopped; the previous model ({source}) is kept."
                )
        if self.trainer is not None and self.trainer.done:
            self.trainer = None
        return events

    def stop_training(self) -> dict[str, Any]:
        """Abandon the trainer, keeping the weights it has reached."""
        self.trainer = None
        return {"ok": True, "model": self.describe()}

    def predict_ink(self, alpha: Any, width: int, height: int) -> dict[str, Any]:
        """Classify a drawing from its canvas alpha channel (height, width), 0 = no ink.

        Returns
        -------
        {"digit", "probabilities" (10 floats), "input28" (784 uint8 ints, the network's view)},
        or {"empty": True, "message"} when the ink is not a digit (none, a speck, a full canvas).
        """
        pixels = alpha if isinstance(alpha, np.ndarray) else np.frombuffer(bytes(alpha), np.uint8)
        sizes_ok = all(isinstance(n, int) and n >= 1 for n in (width, height))
        if not sizes_ok or pixels.size != width * height:
            return {"empty": True, "message": f"the canvas is not {width}×{height} pixels"}
        ink = pixels.reshape(height, width)  # (h, w)
        if self.net is None:
            return {"empty": True, "message": "the model is still loading"}
        try:
            image = ink_to_mnist(ink)  # (28, 28) uint8
        except ValueError as exc:  # EmptyInkError ("draw a digit …") or a canvas full of ink
            return {"empty": True, "message": str(exc)}
        p = self.net.predict_proba(image.reshape(1, 784))[0].astype(np.float64)  # (10,)
        return {
            "empty": False,
            "digit": int(p.argmax()),
            "probabilities": (p / p.sum()).tolist(),
            "input28": image.reshape(-1).tolist(),
        }

    def __repr__(self) -> str:
        n = "no data" if self.data is None else f"{len(self.data.y_train)} training images"
        return f"Session({n}, model={self.describe()['architecture']}, source={self.source})"
