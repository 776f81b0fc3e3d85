"""The `scribblenet` command end to end on real MNIST: train, evaluate, predict."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytestmark = pytest.mark.native


def run(*args, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "scribblenet", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=check,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("cli") / "model.npz"
    plot = out.with_name("cost.png")
    result = run(
        "train", "--hidden", "64", "--epochs", "1", "--seed", "3",
        "--data-dir", str(mnist_dir), "--out", str(out), "--plot", str(plot),
    )  # fmt: skip
    return out, plot, result


def test_train_writes_model_plot_and_progress(trained):
    out, plot, result = trained
    assert out.stat().st_size > 10_000 and plot.stat().st_size > 5_000
    assert "epoch 1/1" in result.stderr and "test" in result.stderr
    assert "Network(784-64-10" in result.stderr
    accuracy = float(result.stdout.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 93.0


def test_evaluate_prints_accuracy_and_confusion(trained, mnist_dir):
    out, _, _ = trained
    result = run("evaluate", str(out), "--data-dir", str(mnist_dir))
    assert "test accuracy:" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    matrix = np.array([[int(v) for v in row[1:]] for row in rows[-10:]])
    assert matrix.shape == (10, 10) and matrix.sum() == 10_000


def test_predict_png(trained, tmp_path):
    out, _, _ = trained
    img = Image.new("L", (200, 200), 255)  # black ink on white paper, like a scan
    ImageDraw.Draw(img).line([(100, 30), (100, 170)], fill=0, width=14)
    img.save(tmp_path / "one.png")
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    result = run("predict", str(tmp_path / "one.png"), str(tmp_path / "blank.png"),
                 "--model", str(out), check=False)  # fmt: skip
    assert "one.png: 1 (" in result.stdout
    assert "blank.png" in result.stderr and result.returncode == 1


def test_bad_arguments_give_clear_errors(tmp_path, mnist_dir):
    result = run("train", "--lr", "-1", "--data-dir", str(mnist_dir), check=False)
    assert result.returncode == 2 and "learning rate must be > 0" in result.stderr
    result = run("train", "--batch-size", "0", "--data-dir", str(mnist_dir), check=False)
    assert result.returncode == 2 and "batch size" in result.stderr
    result = run("train", "--hidden", "0", "--data-dir", str(mnist_dir), check=False)
    assert result.returncode == 2 and "hidden layer size" in result.stderr
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    result = run("evaluate", str(bad), "--data-dir", str(mnist_dir), check=False)
    assert result.returncode == 2 and "not a valid" in result.stderr
