"""Model files: an uncompressed-or-deflated .npz of weight arrays plus JSON metadata.

Layout (format version 1):

- ``W1, b1, …, WL, bL``: float32 or float64 arrays, W_i of shape (in, out), b_i of shape (out,).
- ``metadata``: uint8 array holding UTF-8 JSON::

    {"format": "scribblenet-model", "version": 1,
     "network": {NetworkConfig fields},
     "input": {"shape": [28, 28], "scale": 1/255, "background": 0},
     "classes": [0, …, 9], "training": {...free-form provenance...}}

Files are read with ``allow_pickle=False`` and validated member by member before any array is
used, so a hostile file can at worst be rejected with a `ModelFileError`.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .config import NetworkConfig
from .network import Network

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_FILE_BYTES",
    "ModelFileError",
    "load_model",
    "model_from_bytes",
    "model_to_bytes",
    "save_model",
]

FORMAT = "scribblenet-model"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 256 * 1024 * 1024  # uncompressed; 4 layers of 4096² float32 weights fit
_MAX_METADATA_BYTES = 1024 * 1024

Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


class ModelFileError(ValueError):
    """A model file that is corrupt, hostile, or of an unknown format."""


def _metadata(net: Network, extra: dict[str, Any] | None) -> dict[str, Any]:
    meta = dict(net.metadata)
    meta.update(extra or {})
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "network": net.config.to_dict(),
        "input": {"shape": [28, 28], "scale": 1 / 255, "background": 0},
        "classes": list(range(net.config.n_classes)),
        "training": meta.get("training", {}),
    }


def model_to_bytes(net: Network, metadata: dict[str, Any] | None = None) -> bytes:
    """Serialise a network (weights + metadata) to the bytes of a model file."""
    arrays = dict(net.named_parameters())
    meta = json.dumps(_metadata(net, metadata), sort_keys=True).encode()
    arrays["metadata"] = np.frombuffer(meta, dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def save_model(
    net: Network, path: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a network to `path` (conventionally ``*.npz``); returns the path.

    Parameters
    ----------
    metadata : optional {"training": {...}} provenance stored with the weights.
    """
    path = Path(path)
    data = model_to_bytes(net, metadata)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)  # never leave a half-written model behind
    return path


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if hasattr(source, "read"):
        return source.read(MAX_FILE_BYTES + 1)
    path = Path(source)
    if not path.is_file():
        raise ModelFileError(f"no model file at {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ModelFileError(
            f"{path} is larger than {MAX_FILE_BYTES} bytes; not a scribblenet model"
        )
    return path.read_bytes()


def _check_zip(data: bytes) -> None:
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"model file is larger than {MAX_FILE_BYTES} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ModelFileError(f"not a model file: not a valid .npz/zip archive ({exc})") from None
    declared = sum(info.file_size for info in infos)
    if declared > MAX_FILE_BYTES:
        raise ModelFileError(
            f"model file declares {declared} uncompressed bytes, more than the "
            f"{MAX_FILE_BYTES} allowed; refusing to unpack it"
        )
    names = [info.filename for info in infos]
    if "metadata.npy" not in names:
        raise ModelFileError("not a scribblenet model: no metadata entry")
    if len(names) != len(set(names)):
        raise ModelFileError("model file has duplicate entries")


def _load_array(npz: Any, name: str) -> np.ndarray:
    try:
        arr = npz[name]
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ModelFileError(
                f"entry {name!r} holds pickled Python objects; refusing to load it"
            ) from None
        raise ModelFileError(f"entry {name!r} is not a valid array ({exc})") from None
    except Exception as exc:  # zlib, zipfile and the .npy header parser raise many kinds
        raise ModelFileError(
            f"entry {name!r} is corrupt or truncated ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(arr, np.ndarray):  # NpzFile hands back raw bytes for non-.npy members
        raise ModelFileError(f"entry {name!r} is not a .npy array")
    return arr


def _parse_metadata(raw: np.ndarray) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_METADATA_BYTES:
        raise ModelFileError("metadata must be a 1-D uint8 array of UTF-8 JSON")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"not a scribblenet model: metadata format is not {FORMAT!r}")
    version = meta.get("version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"unsupported model format version {version!r}; this scribblenet reads version "
            f"{FORMAT_VERSION}"
        )
    return meta


def model_from_bytes(data: bytes | bytearray | memoryview) -> Network:
    """Parse and validate model-file bytes into a `Network` (its `.metadata` holds provenance).

    Raises
    ------
    ModelFileError : on anything but a well-formed model: bad zip, pickles, unknown version,
        missing/extra arrays, wrong shapes or dtypes, non-finite weights.
    """
    data = bytes(data)
    _check_zip(data)
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # any failure to open is "not a model", never a crash
        raise ModelFileError(f"not a valid .npz model file ({exc})") from None
    with npz:
        meta = _parse_metadata(_load_array(npz, "metadata"))
        try:
            config = NetworkConfig.from_dict(
                {k: tuple(v) if k == "hidden" else v for k, v in meta["network"].items()}
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"metadata describes an invalid network: {exc}") from None
        net = Network(config, initialize=False)
        expected = net.named_parameters()
        present = set(npz.files) - {"metadata"}
        if present != set(expected):
            missing = sorted(set(expected) - present)
            extra = sorted(present - set(expected))
            raise ModelFileError(
                f"arrays do not match the architecture {config.sizes}: "
                f"missing {missing or 'none'}, unexpected {extra or 'none'}"
            )
        arrays = {}
        for name, ref in expected.items():
            arr = _load_array(npz, name)
            if arr.dtype != ref.dtype:
                raise ModelFileError(f"{name} has dtype {arr.dtype}, expected {ref.dtype}")
            if arr.shape != ref.shape:
                raise ModelFileError(f"{name} has shape {arr.shape}, expected {ref.shape}")
            if not np.isfinite(arr).all():
                raise ModelFileError(f"{name} contains NaN or infinite values")
            arrays[name] = arr
    net.load_parameters(arrays)
    net.metadata = {"training": meta.get("training", {})}
    return net


def load_model(source: Source) -> Network:
    """Load a model from a path, bytes or binary file object; see `model_from_bytes`."""
    return model_from_bytes(_read_bytes(source))
