"""Shared pytest fixtures: repository paths, the real MNIST files, a seeded generator.

Imported natively and inside Pyodide (scripts/run_pyodide_tests.mjs), so it uses nothing
beyond the standard library, numpy and hypothesis. The built site and its server (`dist_dir`,
`site_url`) serve both browser suites; Playwright fixtures live in tests/e2e/conftest.py, the
Firefox/WebKit ones in tests/browsers/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

__all__ = [
    "IN_PYODIDE",
    "MNIST_FILES",
    "REPO_ROOT",
    "dist_dir",
    "mnist_dir",
    "repo_root",
    "rng",
    "site_url",
]

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


@pytest.fixture(scope="session")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: $SCRIBBLENET_DIST, or a fresh build of the work tree."""
    given = os.environ.get("SCRIBBLENET_DIST")
    if given:
        path = Path(given).resolve()
        if not (path / "manifest.json").is_file():
            pytest.fail(f"SCRIBBLENET_DIST={given} has no manifest.json: build the site first")
        return path
    out = tmp_path_factory.mktemp("site") / "dist"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "build_site.py"), "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/build_site.py failed:\n{result.stdout}\n{result.stderr}")
    return out


@pytest.fixture(scope="session")
def site_url(dist_dir: Path) -> Iterator[str]:
    """URL of the page, served from a thread by scripts/serve.py under /scribblenet/."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        from serve import serve
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    server, url = serve(dist_dir, port=0, base="/scribblenet/")
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed, so every test is reproducible on its own."""
    return np.random.default_rng(0)
