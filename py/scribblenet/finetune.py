"""Fine-tuning a trained model on a person's own digits without forgetting MNIST.

The person's few digits are repeated (each copy augmented differently) and mixed with four times
as many MNIST training images replayed alongside them, then the one `Trainer` takes small
momentum steps on every layer: the style is learnt, MNIST is rehearsed. (Measured on synthetic
styles and writers, scripts/eval_finetune.py: Adam at any rate that learns the style forgets
more MNIST; the last layer alone barely learns it; 32 copies × 4 replay learns a writer's
conventions better than 16 × 8 for the same MNIST test accuracy; less replay than that forgets
more.) `cross_validate` measures what that buys on the
person's digits without ever scoring a digit the model was tuned on. "My digits" travel as a
small .npz file with the same hardening as model files.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .augment import HANDWRITING_AUGMENTATION
from .config import OPTIMIZERS, TrainConfig, _check_choice, _check_float, _check_int
from .model_io import check_npz, load_npz_member, npy_header, open_npz
from .network import Network
from .training import Augment, Event, Trainer

__all__ = [
    "DEFAULT_FINETUNE",
    "MAX_DIGITS",
    "DigitsFileError",
    "FinetuneConfig",
    "cross_validate",
    "digits_from_bytes",
    "digits_to_bytes",
    "finetune",
    "finetune_set",
    "load_digits",
    "mixed_set_sizes",
    "save_digits",
]

MAX_DIGITS = 10_000  # a person draws tens; 10k images are 7.8 MB
_PIXELS = 784


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune on a person's digits (defaults measured: scripts/eval_finetune.py)."""

    epochs: int = 3  # passes over the mixed set
    learning_rate: float = 0.01  # momentum on all layers; higher forgets MNIST, lower learns less
    copies: int = 32  # each own digit appears this often per epoch, augmented differently
    replay: float = 4.0  # MNIST images per own-digit copy: 32 × 4 replays what 16 × 8 did
    batch_size: int = 64  # rows per step, own and MNIST shuffled together
    optimizer: str = "momentum"  # momentum | adam | sgd (momentum 0.9)
    min_own_rows: int = 256  # few digits are copied more: fewer steps forget more MNIST

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1, 100)
        _check_float("learning rate", self.learning_rate, 0.0, 1.0, open_low=True)
        _check_int("copies", self.copies, 1, 1000)
        _check_int("min_own_rows", self.min_own_rows, 0, 1 << 20)
        _check_float("replay", self.replay, 0.0, 100.0, open_low=False)
        _check_int("batch size", self.batch_size, 1, 1 << 16)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)

    def train_config(self) -> TrainConfig:
        """The `TrainConfig` the Trainer runs with: cosine-annealed, no weight decay."""
        return TrainConfig(
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            epochs=self.epochs,
            lr_schedule="cosine",
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for provenance in model files."""
        return dict(self.__dict__)


DEFAULT_FINETUNE = FinetuneConfig()


def _check_digits(X: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X), np.asarray(y)
    if X.dtype != np.uint8 or X.ndim != 2 or X.shape[1] != _PIXELS:
        raise ValueError(
            f"{what} images must be uint8 of shape (n, {_PIXELS}), got {X.dtype} {X.shape}"
        )
    if y.shape != (len(X),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what} labels must be {len(X)} integers, got {y.dtype} {y.shape}")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{what} labels must be digits 0-9")
    return X, y.astype(np.intp)


def mixed_set_sizes(
    n_own: int, n_mnist: int, config: FinetuneConfig = DEFAULT_FINETUNE
) -> tuple[int, int]:
    """(c, r): each of n_own digits appears c times in the mixed set, beside r replayed images.

    Few digits are copied more (at least `min_own_rows` own rows); r = min(m, round(replay·n·c)).
    """
    copies = max(config.copies, -(-config.min_own_rows // max(n_own, 1)))
    return copies, min(n_mnist, round(config.replay * n_own * copies))


def finetune_set(
    X_own: np.ndarray,
    y_own: np.ndarray,
    X_mnist: np.ndarray,
    y_mnist: np.ndarray,
    rng: np.random.Generator,
    config: FinetuneConfig = DEFAULT_FINETUNE,
) -> tuple[np.ndarray, np.ndarray]:
    """The mixed training set: own digits c times plus replayed MNIST images.

    Parameters
    ----------
    X_own, y_own : (n, 784) uint8 and (n,) labels 0-9, the person's digits.
    X_mnist, y_mnist : (m, 784) uint8 and (m,) labels, MNIST training images to replay from.
    rng : picks the replayed images.

    Returns
    -------
    (X (n·c + r, 784) uint8, y (n·c + r,)), the n·c own copies first; (c, r) as
    `mixed_set_sizes(n, m)` gives them.
    """
    X_own, y_own = _check_digits(X_own, y_own, "own")
    X_mnist, y_mnist = _check_digits(X_mnist, y_mnist, "MNIST")
    if len(y_own) == 0:
        raise ValueError("no digits of your own to fine-tune on")
    copies, n_replay = mixed_set_sizes(len(y_own), len(y_mnist), config)
    pick = rng.choice(len(y_mnist), n_replay, replace=False)  # (r,)
    X = np.concatenate([np.tile(X_own, (copies, 1)), X_mnist[pick]])  # (n·c + r, 784)
    y = np.concatenate([np.tile(y_own, copies), y_mnist[pick]])
    return X, y


def finetune(
    net: Network,
    X_own: np.ndarray,
    y_own: np.ndarray,
    X_mnist: np.ndarray,
    y_mnist: np.ndarray,
    *,
    rng: np.random.Generator,
    config: FinetuneConfig = DEFAULT_FINETUNE,
    augment: Augment | None = HANDWRITING_AUGMENTATION,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
) -> Trainer:
    """A `Trainer` that fine-tunes `net` in place on own digits mixed with replayed MNIST.

    Run it like training, `trainer.run(max_batches, max_seconds)`, in as many chunks as you
    like; stopping is simply not resuming.

    Parameters
    ----------
    net : the trained network, updated in place.
    X_own, y_own : (n, 784) uint8 and (n,) labels 0-9, the person's digits.
    X_mnist, y_mnist : (m, 784) uint8 and (m,) labels, MNIST training images to replay.
    rng : picks the replayed MNIST images, shuffles, augments.
    config : epochs, learning rate, copies, replay ratio, batch size.
    augment : applied once to every row of the mixed set; None for none.
    X_test, y_test : optional held-out set the Trainer scores after each epoch.
    """
    X, y = finetune_set(X_own, y_own, X_mnist, y_mnist, rng, config)
    if augment is not None:
        # Every row is augmented once, here, rather than in every epoch's batches: the copies
        # are the variety, and it takes a third of the time (the page's budget is seconds).
        # Measured (scripts/eval_finetune.py --writer, 3 runs): writers' error within 0.1 pt of
        # per-batch augmentation. Augmenting the own copies alone was better on writers but
        # forgot 0.8 pt of MNIST on the tests' two-class styles; replay needs the variety too.
        X = augment(X, rng)
    train = config.train_config()
    if train.batch_size is not None and train.batch_size > len(y):
        train = TrainConfig(**{**train.to_dict(), "batch_size": len(y)})
    return Trainer(net, train, X, y, X_test, y_test, None, rng)


def _folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A fold number per digit, (n,) in [0, k): each label spread evenly over the folds."""
    fold = np.empty(len(y), np.intp)
    start = 0
    for label in range(10):
        idx = rng.permutation(np.flatnonzero(y == label))  # (n_label,)
        fold[idx] = (start + np.arange(len(idx))) % k
        start += len(idx)  # the next label starts where this one stopped: sizes stay even
    return fold


def cross_validate(
    net: Network,
    X_own: np.ndarray,
    y_own: np.ndarray,
    X_mnist: np.ndarray,
    y_mnist: np.ndarray,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    *,
    rng: np.random.Generator,
    folds: int = 5,
    config: FinetuneConfig = DEFAULT_FINETUNE,
    augment: Augment | None = HANDWRITING_AUGMENTATION,
) -> Iterator[Event]:
    """k-fold cross-validation of fine-tuning: each fold tuned on the others, scored on itself.

    A generator, so a caller can run it in chunks: it yields the fold Trainers' events (each
    with "fold" and "folds" added) and lastly a "cross_validation" event. `net` is not changed.

    Parameters
    ----------
    net : the trained network; each fold tunes a copy.
    X_own, y_own : (n, 784) uint8 and (n,) labels 0-9, at least 2 digits.
    X_mnist, y_mnist : MNIST training images to replay.
    X_test, y_test : optional MNIST test set, scored before and after (mean over the folds).
    rng : assigns the folds, then drives each fold's `finetune`.
    folds : k (fewer if there are fewer digits).

    Yields
    ------
    Trainer events, then {"type": "cross_validation", "own_before", "own_after", "n", "folds",
    "errors_before", "errors_after", "seconds"[, "test_before", "test_after"]}.
    """
    X_own, y_own = _check_digits(X_own, y_own, "own")
    if len(y_own) < 2:
        raise ValueError(f"cross-validation needs at least 2 digits, got {len(y_own)}")
    k = min(folds, len(y_own))
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    start = time.perf_counter()
    fold = _folds(y_own, k, rng)  # (n,)
    before = net.predict(X_own)  # (n,) every digit is unseen by the original model
    after = np.empty_like(before)
    test_after: list[float] = []
    for i in range(k):
        held = fold == i
        tuned = Network(net.config, initialize=False)
        tuned.set_backend(net.backend)
        tuned.load_parameters(net.named_parameters())
        trainer = finetune(
            tuned, X_own[~held], y_own[~held], X_mnist, y_mnist,
            rng=rng, config=config, augment=augment,
        )  # fmt: skip
        for event in trainer.run():
            yield {**event, "fold": i + 1, "folds": k}
        after[held] = tuned.predict(X_own[held])
        if X_test is not None and y_test is not None:
            test_after.append(tuned.accuracy(X_test, y_test))
    result: Event = {
        "type": "cross_validation",
        "n": len(y_own),
        "folds": k,
        "own_before": float((before == y_own).mean()),
        "own_after": float((after == y_own).mean()),
        "errors_before": int((before != y_own).sum()),
        "errors_after": int((after != y_own).sum()),
    }
    if X_test is not None and y_test is not None:
        result["test_before"] = net.accuracy(X_test, y_test)
        result["test_after"] = float(np.mean(test_after))
    result["seconds"] = time.perf_counter() - start
    yield result


class DigitsFileError(ValueError):
    """A "My digits" file that is corrupt, hostile, or of an unknown format."""


def digits_to_bytes(X: np.ndarray, y: np.ndarray) -> bytes:
    """A "My digits" file: an .npz of ``images`` uint8 (n, 784) and ``labels`` uint8 (n,).

    Parameters
    ----------
    X : (n, 784) uint8 network inputs (as `ink_to_mnist` makes them, flattened).
    y : (n,) integer labels 0-9.
    """
    X, y = _check_digits(X, y, "digit")
    if len(y) > MAX_DIGITS:
        raise ValueError(f"at most {MAX_DIGITS} digits fit in a file, got {len(y)}")
    buf = io.BytesIO()
    np.savez_compressed(buf, images=X, labels=y.astype(np.uint8))
    return buf.getvalue()


def digits_from_bytes(
    data: bytes | bytearray | memoryview, *, max_digits: int = MAX_DIGITS
) -> tuple[np.ndarray, np.ndarray]:
    """Parse a "My digits" file; every declared size is checked before anything is loaded.

    Returns
    -------
    (X uint8 (n, 784), y uint8 (n,) in 0..9).

    Raises
    ------
    DigitsFileError : on a bad zip, pickles, missing/extra members, wrong dtype or shape, more
        than `max_digits` digits, mismatched counts or labels outside 0-9.
    """
    data = bytes(data)
    limit = max_digits * (_PIXELS + 1) + 4096  # + two .npy headers
    sizes = check_npz(data, max_bytes=limit, error=DigitsFileError, what="digits")
    if set(sizes) != {"images.npy", "labels.npy"}:
        raise DigitsFileError(
            f"not a digits file: expected members images and labels, got {sorted(sizes)}"
        )
    expected = {"images": (_PIXELS,), "labels": ()}
    counts = []
    for name, tail in expected.items():  # declared headers first: nothing allocated yet
        shape, dtype = npy_header(data, name, DigitsFileError)
        if dtype.hasobject:
            raise DigitsFileError(f"entry {name!r} holds pickled Python objects; refusing it")
        if dtype != np.uint8:
            raise DigitsFileError(f"{name} must be uint8, got {dtype}")
        if len(shape) != 1 + len(tail) or shape[1:] != tail:
            raise DigitsFileError(f"{name} must have shape (n, *{tail}), got {shape}")
        if shape[0] > max_digits:
            raise DigitsFileError(f"{shape[0]} digits; at most {max_digits} are allowed")
        counts.append(shape[0])
    if counts[0] != counts[1]:
        raise DigitsFileError(f"{counts[0]} images but {counts[1]} labels")
    with open_npz(data, DigitsFileError, "digits") as npz:
        X = load_npz_member(npz, "images", DigitsFileError)
        y = load_npz_member(npz, "labels", DigitsFileError)
    if X.dtype != np.uint8 or y.dtype != np.uint8 or X.shape != (counts[0], _PIXELS):
        raise DigitsFileError("the arrays do not match their headers")
    if y.shape != (counts[0],) or (len(y) and y.max() > 9):
        raise DigitsFileError("labels must be digits 0-9")
    return X, y


def save_digits(path: str | os.PathLike[str], X: np.ndarray, y: np.ndarray) -> Path:
    """Write a "My digits" file (see `digits_to_bytes`); returns the path."""
    path = Path(path)
    path.write_bytes(digits_to_bytes(X, y))
    return path


def load_digits(
    path: str | os.PathLike[str], *, max_digits: int = MAX_DIGITS
) -> tuple[np.ndarray, np.ndarray]:
    """Read a "My digits" file from `path` (see `digits_from_bytes`)."""
    path = Path(path)
    limit = max_digits * (_PIXELS + 1) + 4096
    if path.stat().st_size > limit:
        raise DigitsFileError(f"{path} is larger than {limit} bytes; not a digits file")
    return digits_from_bytes(path.read_bytes(), max_digits=max_digits)
