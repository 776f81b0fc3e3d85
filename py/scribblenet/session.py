"""The Python half of the browser worker: dataset, current model and trainer behind plain dicts.

Every method returns JSON-able values (dicts, lists, str, int, float, bool, bytes for model
files), so the worker can hand them to JavaScript without keeping Python objects alive. Bad
user input is reported as {"ok": False, "errors": {field: message}} rather than raised.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from .calibration import HELD_OUT, Calibration, model_digest
from .compact import CompactData, decode_compact_steps
from .config import NetworkConfig, TrainConfig
from .finetune import DigitsFileError, digits_from_bytes, digits_to_bytes
from .finetune_run import FinetuneRun
from .hyperparams import MAX_BROWSER_PARAMETERS, batch_size_error, form_values, parse_settings
from .ink import ink_to_mnist
from .insight import TestSetView, explain_reply, weights_reply
from .matmul import MatmulBackend
from .model_io import ModelFileError, model_from_bytes, model_to_bytes
from .network import Network
from .training import Trainer, trainer_rngs, training_bytes

if TYPE_CHECKING:  # importing .mnist at run time would pull urllib into the page's start-up
    from .mnist import MNIST

__all__ = ["MAX_TRAINING_BYTES", "SOURCE_LABELS", "Session"]

# What a trainer may add to the tab, beside the runtime (~100 MB) and the dataset (~55 MB): a
# WebAssembly heap never shrinks, so a run that does not fit must be refused before it starts.
MAX_TRAINING_BYTES = 512 << 20

# How the page names where the current weights came from.
SOURCE_LABELS = {
    "pretrained": "the pretrained model",
    "saved": "the model saved in this browser",
    "trained": "the model trained here",
    "uploaded": "the uploaded model",
    "finetuned": "the model fine-tuned on your digits",
}

WEIGHTS_EVERY_S = 1.0  # live first-layer tiles while training: about once a second
STALE_VIEW_S = 10.0  # while training, nearest test images may come from weights this old


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
        self.data: MNIST | None = None  # once the dataset is decoded
        self.net: Network | None = None
        self.source = "none"  # where the current weights came from: pretrained|trained|uploaded
        self.trainer: Trainer | None = None
        self.backend: MatmulBackend | None = None
        self._pretrained: bytes | None = None
        self._decoding: Generator[None, None, CompactData] | None = None  # begin_dataset's
        self._before: tuple[Network | None, str] = (None, "none")  # the model training replaced
        self._calibration: tuple[tuple[int, str], Calibration] | None = None  # (model key, fit)
        self.finetuning: FinetuneRun | None = None  # a fine-tune run in progress
        self._view: tuple[tuple[int, str], float, TestSetView] | None = None  # (key, made, view)
        self._weights_sent = 0.0  # perf_counter of the last live weights event

    def describe(self) -> dict[str, Any]:
        """{architecture, …, source, source_label, training, settings} of the current model.

        `settings` is the form's text for the configuration it was trained with, when known.
        """
        if self.net is None:
            return {"architecture": None, "source": self.source}
        c = self.net.config
        training = self.net.metadata.get("training", {})
        settings = None
        try:
            if config := training.get("config") or training.get("train"):
                settings = form_values(c, TrainConfig.from_dict(config))
        except (AttributeError, TypeError, ValueError):  # old, foreign or hostile metadata
            pass
        architecture = c.architecture
        return {
            "source_label": SOURCE_LABELS.get(self.source, self.source),
            "settings": settings,
            "architecture": architecture,
            "name": f"{architecture} ({c.activation})",
            "layers": c.spec,
            "conv": list(c.conv),
            "hidden": list(c.hidden),
            "activation": c.activation,
            "init": c.init,
            "n_parameters": int(self.net.n_parameters),
            "source": self.source,
            "training": _plain(training),
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
            self.data = data = finished.value.mnist
        except ValueError as exc:
            self._decoding = None
            return {"done": True, "ok": False, "error": f"the training data is corrupt: {exc}"}
        self._decoding = None
        n_train, n_test = len(data.y_train), len(data.y_test)
        self.calibration()  # now, so that the next drawing is not kept waiting for the fit
        return {"done": True, "ok": True, "n_train": n_train, "n_test": n_test}

    def load_model(self, data: bytes, *, source: str = "uploaded") -> dict[str, Any]:
        """Replace the current model by a model file's; {ok, model, ended} or {ok: False, error}.

        A run in progress ends only if the file is good; `ended` is then its done event, else None.

        source : where the file came from, one of `SOURCE_LABELS` (else "uploaded");
            "pretrained" also remembers the bytes for `reset_to_pretrained`.
        """
        try:
            net = model_from_bytes(bytes(data), max_parameters=MAX_BROWSER_PARAMETERS)
        except ModelFileError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a damaged zip member can fail deep inside zlib/zipfile
            return {"ok": False, "error": f"not a valid model file ({type(exc).__name__}: {exc})"}
        if net.config.n_inputs != 784 or net.config.n_classes != 10:
            return {"ok": False, "error": f"not a digit model: layer sizes {net.config.sizes}"}
        source = source if source in SOURCE_LABELS else "uploaded"  # the page names it
        if source == "pretrained":
            self._pretrained = bytes(data)
        ended = self.stop_training("replaced")  # only now: a refused file changes nothing
        return {**self._use(net, source), "ended": ended}

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

    def _parse(self, form: Any) -> tuple[NetworkConfig | None, TrainConfig | None, dict[str, str]]:
        """parse_settings plus the check that needs the data: (network, train, errors)."""
        settings = parse_settings(form)
        network, train, errors = settings.network, settings.train, dict(settings.errors)
        n_train = None if self.data is None else len(self.data.y_train)
        if train is not None and n_train and (message := batch_size_error(train, n_train)):
            errors["batch_size"] = message
        if network is not None and train is not None and not errors:
            needed = training_bytes(network, train, n_train or 60_000)
            if needed > MAX_TRAINING_BYTES:
                errors["hidden"] = (
                    f"training this network needs about {needed >> 20:,} MB; at most "
                    f"{MAX_TRAINING_BYTES >> 20:,} MB fit in a browser tab"
                )
        return network, train, errors

    def configure(self, form: dict[str, Any]) -> dict[str, Any]:
        """Validate hyperparameters; {ok, network, train} or {ok: False, errors: {field: msg}}."""
        network, train, errors = self._parse(form)
        if errors or network is None or train is None:
            return {"ok": False, "errors": errors}
        n_train = 60_000 if self.data is None else len(self.data.y_train)
        return {
            "ok": True,
            "network": network.to_dict(),
            "train": train.to_dict(),
            "memory_mb": round(training_bytes(network, train, n_train) / 2**20, 1),
        }

    def start_training(self, form: dict[str, Any], subset: int | None = None) -> dict[str, Any]:
        """Build a fresh network from the form and a trainer for it; run it with `train_chunk`.

        Parameters
        ----------
        form : hyperparameters, as for `configure`.
        subset : train on the first `subset` training images only (quick demos and tests).
        """
        network, train, errors = self._parse(form)
        if self.data is None:
            errors.setdefault("_", "the training data has not loaded yet")
        elif subset is not None and not (isinstance(subset, int) and subset >= 1):
            errors.setdefault("_", f"subset must be a positive whole number, got {subset!r:.40}")
        if errors or network is None or train is None or self.data is None:
            return {"ok": False, "errors": errors}
        d = self.data
        X_train, y_train = d.X_train[:subset], d.y_train[:subset]  # (n, 784), (n,)
        if message := batch_size_error(train, len(y_train)):
            return {"ok": False, "errors": {"batch_size": message}}
        init_rng, data_rng = trainer_rngs(train.seed)
        net = Network(network, init_rng)
        net.metadata = {"training": {"where": "browser", "config": train.to_dict()}}
        ended = self.stop_training("replaced")
        self._before = (self.net, self.source)
        self._use(net, "trained")
        self.trainer = Trainer(net, train, X_train, y_train, d.X_test, d.y_test, rng=data_rng)
        return {
            "ok": True,
            "ended": ended,
            "model": self.describe(),
            "n_train": self.trainer.n_train,
            "n_batches": self.trainer.n_batches,
            "total_steps": self.trainer.total_steps,
            "batch_size": self.trainer.batch_size,
        }

    def start_finetune(self, images: Any, labels: Any, seed: int | None = None) -> dict[str, Any]:
        """Fine-tune the current model on a person's digits; run it with `train_chunk`.

        Cross-validation first (the honest before/after on the person's digits), then the model
        itself (`finetune_run.FinetuneRun`). The current model stays in use until the end; the
        fine-tuned one then replaces it (source "finetuned") and the done event carries its file
        and {"result": {n, folds, own_before, own_after, test_before, test_after, seconds}}.

        Parameters
        ----------
        images : n·784 bytes (uint8 28×28 inputs, as `digitize` makes them). labels : n bytes.
        seed : for the folds, replay and augmentation; None: a fresh one.

        Returns
        -------
        {"ok": True, "kind": "finetune", "n", "model", "ended"} or {"ok": False, "errors": {"_"}}.
        """
        try:
            X, y = self._digits(images, labels)
            if self.net is None or self.data is None:
                raise ValueError("the training data has not loaded yet")
            d = self.data
            run = FinetuneRun(
                self.net, X, y, d.X_train, d.y_train, d.X_test, d.y_test,
                rng=np.random.default_rng(seed),
            )  # fmt: skip
        except ValueError as exc:
            return {"ok": False, "errors": {"_": str(exc)}}
        ended = self.stop_training("replaced")
        self.finetuning = run
        model = self.describe()
        return {"ok": True, "kind": "finetune", "n": run.n, "model": model, "ended": ended}

    def _finetune_chunk(self, seconds: float) -> list[dict[str, Any]]:
        """One chunk of fine-tuning: its latest progress event, and "done" once finished."""
        run = self.finetuning
        assert run is not None
        try:
            events = list(run.run(seconds))
        except Exception as exc:  # a bug or out-of-memory: the page must hear of it, not hang
            self.finetuning = None
            message = f"Fine-tuning failed: {type(exc).__name__}: {exc}"
            return [{"type": "done", "kind": "finetune", "reason": "error", "message": message,
                     "model": self.describe()}]  # fmt: skip
        progress = [e for e in events if e["type"] == "finetune"][-1:]
        if not run.done or run.tuned is None or run.result is None:
            return progress
        self.finetuning = None
        r = run.result
        tuned = run.tuned
        training = tuned.metadata.setdefault("training", {})
        training.update(
            where="browser finetune",
            test_accuracy=r["test_after"],
            finetune={  # the provenance `scribblenet finetune` writes too
                "digits": "My digits (this browser)",
                "n_digits": r["n"],
                "base_test_accuracy": r["test_before"],
                "folds": r["folds"],
                "own_accuracy_before": r["own_before"],
                "own_accuracy_after": r["own_after"],
                "config": run.config.to_dict(),
            },
        )
        self._use(tuned, "finetuned")
        message = (
            f"Fine-tuned on your {r['n']} digits: {r['own_before']:.0%} → {r['own_after']:.0%} "
            f"of your held-out digits read right; MNIST test {r['test_before']:.1%} → "
            f"{r['test_after']:.1%}."
        )
        done: dict[str, Any] = {"type": "done", "kind": "finetune", "reason": "finished"}
        done["message"] = message
        done.update(model=self.describe(), result=_plain(r), file=self.export_model())
        return [*progress, done]

    @staticmethod
    def _digits(images: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        """n·784 image bytes and n label bytes → (X (n, 784) uint8, y (n,) uint8), checked."""
        X, y = np.frombuffer(bytes(images), np.uint8), np.frombuffer(bytes(labels), np.uint8)
        if X.size != 784 * y.size:
            raise ValueError(f"{X.size} image bytes do not make {y.size} images of 28×28")
        if y.size and y.max() > 9:
            raise ValueError("labels must be digits 0-9")
        return X.reshape(-1, 784), y

    def export_digits(self, images: Any, labels: Any) -> bytes:
        """ "My digits" as a file (`digits_to_bytes`), for `scribblenet finetune --digits`."""
        X, y = self._digits(images, labels)
        return digits_to_bytes(X, y)

    def import_digits(self, data: Any) -> dict[str, Any]:
        """Read a "My digits" file: {ok, n, images (n·784 bytes), labels (n bytes)} or an error."""
        try:
            X, y = digits_from_bytes(bytes(data))
        except DigitsFileError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a damaged zip member can fail deep inside zlib/zipfile
            return {"ok": False, "error": f"not a digits file ({type(exc).__name__}: {exc})"}
        return {"ok": True, "n": len(y), "images": X.tobytes(), "labels": y.tobytes()}

    def train_chunk(self, budget_ms: float, max_batches: int | None = None) -> list[dict[str, Any]]:
        """Train whole batches for about `budget_ms` milliseconds (at least one); page-ready events.

        Returns the Trainer's "batch" and "epoch" events as plain values and, when the run has
        ended, a last {"type": "done", "reason": finished|diverged|error, "message", "model"}.
        `max_batches` caps the chunk as well. A first epoch that diverges leaves no good weights
        of this run, so the model in use before training (the pretrained one, say) comes back.
        """
        seconds = max(0.0, float(budget_ms)) / 1000
        if self.finetuning is not None:
            return self._finetune_chunk(seconds)
        if self.trainer is None:
            return []
        try:
            events = [_plain(e) for e in self.trainer.run(max_batches, seconds)]
        except Exception as exc:  # a bug or out-of-memory: the page must hear of it, not hang
            return [self._finish("error", f"{type(exc).__name__}: {exc}")]
        if not events:
            return []
        for event in events:
            if event["type"] == "epoch" and "test_accuracy" in event and self.net is not None:
                training = self.net.metadata.setdefault("training", {})
                training.update(epochs=event["epoch"], test_accuracy=event["test_accuracy"])
        self._add_weights(events)
        last = events[-1]
        if last.get("type") == "done":
            events[-1] = self._finish("finished", "Training finished.", file=self.export_model())
        elif last.get("type") == "diverged":
            events[-1] = self._diverged(last)
        return events

    def _add_weights(self, events: list[dict[str, Any]]) -> None:
        """Add a "weights" event (live first-layer tiles) after each epoch, else once a second.

        Only after whole batches or an epoch's end (a batch part or a test-set part changes no
        weight), never after a divergence (those weights are being thrown away), and before
        "done": the run's final weights.
        """
        kinds = {e["type"] for e in events}
        now = time.perf_counter()
        due = "epoch" in kinds or now - self._weights_sent >= WEIGHTS_EVERY_S
        if not due or not {"batch", "epoch"} & kinds or "diverged" in kinds or self.trainer is None:
            return
        self._weights_sent = now
        weights = {"type": "weights", **self.weight_tiles(), "step": self.trainer.step}
        events.insert(len(events) - (events[-1]["type"] == "done"), weights)

    def _diverged(self, event: dict[str, Any]) -> dict[str, Any]:
        """The done event of a diverged run, bringing back the previous model after epoch 1."""
        before, source = self._before
        if event["epoch"] > 1 or before is None:
            message = f"Training diverged: {event['reason']}"
            return self._finish("diverged", message, file=self.export_model())
        assert self.trainer is not None
        rate = self.trainer.config.learning_rate
        self._use(before, source)
        return self._finish(
            "diverged",
            f"Training diverged: the cost became {event['cost']:.4g} in the first epoch (batch "
            f"{event['batch']}): learning rate {rate:g} is probably too high. Training stopped; "
            f"{SOURCE_LABELS.get(source, 'the previous model')} is still in use.",
        )

    def _finish(self, reason: str, message: str, **extra: Any) -> dict[str, Any]:
        """The run's done event; `file` (model bytes), when given, is the run's model to keep."""
        self.trainer = None
        done = {"type": "done", "reason": reason, "message": message, "model": self.describe()}
        return {**done, **extra}

    def stop_training(self, reason: str = "stopped") -> dict[str, Any] | None:
        """End the run; the model in use before it comes back. Its done event, or None.

        A run cut short is rarely the model anyone wants to keep drawing with, so it is not
        kept as the current model: the event carries it as `file` (bytes) and `stopped_model`
        (its description), for the page's model history, where it can be chosen.

        reason : "stopped" (the user asked) or "replaced" (another model or run took over).
        """
        if self.finetuning is not None:
            self.finetuning = None
            kept = SOURCE_LABELS.get(self.source, "the previous model")
            message = f"Fine-tuning stopped; {kept} is still in use."
            return {"type": "done", "kind": "finetune", "reason": reason, "message": message,
                    "model": self.describe()}  # fmt: skip
        if self.trainer is None or self.net is None:
            return None
        trainer = self.trainer
        training = self.net.metadata.setdefault("training", {})
        training.update(stopped=True, steps=trainer.step)
        stopped, file = self.describe(), model_to_bytes(self.net)
        before, source = self._before
        if before is not None:
            self._use(before, source)
        where = (
            f"epoch {trainer.epoch + 1}, batch {trainer.step - trainer.epoch * trainer.n_batches}"
        )
        kept = SOURCE_LABELS.get(self.source, "the previous model") if before else "it"
        message = f"Training stopped at {where}; {kept} is still in use."
        return self._finish(reason, message, file=file, stopped_model=stopped)

    def calibration(self) -> Calibration:
        """The current model's `Calibration` (temperature, distance test), as `predict_ink` uses.

        Fitted on the first `HELD_OUT` test images (logits of 2,000 images, once per model) when
        the dataset is there, again whenever the weights change; until then, and while a run is
        changing the weights, `Calibration()`: T = 1 and the shape tests only. Calling it after
        the dataset has loaded saves the first prediction that moment.
        """
        if self.net is None or self.data is None or self.trainer is not None:
            return Calibration()
        key = (id(self.net), model_digest(self.net))
        if self._calibration is None or self._calibration[0] != key:
            X, y = self.data.X_test[:HELD_OUT], self.data.y_test[:HELD_OUT]
            try:
                fitted = Calibration.fit(self.net, X, y)
            except (ValueError, FloatingPointError):  # a diverged model's NaN weights, say
                fitted = Calibration()
            self._calibration = (key, fitted)
        return self._calibration[1]

    def predict_ink(self, alpha: Any, width: int, height: int) -> dict[str, Any]:
        """Classify a drawing from its canvas alpha channel (height, width), 0 = no ink.

        Returns
        -------
        {"digit", "probabilities" (10 calibrated floats), "input28" (784 uint8 ints, the
        network's view), "verdict": "digit" | "unsure" | "not_digit", and for the latter two a
        "message" ("Not sure — it might be a 7 or a 1", "That doesn't look like a digit")},
        or {"empty": True, "message"} when there is no digit to read (none, a dot, a full canvas).
        """
        if self.net is None:
            return {"empty": True, "message": "the model is still loading"}
        image = self._read_ink(alpha, width, height)
        if isinstance(image, dict):
            return image
        judgement = self.calibration().judge(self.net, image.reshape(1, 784))
        p = judgement.probabilities[0]  # (10,) float64, calibrated
        verdict = str(judgement.verdict[0])
        result = {
            "empty": False,
            "digit": int(p.argmax()),
            "probabilities": (p / p.sum()).tolist(),
            "input28": image.reshape(-1).tolist(),
            "verdict": verdict,
        }
        if verdict != "digit":
            result["message"] = judgement.message()
        return result

    @staticmethod
    def _read_ink(alpha: Any, width: int, height: int) -> np.ndarray | dict[str, Any]:
        """A canvas's alpha channel (height·width bytes) → its 28×28 uint8 network input.

        Or {"empty": True, "message"} when there is nothing to read (none, a dot, a full canvas).
        """
        pixels = alpha if isinstance(alpha, np.ndarray) else np.frombuffer(bytes(alpha), np.uint8)
        sizes_ok = all(isinstance(n, int) and n >= 1 for n in (width, height))
        if not sizes_ok or pixels.size != width * height:
            return {"empty": True, "message": f"the canvas is not {width}×{height} pixels"}
        try:
            image: np.ndarray = ink_to_mnist(pixels.reshape(height, width))  # (28, 28) uint8
        except ValueError as exc:  # EmptyInkError ("draw a digit …") or a canvas full of ink
            return {"empty": True, "message": str(exc)}
        return image

    def digitize(self, alpha: Any, width: int, height: int) -> dict[str, Any]:
        """A drawing as the network's 28×28 input, for "My digits": {empty, input28 | message}."""
        image = self._read_ink(alpha, width, height)
        if isinstance(image, dict):
            return image
        return {"empty": False, "input28": image.reshape(-1).tolist()}

    def explain_ink(self, alpha: Any, width: int, height: int) -> dict[str, Any]:
        """Why the current model reads a drawing as it does: `insight.explain_reply`'s reply.

        Saliency, runner-up, hidden activations, and once the dataset is in, the 8 nearest
        MNIST test images; or {"empty": True, "message"} when there is nothing to read.
        """
        if self.net is None:
            return {"empty": True, "message": "the model is still loading"}
        image = self._read_ink(alpha, width, height)
        if isinstance(image, dict):
            return image
        view = self._test_view() if self.data is not None else None
        return explain_reply(self.net, image, self.calibration().temperature, view)

    def _test_view(self) -> TestSetView:
        """The current model's `TestSetView`, made once per weights (10,000 forward passes).

        While a run changes the weights every chunk, a view up to `STALE_VIEW_S` old is reused:
        remaking it for every explained stroke would cost a second and stall the run.
        """
        assert self.net is not None and self.data is not None
        key = (id(self.net), model_digest(self.net))
        now = time.perf_counter()
        if self._view is not None:
            (net_id, digest), made, view = self._view
            fresh = digest == key[1] or (self.trainer is not None and now - made < STALE_VIEW_S)
            if net_id == key[0] and fresh:
                return view
        d, T = self.data, self.calibration().temperature
        view = TestSetView(self.net, d.X_test, d.y_test, T)
        self._view = (key, now, view)
        return view

    def weight_tiles(self) -> dict[str, Any]:
        """The first layer's weights as tiles (`insight.weights_reply`), or {ok: False, error}.

        epoch : completed epochs of the run in progress, else of the model's training (or None).
        """
        if self.net is None:
            return {"ok": False, "error": "the model is still loading"}
        if self.trainer is not None:
            return weights_reply(self.net, self.trainer.epochs_trained)
        epochs = self.net.metadata.get("training", {}).get("epochs")
        return weights_reply(self.net, epochs if isinstance(epochs, int) else None)

    def confusion(self) -> dict[str, Any]:
        """The current model's confusion matrix on the test set (`TestSetView.confusion`)."""
        if self.net is None or self.data is None:
            return {"ok": False, "error": "the test images are still loading"}
        return self._test_view().confusion()

    def mistakes(self, true: int, pred: int) -> dict[str, Any]:
        """The test images of one confusion cell (`TestSetView.mistakes`), or {ok: False, error}."""
        if not all(isinstance(d, int) and 0 <= d <= 9 for d in (true, pred)):
            return {"ok": False, "error": f"not a cell of the matrix: {true!r:.10}, {pred!r:.10}"}
        if self.net is None or self.data is None:
            return {"ok": False, "error": "the test images are still loading"}
        return self._test_view().mistakes(true, pred)

    def test_digit(self, seed: int | None = None) -> dict[str, Any]:
        """A random image of the loaded MNIST test set, for "Try a test digit" on the page.

        It gives a keyboard-only visitor a prediction: the page paints it on the pad and reads it
        back through `predict_ink` like any drawing.

        seed : picks the image reproducibly (a test pins it); None: a fresh random choice.

        Returns
        -------
        {"ok": True, "image": 784 uint8 ints (row-major 28×28, 255 = ink), "label", "index"},
        or {"ok": False, "error"} when no test set is loaded yet.
        """
        if self.data is None or len(self.data.y_test) == 0:
            return {"ok": False, "error": "the test images are still loading"}
        if seed is not None and not (isinstance(seed, int) and seed >= 0):
            return {"ok": False, "error": f"the seed must be a whole number >= 0, got {seed!r}"}
        index = int(np.random.default_rng(seed).integers(len(self.data.y_test)))
        return {
            "ok": True,
            "image": self.data.X_test[index].reshape(-1).tolist(),
            "label": int(self.data.y_test[index]),
            "index": index,
        }

    def __repr__(self) -> str:
        n = "no data" if self.data is None else f"{len(self.data.y_train)} training images"
        return f"Session({n}, model={self.describe()['architecture']}, source={self.source})"
