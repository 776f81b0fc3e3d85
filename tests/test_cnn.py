"""Convolutional networks end to end: shapes, gradients, training, model files, CLI, insight."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from scribblenet import cli
from scribblenet.config import NetworkConfig, TrainConfig
from scribblenet.explain import saliency, weight_tiles
from scribblenet.insight import weights_reply
from scribblenet.losses import log_softmax
from scribblenet.model_io import ModelFileError, model_from_bytes, model_to_bytes
from scribblenet.network import Network
from scribblenet.training import (
    MICRO_BATCH_FLOPS,
    Trainer,
    micro_batch_rows,
    trainer_rngs,
    training_bytes,
)
from session_helpers import tiny_mnist
from test_conv import CountingBackend
from test_gradients import EPS, numeric_grad

# 6×6 images → conv3x2same 6×6×2 → pool2 3×3×2 → conv2x3 2×2×3 → 12 → 5 → 3 classes.
SMALL = {"n_inputs": 36, "conv": ("conv3x2same", "pool2", "conv2x3"), "hidden": (5,),
         "n_classes": 3}  # fmt: skip


def small_cnn(activation: str = "tanh", dtype: str = "float64", seed: int = 0) -> Network:
    config = NetworkConfig(**SMALL, activation=activation, dtype=dtype)  # type: ignore[arg-type]
    net = Network(config, np.random.default_rng(seed))
    for conv in net.convs:  # non-zero biases, so a gradient that ignored them would show
        conv.b[:] = np.random.default_rng(seed + 1).standard_normal(conv.b.shape)
    return net


def digit_cnn(spec: tuple[str, ...] = ("conv5x4", "pool2"), hidden=(8,), seed=0) -> Network:
    return Network(NetworkConfig(conv=spec, hidden=hidden), np.random.default_rng(seed))


# ── shapes and layers ───────────────────────────────────────────────────────────────────────


def test_forward_shapes_and_layers() -> None:
    net = digit_cnn(("conv5x4", "pool2", "conv3x6same"), hidden=(8, 7))
    X = np.random.default_rng(0).integers(0, 256, (5, 784), dtype=np.uint8)
    assert net.forward(X).shape == (5, 10)
    assert [type(layer).__name__ for layer in net.front] == [
        "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU"
    ]  # fmt: skip
    assert len(net.convs) == 2 and len(net.dense) == 3
    assert net.dense[0].W.shape == (12 * 12 * 6, 8)
    assert list(net.named_parameters()) == [
        "conv1_W", "conv1_b", "conv2_W", "conv2_b", "W1", "b1", "W2", "b2", "W3", "b3"
    ]  # fmt: skip
    assert net.named_parameters()["conv2_W"].shape == (3 * 3 * 4, 6)
    assert net.n_parameters == net.config.n_parameters
    assert [a.shape for a in net.hidden_activations(X)] == [(5, 8), (5, 7)]
    assert repr(net).startswith("Network(28x28-conv5x4-pool2-conv3x6same-864-8-7-10, ")


def test_prediction_in_chunks_matches_one_pass(monkeypatch) -> None:
    import scribblenet.network as network

    net = digit_cnn()
    X = np.random.default_rng(1).integers(0, 256, (11, 784), dtype=np.uint8)
    whole, hidden = net.forward(X), net.hidden_activations(X)[0]
    monkeypatch.setattr(network, "_EVAL_FLOATS", 4 * 2000)  # 4 rows of 2,880 + 720 numbers
    assert network.eval_rows(net.config) == 2
    np.testing.assert_allclose(net.forward(X), whole, rtol=1e-5, atol=1e-5)  # float32 sums
    np.testing.assert_allclose(net.hidden_activations(X)[0], hidden, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.predict_proba(X).sum(axis=1), 1, rtol=1e-6)


def test_conv_predictions_take_fewer_images_per_im2col_as_patches_grow(monkeypatch) -> None:
    from scribblenet import conv

    assert conv.eval_chunk(576 * 25) == 145  # conv5x16 on 28×28: 145 images, ≤ 8 MB of patches
    assert conv.eval_chunk(100) == 256 and conv.eval_chunk(10**9) == 1
    layer = digit_cnn(("conv3x4same",)).convs[0]
    X = np.random.default_rng(2).random((5, 6, 6, 1))
    expected = layer.forward(X, train=False)
    monkeypatch.setattr(conv, "_EVAL_FLOATS", 2 * 36 * 9)  # two images per im2col
    np.testing.assert_allclose(layer.forward(X, train=False), expected, rtol=1e-6)


def test_set_backend_reaches_the_conv_layers() -> None:
    net = small_cnn()
    backend = CountingBackend()
    net.set_backend(backend)
    assert all(layer.backend is backend for layer in [*net.convs, *net.dense])
    net.loss_and_grad(np.random.default_rng(2).random((4, 36)), np.array([0, 1, 2, 0]))
    # forward: 2 convs + 2 dense; backward: dW of each (4), dX of all but the first conv (3)
    assert backend.calls == {"mm": 4, "mm_tn": 4, "mm_nt": 3}


def test_set_backend_reaches_pools_and_activations() -> None:
    net = small_cnn("relu")
    backend = CountingBackend()
    net.set_backend(backend)
    others = [layer for layer in [*net.front, *net.activations] if hasattr(layer, "backend")]
    assert len(others) > len(net.convs)  # the pools and activations have a backend
    assert all(layer.backend is backend for layer in others)


# ── gradients against central differences, in float64 ──────────────────────────────────────


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_network_gradients_through_conv_layers(activation) -> None:
    net = small_cnn(activation)
    rng = np.random.default_rng(5)
    X, y = rng.random((4, 36)), np.array([0, 2, 1, 2])
    decay = 0.01

    def cost() -> float:
        return net.loss_and_grad(X, y, decay)

    cost()
    names = list(net.named_parameters())
    analytic = {name: g.copy() for name, g in zip(names, net.gradients(), strict=True)}
    for name, p in net.named_parameters().items():
        for index in [tuple(rng.integers(0, n) for n in p.shape) for _ in range(4)]:
            old = p[index]
            p[index] = old + EPS
            up = cost()
            p[index] = old - EPS
            down = cost()
            p[index] = old
            numeric = (up - down) / (2 * EPS)
            assert analytic[name][index] == pytest.approx(numeric, rel=1e-5, abs=1e-8), name


def test_weight_decay_covers_conv_kernels() -> None:
    net = small_cnn()
    X, y = np.random.default_rng(6).random((3, 36)), np.array([0, 1, 2])
    plain = net.loss_and_grad(X, y)
    grads = [g.copy() for g in net.gradients()]
    decayed = net.loss_and_grad(X, y, 0.1)
    penalty = sum(float(np.vdot(layer.W, layer.W)) for layer in [*net.convs, *net.dense])
    assert decayed == pytest.approx(plain + 0.05 * penalty)
    np.testing.assert_allclose(net.convs[0].dW, grads[0] + 0.1 * net.convs[0].W, rtol=1e-12)
    np.testing.assert_allclose(net.convs[0].db, grads[1], rtol=1e-12)  # biases: no decay


def test_input_gradient_through_conv_layers_matches_central_differences() -> None:
    net = small_cnn()
    X = np.random.default_rng(7).random((2, 36))
    classes = np.array([2, 0])

    def log_p() -> float:
        return float(log_softmax(net.forward(X))[np.arange(2), classes].sum())

    analytic = net.input_gradient(X, classes)
    assert analytic.shape == (2, 36)
    np.testing.assert_allclose(analytic, numeric_grad(log_p, X), rtol=1e-5, atol=1e-8)


def test_input_gradient_leaves_a_run_in_progress_alone() -> None:
    net = small_cnn("relu")
    rng = np.random.default_rng(8)
    X, y = rng.random((6, 36)), np.array([0, 1, 2, 0, 1, 2])
    net.loss_and_grad(X, y)
    conv, pool, dense = net.convs[1], net.front[2], net.dense[0]
    before = {
        "grads": [g.copy() for g in net.gradients()],
        "params": [p.copy() for p in net.parameters()],
        "cols": conv.cols.copy(),
        "arg": pool.arg.copy(),
        "dense_X": dense.X.copy(),
        "relu_A": net.front[1].A.copy(),
    }
    net.input_gradient(rng.random((3, 36)), np.array([0, 1, 2]))
    net.hidden_activations(rng.random((5, 36)))
    net.predict(rng.random((5, 36)))
    after = {
        "grads": net.gradients(),
        "params": net.parameters(),
        "cols": conv.cols,
        "arg": pool.arg,
        "dense_X": dense.X,
        "relu_A": net.front[1].A,
    }
    for key, value in before.items():
        for old, new in zip(value if isinstance(value, list) else [value],
                            after[key] if isinstance(value, list) else [after[key]],
                            strict=True):  # fmt: skip
            np.testing.assert_array_equal(old, new, err_msg=key)


def test_saliency_of_a_cnn_is_an_image() -> None:
    net = digit_cnn()
    image = np.random.default_rng(9).integers(0, 256, 784, dtype=np.uint8)
    s = saliency(net, image, 3)
    assert s.shape == (784,) and np.abs(s).max() == pytest.approx(1.0)


# ── training ────────────────────────────────────────────────────────────────────────────────


def test_a_tiny_cnn_learns_tiny_digits(rng) -> None:
    data = tiny_mnist(rng)
    init_rng, data_rng = trainer_rngs(0)
    net = Network(NetworkConfig(conv=("conv3x4", "pool2"), hidden=()), init_rng)
    config = TrainConfig(learning_rate=0.01, batch_size=50, epochs=3)
    trainer = Trainer(net, config, *data, rng=data_rng)
    events = list(trainer.run())
    assert events[-1]["type"] == "done"
    assert trainer.history["test_accuracy"][-1] >= 0.9


def test_split_batches_give_the_same_cnn_update(monkeypatch) -> None:
    import scribblenet.training as training

    def train(flops: int) -> tuple[dict, Trainer]:
        monkeypatch.setattr(training, "MICRO_BATCH_FLOPS", flops)
        init_rng, data_rng = trainer_rngs(1)
        net = Network(NetworkConfig(**SMALL, dtype="float64"), init_rng)  # type: ignore[arg-type]
        X = np.random.default_rng(3).random((40, 36))
        y = np.arange(40) % 3
        config = TrainConfig(learning_rate=0.01, batch_size=20, epochs=2, weight_decay=1e-3)
        trainer = Trainer(net, config, X, y, rng=data_rng)
        list(trainer.run())
        return net.copy_parameters(), trainer

    whole, trainer = train(1 << 40)
    assert trainer.micro_batch == 20
    split, split_trainer = train(trainer.net.config.flops_per_example * 6)
    assert split_trainer.micro_batch == 6  # parts of 6, 6, 6 and 2 rows: buffers shrink
    for name in whole:
        np.testing.assert_allclose(split[name], whole[name], rtol=1e-10, atol=1e-12)


def test_cnn_work_and_memory_are_counted_by_their_conv_layers() -> None:
    cnn = NetworkConfig(conv=("conv5x16", "pool2", "conv5x32", "pool2"))
    mlp = NetworkConfig(hidden=(128,))
    rows = micro_batch_rows(cnn.n_parameters, 128, cnn.flops_per_example)
    assert rows * cnn.flops_per_example <= MICRO_BATCH_FLOPS < (rows + 1) * cnn.flops_per_example
    assert rows < 64 < micro_batch_rows(mlp.n_parameters, 128, mlp.flops_per_example)
    # 80 k parameters, but the memory of activations 80× an MLP's per image.
    assert cnn.activation_floats_per_example > 50 * mlp.activation_floats_per_example
    train = TrainConfig(batch_size=128)
    assert 10 << 20 < training_bytes(cnn, train, 60_000) < 200 << 20
    assert training_bytes(cnn, train, 60_000) > 3 * training_bytes(mlp, train, 60_000)


# ── model files ─────────────────────────────────────────────────────────────────────────────


def test_cnn_model_file_round_trip() -> None:
    net = digit_cnn(("conv3x4same", "pool2", "conv3x6"), hidden=(8,))
    data = model_to_bytes(net, {"training": {"epochs": 2}})
    loaded = model_from_bytes(data)
    assert loaded.config == net.config and loaded.config.conv == net.config.conv
    for name, p in net.named_parameters().items():
        np.testing.assert_array_equal(loaded.named_parameters()[name], p)
    X = np.random.default_rng(10).integers(0, 256, (4, 784), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    meta = json.loads(np.load(io.BytesIO(data))["metadata"].tobytes())
    assert meta["network"]["conv"] == ["conv3x4same", "pool2", "conv3x6"]


def test_mlp_model_files_have_no_conv_entry() -> None:
    net = Network(NetworkConfig(hidden=(8,)), np.random.default_rng(0))
    with np.load(io.BytesIO(model_to_bytes(net))) as z:
        assert sorted(z.files) == ["W1", "W2", "b1", "b2", "metadata"]
        assert "conv" not in json.loads(z["metadata"].tobytes())["network"]


def cnn_file(conv: list[str], arrays: dict[str, bytes] | None = None, **network) -> bytes:
    """A model file whose metadata declares these conv layers, with raw .npy members."""
    config = {**NetworkConfig(hidden=(8,)).to_dict(), **network, "conv": conv}
    meta = {"format": "scribblenet-model", "version": 1, "network": config}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("metadata.npy", "w") as f:
            np.lib.format.write_array(f, np.frombuffer(json.dumps(meta).encode(), np.uint8))
        for name, raw in (arrays or {}).items():
            z.writestr(name + ".npy", raw)
    return buf.getvalue()


def npy(shape: tuple[int, ...], data_bytes: int | None = None) -> bytes:
    """A float32 .npy member declaring `shape`, holding `data_bytes` bytes (default: all)."""
    f = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(f, header)
    n = 4 * int(np.prod(shape)) if data_bytes is None else data_bytes
    return f.getvalue() + b"\0" * n


GOOD = {"conv1_W": (9, 4), "conv1_b": (4,), "W1": (13 * 13 * 4, 8), "b1": (8,),
        "W2": (8, 10), "b2": (10,)}  # fmt: skip


@pytest.mark.parametrize(
    ("conv", "message"),
    [(["conv3x100000"], "channels must be from 1 to 256"),
     (["conv9999x4"], "kernel size must be from 1 to 28"),
     (["conv1x1"] * 9, "at most 8 conv layers"),
     (["pool2", "conv3x4"], "pool2 must follow a conv layer"),
     (["conv3x4", "pool2"] * 5, "shrinks the 1×1 image below 1×1"),
     # Few parameters, gigabytes of patches: refused by the numbers per image, not the count.
     (["conv1x256same", "conv28x1same"], "numbers per image"),
     ("conv3x4", "conv must be a list"),
     ([["conv3x4"]], "not understood")],
)  # fmt: skip
def test_absurd_conv_specs_are_refused_before_anything_is_allocated(conv, message) -> None:
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ModelFileError, match=message):
        model_from_bytes(cnn_file(conv))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 << 20


def test_conv_arrays_must_match_the_spec() -> None:
    arrays = {name: npy(shape) for name, shape in GOOD.items()}
    model_from_bytes(cnn_file(["conv3x4", "pool2"], arrays))  # the well-formed file loads
    wrong = {**arrays, "conv1_W": npy((9, 5))}
    with pytest.raises(ModelFileError, match=r"conv1_W has shape \(9, 5\), expected \(9, 4\)"):
        model_from_bytes(cnn_file(["conv3x4", "pool2"], wrong))
    with pytest.raises(ModelFileError, match=r"missing \['conv2_W', 'conv2_b'\]"):
        model_from_bytes(cnn_file(["conv3x4", "conv3x4"], arrays))
    extra = {**arrays, "conv2_W": npy((36, 4)), "conv2_b": npy((4,))}
    with pytest.raises(ModelFileError, match=r"unexpected \['conv2_W', 'conv2_b'\]"):
        model_from_bytes(cnn_file(["conv3x4", "pool2"], extra))
    mlp = {name: npy(GOOD[name]) for name in ("W1", "b1", "W2", "b2")}
    with pytest.raises(ModelFileError, match="missing"):  # conv layers declared, none stored
        model_from_bytes(cnn_file(["conv3x4", "pool2"], mlp))


def test_a_member_shorter_than_its_header_is_refused_before_it_is_allocated() -> None:
    import tracemalloc

    big = {"conv1_W": (25, 256), "conv1_b": (256,), "W1": (24 * 24 * 256, 8), "b1": (8,),
           "W2": (8, 10), "b2": (10,)}  # fmt: skip
    arrays = {name: npy(shape, data_bytes=16) for name, shape in big.items()}
    tracemalloc.start()
    with pytest.raises(ModelFileError, match="conv1_W is shorter than its"):
        model_from_bytes(cnn_file(["conv5x256"], arrays))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 << 20  # the 150 MB the headers declare were never asked for


def test_too_many_cnn_parameters_are_refused_where_a_limit_is_set() -> None:
    data = cnn_file(["conv3x256same"], hidden=[4096])  # 28·28·256 · 4096 weights, declared only
    with pytest.raises(ModelFileError, match="at most 5,000,000"):
        model_from_bytes(data, max_parameters=5_000_000)


# ── the command line and the page's views ───────────────────────────────────────────────────


def test_cli_trains_evaluates_and_predicts_with_a_cnn(monkeypatch, tmp_path, rng, capsys):
    from PIL import Image, ImageDraw

    data = tiny_mnist(rng)
    monkeypatch.setattr(cli, "_load_data", lambda _: data)
    out = tmp_path / "cnn.npz"
    status = cli.main(["train", "--arch", "conv3x4,pool2,dense16", "--epochs", "2",
                       "--batch-size", "50", "--learning-rate", "0.01",
                       "--out", str(out)])  # fmt: skip
    assert status == 0
    captured = capsys.readouterr()
    assert "Network(28x28-conv3x4-pool2-676-16-10" in captured.err
    assert "test accuracy" in captured.out
    model = model_from_bytes(out.read_bytes())
    assert model.config.conv == ("conv3x4", "pool2") and model.config.hidden == (16,)
    assert cli.main(["evaluate", str(out)]) == 0
    assert "test accuracy:" in capsys.readouterr().out
    image = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(image).line([(50, 15), (50, 85)], fill=0, width=8)
    image.save(tmp_path / "one.png")
    assert cli.main(["predict", str(tmp_path / "one.png"), "--model", str(out)]) == 0
    assert "one.png: " in capsys.readouterr().out


def test_weight_tiles_of_a_cnn_are_its_first_filters() -> None:
    net = digit_cnn(("conv5x6", "pool2"))
    tiles = weight_tiles(net)
    assert tiles.shape == (6, 25) and tiles.dtype == np.uint8
    w = net.convs[0].W[:, 2]  # (25,): filter 2, row-major 5×5
    np.testing.assert_array_equal(tiles[2], np.rint(128 + 127 * w / np.abs(w).max()))
    net.convs[0].W[:, 0] = 0
    assert (weight_tiles(net)[0] == 128).all()
    reply = weights_reply(net, epoch=1)
    assert (reply["side"], reply["n"], reply["units"]) == (5, 6, 6)
    assert len(reply["tiles"]) == 6 * 25
    mlp = Network(NetworkConfig(hidden=(10,)), np.random.default_rng(0))
    assert weights_reply(mlp, None)["side"] == 28
