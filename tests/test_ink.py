"""Canvas ink → MNIST 28×28: geometry of the result, what is rejected, image inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from scribblenet.ink import (
    BRUSH_FRACTION,
    MNIST_STROKE_WIDTH,
    EmptyInkError,
    image_to_ink,
    ink_from_strokes,
    ink_to_mnist,
    load_ink_image,
    skeletonize,
    stroke_width,
)

SEVEN = [[(90, 70), (190, 70), (130, 220)]]
FOUR = [[(150, 60), (90, 160), (190, 160)], [(160, 110), (160, 230)]]
ZERO = [
    np.c_[
        140 + 50 * np.cos(np.linspace(0, 2 * np.pi, 40)),
        140 + 80 * np.sin(np.linspace(0, 2 * np.pi, 40)),
    ]
]


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    x = image.astype(np.float64)
    rows, cols = np.indices(x.shape)
    return float((x * rows).sum() / x.sum()), float((x * cols).sum() / x.sum())


def ink_extent(image: np.ndarray, threshold: int = 50) -> tuple[int, int]:
    rows = np.flatnonzero((image > threshold).any(axis=1))
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def random_strokes(rng: np.random.Generator, size: int = 280) -> list[np.ndarray]:
    """1–3 polylines somewhere on the canvas, each spanning a good part of a digit's box."""
    box = rng.uniform(0.2, 0.6) * size
    origin = rng.uniform(0.05 * size, 0.95 * size - box, 2)
    return [
        origin + rng.uniform(0, box, (int(rng.integers(2, 6)), 2))
        for _ in range(rng.integers(1, 4))
    ]


@pytest.mark.parametrize("strokes", [SEVEN, FOUR, ZERO])
@pytest.mark.parametrize("size", [280, 560])
def test_output_is_mnist_shaped(strokes, size):
    scaled = [np.asarray(s, float) * size / 280 for s in strokes]
    out = ink_to_mnist(ink_from_strokes(scaled, size=size))
    assert out.shape == (28, 28)
    assert out.dtype == np.uint8
    assert out.max() == 255  # saturated stroke centres, like MNIST
    assert max(ink_extent(out, threshold=0)) <= 21


def test_centre_of_mass_and_box_for_random_strokes():
    rng = np.random.default_rng(0)
    for _ in range(25):
        ink = ink_from_strokes(random_strokes(rng), width=rng.uniform(6, 30))
        try:
            out = ink_to_mnist(ink)
        except EmptyInkError:
            continue
        cy, cx = centre_of_mass(out)
        # Rounded shift: within half a pixel, unless clipping kept lopsided ink in frame.
        assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0, (cy, cx)
        assert 18 <= max(ink_extent(out, threshold=0)) <= 21


def test_long_side_is_twenty_pixels_and_aspect_is_kept():
    tall = ink_to_mnist(ink_from_strokes([[(140, 40), (140, 240)]], width=20))  # a "1"
    h, w = ink_extent(tall, threshold=0)
    assert 19 <= h <= 21
    assert w <= 6  # a 1 stays a thin upright bar, not stretched into a square
    wide = ink_to_mnist(ink_from_strokes([[(40, 100), (240, 100), (240, 200)]], width=20))
    h, w = ink_extent(wide, threshold=0)
    assert 19 <= w <= 21 and h < w


def test_translation_invariance():
    ink = ink_from_strokes(FOUR, size=280)
    moved = np.roll(ink, (-40, 57), axis=(0, 1))  # the 4 stays clear of the edges
    assert moved.sum() == ink.sum()
    np.testing.assert_array_equal(ink_to_mnist(moved), ink_to_mnist(ink))


def test_float_and_uint8_inputs_agree():
    ink = ink_from_strokes(SEVEN)
    a = ink_to_mnist(ink).astype(int)
    b = ink_to_mnist(ink / 255.0).astype(int)
    c = ink_to_mnist((ink / 255).astype(np.float32)).astype(int)
    assert np.abs(a - b).max() <= 1
    assert np.abs(a - c).max() <= 1


def test_bool_ink_is_accepted():
    out = ink_to_mnist(ink_from_strokes(SEVEN) > 127)
    assert out.shape == (28, 28) and out.max() == 255


def test_any_canvas_size_and_aspect():
    # A device-pixel-ratio-scaled, non-square canvas.
    ink = np.zeros((300, 420), np.uint8)
    ink[:, 60:] = ink_from_strokes(SEVEN, size=360)[30:330]
    assert ink_to_mnist(ink).shape == (28, 28)


def test_empty_canvas_raises_empty_ink_error():
    with pytest.raises(EmptyInkError, match="draw a digit"):
        ink_to_mnist(np.zeros((280, 280), np.uint8))
    with pytest.raises(EmptyInkError, match="draw a digit"):
        ink_to_mnist(np.full((280, 280), 0.1))  # faint haze below the noise threshold


def test_speck_and_dot_raise_empty_ink_error():
    speck = np.zeros((280, 280), np.uint8)
    speck[100:103, 50:54] = 255
    with pytest.raises(EmptyInkError, match="draw a digit"):
        ink_to_mnist(speck)
    dot = ink_from_strokes([[(140, 140)]], width=22)  # a tap
    with pytest.raises(EmptyInkError, match="draw a digit"):
        ink_to_mnist(dot)
    big_dot = ink_from_strokes([[(140, 140), (145, 142)]], width=60)  # a tap with a fat pen
    with pytest.raises(EmptyInkError, match="draw a digit"):
        ink_to_mnist(big_dot)
    assert issubclass(EmptyInkError, ValueError)


def test_short_stroke_is_not_a_dot():
    out = ink_to_mnist(ink_from_strokes([[(140, 110), (140, 170)]], width=22))
    assert out.shape == (28, 28)


def test_filled_canvas_raises_value_error():
    with pytest.raises(ValueError, match="fills the canvas") as info:
        ink_to_mnist(np.full((280, 280), 255, np.uint8))
    assert not isinstance(info.value, EmptyInkError)


@pytest.mark.parametrize(
    ("ink", "message"),
    [
        (np.zeros((2, 3, 4)), "2-D"),
        (np.zeros((0, 5)), "2-D"),
        (np.full((10, 10), 2.0), r"\[0, 1\]"),
        (np.full((10, 10), np.nan), "NaN"),
        (np.full((10, 10), 300, np.int32), r"\[0, 255\]"),
        (np.array([["a"]]), "dtype"),
    ],
)
def test_invalid_arrays_are_rejected(ink, message):
    with pytest.raises(ValueError, match=message):
        ink_to_mnist(ink)


def test_stroke_width_is_normalised():
    widths = []
    for pen in (5, 14, 24, 36):
        out = ink_to_mnist(ink_from_strokes(FOUR, width=pen))
        big = np.asarray(Image.fromarray(out).resize((112, 112), Image.Resampling.BILINEAR))
        widths.append(stroke_width(big / 255)[0] / 4)
    assert max(widths) - min(widths) < 0.8, widths
    assert abs(np.median(widths) - MNIST_STROKE_WIDTH) < 0.6, widths
    raw = ink_to_mnist(ink_from_strokes(FOUR, width=5), normalize_width=False)
    normal = ink_to_mnist(ink_from_strokes(FOUR, width=5))
    assert (raw > 127).sum() < (normal > 127).sum()  # without it a thin pen stays thin


def test_stroke_width_estimate():
    for pen in (8, 16, 30):
        ink = ink_from_strokes([[(40, 60), (240, 60), (120, 230)]], width=pen) / 255
        width, skeleton = stroke_width(ink)
        assert width == pytest.approx(pen, rel=0.15)
        assert skeleton.sum() > 200


def test_skeletonize_thins_to_one_pixel_and_stays_inside():
    mask = np.zeros((40, 60), bool)
    mask[15:25, 5:55] = True  # a thick bar
    mask[5:35, 28:34] = True  # crossed by a thick post
    skeleton = skeletonize(mask)
    assert skeleton.any()
    assert not (skeleton & ~mask).any()
    blocks = skeleton[:-1, :-1] & skeleton[1:, :-1] & skeleton[:-1, 1:] & skeleton[1:, 1:]
    assert not blocks.any()  # no 2×2 lumps: one pixel wide
    assert (skeleton[15:25, 12:25].sum(axis=0) == 1).all()  # the bar's centre line survives
    assert skeletonize(np.zeros((5, 5))).sum() == 0


def test_ink_from_strokes_renders_round_pen():
    ink = ink_from_strokes([[(50, 50)], [(100, 100), (200, 100)]], size=280, width=20)
    assert ink.shape == (280, 280) and ink.dtype == np.uint8
    assert ink[50, 50] == 255 and ink[100, 150] == 255
    assert ink[100, 89] == 0 and ink[100, 92] == 255  # round cap reaches back ~10 px
    assert ink[80, 150] == 0
    assert 0 < ink[100, 80:90].max() < 255 or ink[89, 150] < 255  # antialiased edge
    default = ink_from_strokes([[(40, 140), (240, 140)]])
    assert abs((default[:, 140] > 127).sum() - BRUSH_FRACTION * 280) <= 2
    assert ink_from_strokes([], size=28).sum() == 0


def test_ink_from_strokes_validates():
    with pytest.raises(ValueError, match="pen width"):
        ink_from_strokes([[(1, 1)]], width=0)
    with pytest.raises(ValueError, match="canvas size"):
        ink_from_strokes([[(1, 1)]], size=0)
    with pytest.raises(ValueError, match="finite"):
        ink_from_strokes([[(1, float("nan"))]])


def canvas_pictures(ink: np.ndarray) -> dict[str, Image.Image]:
    """The same drawing as a browser canvas export, a scan and a white-on-black picture."""
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., :3] = 20  # near-black ink colour, everywhere; alpha says where it is
    rgba[..., 3] = ink
    return {
        "canvas RGBA": Image.fromarray(rgba),
        "black on white RGB": Image.fromarray(np.repeat((255 - ink)[..., None], 3, axis=2)),
        "white on black L": Image.fromarray(ink),
        "grey paper": Image.fromarray((230 - ink * (200 / 255)).astype(np.uint8)),
        "black on white LA": Image.fromarray(255 - ink).convert("LA"),
        "palette": Image.fromarray(255 - ink).convert("P"),
    }


def test_image_inputs_of_every_mode_and_polarity_agree():
    ink = ink_from_strokes(FOUR)
    expected = ink_to_mnist(ink).astype(int)
    for name, picture in canvas_pictures(ink).items():
        got = ink_to_mnist(picture).astype(int)
        assert np.abs(got - expected).mean() < 4, name
        assert image_to_ink(picture).shape == ink.shape


def test_load_ink_image_reads_png(tmp_path):
    ink = ink_from_strokes(SEVEN)
    for name, picture in canvas_pictures(ink).items():
        path = tmp_path / f"{name.replace(' ', '_')}.png"
        picture.save(path)
        loaded = load_ink_image(path)
        assert loaded.dtype == np.float32 and loaded.shape == ink.shape
        assert np.abs(loaded - ink / 255).mean() < 0.02, name


def test_blank_picture_is_empty():
    with pytest.raises(EmptyInkError):
        ink_to_mnist(Image.new("RGB", (100, 100), "white"))
    assert image_to_ink(Image.new("F", (4, 4), 3.0)).max() == 0


points = st.tuples(st.floats(-50, 350), st.floats(-50, 350))
stroke_sets = st.lists(st.lists(points, min_size=1, max_size=8), min_size=0, max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strokes=stroke_sets, width=st.floats(0.5, 80), size=st.sampled_from([28, 100, 280]))
def test_random_strokes_give_an_image_or_a_clear_error(strokes, width, size):
    scaled = [[(x * size / 280, y * size / 280) for x, y in s] for s in strokes]
    ink = ink_from_strokes(scaled, size=size, width=width * size / 280)
    try:
        out = ink_to_mnist(ink)
    except ValueError as error:
        assert "draw" in str(error)
        return
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 60),
    st.integers(1, 60),
    st.sampled_from(["uint8", "float32", "float64", "int64", "bool"]),
    st.data(),
)
def test_ink_to_mnist_returns_an_image_or_says_why(h, w, dtype, data) -> None:
    kind = data.draw(st.sampled_from(["random", "sparse", "blob", "special"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    if kind == "random":
        ink = rng.random((h, w)) * data.draw(st.sampled_from([1.0, 255.0, 1e6, -1.0]))
    elif kind == "sparse":
        ink = (rng.random((h, w)) > 0.97) * 255.0
    elif kind == "blob":
        ink = np.zeros((h, w))
        ink[h // 4 : 3 * h // 4 + 1, w // 3 : w // 2 + 1] = 1.0
    else:
        ink = np.full((h, w), data.draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0])))
    if dtype in ("uint8", "int64"):  # the page sends uint8; integers cannot hold NaN
        ink = np.clip(np.nan_to_num(ink, posinf=255, neginf=0), 0, 255)
    ink = ink.astype(dtype)
    try:
        out = ink_to_mnist(ink)
    except ValueError as exc:  # EmptyInkError included
        assert str(exc)
        return
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255  # normalised to full ink at the strokes' centre


def test_ink_fuzz_covers_the_digit_path() -> None:
    """The property above must reach the success path, not only the refusals."""
    ink = ink_from_strokes([[(10.0, 5.0), (12.0, 50.0)]], 60, 4.0)
    assert ink_to_mnist(ink).max() == 255
    with pytest.raises(EmptyInkError):
        ink_to_mnist(np.zeros((5, 5)))
