"""Model files: an uncompressed-or-deflated .npz of weight arrays plus JSON metadata.

Layout (format version 1):

- ``W1, b1, …, WL, bL``: float32 or float64 arrays, W_i of shape (in, out), b_i of shape (out,).
- with conv layers, before them ``conv1_W, conv1_b, …``: conv_i_W of shape (k·k·c_in, c_out)
  (``reshape(k, k, c_in, c_out)`` is the kernel), conv_i_b of shape (c_out,). A kernel's
  shape does not say its padding or the pooling after it: the "conv" list of the network's
  config does, e.g. ["conv5x16", "pool2", "conv3x32same"].
- ``metadata``: uint8 array holding UTF-8 JSON::

    {"format": "scribblenet-model", "version": 1,
     "network": {NetworkConfig fields; "conv" only when there are conv layers},
     "input": {"shape": [28, 28], "scale": 1/255, "background": 0},
     "classes": [0, …, 9], "training": {...free-form provenance...}}

Files are read with ``allow_pickle=False`` and validated member by member before any array is
used, so a hostile file can at worst be rejected with a `ModelFileError`.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .config import NetworkConfig, TrainConfig
from .network import Network

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_FILE_BYTES",
    "ModelFileError",
    "check_npz",
    "load_model",
    "load_npz_member",
    "model_from_bytes",
    "model_to_bytes",
    "npy_header",
    "open_npz",
    "save_model",
]

FORMAT = "scribblenet-model"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 256 * 1024 * 1024  # uncompressed; 4 layers of 4096² float32 weights fit
_MAX_METADATA_BYTES = 1024 * 1024
_MAX_METADATA_DEPTH = 16  # ours nests 3 deep; thousands would overflow a parser's stack

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


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
    # arg-type: NumPy's stub fears a key named allow_pickle; ours are W1, b1, … and metadata.
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def save_model(
    net: Network, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
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


def check_npz(
    data: bytes, *, max_bytes: int, error: type[ValueError] = ModelFileError, what: str = "model"
) -> dict[str, int]:
    """{member: uncompressed size} of an .npz archive, refused before anything is unpacked.

    Shared by every hardened .npz reader: a bad zip, more than `max_bytes` (compressed or as
    declared uncompressed) or duplicate members raise `error`, naming the file as `what`.
    """
    if len(data) > max_bytes:
        raise error(f"{what} file is larger than {max_bytes} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    # NotImplementedError: a zip asking for a newer zip version (e.g. one damaged byte).
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise error(f"not a {what} file: not a valid .npz/zip archive ({exc})") from None
    declared = sum(info.file_size for info in infos)
    if declared > max_bytes:
        raise error(
            f"{what} file declares {declared} uncompressed bytes, more than the "
            f"{max_bytes} allowed; refusing to unpack it"
        )
    names = [info.filename for info in infos]
    if len(names) != len(set(names)):
        raise error(f"{what} file has duplicate entries")
    return {info.filename: info.file_size for info in infos}


def _check_zip(data: bytes) -> dict[str, int]:
    sizes = check_npz(data, max_bytes=MAX_FILE_BYTES)
    if "metadata.npy" not in sizes:
        raise ModelFileError("not a scribblenet model: no metadata entry")
    return sizes


def npy_header(
    data: bytes, name: str, error: type[ValueError] = ModelFileError
) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """(shape, dtype) member `name` declares in its .npy header, read without loading it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf, zf.open(name + ".npy") as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
    except Exception as exc:  # a bad magic, header or deflate stream: all "not an array"
        raise error(f"entry {name!r} is not a valid .npy array ({exc})") from None
    return tuple(shape), np.dtype(dtype)


def _json_depth(text: str) -> int:
    """How deeply JSON text nests, counted without parsing it (strings skipped)."""
    brackets = re.sub(r"[^\[\]{}]", "", re.sub(r'"(?:[^"\\]|\\.)*"', "", text))
    if not brackets:
        return 0
    steps = np.frombuffer(brackets.encode(), np.uint8)  # (k,) of [ ] { }
    return int(np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1)).max())


def _number(value: Any, low: float, high: float) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) and low <= value <= high else None


def _config(cls: type[NetworkConfig] | type[TrainConfig], value: Any) -> dict[str, Any] | None:
    try:
        fixed = {k: tuple(v) if k == "hidden" else v for k, v in value.items()}
        return cls.from_dict(fixed).to_dict()
    except (AttributeError, TypeError, ValueError):
        return None


def _finetune_provenance(value: Any) -> dict[str, Any] | None:
    """A fine-tune's record: what it was tuned on, with what, and what it scored."""
    if not isinstance(value, dict):
        return None
    checks: dict[str, Callable[[Any], Any]] = {
        "digits": lambda v: v[:200] if isinstance(v, str) else None,
        "n_digits": lambda v: None if (n := _number(v, 0, 1e9)) is None else int(n),
        "base_test_accuracy": lambda v: _number(v, 0, 1),
        "own_accuracy_before": lambda v: _number(v, 0, 1),
        "own_accuracy_after": lambda v: _number(v, 0, 1),
        "folds": lambda v: None if (n := _number(v, 0, 1e6)) is None else int(n),
        "config": lambda v: (
            {k: x for k, x in v.items() if isinstance(k, str) and _number(x, 0, 1e9) is not None}
            | {k: x[:20] for k, x in v.items() if k == "optimizer" and isinstance(x, str)}
            if isinstance(v, dict) and len(v) <= 16
            else None
        ),
    }
    return {
        k: c for k, check in checks.items() if k in value and (c := check(value[k])) is not None
    }


def _clean_training(training: Any) -> dict[str, Any]:
    """Provenance with unknown keys dropped and every value checked (it is shown to people)."""
    if not isinstance(training, dict):
        return {}
    checks: dict[str, Callable[[Any], Any]] = {
        "where": lambda v: v[:40] if isinstance(v, str) else None,
        "data": lambda v: v[:200] if isinstance(v, str) else None,
        "script": lambda v: v[:200] if isinstance(v, str) else None,
        "augment": lambda v: v[:40] if isinstance(v, str) else v if isinstance(v, bool) else None,
        "stopped": lambda v: v if isinstance(v, bool) else None,
        "steps": lambda v: None if (n := _number(v, 0, 1e9)) is None else int(n),
        "test_accuracy": lambda v: _number(v, 0, 1),
        "handwriting_accuracy": lambda v: _number(v, 0, 1),
        "seconds": lambda v: _number(v, 0, 1e9),
        "epochs": lambda v: None if (n := _number(v, 0, 1e6)) is None else int(n),
        "epochs_completed": lambda v: None if (n := _number(v, 0, 1e6)) is None else int(n),
        "config": lambda v: _config(TrainConfig, v),
        "train": lambda v: _config(TrainConfig, v),
        "network": lambda v: _config(NetworkConfig, v),
        "finetune": lambda v: _finetune_provenance(v),
        "augmentation": lambda v: (
            {k: v[k] for k in v if isinstance(k, str) and _json_depth(json.dumps(v[k])) <= 1}
            if isinstance(v, dict) and len(v) <= 16
            else None
        ),
    }
    clean = {}
    for key, check in checks.items():
        if key in training and (value := check(training[key])) is not None:
            clean[key] = value
    return clean


def open_npz(data: bytes, error: type[ValueError] = ModelFileError, what: str = "model") -> Any:
    """`np.load` of checked .npz bytes, pickles refused; any failure to open raises `error`."""
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # any failure to open is "not a model", never a crash
        raise error(f"not a valid .npz {what} file ({exc})") from None


def load_npz_member(npz: Any, name: str, error: type[ValueError] = ModelFileError) -> np.ndarray:
    """Member `name` of an open `np.load(..., allow_pickle=False)`; any failure raises `error`."""
    try:
        arr = npz[name]
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise error(
                f"entry {name!r} holds pickled Python objects; refusing to load it"
            ) from None
        raise error(f"entry {name!r} is not a valid array ({exc})") from None
    except Exception as exc:  # zlib, zipfile and the .npy header parser raise many kinds
        raise error(
            f"entry {name!r} is corrupt or truncated ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(arr, np.ndarray):  # NpzFile hands back raw bytes for non-.npy members
        raise error(f"entry {name!r} is not a .npy array")
    return arr


def _parse_metadata(raw: np.ndarray) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_METADATA_BYTES:
        raise ModelFileError("metadata must be a 1-D uint8 array of UTF-8 JSON")
    try:
        text = raw.tobytes().decode("utf-8")
        if _json_depth(text) > _MAX_METADATA_DEPTH:
            raise ModelFileError(f"metadata nests deeper than {_MAX_METADATA_DEPTH} levels")
        meta = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
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


def model_from_bytes(
    data: bytes | bytearray | memoryview, *, max_parameters: int | None = None
) -> Network:
    """Parse and validate model-file bytes into a `Network` (its `.metadata` holds provenance).

    Every declared size is checked before anything is allocated: the metadata's, the network's
    parameter count against `max_parameters` (None: no limit) and each array's .npy header.

    Raises
    ------
    ModelFileError : on anything but a well-formed model: bad zip, pickles, unknown version,
        missing/extra arrays, wrong shapes or dtypes, non-finite weights, too many parameters.
    """
    data = bytes(data)
    sizes = _check_zip(data)
    if sizes["metadata.npy"] > _MAX_METADATA_BYTES + 4096:  # + the .npy header
        raise ModelFileError(f"metadata is larger than {_MAX_METADATA_BYTES} bytes")
    with open_npz(data) as npz:
        meta = _parse_metadata(load_npz_member(npz, "metadata"))
        try:
            config = NetworkConfig.from_dict(
                {k: tuple(v) if k == "hidden" else v for k, v in meta["network"].items()}
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"metadata describes an invalid network: {exc}") from None
        expected = config.parameter_shapes()
        n_parameters = config.n_parameters
        if max_parameters is not None and n_parameters > max_parameters:
            raise ModelFileError(
                f"the network has {n_parameters:,} parameters; at most {max_parameters:,} are "
                "allowed here"
            )
        present = set(npz.files) - {"metadata"}
        if present != set(expected):
            missing = sorted(set(expected) - present)
            extra = sorted(present - set(expected))
            raise ModelFileError(
                f"arrays do not match the architecture {config.architecture}: "
                f"missing {missing or 'none'}, unexpected {extra or 'none'}"
            )
        dtype = np.dtype(config.dtype)
        for name, shape in expected.items():  # declared headers first: nothing allocated yet
            declared_shape, declared_dtype = npy_header(data, name)
            if declared_dtype.hasobject:
                raise ModelFileError(
                    f"entry {name!r} holds pickled Python objects; refusing to load it"
                )
            if declared_dtype != dtype:
                raise ModelFileError(f"{name} has dtype {declared_dtype}, expected {dtype}")
            if declared_shape != shape:
                raise ModelFileError(f"{name} has shape {declared_shape}, expected {shape}")
            # NumPy allocates the whole array before it reads a byte: the member must hold it.
            if math.prod(shape) * dtype.itemsize > sizes[name + ".npy"]:
                raise ModelFileError(f"{name} is shorter than its {shape} {dtype} values")
        arrays = {}
        for name, shape in expected.items():
            arr = load_npz_member(npz, name)
            if arr.dtype != dtype or arr.shape != shape:  # the header said otherwise
                raise ModelFileError(f"{name} does not match its header")
            if not np.isfinite(arr).all():
                raise ModelFileError(f"{name} contains NaN or infinite values")
            arrays[name] = arr
    net = Network(config, initialize=False)
    net.load_parameters(arrays)
    net.metadata = {"training": _clean_training(meta.get("training", {}))}
    return net


def load_model(source: Source) -> Network:
    """Load a model from a path, bytes or binary file object; see `model_from_bytes`."""
    return model_from_bytes(_read_bytes(source))
