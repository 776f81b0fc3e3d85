"""Optimiser steps against values computed by hand."""

import math

import numpy as np
import pytest

from scribblenet.config import TrainConfig
from scribblenet.optimizers import SGD, Adam, Momentum, make_optimizer


def test_sgd_step():
    p, g = np.array([1.0, -2.0]), np.array([0.5, -1.0])
    SGD(0.1).step([p], [g])
    np.testing.assert_allclose(p, [0.95, -1.9])


def test_momentum_two_steps():
    p, g = np.array([1.0]), np.array([2.0])
    opt = Momentum(0.1, momentum=0.5)
    opt.step([p], [g])  # v = -0.2, p = 0.8
    opt.step([p], [g])  # v = 0.5·(-0.2) - 0.2 = -0.3, p = 0.5
    np.testing.assert_allclose(p, [0.5])
    np.testing.assert_allclose(opt.v[0], [-0.3])


def test_adam_first_steps():
    p, g = np.array([1.0, 1.0]), np.array([0.1, -3.0])
    opt = Adam(0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    opt.step([p], [g])
    # Step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g| + ε) ≈ lr·sign(g).
    np.testing.assert_allclose(p, [1 - 0.01 * 0.1 / (0.1 + 1e-8), 1 + 0.01 * 3 / (3 + 1e-8)])
    g2 = np.array([0.2, 1.0])
    opt.step([p], [g2])
    m = 0.9 * (0.1 * g) + 0.1 * g2
    v = 0.999 * (0.001 * g**2) + 0.001 * g2**2
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    expected_step2 = 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)
    step1 = 0.01 * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(p, 1 - step1 - expected_step2, rtol=1e-10)
    assert opt.t == 2
    assert set(opt.state_arrays()) == {"m0", "v0"}


def test_state_is_per_parameter():
    a, b = np.zeros(2), np.zeros(3)
    opt = Adam(0.1)
    opt.step([a, b], [np.ones(2), -np.ones(3)])
    assert opt.m[0].shape == (2,) and opt.m[1].shape == (3,)
    assert (a < 0).all() and (b > 0).all()


@pytest.mark.parametrize("lr", [0, -1, math.nan, math.inf, "0.1"])
def test_bad_learning_rate(lr):
    with pytest.raises(ValueError, match="learning rate"):
        SGD(lr)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="momentum"):
        Momentum(0.1, momentum=1.0)
    with pytest.raises(ValueError, match="beta1"):
        Adam(0.1, beta1=1.5)
    with pytest.raises(ValueError, match="parameters"):
        SGD(0.1).step([np.zeros(1)], [])


@pytest.mark.parametrize("name,cls", [("sgd", SGD), ("momentum", Momentum), ("adam", Adam)])
def test_make_optimizer(name, cls):
    opt = make_optimizer(TrainConfig(optimizer=name, learning_rate=0.05))
    assert isinstance(opt, cls) and opt.learning_rate == 0.05
    assert "0.05" in repr(opt)
