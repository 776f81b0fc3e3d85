"""Build the static site into dist/ from scratch: page, Pyodide, wheels, uPlot, manifest.

Layout (every URL the page uses is relative to dist/)::

    dist/index.html, *.js, *.css, data/, models/, gemm/   copied from web/ (sources left out)
    dist/pyodide/       Pyodide core + pyodide-lock.json + verified numpy/Pillow wheels
    dist/wheels/        our own pure-Python wheel (scribblenet-<version>-py3-none-any.whl)
    dist/vendor/uplot/  uPlot.esm.js, uPlot.min.css
    dist/startup/       start-up caches made by scripts/build_startup.mjs under Node: two memory
                        snapshots of the started interpreter (with numpy & co imported, and
                        with only the standard library: the fallback), the .pyc the page
                        imports and dynlibs/*.wasm, the extension modules it loads, each with
                        its own URL
    dist/settings.json  the hyperparameter fields and presets the page builds its form from
                        (scribblenet.hyperparams.settings_schema: defined once, in Python)
    dist/manifest.json  {version, pyodide, wheel, dataset, model, bytecode,
                         dynlibs: [{path (in site-packages), file}], snapshots: [{holds:
                         numpy | stdlib, file, link (how its extension modules were linked)}]
                         (in the order the worker tries them), settings,
                         files: {path: {sha256, size}}}

Usage: ``python scripts/build_site.py [--out dist] [--web web]``. Needs ``npm ci`` first;
wheels come from fetch_wheels.py (cached and verified).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fetch_wheels  # sibling script, not a package

__all__ = ["BuildError", "build"]

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"

# What loadPyodide fetches from indexURL (fullStdLib false): nothing else is shipped.
PYODIDE_CORE = (
    "pyodide.mjs",
    "pyodide.asm.js",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)
UPLOT_FILES = ("uPlot.esm.js", "uPlot.min.css")

# Sources and docs in web/ that the page never loads.
# bench.mjs: the kernel micro-benchmark runs under Node, never in the page.
EXCLUDE = (
    "*.c",
    "*.h",
    "*.o",
    "*.md",
    "*.txt",
    "README*",
    "Makefile",
    "*.sh",
    ".*",
    "*~",
    "bench.mjs",
)
DOC_SUFFIXES = (".md", ".txt", ".json")  # not candidates for "the dataset"
MODEL_PATH = "models/pretrained.npz"
BYTECODE_PATH = "startup/bytecode.zip"
DYNLIBS_INDEX = "startup/dynlibs.json"  # written by build_startup.mjs, read into the manifest
SETTINGS_PATH = "settings.json"  # written by write_settings, not copied from web/


class BuildError(RuntimeError):
    """The site cannot be built; the message says what is missing and how to get it."""


def excluded(path: Path) -> bool:
    """True if a file under web/ is a source or doc the page does not load."""
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in EXCLUDE)


def copy_web(web: Path, out: Path) -> list[str]:
    """Copy web/ into out/, leaving out sources; return the relative paths left out."""
    skipped = []
    for src in sorted(web.rglob("*")):
        rel = src.relative_to(web)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if src.is_dir():
            continue
        if excluded(src):
            skipped.append(rel.as_posix())
            continue
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    return skipped


def find_dataset(web: Path, name: str | None) -> str:
    """Return the dataset's path relative to web/ (the one data file in web/data/)."""
    data_dir = web / "data"
    if name:
        if not (data_dir / name).is_file():
            raise BuildError(f"dataset {data_dir / name} not found")
        return f"data/{name}"
    candidates = sorted(
        p.name
        for p in data_dir.glob("*")
        if p.is_file() and not excluded(p) and p.suffix not in DOC_SUFFIXES
    )
    if not candidates:
        raise BuildError(f"no dataset in {data_dir}: scripts/build_dataset.py writes it")
    if len(candidates) > 1:
        raise BuildError(f"several dataset candidates in {data_dir}: {candidates}; pass --dataset")
    return f"data/{candidates[0]}"


def check_inputs(web: Path) -> None:
    """Fail early, naming what is missing and which step produces it."""
    problems = []
    if not (NODE_MODULES / "pyodide" / "pyodide.mjs").is_file():
        problems.append(f"{NODE_MODULES / 'pyodide'} missing: run `npm ci`")
    if not (NODE_MODULES / "uplot" / "dist" / "uPlot.esm.js").is_file():
        problems.append(f"{NODE_MODULES / 'uplot'} missing: run `npm ci`")
    if not (web / "index.html").is_file():
        problems.append(f"{web / 'index.html'} missing")
    if not (web / MODEL_PATH).is_file():
        problems.append(
            f"{web / MODEL_PATH} missing: scripts/train_pretrained.py writes it (committed)"
        )
    if not (web / "data").is_dir():
        problems.append(
            f"{web / 'data'} missing: scripts/build_dataset.py writes the dataset (committed)"
        )
    if problems:
        raise BuildError("cannot build the site:\n  " + "\n  ".join(problems))


def build_wheel(out_dir: Path) -> Path:
    """Build our pure-Python wheel with hatchling (no isolation: fast, offline)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out_dir)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise BuildError(
            f"`{' '.join(cmd)}` failed (exit {result.returncode}); "
            "is the dev environment installed? (pip install -e '.[dev]')"
        )
    wheels = sorted(out_dir.glob("scribblenet-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one wheel in {out_dir}, found {wheels}")
    return wheels[0]


def sha256_bytes(path: Path) -> str:
    """Hex sha256 of a file (small enough to read whole)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_commit() -> str | None:
    """The checked-out commit, or None outside git or before the first commit."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def build_startup(out: Path, wheels: list[Path]) -> None:
    """Make dist/startup/ (snapshots, bytecode, dynlibs) by running the site's Pyodide in Node."""
    script = ROOT / "scripts" / "build_startup.mjs"
    # The runtime in node_modules is the one copied into dist/pyodide/; under dist/ Node would
    # read pyodide.asm.js as an ES module (the root package.json says "type": "module").
    cmd = ["node", str(script), "--pyodide", str(NODE_MODULES / "pyodide"), "--model"]
    cmd += [str(out / MODEL_PATH), "--out", str(out / "startup"), *map(str, wheels)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{script.name} could not run ({exc}); is Node.js installed?") from exc
    if result.returncode != 0:
        sys.stderr.write((result.stdout + result.stderr)[-4000:])
        raise BuildError(f"{script.name} failed (exit {result.returncode})")
    print(result.stdout.strip())


def write_settings(out: Path) -> None:
    """Write the page's form schema from the package in this tree (the one the wheel ships)."""
    sys.path.insert(0, str(ROOT / "py"))
    try:
        from scribblenet.hyperparams import settings_schema
    finally:
        sys.path.remove(str(ROOT / "py"))
    text = json.dumps(settings_schema(), ensure_ascii=False, indent=1) + "\n"
    (out / SETTINGS_PATH).write_text(text, encoding="utf-8")


def read_dynlibs(out: Path) -> tuple[list[dict[str, str]], list[dict]]:
    """The extension modules build_startup.mjs copied out, as [{path, file}] relative to out/,
    and the snapshots it made, as [{holds, file, link}] (file relative to out/; link: how the
    snapshot's copies of the modules are linked, which web/dynlibs.js checks on restore).

    The index itself is not shipped: its entries go into the manifest.
    """
    index = out / DYNLIBS_INDEX
    found = json.loads(index.read_text(encoding="utf-8"))
    index.unlink()
    dynlibs = [{"path": e["path"], "file": f"startup/{e['file']}"} for e in found["dynlibs"]]
    snapshots = [{**s, "file": f"startup/{s['file']}"} for s in found["snapshots"]]
    return dynlibs, snapshots


def write_manifest(out: Path, wheel: Path, dataset: str, pyodide_version: str) -> dict:
    """Write dist/manifest.json describing every shipped file; return it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dynlibs, snapshots = read_dynlibs(out)
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        files[rel] = {"sha256": sha256_bytes(path), "size": path.stat().st_size}
    manifest = {
        "name": project["name"],
        "version": project["version"],
        "commit": git_commit(),
        "pyodide": "pyodide/",
        "pyodide_version": pyodide_version,
        "pyodide_packages": list(fetch_wheels.SITE_PACKAGES),
        "wheel": wheel.relative_to(out).as_posix(),
        "dataset": dataset,
        "model": MODEL_PATH,
        "bytecode": BYTECODE_PATH,
        "dynlibs": dynlibs,
        "snapshots": snapshots,
        "settings": SETTINGS_PATH,
        "uplot": "vendor/uplot/",
        "files": files,
    }
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    return manifest


def size_summary(out: Path) -> str:
    """A table of bytes per top-level entry of dist/ and the total."""
    groups: dict[str, list[int]] = {}
    for path in out.rglob("*"):
        if path.is_file():
            rel = path.relative_to(out)
            key = rel.parts[0] + ("/" if len(rel.parts) > 1 else "")
            groups.setdefault(key, []).append(path.stat().st_size)
    lines = [f"{'path':<24}{'files':>6}{'bytes':>14}"]
    for key in sorted(groups, key=lambda k: -sum(groups[k])):
        lines.append(f"{key:<24}{len(groups[key]):>6}{sum(groups[key]):>14,}")
    total = sum(sum(sizes) for sizes in groups.values())
    count = sum(len(sizes) for sizes in groups.values())
    lines.append(f"{'total':<24}{count:>6}{total:>14,}  ({total / 2**20:.1f} MiB)")
    return "\n".join(lines)


def build(out: Path, web: Path, dataset_name: str | None = None) -> dict:
    """Build the site into ``out`` (deleted first) from ``web``; return the manifest.

    Parameters
    ----------
    out : output directory, removed and recreated.
    web : the page's source directory (normally web/).
    dataset_name : file name in web/data/ when it holds more than one candidate.

    Returns
    -------
    The manifest written to out/manifest.json.
    """
    check_inputs(web)
    dataset = find_dataset(web, dataset_name)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    skipped = copy_web(web, out)
    if skipped:
        print(f"left out of dist/ (not loaded by the page): {', '.join(skipped)}")
    write_settings(out)

    pyodide_dir = out / "pyodide"
    pyodide_dir.mkdir()
    for name in PYODIDE_CORE:
        shutil.copy2(NODE_MODULES / "pyodide" / name, pyodide_dir / name)
    lock = fetch_wheels.load_lock(NODE_MODULES / "pyodide" / "pyodide-lock.json")
    site_wheels = []
    for wheel_path in fetch_wheels.fetch_lock_packages(lock, fetch_wheels.SITE_PACKAGES):
        shutil.copy2(wheel_path, pyodide_dir / wheel_path.name)
        site_wheels.append(pyodide_dir / wheel_path.name)

    uplot_dir = out / "vendor" / "uplot"
    uplot_dir.mkdir(parents=True)
    for name in UPLOT_FILES:
        shutil.copy2(NODE_MODULES / "uplot" / "dist" / name, uplot_dir / name)
    shutil.copy2(NODE_MODULES / "uplot" / "LICENSE", uplot_dir / "LICENSE")

    wheel = build_wheel(out / "wheels")
    build_startup(out, [*site_wheels, wheel])
    return write_manifest(out, wheel, dataset, lock["info"]["version"])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--web", type=Path, default=ROOT / "web")
    parser.add_argument("--dataset", help="file name in web/data/ if it holds several")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        manifest = build(args.out.resolve(), args.web.resolve(), args.dataset)
    except (BuildError, fetch_wheels.VerificationError, FileNotFoundError) as exc:
        print(f"build_site: ERROR: {exc}", file=sys.stderr)
        return 1
    print(size_summary(args.out))
    print(
        f"built {args.out} (scribblenet {manifest['version']}, Pyodide "
        f"{manifest['pyodide_version']}, {manifest['wheel']}) "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
