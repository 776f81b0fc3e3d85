"""scripts/fetch_wheels.py: a wheel whose hash does not match the Pyodide lock is refused."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.native  # scripts/ is not in the Pyodide test runner's tree

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import fetch_wheels  # noqa: E402

sys.path.remove(str(SCRIPTS))

WHEEL = "fakepkg-1.0-py3-none-any.whl"


def fake_lock(sha256: str) -> dict:
    """A pyodide-lock.json with one package, at a version no mirror carries."""
    entry = {"name": "fakepkg", "file_name": WHEEL, "sha256": sha256, "depends": []}
    return {"info": {"version": "0.0.0-test"}, "packages": {"fakepkg": entry}}


@pytest.fixture
def cdn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local directory standing in for the Pyodide CDN (file:// URLs)."""
    root = tmp_path / "cdn"
    root.mkdir()
    monkeypatch.setattr(fetch_wheels, "CDN_URL", root.as_uri() + "/{file_name}")
    return root


def test_wheel_with_a_doctored_hash_is_refused(tmp_path: Path, cdn: Path) -> None:
    (cdn / WHEEL).write_bytes(b"tampered wheel")
    lock = fake_lock(hashlib.sha256(b"the real wheel").hexdigest())
    cache = tmp_path / "cache"
    with pytest.raises(fetch_wheels.VerificationError, match="refusing unverified wheel"):
        fetch_wheels.fetch_lock_packages(lock, ["fakepkg"], cache)
    assert not (cache / WHEEL).exists()  # the bad copy is not kept for next time


def test_tampered_cached_wheel_is_replaced_by_a_verified_copy(tmp_path: Path, cdn: Path) -> None:
    good = b"the real wheel"
    (cdn / WHEEL).write_bytes(good)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / WHEEL).write_bytes(b"tampered in the cache")
    [path] = fetch_wheels.fetch_lock_packages(
        fake_lock(hashlib.sha256(good).hexdigest()), ["fakepkg"], cache
    )
    assert path.read_bytes() == good


def test_command_line_exits_non_zero_on_a_doctored_lock(tmp_path: Path, cdn: Path, capsys) -> None:
    (cdn / WHEEL).write_bytes(b"tampered wheel")
    lock = tmp_path / "pyodide-lock.json"
    lock.write_text(json.dumps(fake_lock("0" * 64)))
    code = fetch_wheels.main(["fakepkg", "--lock", str(lock), "--cache", str(tmp_path / "c")])
    assert code == 1
    assert f"{WHEEL}: refusing unverified wheel" in capsys.readouterr().err
