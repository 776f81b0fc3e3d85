"""MNIST IDX reading, checksum checks, offline download errors and stratified subsets."""

from __future__ import annotations

import gzip
import hashlib
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scribblenet import mnist
from scribblenet.mnist import (
    ENV_VAR,
    FILES,
    MIRRORS,
    MNISTDownloadError,
    MnistFile,
    default_data_dirs,
    download_mnist,
    load_mnist,
    read_idx,
    stratified_indices,
)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """Serialise ``array`` as IDX: two zero bytes, type code, ndim, big-endian dims, data."""
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    big = array.astype(array.dtype.newbyteorder(">"))
    return bytes([0, 0, type_code, array.ndim]) + dims + big.tobytes()


def images(n: int = 3) -> np.ndarray:
    return np.arange(n * 28 * 28, dtype=np.uint64).reshape(n, 28, 28).astype(np.uint8)


def test_read_idx_raw_and_gzipped_files(tmp_path):
    expected = images()
    raw = tmp_path / "images-idx3-ubyte"
    raw.write_bytes(idx_bytes(expected))
    gz = tmp_path / "images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(idx_bytes(expected)))
    for source in (raw, str(gz), raw.read_bytes(), gz.read_bytes()):
        array = read_idx(source)
        assert array.dtype == np.uint8
        np.testing.assert_array_equal(array, expected)
    assert read_idx(raw).flags.writeable


def test_read_idx_labels_and_wider_types():
    labels = np.array([5, 0, 4, 1, 9], np.uint8)
    np.testing.assert_array_equal(read_idx(idx_bytes(labels)), labels)
    shorts = np.array([[-2, 300], [7, -32768]], np.int16)
    got = read_idx(idx_bytes(shorts, 0x0B))
    assert got.dtype == np.int16
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, shorts)
    floats = np.array([0.5, -1.25, 3e8], np.float32)
    np.testing.assert_array_equal(read_idx(idx_bytes(floats, 0x0D)), floats)


def test_read_idx_empty_array():
    assert read_idx(idx_bytes(np.zeros((0, 28, 28), np.uint8))).shape == (0, 28, 28)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "shorter than the 4-byte magic"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x00", "magic starts with 0x0100"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x00", "unsupported IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00", "header truncated"),
        (idx_bytes(np.zeros((4, 2), np.uint8))[:-1], "IDX data truncated: header says 4x2"),
        (idx_bytes(np.zeros(3, np.uint8)) + b"\x00", "has trailing bytes"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt gzip data"),
        (gzip.compress(idx_bytes(images()))[:-12], "corrupt gzip data"),
    ],
)
def test_read_idx_rejects_malformed(data, message):
    with pytest.raises(ValueError, match=message):
        read_idx(data)


def fake_mnist_file(tmp_path: Path, name: str, array: np.ndarray) -> MnistFile:
    """Write ``name``.gz holding ``array`` and return a FILES entry that describes it."""
    raw = idx_bytes(array)
    (tmp_path / f"{name}.gz").write_bytes(gzip.compress(raw))
    return MnistFile(name, array.shape, hashlib.sha256(raw).hexdigest(), "", "")


def write_tiny_mnist(directory: Path) -> None:
    """Tiny files under the real MNIST names: right format, wrong content for the checksums."""
    for name, info in FILES.items():
        shape = (2, 28, 28) if len(info.shape) == 3 else (2,)
        raw = idx_bytes(np.ones(shape, np.uint8))
        target = directory / (name if name.startswith("t10k") else f"{name}.gz")
        target.write_bytes(raw if name.startswith("t10k") else gzip.compress(raw))


def test_load_mnist_rejects_checksum_mismatch(tmp_path):
    write_tiny_mnist(tmp_path)
    with pytest.raises(ValueError, match="checksum mismatch for train-images-idx3-ubyte"):
        load_mnist(tmp_path, download=False)


def test_load_mnist_unverified_still_checks_shapes(tmp_path):
    write_tiny_mnist(tmp_path)
    with pytest.raises(ValueError, match=r"expected uint8 \(60000, 28, 28\)"):
        load_mnist(tmp_path, download=False, verify=False)


def test_load_mnist_missing_files_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte") as info:
        load_mnist(tmp_path, download=False)
    assert ENV_VAR in str(info.value)


def test_load_mnist_uses_fake_files_when_checksums_match(tmp_path, monkeypatch):
    arrays = {
        "train-images-idx3-ubyte": images(3),
        "train-labels-idx1-ubyte": np.array([1, 2, 3], np.uint8),
        "t10k-images-idx3-ubyte": images(2)[::-1].copy(),
        "t10k-labels-idx1-ubyte": np.array([9, 0], np.uint8),
    }
    fakes = {name: fake_mnist_file(tmp_path, name, a) for name, a in arrays.items()}
    monkeypatch.setattr(mnist, "FILES", fakes)
    data = load_mnist(tmp_path, download=False)
    assert data.X_train.shape == (3, 784)
    assert data.X_test.shape == (2, 784)
    np.testing.assert_array_equal(data.X_train, arrays["train-images-idx3-ubyte"].reshape(3, 784))
    np.testing.assert_array_equal(data.y_test, [9, 0])


def offline(url: str, timeout: float) -> bytes:
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_download_offline_gives_clear_error(tmp_path):
    with pytest.raises(MNISTDownloadError) as info:
        download_mnist(tmp_path, open_url=offline)
    message = str(info.value)
    assert message.startswith("could not download MNIST from any mirror (")
    assert message.endswith(f"pass --data-dir or set {ENV_VAR}")
    for base in MIRRORS:
        assert f"{base}train-images-idx3-ubyte.gz" in message
    assert list(tmp_path.iterdir()) == []


def test_load_mnist_offline_through_default_opener(tmp_path, monkeypatch):
    calls = []

    def opener(url, timeout):
        calls.append((url, timeout))
        return offline(url, timeout)

    monkeypatch.setattr(mnist, "_open_url", opener)
    with pytest.raises(MNISTDownloadError, match="pass --data-dir or set SCRIBBLENET_MNIST_DIR"):
        load_mnist(tmp_path)
    assert [url for url, _ in calls] == [f"{m}train-images-idx3-ubyte.gz" for m in MIRRORS]
    assert all(0 < timeout <= 30 for _, timeout in calls)


def test_download_falls_back_to_next_mirror_and_verifies(tmp_path, monkeypatch):
    labels = np.array([3, 1, 4], np.uint8)
    source = tmp_path / "source"
    source.mkdir()
    info = fake_mnist_file(source, "tiny-labels-idx1-ubyte", labels)
    monkeypatch.setattr(mnist, "FILES", {info.name: info})
    payload = (source / f"{info.name}.gz").read_bytes()
    served = {"https://a.invalid/": b"not gzip, not idx", "https://b.invalid/": payload}

    def opener(url, timeout):
        return served[url.rsplit("/", 1)[0] + "/"]

    target = tmp_path / "cache" / "mnist"
    paths = download_mnist(target, mirrors=list(served), open_url=opener)
    assert paths == [target / f"{info.name}.gz"]
    assert sorted(p.name for p in target.iterdir()) == [f"{info.name}.gz"]  # no partial files
    np.testing.assert_array_equal(read_idx(paths[0]), labels)


def test_download_rejects_wrong_content(tmp_path):
    wrong = gzip.compress(idx_bytes(np.zeros(60000, np.uint8)))
    with pytest.raises(MNISTDownloadError, match="checksum mismatch for train-labels"):
        download_mnist(
            tmp_path, names=["train-labels-idx1-ubyte"], open_url=lambda url, timeout: wrong
        )
    assert list(tmp_path.iterdir()) == []


def test_default_data_dirs_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert default_data_dirs() == [tmp_path]
    monkeypatch.delenv(ENV_VAR)
    assert default_data_dirs()[-1] == Path.home() / ".cache" / "scribblenet" / "mnist"


def test_known_digests_are_well_formed():
    assert len(FILES) == 4
    for info in FILES.values():
        assert len(info.sha256) == 64
        assert len(info.md5) == len(info.gz_md5) == 32
        int(info.sha256 + info.md5 + info.gz_md5, 16)


def test_stratified_indices_keeps_class_shares(rng):
    y = np.repeat(np.arange(10), [50, 100, 150, 200, 250, 300, 350, 400, 450, 500])  # 2750
    chosen = stratified_indices(y, 550, rng)
    assert chosen.size == 550
    assert np.all(np.diff(chosen) > 0)
    np.testing.assert_array_equal(np.bincount(y[chosen]), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    np.testing.assert_array_equal(stratified_indices(y, y.size, rng), np.arange(y.size))
    assert stratified_indices(y, 0, rng).size == 0


def test_stratified_indices_is_seeded():
    y = np.arange(1000) % 7
    a = stratified_indices(y, 100, np.random.default_rng(3))
    b = stratified_indices(y, 100, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [-1, 11])
def test_stratified_indices_rejects_bad_size(n, rng):
    with pytest.raises(ValueError, match=r"subset size must be in 0..10"):
        stratified_indices(np.arange(10), n, rng)


@given(
    counts=st.lists(st.integers(0, 40), min_size=1, max_size=10).filter(lambda c: sum(c) > 0),
    fraction=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_indices_properties(counts, fraction, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    n = round(fraction * y.size)
    chosen = stratified_indices(y, n, np.random.default_rng(seed))
    assert chosen.size == n
    assert np.all(np.diff(chosen) > 0)
    share = np.bincount(y[chosen], minlength=len(counts))
    assert np.all(np.abs(share - np.array(counts) * n / y.size) < 1)  # largest remainder


@pytest.mark.native
def test_real_mnist_loads_and_verifies(mnist_dir):
    data = load_mnist(mnist_dir, download=False)
    assert data.X_train.shape == (60000, 784)
    assert data.X_test.shape == (10000, 784)
    assert data.X_train.dtype == data.y_train.dtype == np.uint8
    # Label counts published with the data set (see /work/shared/data/mnist/README.md).
    train = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    np.testing.assert_array_equal(np.bincount(data.y_train), train)
    np.testing.assert_array_equal(np.bincount(data.y_test), test)
    np.testing.assert_array_equal(data.y_train[:5], [5, 0, 4, 1, 9])
