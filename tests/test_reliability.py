"""Hardening: bad input, divergence, hostile files and fuzzed parsers never break the session.

Runs natively and inside Pyodide. Property tests feed the parsers random and mutated input: the
only exceptions allowed out are the documented ones (ValueError and its subclasses).
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scribblenet.compact import encode_compact, read_compact
from scribblenet.ink import EmptyInkError, ink_from_strokes, ink_to_mnist
from scribblenet.model_io import ModelFileError, model_from_bytes, model_to_bytes
from scribblenet.network import Network
from scribblenet.session import Session, parse_config
from session_helpers import FORM, model_bytes, tiny_mnist


@pytest.fixture
def session(rng: np.random.Generator) -> Session:
    """A session with 200 fake training images and a random 'pretrained' model."""
    s = Session()
    assert s.load_dataset(encode_compact(tiny_mnist(rng), levels=256))["ok"]
    assert s.load_model(model_bytes(), source="pretrained")["ok"]
    return s


# ── 1. bad hyperparameters: a message for the field, never an exception ───────────────────

BAD_FIELDS = [
    ("learning_rate", "0", "learning rate must be > 0"),
    ("learning_rate", "-0.5", "learning rate must be > 0"),
    ("learning_rate", "nan", "finite number"),
    ("learning_rate", "inf", "finite number"),
    ("learning_rate", "fast", "must be a number"),
    ("learning_rate", "1e6", "<= 1000"),
    ("learning_rate", "1" * 500, "must be a number"),
    ("hidden", "0", "from 1 to 4096"),
    ("hidden", "1000000", "from 1 to 4096"),
    ("hidden", "9" * 5000, "from 1 to 4096"),
    ("hidden", "-5", "whole numbers"),
    ("batch_size", "0", "batch size must be at least 1"),
    ("batch_size", "201", "at most 200"),  # the fixture's training set has 200 images
    ("batch_size", "12.5", "whole number"),
    ("epochs", "0", "epochs must be an integer from 1"),
    ("epochs", "1" * 5000, "far too large"),
    ("seed", "-1", "seed must be an integer from 0"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS)
def test_bad_hyperparameter_gets_a_field_message(session, field, value, message) -> None:
    for call in (session.configure, session.start_training):
        result = call({**FORM, field: value})
        assert result["ok"] is False
        assert set(result["errors"]) == {field}, result["errors"]
        assert message in result["errors"][field]
        assert len(result["errors"][field]) < 200  # the value is quoted, but cut short
    assert session.trainer is None  # nothing started
    assert session.source == "pretrained"  # and the model in use is untouched


def test_batch_larger_than_a_training_subset_is_refused(session) -> None:
    result = session.start_training({**FORM, "batch_size": "60"}, subset=50)
    assert "at most 50" in result["errors"]["batch_size"]
    assert session.start_training({**FORM, "batch_size": "50"}, subset=50)["n_train"] == 50


@pytest.mark.parametrize("subset", [0, -1, 2.5, "10"])
def test_bad_subset_is_refused(session, subset) -> None:
    assert "subset" in session.start_training(FORM, subset=subset)["errors"]["_"]


# ── 2. divergence: the page is told why, and keeps a model that works ─────────────────────


def run(session: Session) -> list[dict]:
    events = []
    while session.trainer is not None:
        events += session.train_chunk(5)
    return events


def test_divergence_in_first_epoch_keeps_the_previous_model(session) -> None:
    before = session.export_model()
    assert session.start_training({**FORM, "learning_rate": "500", "optimizer": "sgd"})["ok"]
    events = run(session)
    assert events[-1]["type"] == "diverged"
    assert "learning rate 500 is probably too high" in events[-1]["reason"]
    assert "previous model (pretrained) is kept" in events[-1]["reason"]
    assert session.source == "pretrained"
    assert session.export_model() == before  # byte for byte the model from before training


def test_divergence_later_keeps_the_weights_of_the_last_good_epoch(session) -> None:
    """Epoch 1 trains; a cost blow-up later restores the start of that epoch (finite weights)."""
    assert session.start_training({**FORM, "epochs": "3"})["ok"]
    events = session.train_chunk(4)  # the first epoch: 200 / 50 batches
    assert events[-1]["type"] == "epoch"
    good = [p.copy() for p in session.net.parameters()]
    trainer = session.trainer  # from here on, every Adam step is a jump of ±1000
    trainer.config = dataclasses.replace(trainer.config, learning_rate=1000.0)
    events = run(session)
    assert events[-1]["type"] == "diverged"
    assert "start of epoch 2 were kept" in events[-1]["reason"]
    assert session.source == "trained"
    for kept, ref in zip(session.net.parameters(), good, strict=True):
        np.testing.assert_array_equal(kept, ref)


# ── 1. drawings that are not digits ───────────────────────────────────────────────────────


def alpha_of(ink: np.ndarray) -> bytes:
    return np.asarray(ink, np.uint8).tobytes()


@pytest.mark.parametrize(
    ("name", "ink", "message"),
    [
        ("empty", np.zeros((280, 280)), "draw a digit"),
        ("speck", np.pad(np.full((2, 2), 255), 139), "draw a digit"),
        ("dot", ink_from_strokes([[(140.0, 140.0)]], 280, 12.0), "draw a digit"),
        ("full", np.full((280, 280), 255), "fills the canvas"),
    ],
)
def test_not_a_digit_gets_a_message(session, name, ink, message) -> None:
    h, w = np.shape(ink)
    result = session.predict_ink(alpha_of(ink), w, h)
    assert result["empty"] is True
    assert message in result["message"]


@pytest.mark.parametrize(("width", "height"), [(10, 10), (0, 0), (-1, 5), (300, 300)])
def test_alpha_of_the_wrong_size_is_reported(session, width, height) -> None:
    result = session.predict_ink(bytes(280 * 280), width, height)
    assert result["empty"] is True
    assert "canvas" in result["message"]


# ── 4. hostile model files leave the current model untouched ──────────────────────────────


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def valid_arrays() -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(model_bytes())) as npz:
        return {name: npz[name] for name in npz.files}


def with_metadata(arrays: dict, **changes) -> dict:
    meta = json.loads(arrays["metadata"].tobytes())
    meta.update(changes)
    return {**arrays, "metadata": np.frombuffer(json.dumps(meta).encode(), np.uint8)}


def hostile_files() -> list[tuple[str, bytes, str]]:
    a = valid_arrays()
    good = model_bytes()
    return [
        ("pickle", npz_bytes(**{**a, "W1": np.array([{"x": 1}], dtype=object)}), "pickled"),
        ("shape", npz_bytes(**{**a, "W1": a["W1"][:, :4]}), "shape"),
        ("dtype", npz_bytes(**{**a, "W1": a["W1"].astype(np.float64)}), "dtype"),
        ("nan", npz_bytes(**{**a, "b1": np.full_like(a["b1"], np.nan)}), "NaN"),
        ("inf", npz_bytes(**{**a, "W2": np.full_like(a["W2"], np.inf)}), "infinite"),
        ("truncated", good[: len(good) // 2], "not a valid .npz"),
        ("version", npz_bytes(**with_metadata(a, version=99)), "version 99"),
        ("format", npz_bytes(**with_metadata(a, format="pytorch")), "not a scribblenet model"),
        ("missing", npz_bytes(**{k: v for k, v in a.items() if k != "b2"}), "missing ['b2']"),
        ("huge", huge_declared_size(good), "refusing to unpack"),
        ("empty", b"", "not a valid"),
    ]


def huge_declared_size(good: bytes) -> bytes:
    """The model's zip with one member's declared uncompressed size forged to 4 GB."""
    data = bytearray(good)
    at = data.rfind(b"PK\x01\x02")  # the last central-directory entry
    data[at + 24 : at + 28] = (0xFFFFFFF0).to_bytes(4, "little")  # uncompressed size field
    return bytes(data)


@pytest.mark.parametrize(("name", "data", "message"), hostile_files())
def test_hostile_model_file_is_refused_and_changes_nothing(session, name, data, message) -> None:
    before = session.export_model()
    result = session.load_model(data)
    assert result["ok"] is False
    assert message in result["error"], result["error"]
    assert session.source == "pretrained"
    assert session.export_model() == before


# ── 9. fuzzing: parsers raise their documented errors or succeed, nothing else ────────────

ANY_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=30),
        st.binary(max_size=10),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
FIELD_NAMES = st.sampled_from([*FORM, "momentum", "weight_decay", "lr_schedule", "", "preset"])


@given(st.dictionaries(FIELD_NAMES | st.text(max_size=10), ANY_VALUE, max_size=12))
def test_parse_config_never_raises(form: dict) -> None:
    network, train, errors = parse_config(form)
    assert (network is None) == (train is None) == bool(errors)
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())
    json.dumps(errors)


@given(ANY_VALUE)
def test_parse_config_of_a_non_dict_never_raises(form) -> None:
    if isinstance(form, dict):
        return
    assert parse_config(form)[2]


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


VALID_MODEL = model_bytes(hidden=(3,))


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


MUTATIONS = (
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    st.none() | st.integers(0, len(VALID_MODEL)),
)


@given(*MUTATIONS)
def test_mutated_model_file_is_refused_or_valid(edits, cut) -> None:
    data = mutate(VALID_MODEL, edits, cut)
    try:
        net = model_from_bytes(data)
    except ModelFileError as exc:
        assert str(exc)
        return
    assert isinstance(net, Network)
    assert all(np.isfinite(p).all() for p in net.parameters())


@given(*MUTATIONS)
def test_session_refuses_a_mutated_model_file_politely(edits, cut) -> None:
    """The page's path: a message, or a valid model; the current model survives a refusal."""
    session = Session()
    assert session.load_model(VALID_MODEL, source="pretrained")["ok"]
    result = session.load_model(mutate(VALID_MODEL, edits, cut))
    if not result["ok"]:
        assert result["error"]
        assert session.source == "pretrained"
        assert session.export_model() == model_to_bytes(model_from_bytes(VALID_MODEL))
        return
    net = session.net
    assert all(np.isfinite(p).all() for p in net.parameters())
    assert net.predict_proba(np.zeros((1, 784), np.float32)).shape == (1, 10)


@settings(max_examples=60)
@given(st.binary(max_size=400))
def test_random_bytes_are_not_a_model(data: bytes) -> None:
    with pytest.raises(ModelFileError):
        model_from_bytes(data)


def with_member(name: str, body: bytes) -> bytes:
    """VALID_MODEL with the member `name`.npy replaced by `body`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(VALID_MODEL)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, body if info.filename == name + ".npy" else src.read(info))
    return buf.getvalue()


MEMBERS = (st.sampled_from(["W1", "b1", "W2", "b2", "metadata"]), st.binary(max_size=200))


@settings(max_examples=60)
@given(*MEMBERS)
def test_model_zip_with_a_garbage_member_is_refused(name: str, garbage: bytes) -> None:
    with pytest.raises(ModelFileError):
        model_from_bytes(with_member(name, garbage))


@settings(max_examples=60)
@given(*MEMBERS)
def test_session_refuses_a_garbage_member(name: str, garbage: bytes) -> None:
    session = Session()
    result = session.load_model(with_member(name, garbage))
    assert result["ok"] is False and result["error"]
    assert session.net is None


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


def test_session_reports_a_truncated_dataset_without_raising() -> None:
    s = Session()
    result = s.load_dataset(VALID_DATASET[: len(VALID_DATASET) - 7])
    assert result["ok"] is False and "corrupt" in result["error"]
    assert s.data is None
