"""The compact dataset format: round trips, rejection of damaged files, the committed file."""

from __future__ import annotations

import importlib.util
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scribblenet.compact import (
    MAGIC,
    VERSION,
    decode_compact,
    dequantize,
    encode_compact,
    quantize,
    read_compact,
    read_header,
    write_compact,
)
from scribblenet.mnist import MNIST
from session_helpers import mutate, tiny_mnist

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "web" / "data" / "mnist-compact-v1.bin"
PRELUDE = struct.Struct("<8sHHII")  # as documented in scribblenet/compact.py
BUILT_WITH_ZLIB = "1.2.13"  # zlib.ZLIB_RUNTIME_VERSION when the committed file was built


def fake_digits(n: int, rng: np.random.Generator) -> np.ndarray:
    """Sparse uint8 images (n, 784): a random blob of ink per image, like a digit's stroke."""
    X = np.zeros((n, 28, 28), np.uint8)
    for image in X:
        top, left = rng.integers(0, 20, size=2)
        h, w = rng.integers(1, 9, size=2)
        image[top : top + h, left : left + w] = rng.integers(0, 256, size=(h, w))
    return X.reshape(n, 784)


def fake_mnist(rng: np.random.Generator, n_train: int = 40, n_test: int = 15) -> MNIST:
    return MNIST(
        fake_digits(n_train, rng),
        rng.integers(0, 10, n_train).astype(np.uint8),
        fake_digits(n_test, rng),
        rng.integers(0, 10, n_test).astype(np.uint8),
    )


def split_file(blob: bytes) -> tuple[dict, list[bytes]]:
    """Undo the documented layout: header dict and the raw streams in file order."""
    _, _, _, header_len, _ = PRELUDE.unpack_from(blob)
    header = json.loads(blob[PRELUDE.size : PRELUDE.size + header_len])
    offset, streams = PRELUDE.size + header_len, []
    for split in header["splits"]:
        for stream in split["streams"]:
            streams.append(blob[offset : offset + stream["length"]])
            offset += stream["length"]
    return header, streams


def join_file(header: dict, streams: list[bytes], version: int = VERSION) -> bytes:
    """Lay out a file as documented, recomputing stream lengths and CRC-32s."""
    entries = [s for split in header["splits"] for s in split["streams"]]
    for entry, stream in zip(entries, streams, strict=False):  # tests may drop an entry
        entry["length"], entry["crc32"] = len(stream), zlib.crc32(stream)
    raw = json.dumps(header).encode()
    return PRELUDE.pack(MAGIC, version, 0, len(raw), zlib.crc32(raw)) + raw + b"".join(streams)


STREAM = {"labels": 0, "indices": 1, "mask": 2, "values": 3}  # train split's streams


@pytest.fixture
def data(rng) -> MNIST:
    return fake_mnist(rng)


@pytest.fixture
def blob(data) -> bytes:
    return encode_compact(data, levels=16, block_size=16)


def assert_round_trip(data: MNIST, decoded: MNIST, levels: int) -> None:
    for name in ("X_train", "X_test"):
        expected = dequantize(quantize(getattr(data, name), levels), levels)
        np.testing.assert_array_equal(getattr(decoded, name), expected)
        assert getattr(decoded, name).dtype == np.uint8
    np.testing.assert_array_equal(decoded.y_train, data.y_train)
    np.testing.assert_array_equal(decoded.y_test, data.y_test)
    assert decoded.y_train.dtype == np.uint8


@pytest.mark.parametrize("levels", [2, 3, 8, 16, 17, 256])
def test_round_trip(data, levels):
    decoded = read_compact(encode_compact(data, levels=levels, block_size=7))
    assert_round_trip(data, decoded, levels)


def test_lossless_at_256_levels(data):
    decoded = read_compact(encode_compact(data, levels=256))
    np.testing.assert_array_equal(decoded.X_train, data.X_train)
    np.testing.assert_array_equal(decoded.X_test, data.X_test)


def test_indices_header_and_meta_survive(data):
    train = np.arange(data.y_train.size) * 3 + 1
    blob = encode_compact(data, train_indices=train, meta={"seed": 7, "note": "tiny"})
    decoded = decode_compact(blob)
    np.testing.assert_array_equal(decoded.train_indices, train)
    np.testing.assert_array_equal(decoded.test_indices, np.arange(data.y_test.size))
    header = read_header(blob)
    assert header == decoded.header
    assert header["meta"] == {"seed": 7, "note": "tiny"}
    assert header["levels"] == 16
    assert [s["count"] for s in header["splits"]] == [40, 15]
    assert header["splits"][0]["label_counts"] == np.bincount(data.y_train, minlength=10).tolist()


def test_write_compact_and_bytes_like_inputs(data, tmp_path):
    path = tmp_path / "d.bin"
    size = write_compact(data, path, levels=8)
    blob = path.read_bytes()
    assert size == len(blob)
    assert blob.startswith(MAGIC)
    for source in (bytearray(blob), memoryview(blob)):
        assert_round_trip(data, read_compact(source), 8)


def test_encoding_is_deterministic(data):
    assert encode_compact(data) == encode_compact(data)


def test_empty_splits(rng):
    empty = MNIST(np.zeros((0, 784), np.uint8), np.zeros(0, np.uint8), *fake_mnist(rng)[2:])
    decoded = read_compact(encode_compact(empty))
    assert decoded.X_train.shape == (0, 784)
    assert decoded.y_train.shape == (0,)
    assert decoded.X_test.shape == (15, 784)


@given(
    n_train=st.integers(0, 12),
    n_test=st.integers(0, 5),
    levels=st.integers(2, 256),
    block_size=st.integers(1, 6),
    density=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_property(n_train, n_test, levels, block_size, density, seed):
    rng = np.random.default_rng(seed)

    def images(n):  # any pixels, with a chosen share of background
        X = rng.integers(0, 256, size=(n, 784)).astype(np.uint8)
        X[rng.random((n, 784)) > density] = 0
        return X

    data = MNIST(
        images(n_train),
        rng.integers(0, 10, n_train).astype(np.uint8),
        images(n_test),
        rng.integers(0, 10, n_test).astype(np.uint8),
    )
    blob = encode_compact(data, levels=levels, block_size=block_size)
    assert_round_trip(data, read_compact(blob), levels)


@given(levels=st.integers(2, 256), pixels=st.lists(st.integers(0, 255), max_size=64))
def test_quantize_is_nearest_level(levels, pixels):
    X = np.array(pixels, np.uint8)
    q = quantize(X, levels)
    assert q.dtype == np.uint8
    assert np.all(q < levels)
    decoded = dequantize(q, levels).astype(np.int64)
    grid = dequantize(np.arange(levels, dtype=np.uint8), levels).astype(np.int64)
    nearest = np.abs(X[:, None].astype(np.int64) - grid[None, :]).min(axis=1)
    np.testing.assert_array_equal(np.abs(decoded - X), nearest)
    np.testing.assert_array_equal(quantize(dequantize(q, levels), levels), q)


def test_sixteen_levels_are_multiples_of_17():
    grid = dequantize(np.arange(16, dtype=np.uint8), 16)
    np.testing.assert_array_equal(grid, np.arange(16) * 17)
    np.testing.assert_array_equal(quantize(np.array([0, 8, 9, 255], np.uint8), 16), [0, 0, 1, 15])


@pytest.mark.parametrize("levels", [1, 257, 0, 2.5, True])
def test_levels_are_checked(data, levels):
    with pytest.raises(ValueError, match="levels must be"):
        encode_compact(data, levels=levels)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"X_train": np.zeros((40, 783), np.uint8)}, r"train images must be uint8 \(n, 784\)"),
        ({"X_test": np.zeros((15, 784), np.float32)}, "test images must be uint8"),
        ({"y_train": np.full(40, 10, np.uint8)}, "train labels must be in 0..9"),
        ({"y_test": np.zeros(14, np.uint8)}, "test labels must be n=15"),
    ],
)
def test_encode_rejects_bad_arrays(data, change, message):
    with pytest.raises(ValueError, match=message):
        encode_compact(data._replace(**change))


def test_encode_rejects_unsorted_indices(data):
    with pytest.raises(ValueError, match="strictly increasing"):
        encode_compact(data, test_indices=np.r_[np.arange(14), 3])


def test_rejects_wrong_magic(blob):
    with pytest.raises(ValueError, match="not a compact MNIST file: magic"):
        read_compact(b"PK\x03\x04" + blob[4:])


def test_rejects_other_version(blob):
    header, streams = split_file(blob)
    with pytest.raises(ValueError, match="unsupported compact format version 2"):
        read_compact(join_file(header, streams, version=2))


def test_rejects_nonzero_flags(blob):
    with pytest.raises(ValueError, match="unsupported compact format flags"):
        read_compact(blob[:10] + b"\x01\x00" + blob[12:])


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (0, "shorter than the 20-byte prelude"),
        (19, "shorter than the 20-byte prelude"),
        (40, "header needs"),
        (-1, "streams need"),
        (-500, "streams need"),
    ],
)
def test_rejects_truncation(blob, cut, message):
    with pytest.raises(ValueError, match=f"truncated compact file: .*{message}"):
        read_compact(blob[:cut])


def test_header_of_truncated_file_still_readable(blob):
    assert read_header(blob[:-100])["levels"] == 16


def test_rejects_trailing_bytes(blob):
    with pytest.raises(ValueError, match="1 unexpected trailing bytes"):
        read_compact(blob + b"\x00")


def test_rejects_corrupt_header(blob):
    damaged = bytearray(blob)
    damaged[PRELUDE.size + 5] ^= 0x01
    with pytest.raises(ValueError, match="header is corrupt: CRC-32 mismatch"):
        read_compact(bytes(damaged))


def test_rejects_header_that_is_not_json(blob):
    raw = b"{not json"
    prelude = PRELUDE.pack(MAGIC, VERSION, 0, len(raw), zlib.crc32(raw))
    with pytest.raises(ValueError, match="not valid JSON"):
        read_compact(prelude + raw)


def test_rejects_corrupt_stream(blob):
    damaged = bytearray(blob)
    damaged[-3] ^= 0xFF  # inside the test split's values stream
    with pytest.raises(ValueError, match="test values stream is corrupt: CRC-32 mismatch"):
        read_compact(bytes(damaged))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: h.update(format="zip"), "header format must be"),
        (lambda h: h.update(version=2), "differs from the prelude"),
        (lambda h: h.update(levels=1), r"header.levels must be an int in 2..256"),
        (lambda h: h.update(levels="16"), r"header.levels must be an int"),
        (lambda h: h.update(block_size=0), r"header.block_size must be an int"),
        (lambda h: h.update(image_shape=[32, 32]), "image_shape must be"),
        (lambda h: h.update(meta=[]), "meta must be a JSON object"),
        (lambda h: h["splits"].reverse(), "'train' then 'test'"),
        (lambda h: h["splits"][0].update(count=-1), r"splits.train.count must be"),
        (lambda h: h["splits"][0].update(count=True), r"splits.train.count must be"),
        (lambda h: h["splits"][1]["label_counts"].append(0), "label_counts must be 10"),
        (lambda h: h["splits"][1]["label_counts"].__setitem__(0, 99), "summing to 15"),
        (lambda h: h["splits"][0]["streams"].pop(), "streams must be labels, indices"),
    ],
)
def test_rejects_bad_header_fields(blob, mutate, message):
    header, streams = split_file(blob)
    mutate(header)
    with pytest.raises(ValueError, match=message):
        read_compact(join_file(header, streams))


def test_rejects_header_that_is_not_an_object(blob):
    raw = b"[1, 2]"
    prelude = PRELUDE.pack(MAGIC, VERSION, 0, len(raw), zlib.crc32(raw))
    with pytest.raises(ValueError, match="header must be a JSON object"):
        read_compact(prelude + raw)


def rebuilt(blob: bytes, stream: str, content: bytes | None = None, header_change=None) -> bytes:
    """The file with one train stream replaced by ``content`` (zlib-compressed here)."""
    header, streams = split_file(blob)
    if content is not None:
        streams[STREAM[stream]] = zlib.compress(content)
    if header_change:
        header_change(header["splits"][0])
    return join_file(header, streams)


def test_rejects_labels_out_of_range(blob, data):
    labels = data.y_train.copy()
    labels[0] = 10
    with pytest.raises(ValueError, match=r"train labels must be in 0..9"):
        read_compact(rebuilt(blob, "labels", labels.tobytes()))


def test_rejects_labels_not_matching_counts(blob, data):
    labels = data.y_train.copy()
    labels[0] = (labels[0] + 1) % 10
    with pytest.raises(ValueError, match="do not match the header's label_counts"):
        read_compact(rebuilt(blob, "labels", labels.tobytes()))


def test_rejects_wrong_stream_length(blob, data):
    with pytest.raises(ValueError, match="train labels stream holds 39 bytes, expected 40"):
        read_compact(rebuilt(blob, "labels", data.y_train[:-1].tobytes()))
    header, streams = split_file(blob)
    streams[STREAM["labels"]] = streams[STREAM["labels"]][:-5]  # cut inside the zlib stream
    with pytest.raises(ValueError, match="train labels stream is truncated"):
        read_compact(join_file(header, streams))
    with pytest.raises(ValueError, match="decompresses to more than the expected 40"):
        read_compact(rebuilt(blob, "labels", data.y_train.tobytes() + b"\x00"))


def test_rejects_garbage_stream_with_valid_crc(blob):
    header, streams = split_file(blob)
    streams[STREAM["mask"]] = b"\x00" * 10
    with pytest.raises(ValueError, match="train mask stream is corrupt"):
        read_compact(join_file(header, streams))


def test_rejects_data_after_zlib_stream(blob):
    header, streams = split_file(blob)
    streams[STREAM["labels"]] += b"junk"
    with pytest.raises(ValueError, match="train labels stream has 4 bytes after its end"):
        read_compact(join_file(header, streams))


def test_rejects_repeated_indices(blob):
    deltas = np.ones(40, "<u4")
    deltas[5] = 0
    with pytest.raises(ValueError, match="train indices are not strictly increasing"):
        read_compact(rebuilt(blob, "indices", deltas.tobytes()))


def test_rejects_mask_beyond_column_27(blob):
    _, streams = split_file(blob)
    planes = bytearray(zlib.decompress(streams[STREAM["mask"]]))
    planes[3 * 40 * 28] |= 0x10  # byte plane 3, first row: bit 28
    with pytest.raises(ValueError, match="mask sets bits beyond column 27"):
        read_compact(rebuilt(blob, "mask", bytes(planes)))


@pytest.mark.parametrize(
    ("change", "message"),
    [(2, r"mask has \d+ pixels set, the header says nonzero="), (-2, "more pixels set than")],
)
def test_rejects_mask_disagreeing_with_nonzero_count(blob, change, message):
    header, _ = split_file(blob)
    k = header["splits"][0]["nonzero"] + change
    ones = b"\x11" * (k // 2) + (b"\x10" if k % 2 else b"")  # k valid values of level 1

    def set_nonzero(split):
        split["nonzero"] = k

    with pytest.raises(ValueError, match=message):
        read_compact(rebuilt(blob, "values", ones, header_change=set_nonzero))


def test_rejects_zero_value_and_bad_padding(blob):
    header, streams = split_file(blob)
    k = header["splits"][0]["nonzero"]
    values = bytearray(zlib.decompress(streams[STREAM["values"]]))
    zero = bytearray(values)
    zero[0] &= 0x0F  # first value becomes level 0, which the mask says is non-zero
    with pytest.raises(ValueError, match=r"train values must be in 1..15"):
        read_compact(rebuilt(blob, "values", bytes(zero)))
    if k % 2:
        values[-1] |= 0x01
        with pytest.raises(ValueError, match="padding nibble is not zero"):
            read_compact(rebuilt(blob, "values", bytes(values)))


def test_rejects_value_above_levels(data):
    blob = encode_compact(data, levels=20)
    _, streams = split_file(blob)
    values = bytearray(zlib.decompress(streams[STREAM["values"]]))
    values[0] = 20
    with pytest.raises(ValueError, match=r"train values must be in 1..19"):
        read_compact(rebuilt(blob, "values", bytes(values)))


VALID_DATASET = encode_compact(tiny_mnist(np.random.default_rng(1), 20, 10), levels=16)


@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    st.none() | st.integers(0, len(VALID_DATASET)),
)
def test_mutated_dataset_is_refused_or_valid(edits, cut) -> None:
    data = mutate(VALID_DATASET, edits, cut)
    try:
        mnist = read_compact(data)
    except ValueError as exc:
        assert str(exc)
        return
    for X, y in ((mnist.X_train, mnist.y_train), (mnist.X_test, mnist.y_test)):
        assert X.dtype == np.uint8 and X.shape == (len(y), 784)
        assert y.dtype == np.uint8 and (y < 10).all()


# The file the web page loads, as committed.


@pytest.fixture(scope="module")
def committed() -> tuple[bytes, object]:
    if not COMMITTED.is_file():
        pytest.fail(f"{COMMITTED} missing: run scripts/build_dataset.py")
    blob = COMMITTED.read_bytes()
    return blob, decode_compact(blob)


def test_committed_file_fits_the_budget(committed):
    blob, _ = committed
    assert len(blob) <= 8_000_000


def test_committed_file_holds_full_test_set_and_balanced_train(committed):
    _, decoded = committed
    data = decoded.mnist
    assert data.X_test.shape == (10000, 784)
    assert data.y_test.shape == (10000,)
    np.testing.assert_array_equal(decoded.test_indices, np.arange(10000))
    # MNIST's published test label counts.
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    np.testing.assert_array_equal(np.bincount(data.y_test, minlength=10), test_counts)
    n_train = data.y_train.size
    assert 40000 <= n_train <= 60000
    assert data.X_train.shape == (n_train, 784)
    shares = np.bincount(data.y_train, minlength=10) / n_train
    assert shares.min() >= 0.08
    assert shares.max() <= 0.12
    assert np.all(np.diff(decoded.train_indices) > 0)
    assert decoded.train_indices[-1] < 60000


def test_committed_file_pixels_and_header(committed):
    _, decoded = committed
    header = decoded.header
    levels = header["levels"]
    grid = dequantize(np.arange(levels, dtype=np.uint8), levels)
    sample = decoded.mnist.X_train[::997]
    assert np.isin(sample, grid).all()
    assert 0.1 < np.mean(sample > 0) < 0.3  # MNIST digits cover about 19 % of the frame
    assert header["meta"]["license"] == "CC BY-SA 3.0"
    assert "LeCun" in header["meta"]["source"]


def load_build_script():
    spec = importlib.util.spec_from_file_location(
        "build_dataset", REPO / "scripts" / "build_dataset.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.native
@pytest.mark.slow
def test_committed_file_rebuilds_byte_for_byte(mnist_dir, committed, tmp_path):
    blob, decoded = committed
    header = decoded.header
    build = load_build_script()
    out = tmp_path / "rebuilt.bin"
    status = build.main(
        [
            "--data-dir",
            str(mnist_dir),
            "--no-download",
            "--n-train",
            str(header["splits"][0]["count"]),
            "--levels",
            str(header["levels"]),
            "--out",
            str(out),
        ]
    )
    assert status == 0
    rebuilt = decode_compact(out.read_bytes())
    for got, want in zip(rebuilt.mnist, decoded.mnist, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(rebuilt.train_indices, decoded.train_indices)
    # Another zlib may choose other (equally valid) deflate blocks; the one that built it must not.
    if zlib.ZLIB_RUNTIME_VERSION == BUILT_WITH_ZLIB:
        assert out.read_bytes() == blob


@pytest.mark.native
def test_committed_file_matches_real_mnist(mnist_dir, committed):
    from scribblenet.mnist import load_mnist

    _, decoded = committed
    real = load_mnist(mnist_dir, download=False)
    levels = decoded.header["levels"]
    train = decoded.train_indices
    np.testing.assert_array_equal(decoded.mnist.y_train, real.y_train[train])
    np.testing.assert_array_equal(decoded.mnist.y_test, real.y_test)
    expected = dequantize(quantize(real.X_test, levels), levels)
    np.testing.assert_array_equal(decoded.mnist.X_test, expected)
    some = train[::50]
    expected = dequantize(quantize(real.X_train[some], levels), levels)
    np.testing.assert_array_equal(decoded.mnist.X_train[::50], expected)
