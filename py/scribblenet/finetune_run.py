"""The page's "Fine-tune" button as one resumable job: measure, then teach.

First k-fold cross-validation (each fold's copy tuned on the other folds, scored on its own),
which says honestly what fine-tuning buys on the person's digits; then the model itself is
fine-tuned on all of them. Like `Trainer.run`, `FinetuneRun.run` works in chunks of a time
budget, so the worker stays responsive and Stop is simply not resuming.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import numpy as np

from .augment import HANDWRITING_AUGMENTATION
from .finetune import DEFAULT_FINETUNE, FinetuneConfig, cross_validate, finetune, mixed_set_sizes
from .network import Network
from .training import Augment, Event

__all__ = ["MIN_DIGITS", "FinetuneRun"]

MIN_DIGITS = 5  # fewer leave cross-validation folds of one digit each: no figure to trust


def _steps(n_own: int, n_mnist: int, config: FinetuneConfig) -> int:
    """Batches `finetune` takes on n_own digits (as `finetune_set` sizes the mixed set)."""
    copies, n_replay = mixed_set_sizes(n_own, n_mnist, config)
    rows = n_own * copies + n_replay
    return config.epochs * math.ceil(rows / min(config.batch_size, rows))


class FinetuneRun:
    """Cross-validate fine-tuning on a person's digits, then fine-tune a copy of `net` on all.

    Parameters
    ----------
    net : the current model; never changed (the result is `tuned`, once `done`).
    X_own, y_own : (n, 784) uint8 and (n,) labels, at least `MIN_DIGITS` of two labels or more.
    X_mnist, y_mnist : MNIST training images replayed so MNIST is not forgotten.
    X_test, y_test : the MNIST test set, scored before and after.
    rng : drives folds, replay, shuffling and augmentation.
    """

    def __init__(
        self,
        net: Network,
        X_own: np.ndarray,
        y_own: np.ndarray,
        X_mnist: np.ndarray,
        y_mnist: np.ndarray,
        X_test: np.ndarray,
        y_test: np.ndarray,
        *,
        rng: np.random.Generator,
        folds: int = 5,
        config: FinetuneConfig = DEFAULT_FINETUNE,
        augment: Augment | None = HANDWRITING_AUGMENTATION,
    ):
        y_own = np.asarray(y_own)
        if len(y_own) < MIN_DIGITS:
            raise ValueError(f"draw at least {MIN_DIGITS} digits first (you have {len(y_own)})")
        if len(np.unique(y_own)) < 2:
            raise ValueError("teach it at least two different digits")
        self.net, self.n, self.folds = net, len(y_own), min(folds, len(y_own))
        self.config, self.augment, self.rng = config, augment, rng
        self.own = (np.asarray(X_own), y_own)
        self.mnist = (X_mnist, y_mnist)
        self.test = (X_test, y_test)
        held = self.n / self.folds  # digits per fold, on average
        self.total_steps = self.folds * _steps(round(self.n - held), len(y_mnist), config)
        self.total_steps += _steps(self.n, len(y_mnist), config)
        self.step = 0  # batches done, over every fold and the final run
        self.seconds = 0.0  # time spent inside `run`, pauses excluded
        self.tuned: Network | None = None  # the fine-tuned copy, once done
        self.result: dict[str, float | int] | None = None
        self._events = self._work()

    def _copy(self) -> Network:
        tuned = Network(self.net.config, initialize=False)
        tuned.set_backend(self.net.backend)
        tuned.load_parameters(self.net.named_parameters())
        tuned.metadata = {k: v for k, v in self.net.metadata.items()}
        return tuned

    def _progress(self, phase: str, fold: int) -> Event:
        what = f"fold {fold} of {self.folds}" if phase == "cross-validating" else "all digits"
        return {
            "type": "finetune",
            "phase": phase,
            "fold": fold,
            "folds": self.folds,
            "step": self.step,
            "total_steps": self.total_steps,
            "fraction": min(self.step / self.total_steps, 0.99),
            "message": f"{phase.capitalize()}: {what}",
        }

    def _work(self) -> Iterator[Event]:
        """The whole job, one event per batch, then {"type": "done", "result"}."""
        X_own, y_own = self.own
        X_mnist, y_mnist = self.mnist
        X_test, y_test = self.test
        test_before = self.net.accuracy(X_test, y_test)
        scores: Event = {}
        for event in cross_validate(
            self.net, X_own, y_own, X_mnist, y_mnist,
            rng=self.rng, folds=self.folds, config=self.config, augment=self.augment,
        ):  # fmt: skip
            if event["type"] == "cross_validation":
                scores = event
            elif event["type"] == "batch":
                self.step += 1
                yield self._progress("cross-validating", event["fold"])
        tuned = self._copy()
        trainer = finetune(
            tuned, X_own, y_own, X_mnist, y_mnist,
            rng=self.rng, config=self.config, augment=self.augment,
        )  # fmt: skip
        for event in trainer.run():
            if event["type"] == "batch":
                self.step += 1
                yield self._progress("fine-tuning", self.folds)
        self.result = {
            "n": self.n,
            "folds": self.folds,
            "own_before": scores["own_before"],
            "own_after": scores["own_after"],
            "test_before": test_before,
            "test_after": tuned.accuracy(X_test, y_test),
        }
        self.tuned = tuned
        yield {"type": "done"}

    def run(self, max_seconds: float | None = None) -> Iterator[Event]:
        """Work for about `max_seconds` (at least one batch; None: to the end), yielding events.

        Yields "finetune" progress events and, at the end, {"type": "done", "result"}, after
        which `tuned` holds the fine-tuned network and `result` the before/after figures.
        """
        start = time.perf_counter()
        try:
            for event in self._events:
                if event["type"] == "done":
                    self.seconds += time.perf_counter() - start
                    assert self.result is not None
                    self.result["seconds"] = self.seconds
                    yield {"type": "done", "result": dict(self.result)}
                    return
                yield event
                if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                    break
        finally:
            if self.result is None:
                self.seconds += time.perf_counter() - start

    @property
    def done(self) -> bool:
        """True once the model has been fine-tuned."""
        return self.tuned is not None

    def __repr__(self) -> str:
        steps = f"step {self.step}/{self.total_steps}"
        return f"FinetuneRun({self.n} digits, {self.folds} folds, {steps})"
