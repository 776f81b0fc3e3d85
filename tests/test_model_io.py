"""Model files: round trip, and rejection of corrupt or hostile files."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from scribblenet.config import NetworkConfig
from scribblenet.model_io import (
    ModelFileError,
    load_model,
    model_from_bytes,
    model_to_bytes,
    save_model,
)
from scribblenet.network import Network


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
