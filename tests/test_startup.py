"""The page's start-up caches (scripts/build_startup.mjs) and its JavaScript unzip (web/unzip.js).

Run in Node against the built site: the memory snapshot restores, the wheels unpacked by
web/unzip.js are byte-identical to what Python's zipfile reads, and the .pyc overlay is what runs.
The browser's use of all this, and its fallbacks, are tested end to end in tests/e2e.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

NODE = shutil.which("node")
pytestmark = [
    pytest.mark.native,
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
]


@pytest.fixture(scope="module")
def dist(repo_root: Path) -> Path:
    """The built site (scripts/test.sh builds it before the tests)."""
    path = Path(os.environ.get("SCRIBBLENET_DIST", repo_root / "dist"))
    if not (path / "manifest.json").is_file():
        message = f"{path} is not built (python scripts/build_site.py)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def node(repo_root: Path, *args: str) -> str:
    """Run tests/startup_node_check.mjs; its stdout (the test fails on a non-zero exit)."""
    script = repo_root / "tests" / "startup_node_check.mjs"
    result = subprocess.run(
        [NODE, str(script), *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def archives(dist: Path) -> list[Path]:
    manifest = json.loads((dist / "manifest.json").read_text())
    wheels = [p for p in manifest["files"] if p.startswith("pyodide/") and p.endswith(".whl")]
    return [dist / p for p in [*wheels, manifest["wheel"], manifest["bytecode"]]]


def test_manifest_names_the_startup_caches(dist: Path) -> None:
    manifest = json.loads((dist / "manifest.json").read_text())
    for key in ("snapshot", "bytecode"):
        assert manifest[key] in manifest["files"], key
        data = (dist / manifest[key]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest["files"][manifest[key]]["sha256"]


@pytest.mark.parametrize("index", range(4), ids=["numpy", "pillow", "scribblenet", "bytecode"])
def test_javascript_unzip_matches_python_zipfile(repo_root, dist, tmp_path, index) -> None:
    archive = archives(dist)[index]
    out = tmp_path / "digests.json"
    node(repo_root, "unzip", str(archive), str(out))
    with zipfile.ZipFile(archive) as z:
        expected = {
            info.filename: hashlib.sha256(z.read(info)).hexdigest()
            for info in z.infolist()
            if not info.is_dir()
        }
    assert json.loads(out.read_text()) == expected


def test_javascript_unzip_refuses_unsafe_paths(repo_root, tmp_path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../outside.py", "print('escaped')")
    script = repo_root / "tests" / "startup_node_check.mjs"
    result = subprocess.run(
        [NODE, str(script), "unzip", str(archive), str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "unsafe path" in result.stderr


def test_snapshot_restores_and_the_bytecode_is_what_runs(repo_root, dist) -> None:
    out = node(repo_root, "restore", str(repo_root / "node_modules" / "pyodide"), str(dist))
    result = json.loads(out.split("RESULT ", 1)[1])
    assert result["digit"] == 1  # the probe stroke: a vertical bar
    # ink.py's source was replaced by a raise: it imported all the same, from its .pyc.
    assert result["with_bytecode"] == result["py_modules"] > 50
    # Predicting needs no numpy.random (nine extension modules under Pyodide).
    assert result["random_imported"] is False
    assert result["environ_underscore"] is None  # the build's script path is not in the snapshot
    assert result["preimported"] > 100  # the snapshot holds the interpreter with its imports
