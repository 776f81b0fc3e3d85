"""Read, verify and (when missing) download the MNIST digits in their original IDX format.

MNIST (Y. LeCun, C. Cortes, C. J. C. Burges) is licensed CC BY-SA 3.0 by its authors.

Files are checked by the sha256 of their *decompressed* bytes: every mirror serves the same IDX
content, but gzip output depends on the compressor, so digests of ``.gz`` files differ between
mirrors (the classic ``.gz`` md5s are kept in ``FILES`` for reference only).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "ENV_VAR",
    "FILES",
    "MIRRORS",
    "MNIST",
    "MNISTDownloadError",
    "MnistFile",
    "default_data_dirs",
    "download_mnist",
    "load_mnist",
    "read_idx",
    "stratified_indices",
]

ENV_VAR = "SCRIBBLENET_MNIST_DIR"

# Dataset mirrors (not package registries), tried in order; each serves "<name>.gz".
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_GZIP_MAGIC = b"\x1f\x8b"
# IDX type codes -> big-endian numpy dtypes (http://yann.lecun.com/exdb/mnist/, "IDX file format").
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class MNIST(NamedTuple):
    """Images uint8 (n, 784) row-major 28×28, 0 = background; labels uint8 (n,) in 0..9."""

    X_train: np.ndarray  # (n_train, 784) uint8
    y_train: np.ndarray  # (n_train,) uint8
    X_test: np.ndarray  # (n_test, 784) uint8
    y_test: np.ndarray  # (n_test,) uint8


@dataclass(frozen=True)
class MnistFile:
    """One of the four MNIST IDX files and its known digests."""

    name: str  # uncompressed file name, e.g. "train-images-idx3-ubyte"
    shape: tuple[int, ...]  # array shape stored in the file
    sha256: str  # of the decompressed IDX bytes: the check that decides
    md5: str  # of the decompressed IDX bytes
    gz_md5: str  # of the classic "<name>.gz" served by the mirrors (reference only)


FILES: dict[str, MnistFile] = {
    f.name: f
    for f in (
        MnistFile(
            "train-images-idx3-ubyte",
            (60000, 28, 28),
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "6bbc9ace898e44ae57da46a324031adb",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        ),
        MnistFile(
            "train-labels-idx1-ubyte",
            (60000,),
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "a25bea736e30d166cdddb491f175f624",
            "d53e105ee54ea40749a09fcbcd1e9432",
        ),
        MnistFile(
            "t10k-images-idx3-ubyte",
            (10000, 28, 28),
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "2646ac647ad5339dbf082846283269ea",
            "9fb629c4189551a2d022fa330f9573f3",
        ),
        MnistFile(
            "t10k-labels-idx1-ubyte",
            (10000,),
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            "27ae3e4e09519cfbb04c329615203637",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    )
}


class MNISTDownloadError(OSError):
    """No mirror delivered a file with the expected content."""


def _decompress(data: bytes) -> bytes:
    """Gunzip ``data`` if it starts with the gzip magic, else return it unchanged."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise ValueError(f"corrupt gzip data: {exc}") from exc


def _parse_idx(raw: bytes) -> np.ndarray:
    """Parse uncompressed IDX bytes into a native-endian array."""
    if len(raw) < 4:
        raise ValueError(f"not an IDX file: {len(raw)} bytes is shorter than the 4-byte magic")
    zero, type_code, ndim = int.from_bytes(raw[0:2], "big"), raw[2], raw[3]
    if zero != 0:
        raise ValueError(f"not an IDX file: magic starts with 0x{raw[:2].hex()}, expected 0x0000")
    if type_code not in _IDX_DTYPES:
        allowed = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(f"unsupported IDX type code 0x{type_code:02x}, expected one of {allowed}")
    if ndim == 0:
        raise ValueError("IDX header declares 0 dimensions, expected at least 1")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(
            f"IDX header truncated: {ndim} dimensions need {header_len} bytes, got {len(raw)}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header_len
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        dims = "x".join(map(str, shape))
        raise ValueError(
            f"IDX data {what}: header says {dims} of {dtype.name} = {expected} bytes, got {got}"
        )
    array: np.ndarray = (
        np.frombuffer(raw, dtype=dtype, offset=header_len)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )
    return array


def read_idx(source: str | os.PathLike[str] | bytes) -> np.ndarray:
    """Read an IDX file (raw or gzipped, detected from its content) into a NumPy array.

    Parameters
    ----------
    source : path to an IDX or gzipped IDX file, or its bytes.

    Returns
    -------
    array of the shape and type declared in the header, native byte order
    (MNIST images: uint8 (n, 28, 28); labels: uint8 (n,)).
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        data = Path(source).read_bytes()
    return _parse_idx(_decompress(data))


def default_data_dirs() -> list[Path]:
    """Where ``load_mnist`` looks when no directory is given, in order."""
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(env)]
    dirs = []
    # A development checkout keeps the shared copy next to the repository (see the contract).
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
    if shared.is_dir():
        dirs.append(shared)
    dirs.append(Path.home() / ".cache" / "scribblenet" / "mnist")
    return dirs


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _check_content(info: MnistFile, raw: bytes, origin: str) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    if digest != info.sha256:
        raise ValueError(
            f"checksum mismatch for {info.name} from {origin}: sha256 of the decompressed bytes "
            f"is {digest}, expected {info.sha256}"
        )


def _open_url(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def download_mnist(
    data_dir: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    mirrors: Sequence[str] = MIRRORS,
    timeout: float = 10.0,
    open_url: Callable[[str, float], bytes] | None = None,
) -> list[Path]:
    """Download the MNIST ``.gz`` files missing from ``data_dir``, verified by sha256.

    Parameters
    ----------
    data_dir : directory to store "<name>.gz" in (created if needed).
    names : which files (keys of ``FILES``); default all four.
    mirrors : base URLs tried in order.
    timeout : seconds per request.
    open_url : ``(url, timeout) -> bytes``; default urllib (tests pass a fake).

    Returns
    -------
    paths of the files now present, in the order of ``names``.
    """
    opener = open_url or _open_url
    directory = Path(data_dir)
    paths = []
    for name in names or list(FILES):
        info = FILES[name]
        existing = _find(directory, name)
        if existing is not None:
            paths.append(existing)
            continue
        failures = []
        for base in mirrors:
            url = f"{base}{name}.gz"
            try:
                payload = opener(url, timeout)
                _check_content(info, _decompress(payload), url)
            except (OSError, ValueError) as exc:  # URLError, timeouts and bad content alike
                failures.append(f"{url}: {exc}")
                continue
            directory.mkdir(parents=True, exist_ok=True)
            # Write to a temporary name first so an interrupted run leaves no half file behind.
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            target = directory / f"{name}.gz"
            os.replace(tmp, target)
            paths.append(target)
            break
        else:
            raise MNISTDownloadError(
                "could not download MNIST from any mirror "
                f"({'; '.join(failures) or 'none given'}); "
                f"pass --data-dir or set {ENV_VAR}"
            )
    return paths


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None, download: bool = True, verify: bool = True
) -> MNIST:
    """Load the full MNIST training and test sets, downloading missing files if allowed.

    Parameters
    ----------
    data_dir : directory holding the four IDX files (``.gz`` or raw). Default:
        ``$SCRIBBLENET_MNIST_DIR``, else the shared copy next to a development checkout if
        present, else ``~/.cache/scribblenet/mnist``.
    download : fetch missing files from ``MIRRORS`` into the directory (the cache by default).
    verify : check the sha256 of each file's decompressed bytes.

    Returns
    -------
    MNIST(X_train uint8 (60000, 784), y_train uint8 (60000,),
          X_test uint8 (10000, 784), y_test uint8 (10000,)).
    """
    candidates = [Path(data_dir)] if data_dir is not None else default_data_dirs()
    directory = next(
        (d for d in candidates if all(_find(d, name) for name in FILES)), candidates[-1]
    )
    missing = [name for name in FILES if _find(directory, name) is None]
    if missing:
        if not download:
            raise FileNotFoundError(
                f"MNIST files missing from {directory}: {', '.join(missing)}; "
                f"pass --data-dir, set {ENV_VAR} or allow downloading"
            )
        download_mnist(directory, names=missing)
    arrays = {}
    for name, info in FILES.items():
        path = _find(directory, name)
        if path is None:  # only if a download "succeeded" without writing the file
            raise FileNotFoundError(f"MNIST file {name} missing from {directory}")
        raw = _decompress(path.read_bytes())
        if verify:
            _check_content(info, raw, str(path))
        array = _parse_idx(raw)
        if array.shape != info.shape or array.dtype != np.uint8:
            raise ValueError(
                f"{path}: expected uint8 {info.shape}, got {array.dtype} {array.shape}"
            )
        arrays[name] = array
    X_train = arrays["train-images-idx3-ubyte"].reshape(-1, 784)  # (60000, 784)
    X_test = arrays["t10k-images-idx3-ubyte"].reshape(-1, 784)  # (10000, 784)
    y_train, y_test = arrays["train-labels-idx1-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    for split, y in (("train", y_train), ("test", y_test)):
        if y.size and int(y.max()) > 9:
            raise ValueError(f"{split} labels must be in 0..9, found {int(y.max())}")
    return MNIST(X_train, y_train, X_test, y_test)


def stratified_indices(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Choose ``n`` indices of ``y`` at random, keeping each class's share of the whole.

    Parameters
    ----------
    y : labels (m,).
    n : subset size, 0 <= n <= m; each class gets its proportional share (largest remainder).
    rng : source of randomness.

    Returns
    -------
    sorted int64 indices (n,) into ``y``.
    """
    y = np.asarray(y)
    if not 0 <= n <= y.size:
        raise ValueError(f"subset size must be in 0..{y.size}, got {n}")
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * (n / y.size)  # (k,) ideal share per class
    quota = np.floor(exact).astype(np.int64)
    # Largest remainder; ties go to the lower class so the result does not depend on sort details.
    order = np.lexsort((classes, -(exact - quota)))
    quota[order[: n - int(quota.sum())]] += 1
    chosen = [
        rng.choice(np.flatnonzero(y == c), size=int(q), replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
