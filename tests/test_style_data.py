"""The styled supplement of training digits, and per-style scoring (synthetic digits, so it
runs unchanged under Pyodide)."""

from __future__ import annotations

import numpy as np
import pytest

from scribblenet.ink import ink_from_strokes, ink_to_mnist
from scribblenet.style_data import (
    MAX_POINTER_STEP,
    MAX_WOBBLE,
    VARIED,
    StyleReport,
    evaluate_styles,
    styled_supplement,
    varied_condition,
)
from scribblenet.styles import STYLES

t = np.linspace(0, 2 * np.pi, 33)
STROKES = {  # canvas pixels on 280×280
    0: [np.c_[140 + 60 * np.cos(t), 140 + 90 * np.sin(t)]],
    1: [np.array([[150.0, 40.0], [130.0, 240.0]])],
    7: [np.array([[80.0, 50.0], [200.0, 50.0], [120.0, 240.0]])],
}


def digits(labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 784) MNIST-style images of the synthetic digits, and their labels."""
    images = [ink_to_mnist(ink_from_strokes(STROKES[k], width=22)).reshape(784) for k in labels]
    return np.stack(images), np.array(labels, dtype=np.uint8)


def test_varied_conditions_cover_smooth_shaky_and_coarse_hands():
    drawn = [varied_condition(np.random.default_rng(s)) for s in range(40)]
    assert all(c.pen == VARIED.pen and c.offset == 1.0 for c in drawn)
    wobbles = [c.wobble for c in drawn]
    steps = [c.pointer_step for c in drawn]
    assert 0 in wobbles and 0 < max(wobbles) <= MAX_WOBBLE
    assert 0 in steps and 0 < max(steps) <= MAX_POINTER_STEP


def test_supplement_draws_each_style_on_its_class_and_plain_digits():
    X, y = digits([0, 1, 7, 1, 0])
    styles = ("slashed zero", "flag-and-foot one", "crossed seven")
    Xs, ys = styled_supplement(X, y, np.random.default_rng(0), per_style=3, plain=4, styles=styles)
    assert Xs.dtype == np.uint8 and Xs.shape == (13, 784) and ys.dtype == np.uint8
    np.testing.assert_array_equal(ys[:9], [0, 0, 0, 1, 1, 1, 7, 7, 7])  # styled first, in order
    assert set(ys[9:]) <= {0, 1, 7}
    assert (Xs.max(axis=1) > 200).all()  # every drawing has dark ink
    # A slashed zero has ink in the middle of its loop; the source zeros have none there.
    centre = Xs[:3].reshape(3, 28, 28)[:, 12:16, 12:16].max(axis=(1, 2))
    assert (centre > 100).all()
    assert X.reshape(-1, 28, 28)[0, 12:16, 12:16].max() < 50


def test_supplement_is_repeatable_and_follows_its_generator():
    X, y = digits([0, 1, 7])
    styles = ("dotted zero", "flag one", "crossed seven")
    a, b, c = (
        styled_supplement(X, y, np.random.default_rng(seed), 2, 2, styles) for seed in (3, 3, 4)
    )
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    # The styles for digits absent here (4, 9) have nothing to draw from.
    with pytest.raises(ValueError, match="no digit 4"):
        styled_supplement(X, y, np.random.default_rng(0), per_style=1, plain=0, styles=STYLES)


def test_supplement_rejects_bad_input():
    X, y = digits([1])
    with pytest.raises(ValueError, match=r"\(n, 784\)"):
        styled_supplement(X[:, :100], y, np.random.default_rng(0))
    with pytest.raises(ValueError, match=">= 0"):
        styled_supplement(X, y, np.random.default_rng(0), per_style=-1)
    with pytest.raises(ValueError, match="unknown style"):
        styled_supplement(X, y, np.random.default_rng(0), styles=("curly one",))


def test_evaluate_styles_scores_each_style_on_its_own_class():
    X, y = digits([0, 1, 7, 0, 1])
    styles = ("slashed zero", "flag one", "crossed seven")
    always_one = evaluate_styles(lambda X: np.ones(len(X), int), X, y, 5, styles)
    assert isinstance(always_one, StyleReport)
    assert always_one.accuracy == {"slashed zero": 0.0, "flag one": 1.0, "crossed seven": 0.0}
    assert always_one.n == {"slashed zero": 2, "flag one": 2, "crossed seven": 1}
    assert always_one.read_as["slashed zero"][1] == 2 and always_one.worst == 0.0
    assert "slashed zero" in always_one.format() and "1 100%" in always_one.format()
    first = evaluate_styles(lambda X: np.zeros(len(X), int), X, y, 1, styles)
    assert first.n["slashed zero"] == 1 and first.accuracy["slashed zero"] == 1.0
    assert repr(first).startswith("StyleReport(worst=0.0000")
