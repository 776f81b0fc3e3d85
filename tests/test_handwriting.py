"""Replayed handwriting: skeleton tracing, stroke placement, and the evaluation report."""

from __future__ import annotations

import numpy as np
import pytest

from scribblenet.handwriting import (
    CONDITIONS,
    Condition,
    HandwritingReport,
    digit_strokes,
    evaluate_handwriting,
    replay,
    replay_digits,
    trace_skeleton,
)
from scribblenet.ink import ink_from_strokes, ink_to_mnist

SHAPES = {
    1: [[(140, 40), (140, 240)]],
    7: [[(80, 60), (200, 60), (120, 230)]],
    0: [
        np.c_[
            140 + 60 * np.cos(np.linspace(0, 2 * np.pi, 40)),
            140 + 90 * np.sin(np.linspace(0, 2 * np.pi, 40)),
        ]
    ],
    4: [[(150, 50), (80, 170), (200, 170)], [(160, 110), (160, 240)]],
}


def synthetic_digits() -> tuple[np.ndarray, np.ndarray]:
    """Four hand-made digits as uint8 (4, 784) MNIST-style images, and their labels."""
    images = [ink_to_mnist(ink_from_strokes(s, width=26)).reshape(784) for s in SHAPES.values()]
    return np.stack(images), np.array(list(SHAPES), dtype=np.uint8)


def covered(skeleton: np.ndarray, lines: list[np.ndarray]) -> np.ndarray:
    hit = np.zeros_like(skeleton)
    for line in lines:
        for x, y in line:
            hit[int(y), int(x)] = True
    return hit


def test_trace_skeleton_covers_every_pixel_once_per_link():
    skeleton = np.zeros((20, 20), bool)
    skeleton[3, 3:15] = True  # a T: bar ...
    skeleton[3:17, 9] = True  # ... and post
    skeleton[18, 18] = True  # a lone pixel
    lines = trace_skeleton(skeleton)
    np.testing.assert_array_equal(covered(skeleton, lines), skeleton)
    # Three arms from the junction at (3, 9), each including it; and the lone pixel.
    assert sorted(len(line) for line in lines) == [1, 6, 7, 14]
    steps = np.concatenate(
        [np.abs(np.diff(line, axis=0)).max(1) for line in lines if len(line) > 1]
    )
    assert (steps == 1).all()  # polylines step from pixel to neighbouring pixel


def test_trace_skeleton_closes_loops():
    skeleton = np.zeros((10, 10), bool)
    skeleton[2, 2:8] = skeleton[7, 2:8] = skeleton[2:8, 2] = skeleton[2:8, 7] = True
    (line,) = trace_skeleton(skeleton)
    np.testing.assert_array_equal(line[0], line[-1])
    assert len(line) == 21  # 20 ring pixels, back to the start
    assert trace_skeleton(np.zeros((4, 4), bool)) == []


def test_digit_strokes_follow_the_digit():
    images, _ = synthetic_digits()
    for image in images:
        strokes = digit_strokes(image)
        assert strokes and all(s.ndim == 2 and s.shape[1] == 2 for s in strokes)
        points = np.concatenate(strokes)
        assert points.min() >= -0.5 and points.max() <= 27.5
        # Every point of the pen path lies on ink.
        x = image.reshape(28, 28)
        rows, cols = np.rint(points[:, 1]).astype(int), np.rint(points[:, 0]).astype(int)
        assert (x[rows, cols] > 0).mean() > 0.95


def test_replay_redraws_to_a_similar_digit():
    images, _ = synthetic_digits()
    condition = Condition("reference")
    for image in images:
        placed, pen = replay(digit_strokes(image), condition, np.random.default_rng(0))
        again = ink_to_mnist(ink_from_strokes(placed, width=pen)).astype(float)
        original = image.reshape(28, 28).astype(float)
        cosine = (again * original).sum() / np.sqrt((again**2).sum() * (original**2).sum())
        assert cosine > 0.7


def test_replay_places_digits_as_the_condition_says():
    strokes = [np.array([[0.0, 0.0], [10.0, 20.0]])]
    rng = np.random.default_rng(0)
    placed, pen = replay(strokes, Condition("c", pen=(0.1, 0.1), height=(0.5, 0.5)), rng, 200)
    assert pen == pytest.approx(20)
    (line,) = placed
    assert np.ptp(line[:, 1]) == pytest.approx(100)  # half the canvas high
    assert line.mean(0) == pytest.approx([100, 100])  # centred
    anywhere = Condition("anywhere", height=(0.3, 0.3), offset=1.0)
    for seed in range(20):
        (line,), pen = replay(strokes, anywhere, np.random.default_rng(seed), 200)
        assert line.min() >= pen / 2 - 1e-9 and line.max() <= 200 - pen / 2 + 1e-9
    upright = [np.array([[5.0, 0.0], [5.0, 20.0]])]  # top, bottom
    (line,), _ = replay(upright, Condition("s", slant=(0.5, 0.5), height=(0.5, 0.5)), rng, 200)
    assert line[0, 0] - line[1, 0] == pytest.approx(50)  # positive slant leans right: /


def test_replay_is_deterministic_per_seed():
    images, _ = synthetic_digits()
    strokes = [digit_strokes(image) for image in images]
    mixed = next(c for c in CONDITIONS if c.name == "mixed")
    a, ok_a = replay_digits(strokes, mixed, seed=3, size=140)
    b, ok_b = replay_digits(strokes, mixed, seed=3, size=140)
    c, _ = replay_digits(strokes, mixed, seed=4, size=140)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ok_a, ok_b)
    assert ok_a.all()
    assert not np.array_equal(a, c)


def test_evaluate_handwriting_reports_every_condition():
    images, labels = synthetic_digits()
    conditions = [c for c in CONDITIONS if c.name in ("reference", "thin pen", "shaky")]

    def always_seven(X: np.ndarray) -> np.ndarray:
        assert X.shape == (len(images), 784) and X.dtype == np.uint8
        return np.full(len(X), 7)

    report = evaluate_handwriting(always_seven, images, labels, conditions, size=140)
    assert isinstance(report, HandwritingReport)
    assert list(report.accuracy) == ["reference", "thin pen", "shaky"]
    assert all(acc == pytest.approx(0.25) for acc in report.accuracy.values())
    assert report.overall == pytest.approx(0.25)
    assert report.n == 4 and set(report.rejected.values()) == {0}
    text = report.format()
    assert "thin pen" in text and "overall" in text and "25.00%" in text


def test_rejected_drawings_count_as_misread():
    images, labels = synthetic_digits()

    def refuse(ink: np.ndarray) -> np.ndarray:
        raise ValueError("draw a digit")

    report = evaluate_handwriting(
        lambda X: labels, images, labels, CONDITIONS[:1], size=100, preprocess=refuse
    )
    assert report.accuracy == {"reference": 0.0}
    assert report.rejected == {"reference": 4}


def test_evaluate_handwriting_validates():
    with pytest.raises(ValueError, match="784"):
        evaluate_handwriting(lambda X: X, np.zeros((2, 10)), np.zeros(2))
    with pytest.raises(ValueError, match="at least one"):
        evaluate_handwriting(lambda X: X, np.zeros((0, 784)), np.zeros(0))


def test_conditions_have_unique_names():
    names = [c.name for c in CONDITIONS]
    assert len(set(names)) == len(names) and "reference" in names
    assert repr(CONDITIONS[0]) == "Condition('reference')"


@pytest.mark.slow
@pytest.mark.native
def test_pretrained_model_reads_replayed_mnist_handwriting(repo_root, mnist_dir):
    from scribblenet.mnist import load_mnist
    from scribblenet.model_io import load_model

    net = load_model(repo_root / "web" / "models" / "pretrained.npz")
    data = load_mnist(mnist_dir, download=False)
    assert net.accuracy(data.X_test, data.y_test) >= 0.98
    pick = np.random.default_rng(1234).permutation(len(data.y_test))[:300]
    report = evaluate_handwriting(net.predict, data.X_test[pick], data.y_test[pick])
    assert report.overall >= 0.96, report.format()
