"""Seeing inside a network: input gradients, saliency, activations, neighbours, weight tiles."""

from __future__ import annotations

import numpy as np
import pytest

from scribblenet.config import ACTIVATIONS, NetworkConfig
from scribblenet.explain import (
    HiddenSpace,
    activation_strips,
    confusion_examples,
    explain,
    feature_maps,
    saliency,
    weight_tiles,
)
from scribblenet.insight import explain_reply
from scribblenet.losses import log_softmax
from scribblenet.network import Network
from test_gradients import numeric_grad


def small_net(activation: str = "tanh", hidden: tuple[int, ...] = (6, 5), dtype: str = "float64"):
    config = NetworkConfig(
        n_inputs=7, hidden=hidden, n_classes=4, activation=activation, dtype=dtype
    )
    return Network(config, np.random.default_rng(3))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hidden", [(), (6,), (6, 5)])
def test_input_gradient_matches_central_differences(activation: str, hidden) -> None:
    net = small_net(activation, hidden)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((3, 7))
    classes = np.array([0, 3, 1])
    got = net.input_gradient(X, classes)
    for i, c in enumerate(classes):
        x = X[i : i + 1].copy()

        def f(x=x, c=c) -> float:
            return float(log_softmax(net.forward(x))[0, c])

        np.testing.assert_allclose(got[i : i + 1], numeric_grad(f, x), rtol=1e-5, atol=1e-8)


def test_input_gradient_leaves_training_state_alone() -> None:
    net = small_net("relu")
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((4, 7)), np.array([0, 1, 2, 3])
    net.loss_and_grad(X, y)
    grads = [g.copy() for g in net.gradients()]
    cached = net.dense[0].X.copy()
    net.input_gradient(rng.standard_normal((2, 7)), np.array([1, 2]))
    net.hidden_activations(rng.standard_normal((2, 7)))
    for before, after in zip(grads, net.gradients(), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(cached, net.dense[0].X)


def test_input_gradient_refuses_bad_classes() -> None:
    net = small_net()
    with pytest.raises(ValueError, match="one class per row"):
        net.input_gradient(np.zeros((2, 7)), np.array([1]))
    with pytest.raises(ValueError, match="classes must be in"):
        net.input_gradient(np.zeros((1, 7)), np.array([4]))


def test_hidden_activations_are_the_forward_pass_layers() -> None:
    net = small_net("sigmoid")
    X = np.random.default_rng(6).standard_normal((3, 7))
    hidden = net.hidden_activations(X)
    assert [h.shape for h in hidden] == [(3, 6), (3, 5)]
    # The output layer applied to the last hidden layer gives the logits.
    np.testing.assert_allclose(hidden[-1] @ net.dense[-1].W + net.dense[-1].b, net.forward(X))


def digit_net(hidden=(12,), seed: int = 0) -> Network:
    return Network(NetworkConfig(hidden=hidden), np.random.default_rng(seed))


def test_saliency_is_the_scaled_gradient_of_the_digit() -> None:
    net = digit_net()
    image = np.random.default_rng(7).integers(0, 256, 784).astype(np.uint8)
    s = saliency(net, image, 3)
    g = net.input_gradient(image.reshape(1, -1), np.array([3]))[0]
    assert s.shape == (784,) and np.abs(s).max() == pytest.approx(1.0)
    np.testing.assert_allclose(s, g / np.abs(g).max(), rtol=1e-5)


def test_activation_strips_scale_each_layer_to_its_own_range() -> None:
    net = digit_net(hidden=(12, 9))
    image = np.random.default_rng(8).integers(0, 256, 784).astype(np.uint8)
    strips = activation_strips(net, image)
    assert [s["units"] for s in strips] == [12, 9]
    for s in strips:
        values = s["values"]
        assert len(values) == s["units"] and all(0 <= v <= 255 for v in values)
        assert max(values) == 255 or s["signed"]  # relu: the strongest unit is full scale
    tanh_net = Network(NetworkConfig(hidden=(10,), activation="tanh"), np.random.default_rng(1))
    tanh = activation_strips(tanh_net, image)
    assert tanh[0]["signed"] is True


def test_weight_tiles_are_each_units_weights_around_128() -> None:
    net = digit_net(hidden=(70,))
    tiles = weight_tiles(net)
    assert tiles.shape == (64, 784) and tiles.dtype == np.uint8
    W = net.dense[0].W
    j = 5
    expected = np.rint(128 + 127 * W[:, j] / np.abs(W[:, j]).max())
    np.testing.assert_array_equal(tiles[j], expected)
    net.dense[0].W[:, 0] = 0  # a dead unit is all 128, not a division by zero
    assert (weight_tiles(net)[0] == 128).all()
    assert weight_tiles(digit_net(hidden=(10,))).shape == (10, 784)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_feature_maps_are_the_first_conv_layers_outputs_each_scaled(activation) -> None:
    config = NetworkConfig(conv=("conv5x3", "pool2", "conv3x4"), activation=activation)
    net = Network(config, np.random.default_rng(4))
    image = np.random.default_rng(5).integers(0, 256, 784).astype(np.uint8)
    maps = feature_maps(net, image)
    assert maps is not None
    values, signed = maps
    assert values.shape == (3, 24, 24) and values.dtype == np.uint8  # 28 − 5 + 1
    assert signed is (activation == "tanh")
    k = net.convs[0].W[:, 1].reshape(5, 5)  # filter 1, row-major
    x = image.reshape(28, 28) / 255
    z = sum(k[i, j] * x[i : i + 24, j : j + 24] for i in range(5) for j in range(5))
    a = np.tanh(z + net.convs[0].b[1]) if signed else np.maximum(z + net.convs[0].b[1], 0)
    levels = 128 + 127 * a / np.abs(a).max() if signed else 255 * a / a.max()
    np.testing.assert_allclose(values[1], np.rint(levels), atol=1)
    reply = explain_reply(net, image, 1.0, None)["feature_maps"]
    assert (reply["n"], reply["side"], reply["signed"]) == (3, 24, signed)
    assert reply["maps"] == values.tobytes()
    mlp = digit_net()
    assert feature_maps(mlp, image) is None
    assert "feature_maps" not in explain_reply(mlp, image, 1.0, None)


def test_nearest_images_find_the_image_itself_first() -> None:
    net = digit_net()
    X = np.random.default_rng(9).integers(0, 256, (50, 784)).astype(np.uint8)
    space = HiddenSpace(net, X)
    index, similarity = space.nearest(X[17], k=8)
    assert len(index) == 8 and index[0] == 17
    assert similarity[0] == pytest.approx(1.0, abs=1e-5)
    assert (np.diff(similarity) <= 1e-7).all()  # most similar first
    assert len(space.nearest(X[0], k=80)[0]) == 50


def test_explain_names_the_best_two_digits() -> None:
    net = digit_net()
    image = np.random.default_rng(10).integers(0, 256, 784).astype(np.uint8)
    p = np.array([0.05, 0.1, 0.6, 0.02, 0.03, 0.2, 0.0, 0.0, 0.0, 0.0])
    why = explain(net, image, p)
    assert (why.digit, why.runner_up) == (2, 5)
    assert why.probability == 0.6 and why.runner_up_probability == 0.2
    assert len(why.neighbours) == 0 and why.saliency.shape == (784,)


def test_confusion_examples_order_mistakes_and_near_misses() -> None:
    P = np.array([
        [0.1, 0.9], [0.3, 0.7], [0.8, 0.2], [0.6, 0.4], [0.45, 0.55], [0.9, 0.1],
    ])  # fmt: skip
    y = np.array([0, 0, 0, 0, 0, 1])
    index, p, total = confusion_examples(P, y, true=0, pred=1)
    assert total == 3 and list(index) == [0, 1, 4]  # most confident mistakes first
    np.testing.assert_allclose(p, [0.9, 0.7, 0.55])
    index, p, total = confusion_examples(P, y, true=0, pred=0)
    assert total == 2 and list(index) == [3, 2]  # least confident correct first
    index, _, total = confusion_examples(P, y, true=1, pred=1, limit=0)
    assert total == 0 and len(index) == 0
