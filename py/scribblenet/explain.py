"""What a trained network has learned, and why it read a drawing as it did.

Everything is computed by the network's own forward and backward passes and returned as small
uint8 or float arrays, ready to paint: a saliency map (∂ log p(digit) / ∂ input), the hidden
layers' activations, the nearest reference images in the last hidden layer's space (cosine),
the first layer's weights as tiles (28×28 per unit, or k×k per filter of a first conv layer),
a CNN's first feature maps, and the test images behind a confusion-matrix cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import make_activation
from .network import Network

__all__ = [
    "MAX_TILES",
    "NEIGHBOURS",
    "Explanation",
    "HiddenSpace",
    "activation_strips",
    "confusion_examples",
    "explain",
    "feature_maps",
    "saliency",
    "tile_side",
    "weight_tiles",
]

MAX_TILES = 64  # first-layer units shown: an 8×8 grid stays readable on a phone
NEIGHBOURS = 8
SIDE = 28  # the images are 28×28


def _to_uint8(x: np.ndarray, signed: bool) -> np.ndarray:
    """Values scaled to their own max |x| → uint8: signed maps 0 to 128, else 0 to 0."""
    top = float(np.max(np.abs(x))) if x.size else 0.0
    scaled = x / top if top > 0 else np.zeros_like(x)
    levels = 128 + 127 * scaled if signed else 255 * np.clip(scaled, 0, 1)
    out: np.ndarray = np.rint(levels).astype(np.uint8)
    return out


def saliency(net: Network, image: np.ndarray, digit: int) -> np.ndarray:
    """∂ log p(digit) / ∂ pixel for one image (784,) uint8, scaled to [-1, 1], as (784,) float.

    Positive: more ink there would raise the digit's probability; negative: lower it. The plain
    gradient, not input × gradient: it also shows where missing ink counts against the digit
    (the gap that would make a 4 a 9), which input × gradient hides on blank pixels.
    """
    g = net.input_gradient(np.asarray(image).reshape(1, -1), np.array([digit]))[0]  # (784,)
    g = g.astype(np.float64)
    top = float(np.max(np.abs(g)))
    scaled: np.ndarray = g / top if top > 0 else g
    return scaled


def activation_strips(net: Network, image: np.ndarray) -> list[dict[str, object]]:
    """Each hidden layer's activations for one image: [{units, values: uint8 list, signed}].

    Values are scaled to the layer's own max |a|; signed (tanh) layers map 0 to 128.
    """
    strips: list[dict[str, object]] = []
    for A in net.hidden_activations(np.asarray(image).reshape(1, -1)):
        a = A[0]  # (units,)
        signed = bool(a.min() < 0)
        strips.append({"units": len(a), "values": _to_uint8(a, signed).tolist(), "signed": signed})
    return strips


def feature_maps(net: Network, image: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """The first conv layer's output maps for one image (784,): ((c, side, side) uint8, signed).

    After the layer's activation, each map scaled to its own max |a| (as `_to_uint8`), so a
    weak filter's pattern shows too; signed (tanh, leaky ReLU's negatives) maps 0 to 128. None
    for a network without conv layers. The network's caches are left alone, as in `saliency`.
    """
    if not net.convs:
        return None
    conv = net.convs[0]
    h, w, c = net.config.conv_shapes()[0]
    x = net._as_input(np.asarray(image).reshape(1, -1)).reshape(1, h, w, c)  # (1, 28, 28, 1)
    Z = conv.sharing().forward(x, train=False)[0]  # (side, side, c_out)
    A = make_activation(net.config.activation).forward(Z).transpose(2, 0, 1)  # (c_out, s, s)
    signed = bool(A.min() < 0)
    return np.stack([_to_uint8(a, signed) for a in A]), signed


def weight_tiles(net: Network, n: int = MAX_TILES) -> np.ndarray:
    """The first layer's weights as tiles, (n, side²) uint8, 128 = zero.

    For an MLP, the weights into its first n units: (n, 784), each a 28×28 image. With conv
    layers, the first conv's first n filters: (n, k²), each k×k (its input is one channel).
    Each tile is scaled to its own max |w|, so a unit's pattern shows whatever its size; 64
    tiles are 50 kB, cheap enough to send every second while training.
    """
    first = net.convs[0] if net.convs else net.dense[0]
    W = first.W[:, :n].T  # (n, 784) or (n, k·k)
    top = np.max(np.abs(W), axis=1, keepdims=True)  # (n, 1)
    scaled = W / np.where(top > 0, top, 1)  # (n, side²) in [-1, 1]
    tiles: np.ndarray = np.rint(128 + 127 * scaled).astype(np.uint8)
    return tiles


def tile_side(net: Network) -> int:
    """The side of each `weight_tiles` tile: 28 for an MLP's units, k for conv filters."""
    return net.convs[0].kernel if net.convs else SIDE


class HiddenSpace:
    """Reference images embedded in a network's last hidden layer, for nearest-neighbour lookups.

    Parameters
    ----------
    net : the network; its last hidden layer is the space (the input itself if it has none).
    X : (m, 784) uint8 reference images (the MNIST test set in the page).
    hidden : (m, h) their last hidden layer if already computed (a CNN's pass is costly).
    """

    def __init__(self, net: Network, X: np.ndarray, hidden: np.ndarray | None = None):
        self.X = X
        self._net = net
        self.E = self._embed(X, hidden)  # (m, h) unit rows

    def _embed(self, X: np.ndarray, hidden: np.ndarray | None = None) -> np.ndarray:
        """(n, h) rows of the last hidden layer (given, or computed), normalised to unit length."""
        if hidden is None:
            layers = self._net.hidden_activations(X)
            hidden = layers[-1] if layers else self._net._as_input(X)
        E = hidden.astype(np.float32)  # (n, h), a copy
        norms = np.linalg.norm(E, axis=1, keepdims=True)  # (n, 1)
        E /= np.where(norms > 0, norms, 1)
        return E

    def nearest(self, image: np.ndarray, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar reference images to one image (784,): (indices (k,), cosines (k,))."""
        e = self._embed(np.asarray(image).reshape(1, -1))[0]  # (h,)
        similarity = self.E @ e  # (m,)
        k = min(k, len(similarity))
        top = np.argpartition(-similarity, k - 1)[:k] if k else np.zeros(0, np.intp)  # (k,)
        order = top[np.argsort(-similarity[top], kind="stable")]
        return order, similarity[order]


@dataclass(frozen=True)
class Explanation:
    """Why the network read one image as it did."""

    digit: int
    probability: float
    runner_up: int
    runner_up_probability: float
    saliency: np.ndarray  # (784,) float in [-1, 1]
    activations: list[dict[str, object]]
    neighbours: np.ndarray  # (k,) indices into the reference images
    similarities: np.ndarray  # (k,) cosines


def explain(
    net: Network, image: np.ndarray, probabilities: np.ndarray, space: HiddenSpace | None = None
) -> Explanation:
    """Saliency, runner-up, activations and (given a `HiddenSpace`) neighbours for one image.

    probabilities : (10,) the probabilities shown for it (calibrated in the page).
    """
    ranked = np.argsort(probabilities)[::-1]  # (10,) best first
    digit, second = int(ranked[0]), int(ranked[1])
    if space is None:
        neighbours, similarities = np.zeros(0, np.intp), np.zeros(0)
    else:
        neighbours, similarities = space.nearest(image)
    return Explanation(
        digit=digit,
        probability=float(probabilities[digit]),
        runner_up=second,
        runner_up_probability=float(probabilities[second]),
        saliency=saliency(net, image, digit),
        activations=activation_strips(net, image),
        neighbours=neighbours,
        similarities=similarities,
    )


def confusion_examples(
    P: np.ndarray, y: np.ndarray, true: int, pred: int, limit: int = 24
) -> tuple[np.ndarray, np.ndarray, int]:
    """The images of one confusion-matrix cell: (indices, p(pred), how many in all).

    Off the diagonal, the most confident mistakes come first; on it (true == pred), the least
    confident correct answers, the ones closest to being mistakes.

    Parameters
    ----------
    P : (m, 10) probabilities of the test images. y : (m,) their labels.
    """
    predicted = P.argmax(axis=1)  # (m,)
    cell = np.flatnonzero((y == true) & (predicted == pred))  # (c,)
    p = P[cell, pred]  # (c,)
    order = np.argsort(p if true == pred else -p, kind="stable")[:limit]
    return cell[order], p[order], len(cell)
