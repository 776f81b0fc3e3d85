"""Build the compact MNIST file the web page loads (web/data/mnist-compact-v1.bin by default).

    python scripts/build_dataset.py [--data-dir DIR] [--n-train 60000] [--n-test 10000]
                                    [--seed 0] [--levels 16] [--out PATH]

Subsets are stratified (each class keeps its share) and seeded; the output is byte-identical on
every rerun with the same options and zlib. The format is described in scribblenet/compact.py.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:
    import scribblenet  # noqa: F401  (installed, or on PYTHONPATH)
except ImportError:  # a plain checkout: use the sources next to this script
    sys.path.insert(0, str(REPO / "py"))

from scribblenet.compact import decode_compact, encode_compact  # noqa: E402
from scribblenet.mnist import MNIST, load_mnist, stratified_indices  # noqa: E402

DEFAULT_OUT = REPO / "web" / "data" / "mnist-compact-v1.bin"
ORIGINAL_GZ_BYTES = 9912422 + 28881 + 1648877 + 4542  # the classic mirrors' four .gz files


def build(data: MNIST, n_train: int, n_test: int, seed: int, levels: int) -> bytes:
    """Select stratified subsets of ``data`` with ``seed`` and encode them with ``levels``."""
    rng = np.random.default_rng(seed)
    train = stratified_indices(data.y_train, n_train, rng)  # (n_train,)
    test = stratified_indices(data.y_test, n_test, rng)  # (n_test,)
    subset = MNIST(data.X_train[train], data.y_train[train], data.X_test[test], data.y_test[test])
    meta = {
        "source": "MNIST database of handwritten digits (Y. LeCun, C. Cortes, C. J. C. Burges)",
        "license": "CC BY-SA 3.0",
        "selection": f"stratified per class, numpy default_rng({seed}), indices sorted",
        "source_counts": [int(data.y_train.size), int(data.y_test.size)],
        "builder": "scripts/build_dataset.py",
    }
    return encode_compact(subset, levels=levels, train_indices=train, test_indices=test, meta=meta)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="MNIST IDX files (default: $SCRIBBLENET_MNIST_DIR, ...)")
    parser.add_argument("--n-train", type=int, default=60000, help="training images (max 60000)")
    parser.add_argument("--n-test", type=int, default=10000, help="test images (max 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset selection")
    parser.add_argument("--levels", type=int, default=16, help="grey levels kept, 2..256")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output file")
    parser.add_argument("--no-download", action="store_true", help="fail if files are missing")
    args = parser.parse_args(argv)

    try:
        data = load_mnist(args.data_dir, download=not args.no_download)
        blob = build(data, args.n_train, args.n_test, args.seed, args.levels)
    except (OSError, ValueError) as exc:
        print(f"build_dataset: {exc}", file=sys.stderr)
        return 1
    decoded = decode_compact(blob)  # never write a file the reader would reject
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(blob)

    header = decoded.header
    print(f"wrote {args.out} ({len(blob):,} bytes = {len(blob) / 1e6:.2f} MB)")
    print(f"  sha256 {hashlib.sha256(blob).hexdigest()}")
    print(f"  levels {header['levels']}, original MNIST .gz files: {ORIGINAL_GZ_BYTES:,} bytes")
    for split in header["splits"]:
        sizes = ", ".join(f"{s['name']} {s['length']:,}" for s in split["streams"])
        print(f"  {split['name']}: {split['count']} images, {split['nonzero']:,} non-zero pixels")
        print(f"    label counts {split['label_counts']}")
        print(f"    streams (bytes): {sizes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
