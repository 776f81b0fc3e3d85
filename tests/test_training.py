"""The training loop: events, resumability, determinism, divergence and bad input."""

import numpy as np
import pytest

from scribblenet.config import NetworkConfig, TrainConfig
from scribblenet.network import Network
from scribblenet.training import Trainer, confusion_matrix, trainer_rngs


def blobs(n=300, seed=0):
    """Three separable Gaussian clusters in 16 dimensions, as uint8 'pixels'."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(40, 215, (3, 16))
    y = rng.integers(0, 3, n).astype(np.uint8)
    X = np.clip(centres[y] + rng.normal(0, 12, (n, 16)), 0, 255).astype(np.uint8)
    return X, y


def make(seed=0, **train):
    X, y = blobs()
    net_config = NetworkConfig(n_inputs=16, hidden=(8,), n_classes=3)
    init_rng, data_rng = trainer_rngs(seed)
    net = Network(net_config, init_rng)
    config = TrainConfig(**{"epochs": 3, "batch_size": 32, "learning_rate": 0.01, **train})
    return net, Trainer(net, config, X[:240], y[:240], X[240:], y[240:], rng=data_rng)


def test_events_and_learning():
    _net, trainer = make()
    events = list(trainer.run())
    kinds = [e["type"] for e in events]
    assert kinds.count("batch") == 3 * 8 and kinds.count("epoch") == 3 and kinds[-1] == "done"
    epoch = [e for e in events if e["type"] == "epoch"][-1]
    assert epoch["test_accuracy"] >= 0.95 and epoch["train_accuracy"] >= 0.9
    assert np.array(epoch["confusion"]).sum() == 60
    assert trainer.done and trainer.step == trainer.total_steps == 24
    assert len(trainer.history["batch_cost"]) == 24
    assert trainer.history["epoch_cost"][-1] < trainer.history["epoch_cost"][0]
    assert events[0]["examples_per_s"] > 0 and events[0]["seen"] == 32


def test_resumable_in_chunks_equals_one_run():
    net_a, a = make()
    list(a.run())
    net_b, b = make()
    chunks = 0
    while not b.done:
        list(b.run(max_batches=5))
        chunks += 1
    assert chunks >= 5
    for p, q in zip(net_a.parameters(), net_b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    assert a.history["batch_cost"] == b.history["batch_cost"]


def test_same_seed_same_weights_other_seed_differs():
    nets = []
    for seed in (7, 7, 8):
        net, trainer = make(seed=seed)
        list(trainer.run())
        nets.append(net)
    for p, q in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(nets[0].parameters()[0], nets[2].parameters()[0])


def test_full_batch_and_cosine_schedule():
    _net, trainer = make(
        batch_size=None, epochs=4, lr_schedule="cosine", optimizer="sgd", learning_rate=0.5
    )
    events = [e for e in trainer.run() if e["type"] == "batch"]
    assert len(events) == 4 and trainer.n_batches == 1
    rates = [e["learning_rate"] for e in events]
    assert rates[0] == pytest.approx(0.5) and rates == sorted(rates, reverse=True)


def test_weight_decay_shrinks_weights():
    norms = []
    for wd in (0.0, 0.5):
        net, trainer = make(weight_decay=wd, epochs=5)
        list(trainer.run())
        norms.append(float(np.linalg.norm(net.parameters()[0])))
    assert norms[1] < norms[0]


def test_divergence_is_detected_and_the_last_good_weights_kept():
    net, trainer = make(optimizer="sgd", learning_rate=1000.0, epochs=50)
    events = list(trainer.run())
    assert events[-1]["type"] == "diverged"
    assert "learning rate" in events[-1]["reason"]
    assert trainer.done
    assert all(np.isfinite(p).all() for p in net.parameters())


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda X, y: (X, y[:-1]), "labels must have shape"),
        (lambda X, y: (X, y.reshape(-1, 1)), "labels must have shape"),
        (lambda X, y: (X[:, :5], y), r"shape \(n, 16\)"),
        (lambda X, y: (X, (y + 5).astype(np.uint8)), r"integers in \[0, 3\)"),
        (lambda X, y: (X, y.astype(np.float32)), "integers"),
        (lambda X, y: (X[:0], y[:0]), "empty"),
    ],
)
def test_bad_training_data(change, match):
    X, y = change(*blobs())
    net = Network(NetworkConfig(n_inputs=16, hidden=(4,), n_classes=3))
    with pytest.raises(ValueError, match=match):
        Trainer(net, TrainConfig(), X, y)


def test_batch_larger_than_data_and_bad_chunk():
    X, y = blobs(50)
    net = Network(NetworkConfig(n_inputs=16, hidden=(4,), n_classes=3))
    with pytest.raises(ValueError, match="larger than the 50 training images"):
        Trainer(net, TrainConfig(batch_size=64), X, y)
    trainer = Trainer(net, TrainConfig(batch_size=10), X, y)
    with pytest.raises(ValueError, match="max_batches"):
        next(trainer.run(max_batches=0))
    with pytest.raises(ValueError, match="both"):
        Trainer(net, TrainConfig(), X, y, X_test=X)


def test_confusion_matrix():
    C = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 3)
    np.testing.assert_array_equal(C, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])


def test_network_repr_and_predict_shapes():
    net = Network(NetworkConfig(n_inputs=16, hidden=(8, 4), n_classes=3, activation="tanh"))
    assert repr(net).startswith("Network(16-8-4-3, activation=tanh")
    X, _ = blobs(10)
    P = net.predict_proba(X)
    assert P.shape == (10, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-5)
    assert net.predict(X).shape == (10,)
    with pytest.raises(ValueError, match="input must have shape"):
        net.predict(np.zeros((2, 5)))


@pytest.mark.slow
def test_committed_dataset_trains_past_97_5_percent(repo_root):
    """The page's default preset, trained natively on the committed compact file."""
    from scribblenet.compact import read_compact

    data = read_compact((repo_root / "web" / "data" / "mnist-compact-v1.bin").read_bytes())
    assert len(data.y_train) == 60_000 and len(data.y_test) == 10_000
    init_rng, data_rng = trainer_rngs(0)
    net = Network(NetworkConfig(hidden=(128,)), init_rng)  # web/app.js's "fast" preset
    config = TrainConfig(
        optimizer="adam", learning_rate=0.007, lr_schedule="cosine", batch_size=128, epochs=3
    )
    trainer = Trainer(net, config, *data, rng=data_rng)
    for _ in trainer.run():
        pass
    assert trainer.history["test_accuracy"][-1] >= 0.975


# ── big batches in micro-batches: the same update, control back within a time budget ─────


def trained_parameters(monkeypatch, flops: int, **train) -> tuple[dict, list[dict], Trainer]:
    """Train `make(...)` in float64 with micro-batches limited to `flops`; its events."""
    import scribblenet.training as training

    monkeypatch.setattr(training, "MICRO_BATCH_FLOPS", flops)
    X, y = blobs()
    init_rng, data_rng = trainer_rngs(0)
    net = Network(NetworkConfig(n_inputs=16, hidden=(8,), n_classes=3, dtype="float64"), init_rng)
    config = TrainConfig(**{"epochs": 2, "learning_rate": 0.05, "weight_decay": 1e-3, **train})
    trainer = Trainer(net, config, X[:240], y[:240], X[240:], y[240:], rng=data_rng)
    events = list(trainer.run())
    return net.copy_parameters(), events, trainer


@pytest.mark.parametrize("batch_size", [None, 64])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_micro_batches_give_the_same_update(monkeypatch, batch_size, optimizer) -> None:
    whole, events, trainer = trained_parameters(
        monkeypatch, 1 << 40, batch_size=batch_size, optimizer=optimizer
    )
    assert trainer.micro_batch == trainer.batch_size
    n_params = trainer.net.n_parameters
    split, split_events, split_trainer = trained_parameters(
        monkeypatch, 6 * n_params * 7, batch_size=batch_size, optimizer=optimizer
    )
    assert split_trainer.micro_batch == 7  # 240 rows (or 64) in parts of 7, the last shorter
    for name in whole:
        np.testing.assert_allclose(split[name], whole[name], rtol=1e-10, atol=1e-12)
    costs = [e["cost"] for e in events if e["type"] == "batch"]
    split_costs = [e["cost"] for e in split_events if e["type"] == "batch"]
    np.testing.assert_allclose(split_costs, costs, rtol=1e-10)
    assert [e["type"] for e in events] == [e["type"] for e in split_events]


def test_a_split_batch_returns_within_the_time_budget(monkeypatch) -> None:
    import scribblenet.training as training

    monkeypatch.setattr(training, "MICRO_BATCH_FLOPS", 6 * 163 * 10)  # 10 rows of 240 per pass
    _net, trainer = make(batch_size=None)
    chunk = list(trainer.run(max_seconds=0))  # one pass, then control comes back
    assert [e["type"] for e in chunk] == ["progress"]
    assert chunk[0]["batch_fraction"] == pytest.approx(10 / 240)
    while not trainer.done:
        chunk = list(trainer.run(max_seconds=0))
        assert chunk
    assert trainer.epoch == 3 and trainer.step == 3


def test_the_test_pass_is_scored_in_parts_within_the_time_budget() -> None:
    _net, whole = make(batch_size=60)
    expected = list(whole.run())
    _net, trainer = make(batch_size=60)
    trainer.test_part = 7  # 60 test images: 9 parts, the last shorter
    events = []
    while not trainer.done:
        chunk = list(trainer.run(max_seconds=0))
        assert chunk  # every call does some work and says so
        events += chunk
    testing = [e for e in events if e["type"] == "progress"]
    assert len(testing) == 3 * 9  # per epoch: after the last batch, then after each part but one
    first = testing[:9]
    assert [e["test_fraction"] for e in first] == pytest.approx([7 * k / 60 for k in range(9)])
    assert all(e["batch"] == e["n_batches"] == 4 and e["batch_fraction"] == 1 for e in first)
    clocks = ("seconds", "examples_per_s")

    def untimed(events: list[dict]) -> list[dict]:
        return [{k: v for k, v in e.items() if k not in clocks} for e in events]

    rest = [e for e in events if e["type"] != "progress"]
    assert untimed(rest) == untimed(expected)  # the other events are unchanged


def test_a_run_without_a_deadline_scores_the_test_set_at_once() -> None:
    _net, trainer = make(batch_size=60)
    trainer.test_part = 7
    chunk = list(trainer.run(max_batches=4))  # the epoch's batches, then its whole test pass
    assert [e["type"] for e in chunk] == ["batch"] * 4 + ["epoch"]
    X, y = blobs()
    assert chunk[-1]["test_accuracy"] == trainer.net.accuracy(X[240:], y[240:])


def test_micro_batch_rows_bound_the_work() -> None:
    from scribblenet.training import MICRO_BATCH_FLOPS, micro_batch_rows

    assert micro_batch_rows(101_770, 128) == 128  # the usual page network: one pass per batch
    rows = micro_batch_rows(3_256_330, 60_000)  # 784-4096-10, full batch
    assert 1 <= rows < 60_000 and 6 * 3_256_330 * rows <= MICRO_BATCH_FLOPS
    assert micro_batch_rows(10**12, 128) == 1


def test_examples_per_second_counts_each_pass_once(monkeypatch) -> None:
    import scribblenet.training as training

    clock = iter(range(0, 10**6, 1))  # every perf_counter() call is one more second
    monkeypatch.setattr(training.time, "perf_counter", lambda: float(next(clock)))
    _net, trainer = make(batch_size=60)
    batch = next(e for e in trainer.run() if e["type"] == "batch")
    # _train_part reads the clock twice (start, end of the pass), _update twice: 2 s in all.
    assert batch["examples_per_s"] == pytest.approx(60 / 2)


def test_epochs_trained_counts_an_epoch_once_its_batches_are_done() -> None:
    _net, trainer = make(batch_size=60)  # 4 batches per epoch
    trainer.test_part = 7
    seen = []
    while not trainer.done:
        for event in trainer.run(max_seconds=0):
            seen.append((event["type"], trainer.epoch, trainer.epochs_trained))
    testing = [(epoch, trained) for kind, epoch, trained in seen if kind == "progress"]
    assert testing and all(trained == epoch + 1 for epoch, trained in testing)
    batches = [(epoch, trained) for kind, epoch, trained in seen if kind == "batch"]
    assert all(trained in (epoch, epoch + 1) for epoch, trained in batches)
    assert trainer.epochs_trained == trainer.epoch == 3
