"""The compact MNIST file the web page loads: quantised pixels, context-sorted, zlib-compressed.

Decoding needs only the standard library (struct, json, zlib) and NumPy, so it runs under Pyodide.

File layout, version 1 (integers little-endian)::

    offset  size  field
    0       8     magic b"SCRBMNST"
    8       2     version (uint16) = 1
    10      2     flags (uint16) = 0
    12      4     header length H (uint32)
    16      4     CRC-32 of the header bytes (uint32)
    20      H     header: UTF-8 JSON object (below)
    20+H    ...   streams, back to back, exactly as listed in the header; nothing after them

Header: ``{"format": "scribblenet-compact-mnist", "version": 1, "image_shape": [28, 28],
"levels": L, "block_size": B, "splits": [train, test], "meta": {...}}``; each split is
``{"name", "count": n, "label_counts": [10 ints], "nonzero": k, "streams": [4 streams]}`` and each
stream ``{"name", "length": bytes, "crc32": of its compressed bytes}``, in the order
``labels, indices, mask, values``. Every stream is one zlib stream:

- ``labels``: n bytes, 0..9.
- ``indices``: positions of the images in the source MNIST split, strictly increasing, as uint32
  deltas (first index, then differences).
- ``mask``: which pixels are non-zero; each image row is a uint32 whose bit c is column c, and the
  4 bytes of all n×28 rows are stored byte-plane by byte-plane (all first bytes, then all second
  bytes, ...), which zlib compresses better than rows in order.
- ``values``: the k non-zero quantised pixels (1..L-1), packed two per byte (high nibble first,
  a zero nibble pads an odd count) when L <= 16, else one per byte. Images are taken in blocks of
  B; within a block the values are sorted (stably, from raster order) by their context
  ``5 * (non-zero 4-neighbours) + (non-zero diagonal neighbours)``, known from the mask alone, so
  values in similar surroundings (stroke interior vs edge) sit together.

A pixel x in 0..255 is quantised to ``q = (x * (L - 1) + 127) // 255`` (nearest level) and decoded
to ``round(q * 255 / (L - 1))``; L = 256 is lossless, L = 16 decodes to multiples of 17.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .mnist import MNIST

__all__ = [
    "FORMAT_NAME",
    "MAGIC",
    "VERSION",
    "CompactData",
    "decode_compact",
    "decode_compact_steps",
    "dequantize",
    "encode_compact",
    "quantize",
    "read_compact",
    "read_header",
    "write_compact",
]

MAGIC = b"SCRBMNST"
VERSION = 1
FORMAT_NAME = "scribblenet-compact-mnist"
_PRELUDE = struct.Struct("<8sHHII")  # magic, version, flags, header length, header CRC-32
_SIDE = 28
_STREAMS = ("labels", "indices", "mask", "values")
_SPLITS = ("train", "test")
_MAX_HEADER = 1 << 20  # a sane header is a few hundred bytes


class CompactData(NamedTuple):
    """Everything a compact file holds: the images, where they came from, and its header."""

    mnist: MNIST
    train_indices: np.ndarray  # (n_train,) int64 positions in MNIST's training split
    test_indices: np.ndarray  # (n_test,) int64 positions in MNIST's test split
    header: dict[str, Any]


def _check_levels(levels: int) -> int:
    if isinstance(levels, bool) or not isinstance(levels, int | np.integer):
        raise ValueError(f"levels must be an int in 2..256, got {levels!r}")
    if not 2 <= levels <= 256:
        raise ValueError(f"levels must be in 2..256, got {levels}")
    return int(levels)


def quantize(X: np.ndarray, levels: int) -> np.ndarray:
    """Map uint8 pixels to the nearest of ``levels`` evenly spaced grey levels.

    Parameters
    ----------
    X : uint8 pixels, any shape.
    levels : number of grey levels, 2..256.

    Returns
    -------
    uint8 level indices 0..levels-1, same shape as X.
    """
    levels = _check_levels(levels)
    X = np.asarray(X)
    if X.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, got {X.dtype}")
    # Integer arithmetic: exact nearest rounding (ties cannot occur), the same on every platform.
    return ((X.astype(np.uint32) * (levels - 1) + 127) // 255).astype(np.uint8)


def dequantize(q: np.ndarray, levels: int) -> np.ndarray:
    """Map level indices back to uint8 pixels, ``round(q * 255 / (levels - 1))``.

    Parameters
    ----------
    q : level indices 0..levels-1, any shape.
    levels : number of grey levels, 2..256.

    Returns
    -------
    uint8 pixels, same shape as q.
    """
    levels = _check_levels(levels)
    steps = np.arange(levels, dtype=np.uint32)
    table = ((steps * 510 + (levels - 1)) // (2 * (levels - 1))).astype(np.uint8)  # (levels,)
    q = np.asarray(q)
    if q.size and int(q.max()) >= levels:
        raise ValueError(f"level indices must be < {levels}, found {int(q.max())}")
    pixels: np.ndarray = table[q]
    return pixels


def _value_positions(M: np.ndarray) -> np.ndarray:
    """Flat positions of the non-zero pixels of ``M`` (b, 28, 28), in the order values are stored.

    That order sorts the pixels stably by their context 5 * (non-zero 4-neighbours) + (non-zero
    diagonal neighbours), which the decoder can compute from the mask before reading any value.
    """
    P = np.zeros((M.shape[0], _SIDE + 2, _SIDE + 2), np.uint8)  # (b, 30, 30) zero border
    P[:, 1:-1, 1:-1] = M
    ctx = P[:, :-2, 1:-1] + P[:, 2:, 1:-1]  # (b, 28, 28) above + below
    ctx += P[:, 1:-1, :-2]
    ctx += P[:, 1:-1, 2:]
    ctx *= 5
    for dy, dx in ((0, 0), (0, 2), (2, 0), (2, 2)):  # the four diagonals
        ctx += P[:, dy : dy + _SIDE, dx : dx + _SIDE]
    at = np.flatnonzero(M)  # (k,) flat positions in raster order
    return at[np.argsort(ctx.reshape(-1)[at], kind="stable")]


def _pack_nibbles(v: np.ndarray) -> np.ndarray:
    if v.size % 2:
        v = np.append(v, np.uint8(0))
    packed: np.ndarray = (v[0::2] << 4) | v[1::2]  # (ceil(k/2),)
    return packed


def _deflate(a: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(a).tobytes(), 9)


def _encode_split(
    X: np.ndarray,
    y: np.ndarray,
    indices: np.ndarray | None,
    levels: int,
    block_size: int,
    name: str,
) -> tuple[dict[str, Any], list[bytes]]:
    X = np.asarray(X)
    y = np.asarray(y)
    n = X.shape[0] if X.ndim else 0
    if X.dtype != np.uint8 or X.shape != (n, _SIDE * _SIDE):
        raise ValueError(f"{name} images must be uint8 (n, 784), got {X.dtype} {X.shape}")
    if y.shape != (n,) or (n and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0)):
        raise ValueError(f"{name} labels must be n={n} integers in 0..9, got {y.dtype} {y.shape}")
    if n and int(y.max()) > 9:
        raise ValueError(f"{name} labels must be in 0..9, found {int(y.max())}")
    indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    deltas = np.diff(indices, prepend=0)  # (n,)
    if indices.shape != (n,) or (n and (indices[0] < 0 or (deltas[1:] <= 0).any())):
        raise ValueError(f"{name} indices must be n={n} strictly increasing non-negative ints")
    if n and indices[-1] >= 2**32:
        raise ValueError(f"{name} indices must be < 2**32, got {int(indices[-1])}")

    q = quantize(X, levels).reshape(n, _SIDE, _SIDE)  # (n, 28, 28)
    M = q > 0  # (n, 28, 28)
    rows = np.packbits(M, axis=-1, bitorder="little")  # (n, 28, 4) = little-endian uint32 rows
    blocks = []
    for start in range(0, n, block_size):
        positions = _value_positions(M[start : start + block_size])  # (k_b,)
        blocks.append(q[start : start + block_size].reshape(-1)[positions])
    values = np.concatenate(blocks) if blocks else np.zeros(0, np.uint8)  # (k,)
    streams = [
        _deflate(y.astype(np.uint8)),
        _deflate(deltas.astype("<u4")),
        _deflate(rows.reshape(-1, 4).T),  # (4, n*28) byte planes
        _deflate(_pack_nibbles(values) if levels <= 16 else values),
    ]
    info = {
        "name": name,
        "count": n,
        "label_counts": np.bincount(y, minlength=10).tolist() if n else [0] * 10,
        "nonzero": int(values.size),
        "streams": [
            {"name": s, "length": len(b), "crc32": zlib.crc32(b)}
            for s, b in zip(_STREAMS, streams, strict=True)
        ],
    }
    return info, streams


def encode_compact(
    data: MNIST,
    *,
    levels: int = 16,
    train_indices: np.ndarray | None = None,
    test_indices: np.ndarray | None = None,
    block_size: int = 10000,
    meta: Mapping[str, Any] | None = None,
) -> bytes:
    """Encode an MNIST subset into the compact format (deterministic for a given zlib).

    Parameters
    ----------
    data : MNIST with X_* uint8 (n, 784) and y_* integer labels 0..9 (n,).
    levels : grey levels kept per pixel, 2..256 (256 = lossless).
    train_indices, test_indices : strictly increasing source positions (n,); default 0..n-1.
    block_size : images per context-sorting block (bounds the decoder's memory).
    meta : JSON-serialisable provenance notes stored in the header.

    Returns
    -------
    the file's bytes.
    """
    levels = _check_levels(levels)
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
    train, train_streams = _encode_split(
        data.X_train, data.y_train, train_indices, levels, block_size, "train"
    )
    test, test_streams = _encode_split(
        data.X_test, data.y_test, test_indices, levels, block_size, "test"
    )
    header = {
        "format": FORMAT_NAME,
        "version": VERSION,
        "image_shape": [_SIDE, _SIDE],
        "levels": levels,
        "block_size": block_size,
        "splits": [train, test],
        "meta": dict(meta or {}),
    }
    header_bytes = json.dumps(
        header, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")
    prelude = _PRELUDE.pack(MAGIC, VERSION, 0, len(header_bytes), zlib.crc32(header_bytes))
    return b"".join([prelude, header_bytes, *train_streams, *test_streams])


def write_compact(data: MNIST, path: str | os.PathLike[str], **options: Any) -> int:
    """Encode ``data`` (see ``encode_compact`` for the options) and write it to ``path``.

    Returns
    -------
    the number of bytes written.
    """
    blob = encode_compact(data, **options)
    Path(path).write_bytes(blob)
    return len(blob)


def _int(obj: Mapping[str, Any], key: str, lo: int, hi: int, where: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"header {where}.{key} must be an int in {lo}..{hi}, got {value!r}")
    return value


def _parse_header(data: memoryview) -> tuple[dict[str, Any], int]:
    if len(data) < _PRELUDE.size:
        raise ValueError(
            f"truncated compact file: {len(data)} bytes, "
            f"shorter than the {_PRELUDE.size}-byte prelude"
        )
    magic, version, flags, header_len, header_crc = _PRELUDE.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"not a compact MNIST file: magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise ValueError(
            f"unsupported compact format version {version}, this reader reads {VERSION}"
        )
    if flags != 0:
        raise ValueError(f"unsupported compact format flags 0x{flags:04x}, expected 0")
    if header_len > _MAX_HEADER:
        raise ValueError(f"header length {header_len} exceeds the {_MAX_HEADER}-byte limit")
    end = _PRELUDE.size + header_len
    if len(data) < end:
        raise ValueError(f"truncated compact file: header needs {end} bytes, got {len(data)}")
    raw = bytes(data[_PRELUDE.size : end])
    if zlib.crc32(raw) != header_crc:
        raise ValueError("compact file header is corrupt: CRC-32 mismatch")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"compact file header is not valid JSON: {exc}") from exc
    _validate_header(header)
    return header, end


def _validate_header(header: Any) -> None:
    if not isinstance(header, dict):
        raise ValueError("compact file header must be a JSON object")
    if header.get("format") != FORMAT_NAME:
        raise ValueError(f"header format must be {FORMAT_NAME!r}, got {header.get('format')!r}")
    if header.get("version") != VERSION:
        raise ValueError(f"header version {header.get('version')!r} differs from the prelude's")
    if header.get("image_shape") != [_SIDE, _SIDE]:
        raise ValueError(f"image_shape must be [28, 28], got {header.get('image_shape')!r}")
    _int(header, "levels", 2, 256, "header")
    _int(header, "block_size", 1, 2**31, "header")
    if not isinstance(header.get("meta"), dict):
        raise ValueError("header meta must be a JSON object")
    splits = header.get("splits")
    if not isinstance(splits, list) or [
        s.get("name") if isinstance(s, dict) else None for s in splits
    ] != list(_SPLITS):
        raise ValueError("header splits must be a list of 'train' then 'test'")
    for split in splits:
        where = f"splits.{split['name']}"
        n = _int(split, "count", 0, 2**31, where)
        _int(split, "nonzero", 0, n * _SIDE * _SIDE, where)
        counts = split.get("label_counts")
        if (
            not isinstance(counts, list)
            or len(counts) != 10
            or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts)
            or sum(counts) != n
        ):
            raise ValueError(f"{where}.label_counts must be 10 non-negative ints summing to {n}")
        streams = split.get("streams")
        if not isinstance(streams, list) or [
            s.get("name") if isinstance(s, dict) else None for s in streams
        ] != list(_STREAMS):
            raise ValueError(f"{where}.streams must be {', '.join(_STREAMS)} in that order")
        for stream in streams:
            _int(stream, "length", 0, 2**40, f"{where}.{stream['name']}")
            _int(stream, "crc32", 0, 2**32 - 1, f"{where}.{stream['name']}")


def read_header(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Validate and return a compact file's JSON header (counts, levels, meta) without decoding.

    Parameters
    ----------
    data : the file's bytes (at least the prelude and header).

    Returns
    -------
    the header dict described in the module docstring.
    """
    return _parse_header(memoryview(data).cast("B"))[0]


def _inflate(blob: memoryview, expected: int, what: str) -> bytes:
    """Decompress one zlib stream that must yield exactly ``expected`` bytes."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(blob, expected + 1)  # one extra byte reveals overlong streams
    except zlib.error as exc:
        raise ValueError(f"{what} stream is corrupt: {exc}") from exc
    if len(out) > expected:
        raise ValueError(f"{what} stream decompresses to more than the expected {expected} bytes")
    if not inflater.eof:
        raise ValueError(f"{what} stream is truncated: got {len(out)} of {expected} bytes")
    if inflater.unused_data:
        raise ValueError(f"{what} stream has {len(inflater.unused_data)} bytes after its end")
    if len(out) != expected:
        raise ValueError(f"{what} stream holds {len(out)} bytes, expected {expected}")
    return out


def _decode_split(
    split: dict[str, Any], blobs: dict[str, memoryview], levels: int, block_size: int
) -> Generator[None, None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode one split, yielding after each block of images; returns (X, y, indices)."""
    name, n, k = split["name"], split["count"], split["nonzero"]

    y = np.frombuffer(_inflate(blobs["labels"], n, f"{name} labels"), np.uint8)  # (n,)
    if n and int(y.max()) > 9:
        raise ValueError(f"{name} labels must be in 0..9, found {int(y.max())}")
    if np.bincount(y, minlength=10).tolist() != split["label_counts"]:
        raise ValueError(f"{name} labels do not match the header's label_counts")

    deltas = np.frombuffer(_inflate(blobs["indices"], 4 * n, f"{name} indices"), "<u4")
    if n > 1 and (deltas[1:] == 0).any():
        raise ValueError(f"{name} indices are not strictly increasing")
    indices = np.cumsum(deltas, dtype=np.int64)  # (n,)

    yield  # each inflate below takes a good part of a second in the browser
    planes = np.frombuffer(_inflate(blobs["mask"], 4 * n * _SIDE, f"{name} mask"), np.uint8)
    rows = planes.reshape(4, n * _SIDE).T.reshape(n, _SIDE, 4)  # (n, 28, 4) little-endian uint32
    if (rows[:, :, 3] & 0xF0).any():
        raise ValueError(f"{name} mask sets bits beyond column 27")

    packed = levels <= 16
    yield
    raw = _inflate(blobs["values"], (k + 1) // 2 if packed else k, f"{name} values")
    values = np.frombuffer(raw, np.uint8)  # (k,) or (ceil(k/2),)
    yield
    if packed:
        pairs = values
        values = np.empty(2 * pairs.size, np.uint8)  # (2*ceil(k/2),)
        values[0::2], values[1::2] = pairs >> 4, pairs & 0x0F
        if values.size > k and values[k]:
            raise ValueError(f"{name} values: the padding nibble is not zero")
        values = values[:k]
    if k and (values.min() == 0 or int(values.max()) >= levels):
        raise ValueError(f"{name} values must be in 1..{levels - 1}")

    # Block by block, as the encoder sorted them; this also keeps temporaries small in Pyodide.
    table = dequantize(np.arange(levels, dtype=np.uint8), levels)  # (levels,) level -> pixel
    X = np.zeros((n, _SIDE * _SIDE), np.uint8)  # (n, 784)
    used = 0
    for start in range(0, n, block_size):
        Mb = np.unpackbits(
            rows[start : start + block_size], axis=-1, count=_SIDE, bitorder="little"
        )
        positions = _value_positions(Mb)  # (k_b,) the encoder's order
        if used + positions.size > k:
            raise ValueError(f"{name} mask has more pixels set than the header's nonzero={k}")
        X[start : start + block_size].reshape(-1)[positions] = table[
            values[used : used + positions.size]
        ]
        used += positions.size
        yield
    if used != k:
        raise ValueError(f"{name} mask has {used} pixels set, the header says nonzero={k}")
    return X, y.copy(), indices


def decode_compact(data: bytes | bytearray | memoryview) -> CompactData:
    """Decode a compact file, checking every length, checksum and value range.

    Parameters
    ----------
    data : the whole file's bytes.

    Returns
    -------
    CompactData(mnist=MNIST(X_train uint8 (n_train, 784), y_train uint8 (n_train,), X_test,
    y_test), train_indices int64 (n_train,), test_indices int64 (n_test,), header dict).
    """
    steps = decode_compact_steps(data)
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            decoded: CompactData = finished.value
            return decoded


def decode_compact_steps(
    data: bytes | bytearray | memoryview,
) -> Generator[None, None, CompactData]:
    """`decode_compact` a block of images at a time: yields between blocks, returns the data.

    The web page's worker decodes the dataset this way so that predictions get in between.
    """
    view = memoryview(data).cast("B")
    header, offset = _parse_header(view)
    expected = offset + sum(s["length"] for split in header["splits"] for s in split["streams"])
    if len(view) < expected:
        raise ValueError(f"truncated compact file: streams need {expected} bytes, got {len(view)}")
    if len(view) > expected:
        raise ValueError(f"compact file has {len(view) - expected} unexpected trailing bytes")
    decoded = []
    for split in header["splits"]:
        blobs = {}
        for stream in split["streams"]:
            blob = view[offset : offset + stream["length"]]
            offset += stream["length"]
            if zlib.crc32(blob) != stream["crc32"]:
                raise ValueError(
                    f"{split['name']} {stream['name']} stream is corrupt: CRC-32 mismatch"
                )
            blobs[stream["name"]] = blob
        split_data = yield from _decode_split(split, blobs, header["levels"], header["block_size"])
        decoded.append(split_data)
    (X_train, y_train, i_train), (X_test, y_test, i_test) = decoded
    return CompactData(MNIST(X_train, y_train, X_test, y_test), i_train, i_test, header)


def read_compact(data: bytes | bytearray | memoryview) -> MNIST:
    """Decode a compact file's images and labels.

    Parameters
    ----------
    data : the whole file's bytes (e.g. fetched by the web page).

    Returns
    -------
    MNIST(X_train uint8 (n_train, 784), y_train uint8 (n_train,),
          X_test uint8 (n_test, 784), y_test uint8 (n_test,)), pixels 0..255.
    """
    return decode_compact(data).mnist
