"""Configuration validation: bad values raise ValueErrors that say what is allowed."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scribblenet.config import MAX_UNITS, NetworkConfig, TrainConfig


def test_defaults_and_sizes():
    c = NetworkConfig(hidden=[256, 128])
    assert c.hidden == (256, 128) and c.sizes == (784, 256, 128, 10)
    assert NetworkConfig.from_dict(c.to_dict()) == c
    t = TrainConfig(batch_size=None)
    assert TrainConfig.from_dict(t.to_dict()) == t


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"hidden": (0,)}, "hidden layer size"),
        ({"hidden": (MAX_UNITS + 1,)}, "hidden layer size"),
        ({"hidden": (10**6,)}, "hidden layer size"),
        ({"hidden": 128}, "list of layer sizes"),
        ({"hidden": (1.5,)}, "hidden layer size"),
        ({"hidden": (8,) * 9}, "at most"),
        ({"activation": "swish"}, "activation must be one of"),
        ({"init": "zeros"}, "init"),
        ({"dtype": "float16"}, "dtype"),
        ({"n_classes": 1}, "n_classes"),
    ],
)
def test_bad_network_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NetworkConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"learning_rate": 0}, "learning rate"),
        ({"learning_rate": -1}, "learning rate"),
        ({"learning_rate": math.nan}, "learning rate must be a finite number"),
        ({"learning_rate": math.inf}, "learning rate"),
        ({"learning_rate": 1e9}, "learning rate"),
        ({"learning_rate": "0.1"}, "learning rate"),
        ({"batch_size": 0}, "batch size"),
        ({"batch_size": -5}, "batch size"),
        ({"epochs": 0}, "epochs"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"weight_decay": -0.1}, "weight decay"),
        ({"momentum": 1.0}, "momentum"),
        ({"seed": -1}, "seed"),
        ({"lr_schedule": "step"}, "lr_schedule"),
    ],
)
def test_bad_train_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_unknown_fields_are_rejected():
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"learning_rte": 0.1})
    with pytest.raises(ValueError, match="built from a dict"):
        NetworkConfig.from_dict([1, 2])


@given(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(), st.none())
)
def test_learning_rate_is_accepted_or_rejected_cleanly(value):
    try:
        c = TrainConfig(learning_rate=value)
    except ValueError:
        return
    assert 0 < c.learning_rate <= 1000 and math.isfinite(c.learning_rate)


@given(st.lists(st.integers(min_value=-10, max_value=5000), max_size=10))
def test_hidden_sizes_accepted_or_rejected_cleanly(sizes):
    try:
        c = NetworkConfig(hidden=sizes)
    except ValueError:
        assert len(sizes) > 8 or any(not 1 <= s <= MAX_UNITS for s in sizes)
        return
    assert c.hidden == tuple(sizes)
