"""Analytic gradients against central differences in float64, on tiny shapes."""

import numpy as np
import pytest

from scribblenet.activations import make_activation
from scribblenet.config import ACTIVATIONS, NetworkConfig
from scribblenet.layers import Dense
from scribblenet.losses import SoftmaxCrossEntropy, log_softmax, one_hot, softmax
from scribblenet.network import Network

EPS = 1e-6


def numeric_grad(f, x: np.ndarray) -> np.ndarray:
    """∂f/∂x by central differences, perturbing x in place one entry at a time."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + EPS
        fp = f()
        x[i] = old - EPS
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * EPS)
    return g


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_gradient(name):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((4, 5))
    Z[np.abs(Z) < 1e-3] = 0.5  # keep clear of ReLU's kink, where no derivative exists
    R = rng.standard_normal((4, 5))  # random projection turns the output into a scalar
    act = make_activation(name)

    def f():
        return float((act.forward(Z.copy()) * R).sum())

    expected = numeric_grad(f, Z)
    act.forward(Z.copy())
    got = act.backward(R.copy())
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_dense_gradients():
    rng = np.random.default_rng(1)
    layer = Dense(3, 4, rng, "glorot", "float64")
    layer.b[:] = rng.standard_normal(4)
    X = rng.standard_normal((5, 3))
    R = rng.standard_normal((5, 4))

    def f():
        return float((layer.forward(X) * R).sum())

    dW, db, dX = numeric_grad(f, layer.W), numeric_grad(f, layer.b), numeric_grad(f, X)
    layer.forward(X)
    got_dX = layer.backward(R)
    np.testing.assert_allclose(layer.dW, dW, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(layer.db, db, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got_dX, dX, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("targets", ["labels", "one_hot"])
def test_softmax_cross_entropy_gradient(targets):
    rng = np.random.default_rng(2)
    Z = rng.standard_normal((6, 4)) * 3
    y = rng.integers(0, 4, 6)
    Y = y if targets == "labels" else one_hot(y, 4, np.float64)
    loss = SoftmaxCrossEntropy()
    expected = numeric_grad(lambda: loss.forward(Z, Y), Z)
    loss.forward(Z, Y)
    got = loss.backward()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    # The gradient really is (P − Y)/n.
    np.testing.assert_allclose(got, (softmax(Z) - one_hot(y, 4, np.float64)) / 6, atol=1e-12)


def test_cross_entropy_is_the_true_mean_not_divided_by_classes():
    Z = np.log(np.array([[0.7, 0.2, 0.1], [0.25, 0.5, 0.25]]))
    cost = SoftmaxCrossEntropy().forward(Z, np.array([0, 1]))
    assert cost == pytest.approx(-(np.log(0.7) + np.log(0.5)) / 2)


def test_softmax_is_stable_for_huge_logits():
    Z = np.array([[1000.0, 0.0, -1000.0], [-5000.0, -5000.0, -5000.0]])
    P = softmax(Z)
    assert np.isfinite(P).all()
    np.testing.assert_allclose(P.sum(axis=1), 1)
    np.testing.assert_allclose(P[1], 1 / 3)
    assert np.isfinite(log_softmax(Z)).all()
    cost = SoftmaxCrossEntropy().forward(Z, np.array([2, 0]))
    assert cost == pytest.approx((2000 + np.log(3)) / 2)


def test_softmax_takes_each_rows_own_max():
    # One global max (the tutorial's bug) underflows the second row to 0/0.
    Z = np.array([[1000.0, 999.0], [0.0, 1.0]])
    np.testing.assert_allclose(softmax(Z)[1], softmax(Z[1:])[0])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_network_gradients(activation, weight_decay):
    rng = np.random.default_rng(3)
    config = NetworkConfig(
        n_inputs=5,
        hidden=(4, 3),
        n_classes=3,
        activation=activation,
        init="glorot",
        dtype="float64",
    )
    net = Network(config, rng)
    for b in net.parameters()[1::2]:
        b[:] = rng.standard_normal(b.shape) * 0.1
    X = rng.standard_normal((7, 5))
    y = rng.integers(0, 3, 7)
    net.loss_and_grad(X, y, weight_decay)
    grads = [g.copy() for g in net.gradients()]
    for p, g in zip(net.parameters(), grads, strict=True):
        expected = numeric_grad(lambda: net.loss_and_grad(X, y, weight_decay), p)
        np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-8)
