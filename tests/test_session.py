"""Session, the worker's Python side, called the way the page calls it (natively and in Pyodide)."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scribblenet.compact import encode_compact
from scribblenet.ink import ink_from_strokes
from scribblenet.model_io import model_from_bytes, model_to_bytes
from scribblenet.session import Session
from session_helpers import (
    FORM,
    MODEL_MEMBERS,
    MODEL_MUTATIONS,
    VALID_MODEL,
    huge_declared_size,
    model_bytes,
    mutate,
    npz_bytes,
    tiny_mnist,
    with_member,
)


@pytest.fixture
def session(rng: np.random.Generator) -> Session:
    """A session with 200 fake training images and a random 'pretrained' model."""
    s = Session()
    assert s.load_dataset(encode_compact(tiny_mnist(rng), levels=256))["ok"]
    assert s.load_model(model_bytes(), source="pretrained")["ok"]
    return s


def run_to_end(s: Session, max_batches: int = 3) -> list[dict]:
    events = []
    while s.trainer is not None:
        chunk = s.train_chunk(60_000, max_batches)
        assert sum(e["type"] == "batch" for e in chunk) <= max_batches
        events += chunk
    return events


# ── configure: every field checked, one message per bad field, never an exception ─────────


def test_configure_normalises_a_valid_form(session: Session) -> None:
    result = session.configure({**FORM, "hidden": " 32, 16 ", "batch_size": "full"})
    assert result["ok"]
    assert result["network"]["hidden"] == [32, 16]
    assert result["train"]["batch_size"] is None  # full batch
    assert result["train"]["learning_rate"] == 0.01
    assert result["train"]["seed"] == 3


def test_each_bad_field_gets_its_own_message(session: Session) -> None:
    form = {
        **FORM,
        "hidden": "128,abc",
        "learning_rate": "-1",
        "batch_size": "ten",
        "epochs": "0",
        "activation": "swish",
        "seed": "1.5",
        "momentum": "nan",
    }
    result = session.configure(form)
    assert result["ok"] is False
    errors = result["errors"]
    assert set(errors) == {
        "hidden",
        "learning_rate",
        "batch_size",
        "epochs",
        "activation",
        "seed",
        "momentum",
    }
    assert "learning rate must be > 0" in errors["learning_rate"]
    assert "whole numbers" in errors["hidden"]
    assert "sigmoid" in errors["activation"]  # says what is allowed
    assert all(isinstance(m, str) and m for m in errors.values())


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
    ("hidden", "9" * 5000, "from 1 to 4096"),  # too long to be a layer size
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


def test_batch_larger_than_the_training_set_is_refused(session: Session) -> None:
    errors = session.configure({**FORM, "batch_size": "201"})["errors"]
    assert "at most 200" in errors["batch_size"]
    assert session.configure({**FORM, "batch_size": "200"})["ok"]
    result = session.start_training({**FORM, "batch_size": "60"}, subset=50)
    assert "at most 50" in result["errors"]["batch_size"]  # a subset is the training set
    assert session.start_training({**FORM, "batch_size": "50"}, subset=50)["n_train"] == 50


@pytest.mark.parametrize("subset", [0, -1, 2.5, "10"])
def test_bad_subset_is_refused(session, subset) -> None:
    assert "subset" in session.start_training(FORM, subset=subset)["errors"]["_"]


@given(
    st.dictionaries(
        st.sampled_from([*sorted(FORM), "momentum", "weight_decay", "lr_schedule"]),
        st.one_of(st.text(max_size=12), st.integers(-(10**12), 10**12), st.floats(), st.none()),
    )
)
def test_configure_never_raises(form: dict) -> None:
    result = Session().configure(form)
    json.dumps(result)  # plain values only
    assert result["ok"] == (not result.get("errors"))


# ── models: load, export, reset ────────────────────────────────────────────────────────────


def test_export_round_trips_through_the_cli_format(session: Session) -> None:
    data = session.export_model()
    net = model_from_bytes(data)
    assert net.config.sizes == (784, 8, 10)
    other = Session()
    result = other.load_model(data)
    expected = {**session.describe(), "source": "uploaded", "source_label": "the uploaded model"}
    assert result == {"ok": True, "model": expected, "ended": None}
    X = np.arange(784, dtype=np.uint8).reshape(1, 784)
    np.testing.assert_array_equal(other.net.predict_proba(X), session.net.predict_proba(X))


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
        ("not a zip", b"not a zip", "not a valid .npz"),
        ("not digits", model_bytes(n_inputs=100), "not a digit model"),
    ]


@pytest.mark.parametrize(("name", "data", "message"), hostile_files())
def test_hostile_model_file_is_refused_and_changes_nothing(session, name, data, message) -> None:
    before, description = session.export_model(), session.describe()
    result = session.load_model(data)
    assert result["ok"] is False
    assert message in result["error"], result["error"]
    assert session.source == "pretrained"
    assert session.export_model() == before  # byte for byte the model in use before
    assert session.describe() == description


@given(*MODEL_MUTATIONS)
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
@given(*MODEL_MEMBERS)
def test_session_refuses_a_garbage_member(name: str, garbage: bytes) -> None:
    session = Session()
    result = session.load_model(with_member(VALID_MODEL, name, garbage))
    assert result["ok"] is False and result["error"]
    assert session.net is None


def test_reset_to_pretrained(session: Session) -> None:
    pretrained = session.net.copy_parameters()
    assert session.start_training(FORM)["ok"]
    run_to_end(session)
    assert session.describe()["source"] == "trained"
    result = session.reset_to_pretrained()
    assert result["model"]["source"] == "pretrained"
    for name, W in session.net.named_parameters().items():
        np.testing.assert_array_equal(W, pretrained[name])


def test_reset_before_any_pretrained_model() -> None:
    assert Session().reset_to_pretrained()["ok"] is False


@pytest.mark.parametrize("damage", ["last byte flipped", "truncated"])
def test_corrupt_dataset_is_reported(rng: np.random.Generator, damage: str) -> None:
    data = bytearray(encode_compact(tiny_mnist(rng, 20, 10)))
    if damage == "truncated":
        del data[-7:]
    else:
        data[-1] ^= 0xFF
    s = Session()
    result = s.load_dataset(bytes(data))  # reported, never raised
    assert result["ok"] is False
    assert "corrupt" in result["error"]
    assert s.data is None


# ── training in chunks ─────────────────────────────────────────────────────────────────────


def test_training_in_chunks_learns_and_records_itself(session: Session) -> None:
    started = session.start_training(FORM)
    assert started["ok"]
    assert started["total_steps"] == 2 * 4  # 200 images / 50 per batch × 2 epochs
    assert started["model"]["architecture"] == "784-16-10"
    events = run_to_end(session, max_batches=3)
    assert isinstance(events[-1].pop("file"), bytes)  # the trained model, for the history
    for weights in (e for e in events if e["type"] == "weights"):
        assert isinstance(weights.pop("tiles"), bytes)  # the first layer, as uint8 tiles
    json.dumps(events)  # everything else the worker posts is plain data
    kinds = [e["type"] for e in events]
    assert kinds.count("batch") == 8
    assert kinds.count("epoch") == 2
    assert kinds[-1] == "done"
    last_epoch = [e for e in events if e["type"] == "epoch"][-1]
    assert last_epoch["test_accuracy"] > 0.9  # the blocks are easy to tell apart
    assert np.array(last_epoch["confusion"]).sum() == 60
    training = session.describe()["training"]
    assert training["epochs"] == 2
    assert training["test_accuracy"] == last_epoch["test_accuracy"]
    assert session.train_chunk(5) == []  # finished: nothing more to do
    # The trained model saves and loads with its provenance.
    assert model_from_bytes(session.export_model()).metadata["training"]["epochs"] == 2


def test_training_needs_data_and_a_valid_form() -> None:
    s = Session()
    assert "_" in s.start_training(FORM)["errors"]
    assert "epochs" in s.start_training({**FORM, "epochs": "-3"})["errors"]


def test_stop_keeps_the_previous_model_and_hands_over_the_stopped_one(session: Session) -> None:
    before = session.net.copy_parameters()  # the 'pretrained' model
    session.start_training(FORM)
    session.train_chunk(60_000, 2)
    weights = session.net.copy_parameters()
    result = session.stop_training()
    assert result["type"] == "done" and result["reason"] == "stopped"
    assert result["model"]["source"] == "pretrained"  # still the current model
    assert "the pretrained model is still in use" in result["message"]
    assert result["stopped_model"]["source"] == "trained"
    stopped = model_from_bytes(result["file"])  # the page keeps it in its history
    assert stopped.metadata["training"]["stopped"] is True
    assert stopped.metadata["training"]["steps"] == 2
    for name, W in stopped.named_parameters().items():
        np.testing.assert_array_equal(W, weights[name])
    for name, W in session.net.named_parameters().items():
        np.testing.assert_array_equal(W, before[name])
    assert session.stop_training() is None  # nothing left to stop
    assert session.trainer is None
    assert session.train_chunk(2) == []


def test_same_seed_same_training(rng: np.random.Generator) -> None:
    costs = []
    data = encode_compact(tiny_mnist(rng), levels=256)
    for _ in range(2):
        s = Session()
        s.load_dataset(data)
        s.start_training(FORM)
        costs.append([e["cost"] for e in run_to_end(s) if e["type"] == "batch"])
    assert costs[0] == costs[1]


def test_divergence_in_first_epoch_keeps_the_previous_model(session: Session) -> None:
    before = session.export_model()
    assert session.start_training({**FORM, "learning_rate": "500", "optimizer": "sgd"})["ok"]
    done = run_to_end(session, 5)[-1]
    assert (done["type"], done["reason"]) == ("done", "diverged")
    assert "learning rate 500 is probably too high" in done["message"]
    assert "the pretrained model is still in use" in done["message"]
    assert session.source == "pretrained"
    assert session.export_model() == before  # byte for byte the model from before training


def test_divergence_later_keeps_the_weights_of_the_last_good_epoch(session: Session) -> None:
    """Epoch 1 trains; a cost blow-up later restores the start of that epoch (finite weights)."""
    assert session.start_training({**FORM, "epochs": "3"})["ok"]
    events = session.train_chunk(60_000, 4)  # the first epoch: 200 / 50 batches
    assert [e["type"] for e in events[-2:]] == ["epoch", "weights"]  # the epoch's weights last
    good = [p.copy() for p in session.net.parameters()]
    trainer = session.trainer  # from here on, every Adam step is a jump of ±1000
    trainer.config = dataclasses.replace(trainer.config, learning_rate=1000.0)
    done = run_to_end(session, 5)[-1]
    assert (done["type"], done["reason"]) == ("done", "diverged")
    assert "start of epoch 2 were kept" in done["message"]
    assert session.source == "trained"
    for kept, ref in zip(session.net.parameters(), good, strict=True):
        np.testing.assert_array_equal(kept, ref)


# ── predicting drawn ink ────────────────────────────────────────────────────────────────────


def test_predict_ink_returns_digit_probabilities_and_input(session: Session) -> None:
    ink = ink_from_strokes([[(140, 50), (140, 230)]], size=280)  # (280, 280) uint8, a "1"
    for alpha in (ink.tobytes(), memoryview(ink.tobytes()), ink):
        result = session.predict_ink(alpha, 280, 280)
        json.dumps(result)
        assert result["empty"] is False
        p = result["probabilities"]
        assert len(p) == 10
        assert abs(sum(p) - 1) < 1e-9
        assert result["digit"] == int(np.argmax(p))
        assert len(result["input28"]) == 784
        assert min(result["input28"]) >= 0
        assert max(result["input28"]) == 255


def test_predict_non_square_canvas(session: Session) -> None:
    ink = np.zeros((100, 300), np.uint8)  # (h, w)
    ink[20:80, 140:150] = 255
    assert session.predict_ink(ink.tobytes(), 300, 100)["empty"] is False


@pytest.mark.parametrize(
    ("ink", "message"),
    [
        (np.zeros((280, 280)), "draw a digit"),
        (np.pad(np.full((2, 2), 255), 139), "draw a digit"),
        (ink_from_strokes([[(140.0, 140.0)]], 280, 12.0), "draw a digit"),
        (np.full((280, 280), 255), "fills the canvas"),
        (np.full((50, 50), 255), "fills the canvas"),
    ],
    ids=["nothing", "a speck", "a dot", "full", "full small canvas"],
)
def test_predict_without_a_digit(session: Session, ink: np.ndarray, message: str) -> None:
    h, w = np.shape(ink)
    result = session.predict_ink(np.asarray(ink, np.uint8).tobytes(), w, h)
    assert result["empty"] is True
    assert message in result["message"]


@pytest.mark.parametrize(("width", "height"), [(10, 10), (0, 0), (-1, 5), (300, 300)])
def test_alpha_of_the_wrong_size_is_reported(session, width, height) -> None:
    result = session.predict_ink(bytes(280 * 280), width, height)
    assert result["empty"] is True
    assert "canvas" in result["message"]


def test_predict_before_any_model() -> None:
    result = Session().predict_ink(bytes(16), 4, 4)
    assert result == {"empty": True, "message": "the model is still loading"}


def test_wasm_backend_is_optional(session: Session) -> None:
    result = session.use_wasm_backend()  # natively (and in Node) gemm.js never registered it
    assert result["ok"] is False
    assert "not installed" in result["reason"]
    assert session.net.backend.name == "numpy"


def test_dataset_decodes_in_steps_with_the_same_result(rng: np.random.Generator) -> None:
    data = tiny_mnist(rng, 200, 60)
    blob = encode_compact(data, levels=256, block_size=50)  # 4 train blocks + 2 test blocks
    stepwise = Session()
    stepwise.begin_dataset(blob)
    steps = []
    while not (result := stepwise.continue_dataset())["done"]:
        steps.append(result)
    # Three inflate steps and one step per block for each split: the worker answers
    # predictions in between.
    assert len(steps) == 2 * 3 + 4 + 2
    assert result == {"done": True, "ok": True, "n_train": 200, "n_test": 60}
    for got, want in zip(stepwise.data, data, strict=True):
        np.testing.assert_array_equal(got, want)
    assert stepwise.continue_dataset()["ok"] is False  # nothing left to decode


def test_corrupt_dataset_is_reported_by_the_stepwise_decoder(rng: np.random.Generator) -> None:
    blob = bytearray(encode_compact(tiny_mnist(rng, 20, 10)))
    blob[-1] ^= 0xFF
    s = Session()
    s.begin_dataset(bytes(blob))
    while not (result := s.continue_dataset())["done"]:
        pass
    assert result["ok"] is False and "corrupt" in result["error"]
    assert s.data is None


def test_configure_estimates_memory_and_refuses_what_cannot_fit(session: Session, monkeypatch):
    import scribblenet.session as session_module

    small = session.configure(FORM)
    assert 0 < small["memory_mb"] < 5
    big = session.configure({**FORM, "hidden": "4096", "batch_size": "full", "dtype": "float64"})
    assert big["ok"] and big["memory_mb"] > 50  # micro-batches keep even this one small
    monkeypatch.setattr(session_module, "MAX_TRAINING_BYTES", 40 << 20)
    refused = session.start_training({**FORM, "hidden": "4096", "dtype": "float64"})
    assert not refused["ok"] and "fit in a browser tab" in refused["errors"]["hidden"]
    assert session.trainer is None


def test_a_full_batch_of_a_big_network_trains_in_short_chunks(session: Session, monkeypatch):
    import scribblenet.training as training

    monkeypatch.setattr(training, "MICRO_BATCH_FLOPS", 6 * 203_530 * 20)  # 20 of 200 rows
    assert session.start_training({**FORM, "hidden": "256", "batch_size": "full"})["ok"]
    first = session.train_chunk(0)  # a budget of 0: one micro-batch, then back to the page
    assert [e["type"] for e in first] == ["progress"]
    assert first[0]["batch_fraction"] == pytest.approx(0.1)
    assert session.predict_ink(np.zeros(64 * 64, np.uint8), 64, 64)["empty"]  # still answers
    events = run_to_end(session)
    assert events[-1]["type"] == "done" and events[-1]["reason"] == "finished"


# ── test_digit: "Try a test digit", the keyboard's way to a prediction ──────────────────────


def test_test_digit_is_an_image_of_the_test_set_with_its_label(session: Session) -> None:
    data = session.data
    assert data is not None
    first = session.test_digit(7)
    assert first["ok"] and first == session.test_digit(7)  # a seed picks one image, always
    index = first["index"]
    assert first["image"] == data.X_test[index].tolist() and len(first["image"]) == 784
    assert first["label"] == int(data.y_test[index])
    json.dumps(first)  # plain values: the worker hands them to JavaScript as they are
    picked = {session.test_digit(seed)["index"] for seed in range(40)}
    assert len(picked) > 20 and picked <= set(range(len(data.y_test)))
    assert session.test_digit()["ok"]  # no seed: a random one


def test_test_digit_scaled_up_goes_through_predict_ink(session: Session) -> None:
    """The page paints the image on the pad, scaled up, and sends the pad's alpha back."""
    digit = session.test_digit(1)
    image = np.array(digit["image"], np.uint8).reshape(28, 28)
    big = np.kron(image, np.ones((10, 10), np.uint8))  # (280, 280): the pad's alpha
    reading = session.predict_ink(big, 280, 280)
    assert not reading["empty"] and len(reading["input28"]) == 784


@pytest.mark.parametrize("seed", [-1, 1.5, "3"])
def test_test_digit_refuses_a_bad_seed(session: Session, seed) -> None:
    result = session.test_digit(seed)
    assert result["ok"] is False and "seed" in result["error"]


def test_test_digit_before_the_data_is_loaded() -> None:
    result = Session().test_digit(0)
    assert result == {"ok": False, "error": "the test images are still loading"}
