"""Train the page's pretrained model; write web/models/pretrained.npz.

The training is `scribblenet train --preset pretrained --augment handwriting` (256 ReLU units,
Adam 2e-3 annealed, 20 epochs, on digits slanted, rotated, zoomed, shifted, re-stroked and
wobbled, because drawn digits vary more than MNIST's). Then the model is read on handwriting
replayed on a virtual canvas (`scribblenet.handwriting`, 500 fixed MNIST test digits) and that
accuracy is written into the model file's metadata beside the CLI's.

    PYTHONPATH=py python scripts/train_pretrained.py            # ~5 minutes on 2 cores
    PYTHONPATH=py python scripts/train_pretrained.py --epochs 2 --out /tmp/quick.npz

Any other option is passed on to `scribblenet train` (see `scribblenet train --help`), e.g.
--hidden 256,128, --learning-rate 0.001, --seed 1, --augment basic, --data-dir DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval_handwriting import fixed_test_digits  # scripts/, beside this one
from scribblenet import cli
from scribblenet.handwriting import evaluate_handwriting
from scribblenet.mnist import load_mnist
from scribblenet.model_io import load_model, save_model

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "web" / "models" / "pretrained.npz"


def main(argv: list[str] | None = None) -> int:
    """Train with the CLI, evaluate on replayed handwriting, record it in the model file."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Other options go to `scribblenet train`.",
        allow_abbrev=False,
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--eval-digits", type=int, default=500, help="handwriting eval digits")
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: download and cache)")
    args, train_options = parser.parse_known_args(argv)
    data_dir = ["--data-dir", args.data_dir] if args.data_dir else []
    status = cli.main(["train", "--preset", "pretrained", "--augment", "handwriting",
                       "--out", str(args.out), *data_dir, *train_options])  # fmt: skip
    if status != 0:
        return status

    net = load_model(args.out)
    data = load_mnist(args.data_dir)
    report = evaluate_handwriting(net.predict, *fixed_test_digits(data, args.eval_digits))
    print(report.format())
    training = {**net.metadata.get("training", {}), "script": "scripts/train_pretrained.py",
                "handwriting_accuracy": round(report.overall, 4)}  # fmt: skip
    save_model(net, args.out, {"training": training})
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
