"""The tutorial-compatible API, and the tutorial's published result on real MNIST."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scribblenet.tutorial import ANN, NeuralNetwork, pre_process_data

ROOT = Path(__file__).resolve().parents[1]


def toy(n=200, seed=0):
    """Two classes separated by the sign of the first feature, as 0-255 pixels."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (n, 6))
    y = (X[:, 0] > 127).astype(np.int64)
    return X, y


def test_fit_predict_and_cost_history(capsys):
    X, y = toy()
    train_x, train_y, test_x, test_y = pre_process_data(X[:150], y[:150], X[150:], y[150:])
    assert train_x.max() <= 1.0 and train_y.shape == (150, 2)
    layers = [8, 2]
    ann = NeuralNetwork(layers)
    ann.fit(train_x, train_y, learning_rate=1.0, n_iterations=300)
    assert layers == [8, 2]  # the caller's list is not mutated
    assert len(ann.costs) == 30 and ann.costs[-1] < ann.costs[0]
    assert "Cost:" in capsys.readouterr().out
    assert ann.predict(test_x, test_y) >= 90.0
    labels = ann.predict(test_x)
    assert labels.shape == (50,) and set(np.unique(labels)) <= {0, 1}
    # A second fit starts afresh and gives the same result (no hidden global state).
    first = ann.predict(test_x, test_y)
    ann.fit(train_x, train_y, learning_rate=1.0, n_iterations=300, verbose=False)
    assert ann.predict(test_x, test_y) == first
    assert ANN is NeuralNetwork and "fitted=True" in repr(ann)


def test_bad_input():
    ann = NeuralNetwork([4, 3])
    with pytest.raises(RuntimeError, match="fit"):
        ann.predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="one-hot"):
        ann.fit(np.zeros((5, 2)), np.zeros(5), n_iterations=1)


def test_plot_cost(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X, y = toy(60)
    train_x, train_y, _, _ = pre_process_data(X, y, X, y)
    ann = NeuralNetwork([3, 2]).fit(train_x, train_y, n_iterations=20, verbose=False)
    ann.plot_cost(tmp_path / "cost.png")
    assert (tmp_path / "cost.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.native
def test_tutorial_program_reproduces_published_accuracy(mnist_dir):
    """As published ([50, 10], lr 0.1, 100 full-batch iterations) the tutorial gets 71.8 %."""
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "tutorial_main.py"), str(mnist_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=True,
    ).stdout
    assert "train_x's shape: (60000, 784)" in out
    test_accuracy = float(re.search(r"Test Accuracy: ([\d.]+)", out).group(1))
    print(f"tutorial reproduction: test accuracy {test_accuracy:.2f} % (published 71.8 %)")
    assert abs(test_accuracy - 71.8) <= 2.0
