"""The page's start-up caches (scripts/build_startup.mjs) and its JavaScript unzip (web/unzip.js).

Run in Node against the built site: the memory snapshot restores, the wheels unpacked by
web/unzip.js are byte-identical to what Python's zipfile reads, the .pyc overlay is what runs, and
the extension modules compiled ahead (web/dynlibs.js) are the wheels' own and what Python loads.
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
    snapshots = manifest["snapshots"]
    # In the order the worker tries them: with numpy & co (linked back in), then the fallback.
    assert [s["holds"] for s in snapshots] == ["numpy", "stdlib"]
    assert [len(s["link"]["libs"]) for s in snapshots] == [len(manifest["dynlibs"]), 0]
    for path in [manifest["bytecode"], *(s["file"] for s in snapshots)]:
        assert path in manifest["files"], path
        data = (dist / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest["files"][path]["sha256"]


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


@pytest.fixture(scope="module", params=["numpy", "stdlib"])
def restored(request, repo_root: Path, dist: Path) -> dict:
    """The page's start in Node: a snapshot restored, its extension modules loaded back in (the
    one with numpy) or preloaded for Python's import (the standard-library one, the fallback)."""
    pyodide = str(repo_root / "node_modules" / "pyodide")
    out = node(repo_root, "restore", pyodide, str(dist), request.param)
    return {**json.loads(out.split("RESULT ", 1)[1]), "holds": request.param}


@pytest.fixture(scope="module")
def fresh(repo_root: Path, dist: Path) -> dict:
    """The start without the snapshot, its extension modules preloaded (?nosnapshot's)."""
    out = node(repo_root, "dynlibs", str(repo_root / "node_modules" / "pyodide"), str(dist))
    return json.loads(out.split("RESULT ", 1)[1])


def test_snapshot_restores_and_the_bytecode_is_what_runs(restored) -> None:
    result = restored
    assert result["digit"] == 1  # the probe stroke: a vertical bar
    # ink.py's source was replaced by a raise: it imported all the same (from the snapshot).
    assert result["with_bytecode"] == result["py_modules"] > 50
    # Predicting needs no numpy.random (nine extension modules under Pyodide).
    assert result["random_imported"] is False
    assert result["environ_underscore"] is None  # the build's script path is not in the snapshot
    assert result["preimported"] > 100  # the snapshot holds the interpreter with its imports
    # Only the first holds the Session (and numpy & co), imported.
    assert result["session_imported"] is (result["holds"] == "numpy")


def test_restored_numpy_computes_what_a_fresh_start_does(restored, fresh) -> None:
    # Bit for bit: the prediction, two epochs of training (numpy.random loaded after the
    # restore), linear algebra (numpy.linalg's library, loaded back in).
    for key in ("digit", "probabilities", "costs", "solve"):
        assert restored[key] == fresh[key], key
    assert fresh["costs"][1] < fresh["costs"][0]


def test_dynlibs_are_the_wheels_own_extension_modules(dist: Path) -> None:
    manifest = json.loads((dist / "manifest.json").read_text())
    in_wheels = {}
    for wheel in archives(dist)[:2]:  # numpy's and Pillow's
        with zipfile.ZipFile(wheel) as z:
            in_wheels.update({n: z.read(n) for n in z.namelist() if n.endswith(".so")})
    paths = [entry["path"] for entry in manifest["dynlibs"]]
    assert paths[0] == "numpy/_core/_multiarray_umath.cpython-312-wasm32-emscripten.so"
    assert any(path.startswith("PIL/_imaging.") for path in paths)  # the drawing's Pillow
    assert not any("random" in path for path in paths)  # only what predicting loads
    for entry in manifest["dynlibs"]:
        assert entry["file"].startswith("startup/dynlibs/") and entry["file"].endswith(".wasm")
        data = (dist / entry["file"]).read_bytes()
        assert data == in_wheels[entry["path"]], entry["path"]
        assert hashlib.sha256(data).hexdigest() == manifest["files"][entry["file"]]["sha256"]


def test_preloaded_dynlibs_are_what_python_loads(dist, fresh) -> None:
    # Their files were overwritten with garbage before the import: the preloaded modules ran.
    assert fresh["digit"] == 1
    manifest = json.loads((dist / "manifest.json").read_text())
    assert {entry["path"] for entry in manifest["dynlibs"]} <= set(fresh["loaded"])
    assert "is corrupt (its sha256 does not match the manifest)" in fresh["refused"]
