"""Test data built in code: a valid form, learnable fake digits, model files and damaged ones.

A plain module rather than conftest fixtures: parametrize lists and hypothesis strategies need
these at import time. Imported natively and inside Pyodide (scripts/run_pyodide_tests.mjs).
"""

import io
import zipfile

import numpy as np
from hypothesis import strategies as st

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


# ── damaged model files and datasets ─────────────────────────────────────────────────────────


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """An .npz of exactly these arrays (a model file when they are a model's)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def huge_declared_size(good: bytes) -> bytes:
    """The zip `good` with its last member's declared uncompressed size forged to 4 GB."""
    data = bytearray(good)
    at = data.rfind(b"PK\x01\x02")  # the last central-directory entry
    data[at + 24 : at + 28] = (0xFFFFFFF0).to_bytes(4, "little")  # uncompressed size field
    return bytes(data)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """`data` with bytes overwritten at (position mod length, value), then cut to `cut` bytes."""
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


def with_member(data: bytes, name: str, body: bytes) -> bytes:
    """The zip `data` with the member `name`.npy replaced by `body`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, body if info.filename == name + ".npy" else src.read(info))
    return buf.getvalue()


VALID_MODEL = model_bytes(hidden=(3,))  # small, so that fuzzing reaches every member
MODEL_MUTATIONS = (  # arguments for mutate(VALID_MODEL, …): 1–6 overwritten bytes, maybe a cut
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    st.none() | st.integers(0, len(VALID_MODEL)),
)
MODEL_MEMBERS = (st.sampled_from(["W1", "b1", "W2", "b2", "metadata"]), st.binary(max_size=200))
