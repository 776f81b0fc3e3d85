"""Fine-tuning on a person's digits: styles learnt without forgetting MNIST, cross-validation,
chunked runs, and the hardened "My digits" file.

The styles are drawn in the tests on MNIST digits: 1s with a long flag and a foot (a model
trained without such styles reads ~3 % of them as 1), and zeros slashed corner to corner (~60 %).
"""

import io
import zipfile

import numpy as np
import pytest

from scribblenet.compact import read_compact
from scribblenet.config import NetworkConfig
from scribblenet.finetune import (
    DigitsFileError,
    FinetuneConfig,
    cross_validate,
    digits_from_bytes,
    digits_to_bytes,
    finetune,
    finetune_set,
    load_digits,
    save_digits,
)
from scribblenet.model_io import load_model, model_from_bytes, model_to_bytes
from scribblenet.network import Network
from session_helpers import huge_declared_size, tiny_mnist

# ---------------------------------------------------------------- styles drawn with numpy


def draw_line(img: np.ndarray, p0, p1, width: float = 2.6) -> None:
    """An anti-aliased segment from p0 to p1 (row, col) drawn into a (28, 28) float image."""
    r, c = np.mgrid[0:28, 0:28].astype(np.float64)  # (28, 28) each
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    t = np.clip(((r - p0[0]) * d[0] + (c - p0[1]) * d[1]) / max(d @ d, 1e-9), 0, 1)
    dist = np.hypot(r - (p0[0] + t * d[0]), c - (p0[1] + t * d[1]))  # (28, 28)
    np.maximum(img, np.clip(width / 2 + 0.5 - dist, 0, 1) * 255, out=img)


def ink_box(img: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(img.max(1) > 64), np.flatnonzero(img.max(0) > 64)
    return rows[0], rows[-1], cols[0], cols[-1]


def ink_column(img: np.ndarray, r0: int, r1: int) -> float:
    w = img[r0 : r1 + 1].sum(0)  # (28,) ink per column in those rows
    return float((w * np.arange(28)).sum() / max(w.sum(), 1))


def styled(X: np.ndarray, draw) -> np.ndarray:
    out = np.empty((len(X), 28, 28))
    for i, x in enumerate(X.reshape(-1, 28, 28)):
        out[i] = x
        draw(out[i])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(-1, 784)


def flag_and_foot(img: np.ndarray) -> None:
    r0, r1, _, _ = ink_box(img)
    top, bottom = ink_column(img, r0, r0 + 2), ink_column(img, r1 - 2, r1)
    draw_line(img, (r0, top), (r0 + 3, top - 9))
    draw_line(img, (r1, bottom - 6), (r1, bottom + 6))


def slash(img: np.ndarray) -> None:
    r0, r1, c0, c1 = ink_box(img)
    draw_line(img, (min(r1 + 2, 27), max(c0 - 2, 0)), (max(r0 - 2, 0), min(c1 + 2, 27)), 2.2)


STYLES = {1: flag_and_foot, 0: slash}


@pytest.fixture(scope="module")
def mnist(repo_root):
    return read_compact((repo_root / "web" / "data" / "mnist-compact-v1.bin").read_bytes())


@pytest.fixture(scope="module")
def pretrained_bytes(repo_root):
    """The pretrained MLP shipped before the styled one: it has never seen the tests' styles.

    (The shipped model learnt such conventions, so it would leave nothing to teach.)
    """
    return (repo_root / "tests" / "data" / "mlp-without-styles.npz").read_bytes()


def style_sets(mnist, n_own: int, n_held: int, seed: int = 5):
    """(own X, y) with n_own styled training digits per style; (held-out X, y) from the test set."""
    rng = np.random.default_rng(seed)
    own, held = [], []
    for label, draw in STYLES.items():
        pick = rng.choice(np.flatnonzero(mnist.y_train == label), n_own, replace=False)
        own.append((styled(mnist.X_train[pick], draw), np.full(n_own, label)))
        test = np.flatnonzero(mnist.y_test == label)[:n_held]
        held.append((styled(mnist.X_test[test], draw), np.full(len(test), label)))
    return tuple(
        np.concatenate(parts) for parts in (*zip(*own, strict=True), *zip(*held, strict=True))
    )


def test_a_few_examples_teach_a_style_without_forgetting_mnist(mnist, pretrained_bytes):
    # Measured (3 seeds, 300 held-out per style, before the min_own_rows floor): 32 % → 96 %
    # on the styles, MNIST 98.90 % → 98.54-98.64 % (with it, 3 per style: 97 %, 98.49-98.53 %).
    # The thresholds leave room for other seeds and Pyodide's arithmetic.
    X_own, y_own, X_held, y_held = style_sets(mnist, n_own=5, n_held=150)
    net = model_from_bytes(pretrained_bytes)
    before, test_before = net.accuracy(X_held, y_held), net.accuracy(mnist.X_test, mnist.y_test)
    trainer = finetune(
        net, X_own, y_own, mnist.X_train, mnist.y_train, rng=np.random.default_rng(0)
    )
    events = list(trainer.run())
    assert events[-1]["type"] == "done"
    after, test_after = net.accuracy(X_held, y_held), net.accuracy(mnist.X_test, mnist.y_test)
    assert before < 0.5
    assert after > 0.85
    assert test_after >= test_before - 0.005


def test_cross_validation_scores_only_held_out_digits(mnist, pretrained_bytes):
    X_own, y_own, _, _ = style_sets(mnist, n_own=3, n_held=0)
    net = model_from_bytes(pretrained_bytes)
    original = net.copy_parameters()
    config = FinetuneConfig(epochs=2, copies=8, replay=4.0, min_own_rows=0)
    events = list(
        cross_validate(
            net, X_own, y_own, mnist.X_train, mnist.y_train,
            mnist.X_test[:1000], mnist.y_test[:1000],
            rng=np.random.default_rng(1), folds=3, config=config,
        )
    )  # fmt: skip
    result = events[-1]
    assert result["type"] == "cross_validation"
    assert (result["n"], result["folds"]) == (6, 3)
    assert {e["fold"] for e in events[:-1]} == {1, 2, 3}
    assert result["own_before"] <= 0.5
    assert result["own_after"] >= result["own_before"] + 0.3
    assert result["errors_before"] == round((1 - result["own_before"]) * 6)
    assert abs(result["test_after"] - result["test_before"]) < 0.02
    for name, p in net.named_parameters().items():  # the folds tuned copies
        np.testing.assert_array_equal(p, original[name])


def test_cross_validation_needs_two_digits(mnist, pretrained_bytes):
    net = model_from_bytes(pretrained_bytes)
    with pytest.raises(ValueError, match="at least 2 digits"):
        next(cross_validate(net, mnist.X_train[:1], mnist.y_train[:1], mnist.X_train,
                            mnist.y_train, rng=np.random.default_rng(0)))  # fmt: skip


def small_case(seed: int):
    data = tiny_mnist(np.random.default_rng(seed), n_train=200, n_test=20)
    net = Network(NetworkConfig(hidden=(8,)), np.random.default_rng(seed))
    return net, data


def test_chunked_runs_match_one_run():
    config = FinetuneConfig(epochs=2, copies=4, replay=2.0, batch_size=16, min_own_rows=0)
    nets = []
    for chunked in (False, True):
        net, data = small_case(3)
        trainer = finetune(net, data.X_test, data.y_test, data.X_train, data.y_train,
                           rng=np.random.default_rng(7), config=config)  # fmt: skip
        if chunked:
            while not trainer.done:
                for _ in trainer.run(max_batches=3):
                    pass
        else:
            list(trainer.run())
        assert trainer.epoch == 2
        nets.append(net)
    for name, p in nets[0].named_parameters().items():
        np.testing.assert_array_equal(nets[1].named_parameters()[name], p)


def test_the_mixed_set_repeats_own_digits_and_replays_mnist():
    _, data = small_case(0)
    X_own, y_own = data.X_test[:5], data.y_test[:5]
    config = FinetuneConfig(copies=3, replay=2.0, min_own_rows=0)
    X, y = finetune_set(X_own, y_own, data.X_train, data.y_train, np.random.default_rng(0), config)
    assert X.shape == (15 + 30, 784) and y.shape == (45,)
    np.testing.assert_array_equal(X[:15], np.tile(X_own, (3, 1)))
    # more replay than there are images: all of them, once
    config = FinetuneConfig(copies=3, replay=100.0, min_own_rows=0)
    X, _ = finetune_set(X_own, y_own, data.X_train, data.y_train, np.random.default_rng(0), config)
    assert len(X) == 15 + 200
    # few digits are copied more, up to min_own_rows
    config = FinetuneConfig(copies=3, replay=1.0, min_own_rows=22)
    X, _ = finetune_set(X_own, y_own, data.X_train, data.y_train, np.random.default_rng(0), config)
    assert len(X) == 25 + 25


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("epochs", 0, "epochs"), ("learning_rate", -1.0, "learning rate"), ("copies", 0, "copies"),
     ("replay", -0.5, "replay"), ("optimizer", "lbfgs", "optimizer")],
)  # fmt: skip
def test_bad_settings_say_what_is_allowed(field, value, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(**{field: value})


def test_bad_own_digits_are_refused():
    _, data = small_case(0)
    with pytest.raises(ValueError, match="uint8"):
        finetune_set(data.X_train[:3].astype(np.float32), data.y_train[:3], data.X_train,
                     data.y_train, np.random.default_rng(0))  # fmt: skip
    with pytest.raises(ValueError, match="0-9"):
        finetune_set(data.X_train[:3], np.array([1, 2, 10]), data.X_train, data.y_train,
                     np.random.default_rng(0))  # fmt: skip
    with pytest.raises(ValueError, match="no digits"):
        finetune_set(data.X_train[:0], data.y_train[:0], data.X_train, data.y_train,
                     np.random.default_rng(0))  # fmt: skip


def test_finetune_provenance_survives_a_model_file():
    net = Network(NetworkConfig(n_inputs=12, hidden=(4,), n_classes=10))
    finetune_record = {
        "digits": "my.npz", "n_digits": 30, "base_test_accuracy": 0.989, "folds": 5,
        "own_accuracy_before": 0.6, "own_accuracy_after": 0.9, "sneaky": "<script>",
        "config": FinetuneConfig().to_dict(),
    }  # fmt: skip
    loaded = model_from_bytes(model_to_bytes(net, {"training": {"finetune": finetune_record}}))
    kept = loaded.metadata["training"]["finetune"]
    assert "sneaky" not in kept
    assert kept["own_accuracy_after"] == 0.9 and kept["config"] == FinetuneConfig().to_dict()
    bad = {"training": {"finetune": {"own_accuracy_after": 7, "n_digits": "many"}}}
    assert model_from_bytes(model_to_bytes(net, bad)).metadata["training"]["finetune"] == {}


# ---------------------------------------------------------------- the "My digits" file

DIGITS_X = np.random.default_rng(0).integers(0, 256, (12, 784), dtype=np.uint8)
DIGITS_Y = np.arange(12) % 10


def test_digits_round_trip(tmp_path):
    X, y = digits_from_bytes(digits_to_bytes(DIGITS_X, DIGITS_Y))
    np.testing.assert_array_equal(X, DIGITS_X)
    np.testing.assert_array_equal(y, DIGITS_Y)
    assert X.dtype == np.uint8 and y.dtype == np.uint8
    X, y = load_digits(save_digits(tmp_path / "my.npz", DIGITS_X, DIGITS_Y))
    np.testing.assert_array_equal(X, DIGITS_X)
    X, y = digits_from_bytes(digits_to_bytes(DIGITS_X[:0], DIGITS_Y[:0]))
    assert X.shape == (0, 784) and y.shape == (0,)


def test_writing_refuses_bad_digits():
    with pytest.raises(ValueError, match="0-9"):
        digits_to_bytes(DIGITS_X[:2], np.array([3, 11]))
    with pytest.raises(ValueError, match="uint8"):
        digits_to_bytes(DIGITS_X.reshape(12, 28, 28), DIGITS_Y)


def npz(**members) -> bytes:
    """A zip of .npy members: arrays, or raw bytes written as they are."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, value in members.items():
            if isinstance(value, bytes):
                z.writestr(name + ".npy", value)
            else:
                with z.open(name + ".npy", "w") as f:
                    np.lib.format.write_array(f, value, allow_pickle=True)
    return buf.getvalue()


def header_only(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    """A .npy member that declares `shape` but holds only a few bytes."""
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        f, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return f.getvalue() + b"\0" * 64


LABELS = DIGITS_Y.astype(np.uint8)
HOSTILE = {
    "not a zip": (b"PK\x03\x04 certainly not a zip file", "not a valid"),
    "pickle": (npz(images=np.array([{"x": 1}] * 12, dtype=object), labels=LABELS), "pickle"),
    "float images": (npz(images=DIGITS_X.astype(np.float32), labels=LABELS), "uint8"),
    "28x28 images": (npz(images=DIGITS_X.reshape(12, 28, 28), labels=LABELS), "shape"),
    "int64 labels": (npz(images=DIGITS_X, labels=DIGITS_Y.astype(np.int64)), "uint8"),
    "label 10": (npz(images=DIGITS_X, labels=LABELS + 9), "0-9"),
    "count mismatch": (npz(images=DIGITS_X, labels=LABELS[:5]), "12 images but 5 labels"),
    "extra member": (npz(images=DIGITS_X, labels=LABELS, more=LABELS), "expected members"),
    "no labels": (npz(images=DIGITS_X), "expected members"),
    "huge shape": (npz(images=header_only((10**9, 784)), labels=header_only((10**9,))), "at most"),
    "huge zip": (huge_declared_size(digits_to_bytes(DIGITS_X, DIGITS_Y)), "refusing to unpack"),
    "truncated": (digits_to_bytes(DIGITS_X, DIGITS_Y)[:-40], "not a valid"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_digits_files_are_refused(case):
    data, message = HOSTILE[case]
    with pytest.raises(DigitsFileError, match=message):
        digits_from_bytes(data)


def test_a_huge_declared_shape_is_refused_before_allocation():
    import tracemalloc

    data = HOSTILE["huge shape"][0]
    tracemalloc.start()
    with pytest.raises(DigitsFileError):
        digits_from_bytes(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 << 20  # the 784 GB the header declares was never asked for


def test_the_digit_limit_is_the_callers():
    data = digits_to_bytes(DIGITS_X, DIGITS_Y)
    with pytest.raises(DigitsFileError, match=r"at most 5|larger than"):
        digits_from_bytes(data, max_digits=5)


# ---------------------------------------------------------------- the command, on real MNIST


@pytest.mark.native
@pytest.mark.slow
def test_cli_finetune_prints_before_after_and_saves_provenance(tmp_path, mnist_dir, repo_root):
    from scribblenet.cli import main
    from scribblenet.mnist import load_mnist

    data = load_mnist(mnist_dir)
    X_own, y_own, _, _ = style_sets(data, n_own=3, n_held=0)
    digits = save_digits(tmp_path / "my.npz", X_own, y_own)
    out = tmp_path / "tuned.npz"
    model = repo_root / "web" / "models" / "pretrained.npz"
    argv = ["finetune", "--model", str(model), "--digits", str(digits), "--out", str(out),
            "--data-dir", str(mnist_dir), "--folds", "3"]  # fmt: skip
    assert main(argv) == 0
    tuned = load_model(out)
    record = tuned.metadata["training"]["finetune"]
    assert record["n_digits"] == 6 and record["digits"] == "my.npz" and record["folds"] == 3
    assert record["own_accuracy_after"] > record["own_accuracy_before"]
    assert record["config"]["min_own_rows"] == 256
    assert tuned.metadata["training"]["where"] == "cli finetune"
    assert tuned.metadata["training"]["test_accuracy"] > 0.98
