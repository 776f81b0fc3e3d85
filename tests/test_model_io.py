"""Model files: round trip, and rejection of corrupt, hostile or fuzzed files."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scribblenet.config import NetworkConfig
from scribblenet.model_io import (
    ModelFileError,
    load_model,
    model_from_bytes,
    model_to_bytes,
    save_model,
)
from scribblenet.network import Network
from session_helpers import (
    MODEL_MEMBERS,
    MODEL_MUTATIONS,
    VALID_MODEL,
    huge_declared_size,
    mutate,
    with_member,
)


@pytest.fixture
def net():
    return Network(NetworkConfig(n_inputs=12, hidden=(6, 5), n_classes=4), np.random.default_rng(3))


def arrays_and_meta(data: bytes):
    with np.load(io.BytesIO(data)) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("metadata").tobytes())
    return arrays, meta


def pack(arrays, meta) -> bytes:
    buf = io.BytesIO()
    meta_arr = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(buf, metadata=meta_arr, **arrays)
    return buf.getvalue()


def test_round_trip(tmp_path, net):
    path = save_model(net, tmp_path / "m.npz", {"training": {"epochs": 3}})
    loaded = load_model(path)
    assert loaded.config == net.config
    for name, p in net.named_parameters().items():
        np.testing.assert_array_equal(loaded.named_parameters()[name], p)
    assert loaded.metadata["training"] == {"epochs": 3}
    X = np.random.default_rng(0).integers(0, 256, (5, 12), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    assert load_model(path.read_bytes()).config == net.config
    with path.open("rb") as f:
        assert load_model(f).config == net.config


def test_float64_round_trip(net):
    net64 = Network(NetworkConfig(n_inputs=3, hidden=(), n_classes=2, dtype="float64"))
    assert model_from_bytes(model_to_bytes(net64)).dtype == np.float64


def test_pickled_objects_are_refused_without_executing(net):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed!')",))

    arrays, meta = arrays_and_meta(model_to_bytes(net))
    buf = io.BytesIO()
    np.savez(buf, metadata=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    data = buf.getvalue()
    # Swap W1 for an object array holding a pickle bomb.
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            if info.filename == "W1.npy":
                evil = io.BytesIO()
                np.save(evil, np.array([Boom()], dtype=object), allow_pickle=True)
                zout.writestr(info, evil.getvalue())
            else:
                zout.writestr(info, zin.read(info))
    with pytest.raises(ModelFileError, match="pickled"):
        model_from_bytes(out.getvalue())
    with pytest.raises(ModelFileError, match="not a valid"):
        model_from_bytes(pickle.dumps({"W1": np.zeros(3)}))


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda a, m: a.__setitem__("W1", a["W1"][:, :-1]), "W1 has shape"),
        (lambda a, m: a.__setitem__("b2", a["b2"].astype(np.float64)), "b2 has dtype"),
        (lambda a, m: a["W2"].__setitem__((0, 0), np.nan), "NaN or infinite"),
        (lambda a, m: a["b1"].__setitem__(0, np.inf), "NaN or infinite"),
        (lambda a, m: a.pop("W3"), "missing"),
        (lambda a, m: a.__setitem__("W9", np.zeros(2, np.float32)), "unexpected"),
        (lambda a, m: m.__setitem__("version", 99), "unsupported model format version 99"),
        (lambda a, m: m.__setitem__("format", "keras"), "metadata format"),
        (lambda a, m: m["network"].__setitem__("hidden", [0]), "invalid network"),
        (lambda a, m: m["network"].__setitem__("activation", "gelu"), "invalid network"),
        (lambda a, m: m.pop("network"), "invalid network"),
    ],
)
def test_invalid_contents_are_rejected(net, mutate, match):
    arrays, meta = arrays_and_meta(model_to_bytes(net))
    mutate(arrays, meta)
    with pytest.raises(ModelFileError, match=match):
        model_from_bytes(pack(arrays, meta))


def test_corrupt_and_truncated_files(tmp_path, net):
    data = model_to_bytes(net)
    for bad in (data[: len(data) // 2], data[:100], b"", b"PK\x03\x04garbage", b"\x00" * 64):
        with pytest.raises(ModelFileError):
            model_from_bytes(bad)
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # inside a deflated member: CRC or inflate error
    with pytest.raises(ModelFileError):
        model_from_bytes(bytes(flipped))
    with pytest.raises(ModelFileError, match="no model file"):
        load_model(tmp_path / "missing.npz")


def test_huge_declared_size_is_refused_before_unpacking(net):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.npy", b"x")
        # 512 MiB of zeros deflates to ~0.5 MB: a zip bomb in miniature.
        with z.open("W1.npy", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(512):
                f.write(chunk)
    with pytest.raises(ModelFileError, match="declares"):
        model_from_bytes(buf.getvalue())


def test_metadata_must_be_json(net):
    arrays, _ = arrays_and_meta(model_to_bytes(net))
    buf = io.BytesIO()
    np.savez(buf, metadata=np.frombuffer(b"\xff\xfenot json", np.uint8), **arrays)
    with pytest.raises(ModelFileError, match="JSON"):
        model_from_bytes(buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with pytest.raises(ModelFileError, match="no metadata"):
        model_from_bytes(buf.getvalue())


def test_forged_declared_size_is_what_zipfile_reads() -> None:
    """huge_declared_size really forges the size the zip reader reports (guards its users)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.npy", b"x")
    forged = huge_declared_size(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(forged)) as z:
        assert z.infolist()[0].file_size == 0xFFFFFFF0


# ── fuzzing: a damaged file is refused with ModelFileError, or is a valid model ──────────────


@given(*MODEL_MUTATIONS)
def test_mutated_model_file_is_refused_or_valid(edits, cut) -> None:
    data = mutate(VALID_MODEL, edits, cut)
    try:
        net = model_from_bytes(data)
    except ModelFileError as exc:
        assert str(exc)
        return
    assert isinstance(net, Network)
    assert all(np.isfinite(p).all() for p in net.parameters())


def test_a_zip_needing_a_newer_zip_version_is_refused() -> None:
    data = bytearray(VALID_MODEL)
    at = data.rfind(b"PK\x01\x02")  # the last central-directory entry
    data[at + 6] = 64  # "version needed to extract": 6.4, which zipfile does not implement
    with pytest.raises(ModelFileError, match=r"not a valid \.npz/zip archive"):
        model_from_bytes(bytes(data))


@settings(max_examples=60)
@given(st.binary(max_size=400))
def test_random_bytes_are_not_a_model(data: bytes) -> None:
    with pytest.raises(ModelFileError):
        model_from_bytes(data)


@settings(max_examples=60)
@given(*MODEL_MEMBERS)
def test_model_zip_with_a_garbage_member_is_refused(name: str, garbage: bytes) -> None:
    with pytest.raises(ModelFileError):
        model_from_bytes(with_member(VALID_MODEL, name, garbage))


# ── sizes checked before anything is allocated; metadata parsed with limits and a schema ───


def model_zip(meta: dict | str, arrays: dict[str, bytes] | None = None) -> bytes:
    """A deflated .npz with this metadata (dict or raw JSON text) and raw .npy members."""
    text = meta if isinstance(meta, str) else json.dumps(meta)
    members = {"metadata": np.frombuffer(text.encode(), np.uint8)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, array in members.items():
            with z.open(name + ".npy", "w") as f:
                np.lib.format.write_array(f, array)
        for name, raw in (arrays or {}).items():
            z.writestr(name + ".npy", raw)
    return buf.getvalue()


def npy_header_only(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """A .npy member that declares `shape` but holds only a few bytes of data."""
    f = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(f, header)
    return f.getvalue() + b"\0" * 64


def meta_for(hidden: list[int], **training) -> dict:
    network = NetworkConfig(hidden=tuple(hidden)).to_dict()
    return {"format": "scribblenet-model", "version": 1, "network": network, "training": training}


def test_a_huge_declared_array_is_refused_before_it_is_allocated() -> None:
    import tracemalloc

    others = {name: npy_header_only(shape) for name, shape in
              [("b1", (128,)), ("W2", (128, 10)), ("b2", (10,))]}  # fmt: skip
    data = model_zip(meta_for([128]), {"W1": npy_header_only((784, 500_000)), **others})
    tracemalloc.start()
    with pytest.raises(ModelFileError, match=r"W1 has shape \(784, 500000\), expected"):
        model_from_bytes(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 << 20  # the 1.5 GB the header declares was never asked for


def test_too_many_parameters_are_refused_where_a_limit_is_set() -> None:
    data = model_zip(meta_for([4096, 4096, 4096]))  # 37 M parameters, declared only
    with pytest.raises(ModelFileError, match="at most 5,000,000"):
        model_from_bytes(data, max_parameters=5_000_000)


def test_deeply_nested_metadata_is_refused_without_parsing() -> None:
    meta = json.dumps(meta_for([8]))[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(ModelFileError, match="nests deeper than 16"):
        model_from_bytes(model_zip(meta))


def test_metadata_keeps_only_known_and_sane_provenance(net) -> None:
    training = {
        "test_accuracy": float("nan"),
        "handwriting_accuracy": 1e302,
        "epochs": 3,
        "where": "browser",
        "config": {"epochs": 3, "learning_rate": 0.01},
        "train": {"learning_rate": -5},
        "secret": "<script>",
    }
    data = model_to_bytes(net, {"training": training})
    loaded = model_from_bytes(data).metadata["training"]
    assert loaded["epochs"] == 3 and loaded["where"] == "browser"
    assert loaded["config"]["learning_rate"] == 0.01 and loaded["config"]["epochs"] == 3
    for dropped in ("test_accuracy", "handwriting_accuracy", "train", "secret"):
        assert dropped not in loaded
