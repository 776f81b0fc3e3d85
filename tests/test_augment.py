"""Augmentation: shapes and dtypes kept, identity settings change nothing, seeds repeat, warps
move pixels where the maths says."""

from __future__ import annotations

import numpy as np
import pytest

from scribblenet.augment import (
    Augmentation,
    affine_matrices,
    augment_batch,
    change_stroke,
    elastic_fields,
    warp,
)
from scribblenet.ink import ink_from_strokes, ink_to_mnist


def digits(n: int = 8, seed: int = 0) -> np.ndarray:
    """Synthetic uint8 (n, 784) digits: random pen strokes through ink_to_mnist."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        strokes = [rng.uniform(40, 240, (int(rng.integers(2, 5)), 2)) for _ in range(2)]
        try:
            out.append(ink_to_mnist(ink_from_strokes(strokes)).reshape(784))
        except ValueError:
            continue
    return np.stack(out)


def identity(n: int) -> np.ndarray:
    M = np.zeros((n, 2, 3))
    M[:, 0, 0] = M[:, 1, 1] = 1
    return M


NO_CHANGE = dict(shift=0.0, rotation=0.0, scale=(1.0, 1.0), shear=0.0, elastic=0.0, stroke=0.0)


@pytest.mark.parametrize("shape", [(8, 784), (8, 28, 28)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_shape_and_dtype_are_kept(shape, dtype):
    X = digits().reshape(shape).astype(dtype)
    rng = np.random.default_rng(0)
    out = augment_batch(X, rng, elastic=1.0, stroke=0.5)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert out.min() >= 0 and out.max() <= 255
    assert Augmentation()(X, rng).shape == X.shape


def test_identity_settings_change_nothing():
    X = digits()
    np.testing.assert_array_equal(warp(X, identity(len(X))), X)
    np.testing.assert_array_equal(augment_batch(X, np.random.default_rng(1), **NO_CHANGE), X)
    np.testing.assert_array_equal(change_stroke(X, np.zeros(len(X))), X)
    no_wobble = np.zeros((len(X), 28, 28, 2))
    np.testing.assert_array_equal(warp(X, identity(len(X)), no_wobble), X)


def test_same_seed_same_result_different_seed_different_result():
    X = digits()
    aug = Augmentation(elastic=1.0, stroke=0.5)
    a = aug(X, np.random.default_rng(42))
    b = aug(X, np.random.default_rng(42))
    c = aug(X, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, X)


def test_integer_shift_moves_pixels_exactly():
    X = digits(4)
    M = identity(4)
    M[:, :, 2] = [2, -3]  # two rows down, three columns left
    images = X.reshape(-1, 28, 28)
    expected = np.zeros_like(images)
    expected[:, 2:, :25] = images[:, :-2, 3:]
    np.testing.assert_array_equal(warp(X, M).reshape(-1, 28, 28), expected)


def test_quarter_turn_matches_rot90():
    X = digits(3).reshape(-1, 28, 28)
    M = identity(3)
    M[:, :2, :2] = [[0, 1], [-1, 0]]  # the rotation matrix at 90°
    np.testing.assert_array_equal(warp(X, M), np.rot90(X, k=-1, axes=(1, 2)))
    angle_90 = affine_matrices(1, np.random.default_rng(0), 0, 0, (1, 1), 0)
    np.testing.assert_allclose(angle_90[0, :, :2], np.eye(2))


def test_zoom_out_keeps_ink_in_the_middle():
    X = digits(4).astype(np.float64)
    M = identity(4)
    M[:, :2, :2] *= 0.5
    out = warp(X, M).reshape(-1, 28, 28)
    assert out[:, :6].sum() == 0 and out[:, 22:].sum() == 0
    # Half the size in each direction: about a quarter of the ink.
    np.testing.assert_allclose(out.sum((1, 2)) / X.sum(1), 0.25, rtol=0.2)


def test_random_affine_ranges():
    rng = np.random.default_rng(0)
    M = affine_matrices(2000, rng, shift=2, rotation=10, scale=(0.9, 1.1), shear=0.2)
    assert M.shape == (2000, 2, 3)
    assert np.abs(M[:, :, 2]).max() <= 2
    det = np.linalg.det(M[:, :, :2])  # zoom² (rotation and shear keep area)
    assert det.min() >= 0.9**2 - 1e-9 and det.max() <= 1.1**2 + 1e-9


def test_elastic_fields_are_smooth_and_scaled():
    rng = np.random.default_rng(0)
    D = elastic_fields(200, rng, strength=2.0)
    assert D.shape == (200, 28, 28, 2)
    assert 1.0 < D.std() < 3.0
    step = np.abs(np.diff(D, axis=1)).max()
    assert step < 2.0  # neighbouring pixels move together
    assert not elastic_fields(3, rng, strength=0.0).any()
    with pytest.raises(ValueError, match="grid"):
        elastic_fields(1, rng, grid=1)


def test_change_stroke_thickens_and_thins():
    X = digits()
    thick = change_stroke(X, np.ones(len(X)))
    thin = change_stroke(X, -np.ones(len(X)))
    ink = (X > 127).sum(1)
    assert ((thick > 127).sum(1) > ink).all()
    assert ((thin > 127).sum(1) < ink).all()
    assert (thin.max(1) == X.max(1)).all()  # thinning keeps the strokes dark
    with pytest.raises(ValueError, match="one amount per image"):
        change_stroke(X, np.zeros(3))


def test_empty_batch_and_bad_inputs():
    rng = np.random.default_rng(0)
    assert augment_batch(np.zeros((0, 784), np.uint8), rng).shape == (0, 784)
    with pytest.raises(ValueError, match="shape"):
        augment_batch(np.zeros((2, 100), np.uint8), rng)
    with pytest.raises(ValueError, match=r"\(2, 2, 3\)"):
        warp(np.zeros((2, 784)), np.zeros((3, 2, 3)))


@pytest.mark.parametrize(
    ("field", "value"),
    [("shift", -1.0), ("rotation", float("nan")), ("scale", (1.2, 1.1)), ("stroke", 2.0)],
)
def test_augmentation_validates(field, value):
    with pytest.raises(ValueError, match=field):
        Augmentation(**{field: value})


def test_augmentation_keeps_digits_recognisable_on_average():
    # Mild settings move little ink: the augmented digit overlaps its original.
    X = digits(16).astype(np.float64)
    out = Augmentation(shift=1, rotation=5, scale=(0.95, 1.05), shear=0.1)(
        X, np.random.default_rng(0)
    )
    overlap = (X * out).sum(1) / np.sqrt((X * X).sum(1) * (out * out).sum(1))  # cosine
    assert overlap.mean() > 0.5
