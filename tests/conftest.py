"""Shared pytest fixtures: repository paths, the real MNIST files, a seeded generator.

Imported natively and inside Pyodide (scripts/run_pyodide_tests.mjs), so it uses nothing
beyond the standard library, numpy and hypothesis. Playwright fixtures live in
tests/e2e/conftest.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

__all__ = ["IN_PYODIDE", "MNIST_FILES", "REPO_ROOT", "mnist_dir", "repo_root", "rng"]

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_PYODIDE = sys.platform == "emscripten"
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# Timing-based deadlines flake on a shared 2-core machine and under WebAssembly; CI runs are
# derandomized so a failure there reproduces; WebAssembly is slower, so fewer examples there
# and no example database (it would be written into the mounted work tree).
_profile: dict = {"deadline": None}
if os.environ.get("CI"):
    _profile.update(derandomize=True, database=None, print_blob=True)
if IN_PYODIDE:
    _profile.update(max_examples=50, database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("scribblenet", **_profile)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "scribblenet"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root directory (holds pyproject.toml, web/, py/)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST directory (gz IDX files); skips the test when it is not there.

    Found as $SCRIBBLENET_MNIST_DIR, else <repo>/../shared/data/mnist. Tests using it must be
    marked ``native`` (and usually ``slow``): Pyodide cannot see files outside the repo.
    """
    env = os.environ.get("SCRIBBLENET_MNIST_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "mnist"
    missing = [name for name in MNIST_FILES if not (path / name).is_file()]
    if missing:
        source = "$SCRIBBLENET_MNIST_DIR" if env else "the default location"
        message = f"real MNIST not found at {path} ({source}); missing {', '.join(missing)}"
        if os.environ.get("CI"):
            # CI always has shared/ beside the checkout: a skip there would hide a regression.
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed, so every test is reproducible on its own."""
    return np.random.default_rng(0)
