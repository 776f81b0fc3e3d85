"""Train the page's pretrained model to read everyone's handwriting; write pretrained.npz.

MNIST barely has the continental 1 (flag, foot), the slashed or dotted 0, the crossed 7, the
open-top 4 or the straight-stem 9, and never a digit drawn on the page's canvas. So the 60,000
MNIST training digits are joined by a styled supplement (`scribblenet.style_data`): 3,000
training digits per style drawn in it and 12,000 plain ones, on a canvas under varied pen, size,
slant, rotation, position, wobble and pointer speed, through `ink_to_mnist`. It is drawn once
(~3.5 min) and cached by its parameters. Every batch is then augmented (HANDWRITING_AUGMENTATION).

The model is scored on MNIST test, on 1,000 test digits replayed under each
`handwriting.CONDITIONS` entry and on 300 test digits drawn in each style (`eval_finetune.py
--styles`), and written to --out only if it meets the targets: MNIST test >= 99.0 % (CNN) or
98.5 % (MLP), every style >= 95 %, the conditions no worse than the model at --baseline, a file
of at most 1.5 MB. Otherwise it is kept in the cache directory and the script exits 1.

    PYTHONPATH=py python scripts/train_pretrained.py                       # the shipped MLP
    OMP_NUM_THREADS=1 PYTHONPATH=py python scripts/train_pretrained.py --preset cnn --epochs 8

2026-12-02, 2 shared cores: the shipped model is the MLP of this recipe, 784-256-10 (203,530
parameters, 747 KiB), 20 epochs (162 s of training, ~6 min the first time with the supplement):
MNIST test 98.88 %, replayed handwriting 98.22 % (97.2 % under "mixed"; the model before:
98.06 %), every style 98.0-100 % (before: 58-100 %). The CNN of the same recipe (`--preset cnn
--epochs 8`, with OMP_NUM_THREADS=1: two BLAS threads make convolutions ~10x slower here) read
a little better (99.29 %, 98.46 %, styles 97.3-100 %, 294 KiB, bit-identical on a rerun) but is
not shipped yet: in the page it makes fine-tuning 50 drawings take ~40 s instead of seconds and
its 10,000-image views (confusion matrix, nearest images) cost seconds of worker time.
Other options are `scribblenet train`'s hyperparameters (--preset, --hidden, --epochs, --seed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from eval_finetune import read_everyone  # scripts/, beside this one
from scribblenet import cli
from scribblenet.augment import HANDWRITING_AUGMENTATION
from scribblenet.hyperparams import FIELDS, preset_configs
from scribblenet.mnist import MNIST, load_mnist
from scribblenet.model_io import load_model, model_to_bytes, save_model
from scribblenet.network import Network
from scribblenet.style_data import styled_supplement
from scribblenet.training import Trainer, trainer_rngs

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "web" / "models" / "pretrained.npz"
DEFAULT_CACHE = Path.home() / ".cache" / "scribblenet"
# The shipped recipe, used unless a --preset is given (its epochs would override the preset's).
DEFAULT_TRAINING = ["--preset", "pretrained", "--epochs", "20"]
SUPPLEMENT_VERSION = 1  # bump when style_data draws differently: older caches are then ignored
MAX_BYTES = 1_500_000  # the page downloads it before a visitor can draw
MIN_TEST = {"cnn": 0.99, "mlp": 0.985}  # MNIST test accuracy it must keep
MIN_STYLE = 0.95  # every convention read this well
CONDITION_SLACK = 0.005  # per condition vs the baseline: 1000 digits measure to about ±0.4 %


def supplement(
    data: MNIST, seed: int, per_style: int, plain: int, cache: Path
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The styled supplement of MNIST training digits: from the cache, else drawn and cached."""
    digest = hashlib.sha256(data.X_train.tobytes() + data.y_train.tobytes()).hexdigest()[:16]
    params = {"version": SUPPLEMENT_VERSION, "seed": seed, "per_style": per_style,
              "plain": plain, "mnist_train": digest}  # fmt: skip
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    path = cache / f"supplement-{key}.npz"
    if path.exists():
        with np.load(path) as f:
            X, y = f["X"], f["y"]
        print(f"styled supplement: {len(y)} digits from {path}", file=sys.stderr)
    else:
        start = time.perf_counter()
        rng = np.random.default_rng(seed)
        X, y = styled_supplement(data.X_train, data.y_train, rng, per_style, plain)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, X=X, y=y)
        seconds = time.perf_counter() - start
        print(f"styled supplement: {len(y)} digits drawn in {seconds:.0f} s, cached in {path}",
              file=sys.stderr)  # fmt: skip
    return X, y, {**params, "digits": len(y)}


def train(options: list[str], data: MNIST, X_extra: np.ndarray, y_extra: np.ndarray) -> Network:
    """Train as `scribblenet train OPTIONS` would, on MNIST train plus the supplement."""
    recipe = [] if any(o.split("=")[0] == "--preset" for o in options) else DEFAULT_TRAINING
    args = cli.build_parser().parse_args(["train", *recipe, *options])
    if args.augment or args.plot:
        raise SystemExit("--augment and --plot are not options here: the augmentation is fixed")
    overrides = {f.name: getattr(args, f.name) for f in FIELDS if getattr(args, f.name) is not None}
    net_config, train_config = preset_configs(args.preset, **overrides)
    init_rng, data_rng = trainer_rngs(train_config.seed)
    net = Network(net_config, init_rng)
    X = np.concatenate([data.X_train, X_extra])  # (60000 + m, 784) uint8
    y = np.concatenate([data.y_train, y_extra])  # (60000 + m,)
    trainer = Trainer(net, train_config, X, y, data.X_test, data.y_test,
                      HANDWRITING_AUGMENTATION, data_rng)  # fmt: skip
    print(f"{net!r}\n{trainer.optimizer!r}, batch {train_config.batch_size}", file=sys.stderr)
    start = time.perf_counter()
    with cli.ProgressBar() as bar:
        for event in trainer.run():
            bar.update(event)
    if trainer.epoch < train_config.epochs:
        raise SystemExit(f"training stopped after {trainer.epoch} epochs: no model written")
    net.metadata = {
        "training": {
            "network": net_config.to_dict(),
            "train": train_config.to_dict(),
            "augment": "handwriting",
            "augmentation": asdict(HANDWRITING_AUGMENTATION),
            "epochs_completed": trainer.epoch,
            "test_accuracy": trainer.history["test_accuracy"][-1],
            "seconds": round(time.perf_counter() - start, 1),
        }
    }
    return net


def figures(net: Network, data: MNIST, digits: int, per_style: int) -> dict:
    """MNIST test accuracy, replayed handwriting per condition, and digits per style."""
    conditions, styles = read_everyone(net, data, digits, per_style)
    print(conditions.format(), styles.format(), sep="\n", file=sys.stderr)
    return {
        "test_accuracy": round(net.accuracy(data.X_test, data.y_test), 4),
        "handwriting_accuracy": round(conditions.overall, 4),
        "handwriting": {k: round(v, 4) for k, v in conditions.accuracy.items()},
        "handwriting_digits": digits,
        "styles": {k: round(v, 4) for k, v in styles.accuracy.items()},
        "style_digits": per_style,
    }


def shortfalls(net: Network, scores: dict, baseline: dict | None, size: int) -> list[str]:
    """Each target the model misses, in words; empty when it may replace the baseline."""
    kind = "cnn" if net.config.conv else "mlp"
    misses = []
    if scores["test_accuracy"] < MIN_TEST[kind]:
        misses.append(f"MNIST test {scores['test_accuracy']:.2%} < {MIN_TEST[kind]:.1%} ({kind})")
    misses += [f"{k} {v:.1%} < {MIN_STYLE:.0%}" for k, v in scores["styles"].items()
               if v < MIN_STYLE]  # fmt: skip
    if size > MAX_BYTES:
        misses.append(f"file {size:,} bytes > {MAX_BYTES:,}")
    if baseline is not None:
        if scores["handwriting_accuracy"] < baseline["handwriting_accuracy"]:
            misses.append(f"handwriting {scores['handwriting_accuracy']:.2%} < baseline "
                          f"{baseline['handwriting_accuracy']:.2%}")  # fmt: skip
        misses += [f"{k} {v:.1%} < baseline {baseline['handwriting'][k]:.1%}"
                   for k, v in scores["handwriting"].items()
                   if v < baseline["handwriting"][k] - CONDITION_SLACK]  # fmt: skip
    return misses


def main(argv: list[str] | None = None) -> int:
    """Draw (or load) the supplement, train, score, and write the model if it meets the targets."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Other options go to `scribblenet train` (hyperparameters and --preset).",
        allow_abbrev=False,
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--baseline", type=Path, default=DEFAULT_OUT,
                        help="model whose replayed-handwriting figures it must match "
                        "(default: the shipped one; skipped if missing)")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="supplement cache")
    parser.add_argument("--per-style", type=int, default=3000, help="supplement digits per style")
    parser.add_argument("--plain", type=int, default=12000, help="supplement plain digits")
    parser.add_argument("--supplement-seed", type=int, default=0)
    parser.add_argument("--eval-digits", type=int, default=1000, help="digits per condition")
    parser.add_argument("--eval-per-style", type=int, default=300, help="digits per style")
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: download and cache)")
    args, train_options = parser.parse_known_args(argv)

    data = load_mnist(args.data_dir)
    X_extra, y_extra, provenance = supplement(
        data, args.supplement_seed, args.per_style, args.plain, args.cache
    )
    net = train(train_options, data, X_extra, y_extra)
    baseline = None
    if args.baseline.exists():
        print(f"baseline {args.baseline}:", file=sys.stderr)
        baseline = figures(load_model(args.baseline), data, args.eval_digits, args.eval_per_style)
    print("new model:", file=sys.stderr)
    scores = figures(net, data, args.eval_digits, args.eval_per_style)
    training = {**net.metadata["training"], **scores, "script": "scripts/train_pretrained.py",
                "data": f"MNIST train (60000) + styled supplement ({len(y_extra)})",
                "supplement": provenance}  # fmt: skip
    metadata = {"training": training}
    size = len(model_to_bytes(net, metadata))
    misses = shortfalls(net, scores, baseline, size)
    out = args.out if not misses else args.cache / "candidate.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(net, out, metadata)
    print(json.dumps(scores, indent=1))
    if misses:
        print(f"NOT written to {args.out}, kept in {out}: " + "; ".join(misses), file=sys.stderr)
        return 1
    print(f"saved {out} ({size / 1024:.0f} KiB, {training['seconds']:.0f} s of training)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
