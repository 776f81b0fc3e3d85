"""The Session's views inside the model and fine-tuning on "My digits", as the page calls them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scribblenet.compact import encode_compact
from scribblenet.finetune import digits_from_bytes, digits_to_bytes
from scribblenet.ink import ink_from_strokes
from scribblenet.model_io import model_from_bytes
from scribblenet.session import Session
from session_helpers import FORM, model_bytes, npz_bytes, tiny_mnist

ONE = ink_from_strokes([[(140, 50), (140, 230)]], size=280)  # (280, 280) uint8, a "1"


@pytest.fixture
def session(rng: np.random.Generator) -> Session:
    """200 fake training images, 60 test images and a random 'pretrained' model."""
    s = Session()
    assert s.load_dataset(encode_compact(tiny_mnist(rng), levels=256))["ok"]
    assert s.load_model(model_bytes(hidden=(16, 8)), source="pretrained")["ok"]
    return s


def own_digits(session: Session, n: int = 12) -> tuple[bytes, bytes]:
    """n of the session's test images as a person's digits: (n·784 bytes, n bytes)."""
    assert session.data is not None
    return session.data.X_test[:n].tobytes(), session.data.y_test[:n].astype(np.uint8).tobytes()


def finish(session: Session, budget_ms: float = 50) -> list[dict]:
    events: list[dict] = []
    for _ in range(10_000):
        events += session.train_chunk(budget_ms)
        if events and events[-1]["type"] == "done":
            return events
    raise AssertionError("fine-tuning never finished")


# ── why it answered ──────────────────────────────────────────────────────────────────────────


def test_explain_ink_gives_saliency_runner_up_activations_and_neighbours(session) -> None:
    why = session.explain_ink(ONE.tobytes(), 280, 280)
    json.dumps(why)
    assert why["empty"] is False
    assert why["digit"] == session.predict_ink(ONE, 280, 280)["digit"]
    assert why["runner_up"]["digit"] != why["digit"]
    assert 0 <= why["runner_up"]["probability"] <= why["probability"] <= 1
    assert len(why["saliency"]) == 784 and max(abs(v) for v in why["saliency"]) == 1.0
    assert [a["units"] for a in why["activations"]] == [16, 8]
    neighbours = why["neighbours"]
    assert len(neighbours) == 8
    assert all(len(n["image"]) == 784 and 0 <= n["label"] <= 9 for n in neighbours)
    assert [n["similarity"] for n in neighbours] == sorted(
        (n["similarity"] for n in neighbours), reverse=True
    )


def test_explain_ink_without_ink_or_data() -> None:
    s = Session()
    assert s.explain_ink(bytes(100), 10, 10)["empty"] is True
    assert s.load_model(model_bytes(), source="pretrained")["ok"]
    assert s.explain_ink(bytes(100), 10, 10)["empty"] is True  # a blank canvas
    why = s.explain_ink(ONE.tobytes(), 280, 280)  # no dataset yet: no neighbours
    assert why["empty"] is False and why["neighbours"] == []


def test_digitize_gives_the_network_input(session: Session) -> None:
    got = session.digitize(ONE.tobytes(), 280, 280)
    assert got["empty"] is False
    assert got["input28"] == session.predict_ink(ONE, 280, 280)["input28"]
    assert session.digitize(bytes(280 * 280), 280, 280)["empty"] is True
    assert "not 3×3" in session.digitize(bytes(5), 3, 3)["message"]


# ── what it learned ──────────────────────────────────────────────────────────────────────────


def test_weight_tiles_of_the_current_model(session: Session) -> None:
    w = session.weight_tiles()
    assert w["ok"] and w["n"] == 16 and w["units"] == 16
    assert len(w["tiles"]) == 16 * 784 and w["epoch"] is None
    assert Session().weight_tiles()["ok"] is False


def test_training_sends_weight_tiles_each_epoch_before_done(session: Session) -> None:
    assert session.start_training({**FORM, "epochs": "3"})["ok"]
    events = []
    while session.trainer is not None:
        events += session.train_chunk(60_000, 2)
    weights = [e for e in events if e["type"] == "weights"]
    epochs = [e["epoch"] for e in weights]
    assert {1, 2, 3} <= set(epochs) and epochs == sorted(epochs)
    assert events[-2]["type"] == "weights" and events[-2]["epoch"] == 3
    assert all(len(e["tiles"]) == e["n"] * 784 for e in weights)
    assert weights[0]["tiles"] != weights[-1]["tiles"]  # the weights changed while training


def test_confusion_and_mistakes_agree(session: Session) -> None:
    c = session.confusion()
    assert c["ok"] and c["n"] == 60
    matrix = np.array(c["matrix"])
    assert matrix.sum() == 60
    assert c["accuracy"] == pytest.approx(np.trace(matrix) / 60)
    true, pred = np.unravel_index(np.argmax(matrix), matrix.shape)
    cell = session.mistakes(int(true), int(pred))
    assert cell["total"] == matrix[true, pred]
    assert len(cell["items"]) == min(24, cell["total"])
    assert session.data is not None
    for item in cell["items"]:
        assert session.data.y_test[item["index"]] == true
        assert item["image"] == session.data.X_test[item["index"]].tolist()


@pytest.mark.parametrize("cell", [(10, 0), (-1, 2), ("3", 4), (1.5, 2)])
def test_mistakes_refuses_cells_outside_the_matrix(session: Session, cell) -> None:
    assert session.mistakes(*cell)["ok"] is False


def test_confusion_before_the_data() -> None:
    s = Session()
    assert s.confusion()["ok"] is False and s.mistakes(1, 2)["ok"] is False


# ── My digits and fine-tuning ────────────────────────────────────────────────────────────────


def test_my_digits_file_round_trips(session: Session) -> None:
    images, labels = own_digits(session)
    data = session.export_digits(images, labels)
    X, y = digits_from_bytes(data)
    assert X.tobytes() == images and y.tobytes() == labels
    back = session.import_digits(data)
    assert back["ok"] and back["n"] == 12
    assert back["images"] == images and back["labels"] == labels


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip", "not"),
        (npz_bytes(images=np.zeros((2, 784), np.uint8)), "expected members"),
        (npz_bytes(images=np.zeros((2, 784), np.uint8), labels=np.array([1, 12], np.uint8)),
         "0-9"),
        (npz_bytes(images=np.zeros((2, 784), np.float32), labels=np.zeros(2, np.uint8)),
         "uint8"),
    ],
)  # fmt: skip
def test_hostile_digits_files_are_refused(session: Session, data: bytes, message: str) -> None:
    result = session.import_digits(data)
    assert result["ok"] is False and message in result["error"]


def test_export_digits_refuses_mismatched_bytes(session: Session) -> None:
    with pytest.raises(ValueError, match="do not make"):
        session.export_digits(bytes(784 * 2), bytes(3))
    with pytest.raises(ValueError, match="0-9"):
        session.export_digits(bytes(784), bytes([10]))


def test_finetune_replaces_the_model_and_reports_before_and_after(session: Session) -> None:
    before = session.export_model()
    images, labels = own_digits(session, 10)
    started = session.start_finetune(images, labels, seed=1)
    assert started["ok"] and started["kind"] == "finetune" and started["n"] == 10
    assert session.export_model() == before  # the current model stays until the end
    events = finish(session)
    progress = [e for e in events if e["type"] == "finetune"]
    assert progress and all(0 <= e["fraction"] <= 0.99 for e in progress)
    assert [e["fraction"] for e in progress] == sorted(e["fraction"] for e in progress)
    done = events[-1]
    json.dumps({k: v for k, v in done.items() if k != "file"})
    assert done["kind"] == "finetune" and done["reason"] == "finished"
    r = done["result"]
    assert r["n"] == 10 and r["folds"] == 5 and r["seconds"] > 0
    for key in ("own_before", "own_after", "test_before", "test_after"):
        assert 0 <= r[key] <= 1
    assert done["model"]["source"] == "finetuned"
    assert "fine-tuned" in done["model"]["source_label"]
    tuned = model_from_bytes(done["file"])
    assert tuned.metadata["training"]["finetune"]["n_digits"] == 10
    assert tuned.metadata["training"]["finetune"]["own_accuracy_after"] == r["own_after"]
    assert session.export_model() != before
    assert session.reset_to_pretrained()["ok"]
    assert session.export_model() == before


def test_finetune_learns_a_style_the_model_gets_wrong(session: Session) -> None:
    """Digits the model misreads (labels swapped 3 ↔ 7) are read as taught after fine-tuning."""
    assert session.data is not None
    d = session.data
    pick = np.flatnonzero(np.isin(d.y_train, [3, 7]))[:16]
    X, y = d.X_train[pick], np.where(d.y_train[pick] == 3, 7, 3).astype(np.uint8)
    assert session.start_training(FORM)["ok"]
    while session.trainer is not None:
        session.train_chunk(60_000)
    assert session.start_finetune(X.tobytes(), y.tobytes(), seed=2)["ok"]
    r = finish(session)[-1]["result"]
    assert r["own_after"] > r["own_before"] + 0.3


def test_stopping_finetune_keeps_the_model(session: Session) -> None:
    before = session.export_model()
    assert session.start_finetune(*own_digits(session), seed=3)["ok"]
    session.train_chunk(1)
    done = session.stop_training()
    assert done is not None and done["kind"] == "finetune" and done["reason"] == "stopped"
    assert "still in use" in done["message"] and "file" not in done
    assert session.finetuning is None and session.train_chunk(50) == []
    assert session.export_model() == before


def test_training_or_a_model_file_ends_a_finetune(session: Session) -> None:
    assert session.start_finetune(*own_digits(session), seed=4)["ok"]
    started = session.start_training(FORM)
    assert started["ok"] and started["ended"]["kind"] == "finetune"
    assert session.start_finetune(*own_digits(session), seed=4)["ok"]
    loaded = session.load_model(model_bytes())
    assert loaded["ok"] and loaded["ended"]["reason"] == "replaced"


@pytest.mark.parametrize(
    ("n", "labels", "message"),
    [(3, None, "at least 5"), (8, [4] * 8, "two different"), (6, [1, 2, 3, 4, 5, 11], "0-9")],
)
def test_finetune_refuses_too_few_or_bad_digits(session, n, labels, message) -> None:
    images, good = own_digits(session, n)
    result = session.start_finetune(images, bytes(labels) if labels else good)
    assert result["ok"] is False and message in result["errors"]["_"]
    assert session.finetuning is None


def test_finetune_needs_the_dataset() -> None:
    s = Session()
    assert s.load_model(model_bytes(), source="pretrained")["ok"]
    X = np.zeros((6, 784), np.uint8)
    result = s.start_finetune(X.tobytes(), bytes([0, 1, 2, 3, 4, 5]))
    assert result["ok"] is False and "not loaded" in result["errors"]["_"]


def test_digits_file_from_the_page_is_the_cli_format(session: Session, tmp_path) -> None:
    images, labels = own_digits(session)
    data = session.export_digits(images, labels)
    X, y = digits_from_bytes(data)
    assert digits_to_bytes(X, y) == data


# ── a convolutional network, the same way ────────────────────────────────────────────────────


def test_a_cnn_trains_explains_and_shows_its_filters(session: Session) -> None:
    started = session.start_training({**FORM, "hidden": "conv3x4,pool2,dense16", "epochs": "1"})
    assert started["ok"], started
    assert started["model"]["architecture"] == "28x28-conv3x4-pool2-676-16-10"
    assert started["model"]["layers"] == "conv3x4,pool2,dense16"
    while session.trainer is not None:
        session.train_chunk(60_000)
    tiles = session.weight_tiles()
    assert tiles["ok"] and tiles["side"] == 3 and tiles["n"] == 4
    assert len(tiles["tiles"]) == 4 * 3 * 3
    why = session.explain_ink(ONE.tobytes(), 280, 280)
    assert why["empty"] is False and len(why["saliency"]) == 784
    assert [a["units"] for a in why["activations"]] == [16]
    assert len(why["neighbours"]) == 8
    assert session.confusion()["n"] == 60
