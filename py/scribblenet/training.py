"""The one training loop: minibatch descent that yields progress events as it goes.

`Trainer.run` is a generator that can be stopped after any number of batches and resumed by
calling it again; the CLI renders its events as a progress bar, the browser worker posts them
to the page between chunks so that stop, pause and predict get through mid-training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .config import NetworkConfig, TrainConfig
from .conv import eval_chunk
from .network import Network, eval_rows
from .optimizers import make_optimizer

__all__ = [
    "MICRO_BATCH_FLOPS",
    "Trainer",
    "confusion_matrix",
    "micro_batch_rows",
    "trainer_rngs",
    "training_bytes",
]

# The most arithmetic one forward/backward pass may do (`NetworkConfig.flops_per_example`):
# tens of milliseconds in a browser tab. A batch that needs more is computed in micro-batches
# with its gradients accumulated, so a caller with a time budget gets control back in between,
# and memory grows with the micro-batch, not the batch.
MICRO_BATCH_FLOPS = 1 << 28
_EVAL_ROWS = 4096  # Network.predict's chunk

Event = dict[str, Any]
# A string: evaluating np.random here would import numpy.random (nine extension modules under
# Pyodide) before the page can predict, which needs none of them.
Augment = Callable[[np.ndarray, "np.random.Generator"], np.ndarray]


def trainer_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for (weight init, shuffling) derived from one seed."""
    init_seq, data_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_seq), np.random.default_rng(data_seq)


def micro_batch_rows(
    n_parameters: int, batch_size: int, flops_per_example: int | None = None
) -> int:
    """Rows per forward/backward pass so one pass stays within `MICRO_BATCH_FLOPS`.

    Parameters
    ----------
    n_parameters : the network's parameter count.
    batch_size : rows in a whole batch.
    flops_per_example : a pass's arithmetic per row (`NetworkConfig.flops_per_example`); None
        means a dense network's 6 per parameter. Conv layers use each weight once per output
        pixel, so their passes cost far more than their parameter count says.
    """
    flops = 6 * max(n_parameters, 1) if flops_per_example is None else max(flops_per_example, 1)
    return max(1, min(batch_size, MICRO_BATCH_FLOPS // flops))


def training_bytes(network: NetworkConfig, config: TrainConfig, n_train: int) -> int:
    """About how much memory a Trainer adds for this network, beyond the data it is given."""
    sizes = network.sizes
    n_params = network.n_parameters
    batch = min(config.batch_size or n_train, n_train)
    rows = micro_batch_rows(n_params, batch, network.flops_per_example)
    state = {"sgd": 0, "momentum": 1, "adam": 2}[config.optimizer]
    split = rows < batch
    # weights, gradients, the epoch-start snapshot, optimiser state, split-batch gradient sums
    copies = 3 + state + split
    # The scaled input, Z, A and dA per dense layer; conv patches and outputs too.
    activations = rows * network.activation_floats_per_example
    evaluation = min(_EVAL_ROWS, n_train) * sum(sizes[1:])  # the test pass, in chunks
    shapes = network.conv_shapes()
    if shapes:  # behind conv layers, in smaller chunks, each layer's output and patches
        eval_n = min(eval_rows(network), n_train)
        evaluation = eval_n * (network.n_inputs + sum(sizes[1:]))
        for layer, shape in zip(network.conv_layers, shapes, strict=False):
            oh, ow, c_out = layer.output_shape(shape)
            evaluation += eval_n * oh * ow * c_out
            if layer.kind == "conv":  # the patches of a chunk, kept by the layer
                patches = oh * ow * layer.size**2 * shape[2]
                evaluation += min(eval_chunk(patches), eval_n) * patches
    return np.dtype(network.dtype).itemsize * (copies * n_params + activations + evaluation)


def _length(rows: np.ndarray | slice, n: int) -> int:
    """Rows a batch selects (indexing y to find out would copy the batch's labels)."""
    return len(range(n)[rows]) if isinstance(rows, slice) else len(rows)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    idx = np.asarray(y_true, np.intp) * n_classes + np.asarray(y_pred, np.intp)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _check_data(name: str, X: np.ndarray, y: np.ndarray, n_inputs: int, n_classes: int) -> None:
    if X.ndim != 2 or X.shape[1] != n_inputs:
        raise ValueError(f"{name} images must have shape (n, {n_inputs}), got {X.shape}")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"{name} labels must have shape ({len(X)},) to match the images, got {y.shape}"
        )
    if len(y) == 0:
        raise ValueError(f"{name} set is empty")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"{name} labels must be integers in [0, {n_classes})")


class Trainer:
    """Trains a `Network` with the optimiser, batching and schedule a `TrainConfig` names.

    Parameters
    ----------
    net : the network, updated in place.
    config : optimiser, learning rate, batch size (None = full batch), epochs, seed.
    X_train, y_train : (n, n_inputs) images (uint8 pixels or floats) and (n,) labels.
    X_test, y_test : optional held-out set, scored after every epoch.
    augment : optional callable(uint8 images (b, n_inputs), rng) -> uint8 images; applied to
        each batch, so training data must be uint8 pixels.
    rng : shuffling generator; default derived from `config.seed`.
    """

    def __init__(
        self,
        net: Network,
        config: TrainConfig,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_test: np.ndarray | None = None,
        y_test: np.ndarray | None = None,
        augment: Augment | None = None,
        rng: np.random.Generator | None = None,
    ):
        c = net.config
        X_train, y_train = np.asarray(X_train), np.asarray(y_train)
        _check_data("training", X_train, y_train, c.n_inputs, c.n_classes)
        if (X_test is None) != (y_test is None):
            raise ValueError("give both X_test and y_test, or neither")
        if X_test is not None:
            X_test, y_test = np.asarray(X_test), np.asarray(y_test)
            _check_data("test", X_test, y_test, c.n_inputs, c.n_classes)
        if augment is not None and X_train.dtype != np.uint8:
            raise ValueError("augmentation works on uint8 pixel images")
        n = len(X_train)
        if config.batch_size is not None and config.batch_size > n:
            raise ValueError(
                f"batch size {config.batch_size} is larger than the {n} training images"
            )
        self.net, self.config, self.augment = net, config, augment
        self.rng = rng if rng is not None else trainer_rngs(config.seed)[1]
        self.y = y_train.astype(np.intp)
        self.X_test, self.y_test = X_test, y_test
        self.optimizer = make_optimizer(config)
        if hasattr(self.optimizer, "fused"):
            self.optimizer.fused = getattr(net.backend, "adam_update", None)
        self.batch_size = config.batch_size or n
        self.n_batches = math.ceil(n / self.batch_size)
        self.micro_batch = micro_batch_rows(
            net.n_parameters, self.batch_size, net.config.flops_per_example
        )
        # uint8 pixels stay uint8 and each (micro-)batch is scaled as it is gathered: a float copy
        # of 60k images is 188 MB, too much for a browser tab. One batch of one pass scales once.
        one_pass = self.n_batches == 1 and self.micro_batch == self.batch_size
        self._scale_batches = X_train.dtype == np.uint8 and augment is None and not one_pass
        if augment is not None or self._scale_batches:
            self.X = X_train
        else:
            self.X = net._as_input(X_train)
        self.total_steps = self.n_batches * config.epochs
        self.epoch = 0  # completed epochs
        self.step = 0  # completed batches overall
        self.done = False
        self.history: dict[str, list[float]] = {
            "batch_cost": [],
            "epoch_cost": [],
            "train_accuracy": [],
            "test_accuracy": [],
        }
        self._order: np.ndarray | None = None  # this epoch's permutation
        self._batch = 0
        self._snapshot: dict[str, np.ndarray] | None = None
        self._scaled_buffer: np.ndarray | None = None  # see _scaled
        self._rows_done = 0  # rows of the current batch already in `_accumulated`
        self._accumulated: list[np.ndarray] | None = None  # gradient sums of a split batch
        self._part_sums = [0.0, 0, 0.0]  # cost·rows, correct, seconds of the current batch
        # The test pass after an epoch runs in parts of about one training pass's arithmetic (a
        # forward pass is a third of one), so a caller with a time budget gets control back
        # between them: 10,000 images through a CNN take seconds in a browser tab.
        self.test_part = max(1, 3 * MICRO_BATCH_FLOPS // max(net.config.flops_per_example, 1))
        self._tested: list[np.ndarray] | None = None  # predictions of the pass in progress
        self._epoch_sums = [0.0, 0, 0, 0.0]  # cost·n, correct, seen, seconds
        # Chance level is ln(k) nats; a mean cost 100× that means logits have blown up even if
        # float arithmetic has not overflowed yet.
        self._cost_limit = 100 * math.log(net.config.n_classes)

    @property
    def n_train(self) -> int:
        """Number of training images."""
        return len(self.y)

    def _learning_rate(self) -> float:
        base = self.config.learning_rate
        if self.config.lr_schedule == "cosine":
            return base * 0.5 * (1 + math.cos(math.pi * self.step / self.total_steps))
        return base

    def _start_epoch(self) -> None:
        self._order = self.rng.permutation(self.n_train)
        self._batch = 0
        self._epoch_sums = [0.0, 0, 0, 0.0]
        self._snapshot = self.net.copy_parameters()  # the last good model, if this epoch diverges

    def _scaled(self, Xb: np.ndarray) -> np.ndarray:
        """uint8 pixels (b, n_inputs) scaled by the network, into a buffer reused every batch."""
        if self._scaled_buffer is None or self._scaled_buffer.shape != Xb.shape:
            self._scaled_buffer = np.empty(Xb.shape, self.net.dtype)
        return self.net._as_input(Xb, out=self._scaled_buffer)

    def _batch_rows(self) -> np.ndarray | slice:
        """The current batch's rows of X and y: a slice for full batch (no copy), else indices."""
        bs = self.batch_size
        if self.n_batches == 1:  # full batch: order is irrelevant
            return slice(0, self.n_train)
        assert self._order is not None  # set by _start_epoch
        return self._order[self._batch * bs : (self._batch + 1) * bs]  # (b,)

    def _train_part(self) -> Event | None:
        """One forward/backward pass over the next micro-batch; the batch event once it is whole."""
        t0 = time.perf_counter()
        rows = self._batch_rows()
        b = _length(rows, self.n_train)
        start, stop = self._rows_done, min(self._rows_done + self.micro_batch, b)
        whole = start == 0 and stop == b
        if isinstance(rows, slice):
            part = rows if whole else slice(start, stop)
            Xb, yb = self.X[part], self.y[part]  # (m, n_inputs), (m,): views
        else:
            idx = rows if whole else rows[start:stop]  # (m,)
            Xb, yb = self.X[idx], self.y[idx]  # (m, n_inputs), (m,): gathered copies
        if self._scale_batches:
            Xb = self._scaled(Xb)  # (m, n_inputs) floats in [0, 1]
        if self.augment is not None:
            Xb = self.augment(Xb, self.rng)
        cost = self.net.loss_and_grad(Xb, yb, self.config.weight_decay)
        correct = int((self.net.loss.predicted == yb).sum()) if len(yb) else 0
        grads = self.net.gradients()
        if not whole:
            # The batch's gradient is the row-weighted mean of its parts' (weight decay too).
            weight = (stop - start) / b
            if self._accumulated is None:
                self._accumulated = [np.zeros_like(g) for g in grads]
            for total, g in zip(self._accumulated, grads, strict=True):
                total += weight * g
        sums = self._part_sums
        sums[0] += cost * (stop - start)
        sums[1] += correct
        sums[2] += time.perf_counter() - t0
        self._rows_done = stop
        if stop < b:
            return None
        if self._accumulated is not None:
            grads, self._accumulated = self._accumulated, None
        return self._update(grads, sums[0] / b, int(sums[1]), b)

    def _update(self, grads: list[np.ndarray], cost: float, correct: int, b: int) -> Event:
        """Apply a whole batch's gradients; the batch event (or "diverged")."""
        t0 = time.perf_counter()
        self._rows_done = 0
        part_seconds = self._part_sums[2]
        self._part_sums = [0.0, 0, 0.0]
        # A NaN or inf anywhere makes its gradient's sum non-finite; one sum per array needs no
        # boolean temporary (the element-wise check was 5 % of a step in the browser).
        finite = math.isfinite(cost) and all(math.isfinite(g.sum()) for g in grads)
        if not finite or cost > self._cost_limit:
            return self._diverged(cost)
        self.optimizer.learning_rate = self._learning_rate()
        self.optimizer.step(self.net.parameters(), grads)
        seconds = part_seconds + (time.perf_counter() - t0)
        self._batch += 1
        self.step += 1
        sums = self._epoch_sums
        sums[0] += cost * b
        sums[1] += correct
        sums[2] += b
        sums[3] += seconds
        self.history["batch_cost"].append(cost)
        return {
            "type": "batch",
            "epoch": self.epoch + 1,
            "batch": self._batch,
            "n_batches": self.n_batches,
            "step": self.step,
            "total_steps": self.total_steps,
            "cost": cost,
            "batch_accuracy": correct / b,
            "learning_rate": self.optimizer.learning_rate,
            "seen": sums[2],
            "examples_per_s": sums[2] / sums[3] if sums[3] > 0 else 0.0,
        }

    def _progress(self) -> Event:
        """Where a split batch (or the test pass) has got to, for a caller that stops inside it.

        During the test pass the epoch's last batch is whole (batch_fraction 1) and
        test_fraction says how much of the test set has been scored.
        """
        event: Event = {
            "type": "progress",
            "epoch": self.epoch + 1,
            "batch": self._batch + 1,
            "n_batches": self.n_batches,
            "step": self.step,
            "total_steps": self.total_steps,
        }
        if self._tested is not None and self.y_test is not None:
            tested = sum(len(p) for p in self._tested)
            event.update(batch=self._batch, batch_fraction=1.0,
                         test_fraction=tested / len(self.y_test))  # fmt: skip
        else:
            event["batch_fraction"] = self._rows_done / _length(self._batch_rows(), self.n_train)
        return event

    def _test_part(self) -> bool:
        """Score the next part of the test set; True once all of it is scored."""
        assert self._tested is not None and self.X_test is not None
        start = sum(len(p) for p in self._tested)
        self._tested.append(self.net.predict(self.X_test[start : start + self.test_part]))
        return start + self.test_part >= len(self.X_test)

    def _diverged(self, cost: float) -> Event:
        self.done = True
        if self._snapshot is not None:
            self.net.load_parameters(self._snapshot)
        return {
            "type": "diverged",
            "epoch": self.epoch + 1,
            "batch": self._batch + 1,
            "cost": cost,
            "reason": (
                f"the cost became {cost:.4g} at epoch {self.epoch + 1}, batch {self._batch + 1}: "
                f"learning rate {self.config.learning_rate:g} is probably too high. "
                f"Training stopped; the weights from the start of epoch {self.epoch + 1} were kept."
            ),
        }

    def _end_epoch(self) -> Event:
        cost_sum, correct, seen, seconds = self._epoch_sums
        self.epoch += 1
        self._order = None
        event: Event = {
            "type": "epoch",
            "epoch": self.epoch,
            "epochs": self.config.epochs,
            "cost": cost_sum / seen,
            # Accuracy on the batches as they were trained: free, and close to a full pass.
            "train_accuracy": correct / seen,
            "seconds": seconds,
            "examples_per_s": seen / seconds if seconds > 0 else 0.0,
        }
        tested, self._tested = self._tested, None
        if self.X_test is not None and self.y_test is not None and tested is not None:
            pred = np.concatenate(tested)  # (n_test,)
            event["test_accuracy"] = float((pred == self.y_test).mean())
            event["confusion"] = confusion_matrix(
                self.y_test, pred, self.net.config.n_classes
            ).tolist()
            self.history["test_accuracy"].append(event["test_accuracy"])
        self.history["epoch_cost"].append(event["cost"])
        self.history["train_accuracy"].append(event["train_accuracy"])
        return event

    def run(
        self, max_batches: int | None = None, max_seconds: float | None = None
    ) -> Iterator[Event]:
        """Train, yielding a "batch" event per batch, an "epoch" event per epoch, then "done".

        Parameters
        ----------
        max_batches : stop after this many batches (resume by calling `run` again);
            None trains to the end.
        max_seconds : also stop once this much time has passed (after at least one forward and
            backward pass, or one part of the test pass), so a caller that must stay responsive
            gets control back at a steady pace; a batch split into micro-batches, or the test
            pass that ends an epoch, may then stop half-way ("progress" event). Without it the
            events are the same, minus those "progress" events.

        Yields
        ------
        Event dicts: {"type": "batch" | "epoch" | "done" | "diverged" | "progress", ...}.
        """
        if max_batches is not None and max_batches < 1:
            raise ValueError(f"max_batches must be >= 1, got {max_batches}")
        budget = max_batches
        deadline = None if max_seconds is None else time.perf_counter() + max_seconds
        trained = False
        while not self.done:
            if self._tested is not None:  # the epoch is trained; its test pass, part by part
                if self.X_test is not None:
                    if trained and deadline is not None and time.perf_counter() >= deadline:
                        yield self._progress()
                        return
                    trained = True
                    if not self._test_part():
                        continue
                yield self._end_epoch()
                if self.epoch == self.config.epochs:
                    self.done = True
                    yield {"type": "done", "epochs": self.epoch, "steps": self.step}
                continue
            if self._order is None:
                self._start_epoch()
            if budget is not None and budget <= 0:
                return
            if trained and deadline is not None and time.perf_counter() >= deadline:
                if self._rows_done:
                    yield self._progress()
                return
            event = self._train_part()
            trained = True
            if event is None:  # a micro-batch of a batch that is not whole yet
                continue
            yield event
            if event["type"] == "diverged":
                return
            if budget is not None:
                budget -= 1
            if self._batch == self.n_batches:
                self._tested = []  # the epoch ends once the test pass above is complete

    @property
    def epochs_trained(self) -> int:
        """Epochs whose batches are all done: `epoch`, plus one while its test pass is scored.

        What the weights show: the test pass after an epoch's last batch changes none of them.
        """
        testing = self._order is not None and self._batch == self.n_batches
        return self.epoch + int(testing)

    def __repr__(self) -> str:
        return (
            f"Trainer({self.net!r}, {self.optimizer!r}, batch_size={self.batch_size}, "
            f"epoch={self.epoch}/{self.config.epochs}, step={self.step}/{self.total_steps})"
        )
