"""Writing conventions drawn onto digit strokes, and writers who always use theirs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scribblenet.handwriting import CONDITIONS, digit_strokes
from scribblenet.ink import ink_from_strokes, ink_to_mnist
from scribblenet.styles import (
    STYLES,
    WRITERS,
    Writer,
    crossed_seven,
    dotted_zero,
    flag_and_foot_one,
    open_top_four,
    render,
    slashed_zero,
    straight_stem_nine,
    stylise,
    stylise_digits,
)

# Digits in 28×28 pixel units, (x, y) with y down, as `digit_strokes` returns them.
t = np.linspace(0, 2 * np.pi, 33)
STROKES = {
    0: [np.c_[14 + 6 * np.cos(t), 14 + 9 * np.sin(t)]],
    1: [np.array([[15.0, 4.0], [13.0, 24.0]])],
    4: [np.array([[16.0, 4.0], [8.0, 16.0], [21.0, 16.0]]), np.array([[17.0, 10.0], [17.0, 24]])],
    7: [np.array([[8.0, 5.0], [20.0, 5.0], [12.0, 24.0]])],
    9: [np.c_[14 + 5 * np.cos(t), 9 + 5 * np.sin(t)], np.array([[19.0, 9.0], [17.0, 24.0]])],
}
FUNCTIONS = {
    "flag one": (1, flag_and_foot_one),
    "slashed zero": (0, slashed_zero),
    "dotted zero": (0, dotted_zero),
    "crossed seven": (7, crossed_seven),
    "open-top four": (4, open_top_four),
    "straight-stem nine": (9, straight_stem_nine),
}


def box(strokes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    points = np.concatenate(strokes)
    return points.min(0), points.max(0)


def crosses(p: np.ndarray, q: np.ndarray, line: np.ndarray) -> bool:
    """Does segment p–q cross any segment of the polyline?"""

    def side(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return any(
        side(p, q, a) * side(p, q, b) <= 0 and side(a, b, p) * side(a, b, q) <= 0
        for a, b in itertools.pairwise(line)
    )


def images_of(labels: list[int]) -> np.ndarray:
    """MNIST-style uint8 (n, 784) images of the synthetic digits."""
    return np.stack(
        [
            ink_to_mnist(ink_from_strokes([s * 10 for s in STROKES[k]], width=22)).reshape(784)
            for k in labels
        ]
    )


def test_flag_and_foot_one():
    (stem,) = STROKES[1]
    for seed in range(10):
        one, flag, foot = flag_and_foot_one(STROKES[1], np.random.default_rng(seed), foot=True)
        np.testing.assert_array_equal(one, stem)
        np.testing.assert_array_equal(flag[0], stem[0])  # from the top of the 1 ...
        dx, dy = flag[1] - flag[0]
        assert dx < 0 and dy > 0  # ... down and to the left
        assert 0.3 * 20 <= np.hypot(dx, dy) <= 0.45 * 20  # 30–45 % of the height
        (x0, y0), (x1, y1) = foot
        assert abs(y1 - y0) < 0.1 * abs(x1 - x0)  # horizontal
        assert min(x0, x1) < 13 < max(x0, x1) and abs((y0 + y1) / 2 - 24) < 0.5  # on the bottom
    assert len(flag_and_foot_one(STROKES[1], np.random.default_rng(0), foot=False)) == 2
    counts = {len(flag_and_foot_one(STROKES[1], np.random.default_rng(s))) for s in range(20)}
    assert counts == {2, 3}  # the foot is optional


def test_slashed_zero_crosses_the_box_diagonally():
    lo, hi = box(STROKES[0])
    size = hi - lo
    for seed in range(10):
        loop, slash = slashed_zero(STROKES[0], np.random.default_rng(seed))
        start, end = slash
        assert np.abs(start - [lo[0], hi[1]]).max() < 0.25 * size.max()  # lower left
        assert np.abs(end - [hi[0], lo[1]]).max() < 0.25 * size.max()  # upper right
        assert np.linalg.norm(end - start) > np.linalg.norm(size)  # overshoots, on the whole
        assert crosses(start, end, loop)


def test_dotted_zero_has_a_dot_inside():
    lo, hi = box(STROKES[0])
    for seed in range(10):
        _, dot = dotted_zero(STROKES[0], np.random.default_rng(seed))
        assert np.linalg.norm(dot[1] - dot[0]) <= 0.08 * (hi[1] - lo[1]) + 1e-9
        assert np.abs(dot.mean(0) - (lo + hi) / 2).max() < 0.1 * (hi - lo).max()


def test_crossed_seven_bar_crosses_the_stem_at_mid_height():
    stem = STROKES[7][0][1:]  # the diagonal
    for seed in range(10):
        seven, bar = crossed_seven(STROKES[7], np.random.default_rng(seed))
        np.testing.assert_array_equal(seven, STROKES[7][0])
        (x0, y0), (x1, y1) = bar
        assert abs(y1 - y0) < 0.12 * abs(x1 - x0)  # about horizontal
        assert 5 + 0.4 * 19 < (y0 + y1) / 2 < 5 + 0.67 * 19  # about mid-height
        assert crosses(bar[0], bar[1], stem)


def test_open_top_four_is_two_strokes_that_do_not_meet_at_the_top():
    lo, hi = box(STROKES[4])
    for seed in range(10):
        arm, stem = open_top_four(STROKES[4], np.random.default_rng(seed))
        assert arm.shape == (3, 2) and stem.shape == (2, 2)  # an "L", then a vertical
        assert abs(stem[1, 0] - stem[0, 0]) < 0.1 * (stem[1, 1] - stem[0, 1])
        width = np.ptp(np.concatenate([arm, stem])[:, 0])
        assert stem[0, 0] - arm[0, 0] > 0.25 * width  # the tops stay apart: open
        assert crosses(arm[1], arm[2], stem)  # the crossbar goes through the vertical
        assert box([arm, stem])[0][1] == pytest.approx(lo[1], abs=0.15 * (hi[1] - lo[1]))
        assert stem[1, 1] == pytest.approx(hi[1])  # as tall as the digit


def test_straight_stem_nine_is_a_loop_and_a_straight_stem():
    lo, hi = box(STROKES[9])
    h = hi[1] - lo[1]
    for seed in range(10):
        (nine,) = straight_stem_nine(STROKES[9], np.random.default_rng(seed))
        loop, (top, bottom) = nine[:-1], nine[-2:]
        assert np.linalg.norm(loop[0] - loop[-1]) < 0.2 * h  # the loop closes
        assert loop[:, 1].max() < lo[1] + 0.55 * h  # on top
        assert bottom[1] == pytest.approx(hi[1])
        assert abs(bottom[0] - top[0]) < 0.1 * h  # straight down
        assert top[0] >= loop[:, 0].max() - 0.05 * h  # from the loop's right side


@pytest.mark.parametrize("name", sorted(STYLES))
def test_styles_are_seeded_and_leave_the_input_alone(name):
    style = STYLES[name]
    strokes = STROKES[style.digit]
    before = [s.copy() for s in strokes]
    a = stylise(strokes, style.digit, name, np.random.default_rng(5))
    b = stylise(strokes, style.digit, style, np.random.default_rng(5))
    c = stylise(strokes, style.digit, style, np.random.default_rng(6))
    assert len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert any(not np.array_equal(p, q) for p, q in zip(a, c, strict=False))
    assert all(np.array_equal(p, q) for p, q in zip(strokes, before, strict=True))
    assert all(s.ndim == 2 and s.shape[1] == 2 and np.isfinite(s).all() for s in a)


def test_style_registry_matches_the_functions():
    for name, (digit, _) in FUNCTIONS.items():
        assert STYLES[name].digit == digit
    assert STYLES["flag-and-foot one"].digit == 1
    assert repr(STYLES["slashed zero"]) == "Style('slashed zero', digit=0)"


def test_stylise_checks_the_label_and_the_name():
    with pytest.raises(ValueError, match="for the digit 0, got a 8"):
        stylise(STROKES[0], 8, "slashed zero", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown style"):
        stylise(STROKES[0], 0, "curly zero", np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least one stroke"):
        stylise([], 0, "slashed zero", np.random.default_rng(0))


def test_render_gives_valid_images_and_keeps_labels():
    labels = np.array([0, 1, 4, 7, 9])
    images = images_of(list(labels))
    mixed = next(c for c in CONDITIONS if c.name == "mixed")
    styles = ["slashed zero", "flag-and-foot one", "open-top four", "crossed seven"]
    X, ok = render(images, labels, styles, mixed, seed=2, size=140)
    assert X.shape == (5, 784) and X.dtype == np.uint8 and ok.all()
    assert (X.max(1) == 255).all() and ((X > 0).sum(1) > 30).all()
    np.testing.assert_array_equal(labels, [0, 1, 4, 7, 9])
    again, _ = render(images, labels, styles, mixed, seed=2, size=140)
    np.testing.assert_array_equal(X, again)
    plain = [digit_strokes(x) for x in images]
    styled = stylise_digits(images, labels, styles, seed=2)
    assert len(styled[4]) == len(plain[4])  # the 9 has no style here: its strokes are its own
    assert all(np.array_equal(p, q) for p, q in zip(styled[4], plain[4], strict=True))
    assert len(styled[0]) == len(plain[0]) + 1 and len(styled[1]) == len(plain[1]) + 2


def test_a_writer_uses_the_same_conventions_on_every_digit():
    writer = WRITERS["continental"]
    assert {s.name for s in writer.styles} == {"flag-and-foot one", "crossed seven", "slashed zero"}
    labels = np.array([1, 0, 1, 7, 0, 4])
    images = images_of(list(labels))
    plain = [digit_strokes(x) for x in images]
    styled = writer.strokes(images, labels, seed=0)
    added = [len(s) - len(p) for s, p in zip(styled, plain, strict=True)]
    assert added == [2, 1, 2, 1, 1, 0]  # flag and foot, slash, bar; the 4 as written
    assert writer.hand == writer.hand and writer.hand.name == "continental"
    assert writer.hand != WRITERS["open"].hand  # each writer has a hand of their own
    X, ok = writer.render(images, labels, seed=0, size=140)
    assert X.shape == (6, 784) and X.dtype == np.uint8 and ok.all() and (X.max(1) > 0).all()
    open_strokes = WRITERS["open"].strokes(images, labels)
    assert len(open_strokes[5]) == 2  # the open writer's 4 is always their two-stroke one


def test_a_writer_has_at_most_one_style_per_digit():
    with pytest.raises(ValueError, match="one style per digit"):
        Writer("muddled", (STYLES["slashed zero"], STYLES["dotted zero"]))
    assert "plain" in WRITERS and WRITERS["plain"].styles == ()
    assert repr(WRITERS["open"]).startswith("Writer('open', styles=['open-top four'")
