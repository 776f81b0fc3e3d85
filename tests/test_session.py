"""Session, the worker's Python side, called the way the page calls it (natively and in Pyodide)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scribblenet.compact import encode_compact
from scribblenet.ink import ink_from_strokes
from scribblenet.model_io import model_from_bytes
from scribblenet.session import Session
from session_helpers import FORM, model_bytes, tiny_mnist


@pytest.fixture
def session(rng: np.random.Generator) -> Session:
    """A session with a tiny dataset and a random 'pretrained' model."""
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


def test_batch_larger_than_training_set(session: Session) -> None:
    errors = session.configure({**FORM, "batch_size": "201"})["errors"]
    assert "at most 200" in errors["batch_size"]
    assert session.configure({**FORM, "batch_size": "200"})["ok"]


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


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"not a zip", "not a valid .npz"), (model_bytes(n_inputs=100), "not a digit model")],
)
def test_bad_model_files_are_refused_politely(session: Session, data: bytes, message) -> None:
    before = session.describe()
    result = session.load_model(data)
    assert result["ok"] is False
    assert message in result["error"]
    assert session.describe() == before  # the current model is kept


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


def test_corrupt_dataset_is_reported(rng: np.random.Generator) -> None:
    data = bytearray(encode_compact(tiny_mnist(rng, 20, 10)))
    data[-1] ^= 0xFF
    result = Session().load_dataset(bytes(data))
    assert result["ok"] is False
    assert "corrupt" in result["error"]


# ── training in chunks ─────────────────────────────────────────────────────────────────────


def test_training_in_chunks_learns_and_records_itself(session: Session) -> None:
    started = session.start_training(FORM)
    assert started["ok"]
    assert started["total_steps"] == 2 * 4  # 200 images / 50 per batch × 2 epochs
    assert started["model"]["architecture"] == "784-16-10"
    events = run_to_end(session, max_batches=3)
    json.dumps(events)  # everything the worker posts is plain data
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


def test_stop_keeps_the_weights_reached(session: Session) -> None:
    session.start_training(FORM)
    session.train_chunk(60_000, 2)
    weights = session.net.copy_parameters()
    result = session.stop_training()
    assert result["type"] == "done" and result["reason"] == "stopped"
    assert result["model"]["source"] == "trained"
    assert session.stop_training() is None  # nothing left to stop
    assert session.trainer is None
    assert session.train_chunk(2) == []
    for name, W in session.net.named_parameters().items():
        np.testing.assert_array_equal(W, weights[name])


def test_same_seed_same_training(rng: np.random.Generator) -> None:
    costs = []
    data = encode_compact(tiny_mnist(rng), levels=256)
    for _ in range(2):
        s = Session()
        s.load_dataset(data)
        s.start_training(FORM)
        costs.append([e["cost"] for e in run_to_end(s) if e["type"] == "batch"])
    assert costs[0] == costs[1]


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


@pytest.mark.parametrize("where", ["nothing", "a speck"])
def test_predict_without_a_digit(session: Session, where: str) -> None:
    ink = np.zeros((280, 280), np.uint8)
    if where == "a speck":
        ink[100:102, 100:102] = 255
    result = session.predict_ink(ink.tobytes(), 280, 280)
    assert result["empty"] is True
    assert "draw a digit" in result["message"]


def test_predict_canvas_full_of_ink(session: Session) -> None:
    result = session.predict_ink(np.full((50, 50), 255, np.uint8), 50, 50)
    assert result["empty"] is True
    assert "fills the canvas" in result["message"]


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
