"""The page's views into the current model, as JSON-ready replies built on `explain`.

A `TestSetView` is one model's reading of the MNIST test set (probabilities and its hidden
space), computed once per weights: the confusion matrix, a cell's images and a drawing's
nearest neighbours all come from it, so they always agree with each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .calibration import softmax_t
from .explain import (
    HiddenSpace,
    confusion_examples,
    explain,
    feature_maps,
    tile_side,
    weight_tiles,
)
from .network import Network
from .training import confusion_matrix

__all__ = ["SALIENCY_KIND", "TestSetView", "explain_reply", "weights_reply"]

SALIENCY_KIND = "gradient of log p(digit) with respect to the input"
_CHUNK = 4096  # rows per forward pass over the test set: bounds the float copy


class TestSetView:
    """One model's probabilities (m, 10) on labelled images, and their hidden space (lazily).

    Parameters
    ----------
    net : the model. X, y : (m, 784) uint8 test images and (m,) labels.
    temperature : the model's calibration, so probabilities match the page's bars.
    """

    def __init__(self, net: Network, X: np.ndarray, y: np.ndarray, temperature: float = 1.0):
        self.net, self.X, self.y = net, X, y
        self._space: HiddenSpace | None = None
        if net.dense[:-1]:
            # One pass gives both the probabilities and the hidden space (behind conv layers a
            # pass over the test set takes seconds in the page).
            logits, hidden = _logits_and_hidden(net, X)
            self._space = HiddenSpace(net, X, hidden)
        else:
            logits = np.concatenate(
                [net.forward(X[i : i + _CHUNK]) for i in range(0, len(X), _CHUNK)]
            )
        self.P = softmax_t(logits, temperature)  # (m, 10)

    @property
    def space(self) -> HiddenSpace:
        """The test images in the last hidden layer (the input itself without hidden layers)."""
        if self._space is None:
            self._space = HiddenSpace(self.net, self.X)
        return self._space

    def confusion(self) -> dict[str, Any]:
        """{ok, matrix (10×10, rows true, columns predicted), accuracy, n}."""
        predicted = self.P.argmax(axis=1)  # (m,)
        return {
            "ok": True,
            "matrix": confusion_matrix(self.y, predicted, self.net.config.n_classes).tolist(),
            "accuracy": float((predicted == self.y).mean()),
            "n": len(self.y),
        }

    def mistakes(self, true: int, pred: int) -> dict[str, Any]:
        """{ok, true, pred, total, items: [{image (784 uint8), index, probability of pred}]}."""
        index, p, total = confusion_examples(self.P, self.y, true, pred)
        items = [
            {"image": self.X[i].tolist(), "index": int(i), "probability": float(q)}
            for i, q in zip(index, p, strict=True)
        ]
        return {"ok": True, "true": true, "pred": pred, "total": total, "items": items}


def _logits_and_hidden(net: Network, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits (m, 10) and the last hidden layer (m, h) of images X (m, 784), in one pass."""
    hidden = np.concatenate(
        [net.hidden_activations(X[i : i + _CHUNK])[-1] for i in range(0, len(X), _CHUNK)]
    )  # (m, h)
    logits: np.ndarray = net.dense[-1].forward(hidden, train=False)  # (m, 10)
    return logits, hidden


def explain_reply(
    net: Network, image: np.ndarray, temperature: float, view: TestSetView | None
) -> dict[str, Any]:
    """Why `net` reads one image (784,) uint8 as it does: the page's "explanation" reply.

    Returns
    -------
    {"empty": False, "digit", "probability", "runner_up": {"digit", "probability"},
    "saliency": 784 floats in [-1, 1], "saliency_kind", "activations": [{units, values
    (uint8), signed}] per hidden layer, "neighbours": [{image, label, index, similarity}]
    (nearest test images in the last hidden layer, cosine; [] without a view)}; for a CNN
    also "feature_maps": {n, side, maps: n × side² uint8 bytes (row-major, each map scaled
    to its own max), signed} of its first conv layer.
    """
    x = image.reshape(784)
    p = softmax_t(net.forward(x.reshape(1, 784)), temperature)[0]  # (10,)
    space = view.space if view is not None else None
    why = explain(net, x, p, space)
    neighbours = []
    if view is not None:
        for i, similarity in zip(why.neighbours, why.similarities, strict=True):
            neighbours.append({
                "image": view.X[i].tolist(),
                "label": int(view.y[i]),
                "index": int(i),
                "similarity": float(similarity),
            })  # fmt: skip
    reply: dict[str, Any] = {
        "empty": False,
        "digit": why.digit,
        "probability": why.probability,
        "runner_up": {"digit": why.runner_up, "probability": why.runner_up_probability},
        "saliency": why.saliency.tolist(),
        "saliency_kind": SALIENCY_KIND,
        "activations": why.activations,
        "neighbours": neighbours,
    }
    if (maps := feature_maps(net, x)) is not None:
        values, signed = maps  # (n, side, side) uint8
        n, side, _ = values.shape
        reply["feature_maps"] = {"n": n, "side": side, "maps": values.tobytes(), "signed": signed}
    return reply


def weights_reply(net: Network, epoch: int | None) -> dict[str, Any]:
    """{ok, n, side, tiles, units, conv, epoch}: the first layer's weights, as tiles.

    tiles : n × side² uint8 bytes, 128 = 0; side is 28 for an MLP's hidden units, k for the
    k×k filters of a first conv layer (conv: True). units : how many units (or filters) the
    layer has.
    """
    tiles = weight_tiles(net)
    units = int((net.convs[0] if net.convs else net.dense[0]).W.shape[1])
    return {
        "ok": True,
        "n": len(tiles),
        "side": tile_side(net),
        "tiles": tiles.tobytes(),
        "units": units,
        "conv": bool(net.convs),
        "epoch": epoch,
    }
