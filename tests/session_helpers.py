"""Shared test data for the session tests: a valid form, learnable fake digits, model bytes."""

import numpy as np

from scribblenet.config import NetworkConfig
from scribblenet.mnist import MNIST
from scribblenet.model_io import model_to_bytes
from scribblenet.network import Network

FORM = {
    "hidden": "16",
    "activation": "relu",
    "init": "he",
    "dtype": "float32",
    "optimizer": "adam",
    "learning_rate": "0.01",
    "batch_size": "50",
    "epochs": "2",
    "seed": "3",
}


def tiny_mnist(rng: np.random.Generator, n_train: int = 200, n_test: int = 60) -> MNIST:
    """Learnable fake digits: class k lights up pixel block k, plus noise."""

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = (np.arange(n) % 10).astype(np.uint8)  # (n,)
        X = rng.integers(0, 40, (n, 784)).astype(np.uint8)  # (n, 784)
        for k in range(10):
            X[y == k, 70 * k : 70 * k + 70] = 255
        return X, y

    return MNIST(*make(n_train), *make(n_test))


def model_bytes(hidden: tuple[int, ...] = (8,), seed: int = 0, n_inputs: int = 784) -> bytes:
    """A freshly initialised model file."""
    config = NetworkConfig(n_inputs=n_inputs, hidden=hidden)
    return model_to_bytes(Network(config, np.random.default_rng(seed)))
