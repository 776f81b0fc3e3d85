"""Train the page's pretrained model on augmented MNIST; write web/models/pretrained.npz.

The page loads this model so visitors can draw digits before (or instead of) training their own.
It is trained on augmented digits (slant, rotation, zoom, shift, pen width, wobble) because drawn
digits vary more than MNIST's, then checked on the clean MNIST test set and on handwriting replayed
on a virtual canvas (`scribblenet.handwriting`).

    PYTHONPATH=py python scripts/train_pretrained.py            # ~5 minutes on 2 cores
    PYTHONPATH=py python scripts/train_pretrained.py --epochs 2 --out /tmp/quick.npz
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from scribblenet.augment import Augmentation
from scribblenet.config import NetworkConfig, TrainConfig
from scribblenet.handwriting import evaluate_handwriting
from scribblenet.mnist import load_mnist
from scribblenet.model_io import load_model, save_model
from scribblenet.network import Network
from scribblenet.training import Trainer, trainer_rngs

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "web" / "models" / "pretrained.npz"

# The augmentation the committed model was trained with; see the module docstring.
AUGMENTATION = Augmentation(
    shift=2.0, rotation=12.0, scale=(0.9, 1.1), shear=0.3, elastic=0.6, stroke=0.6
)


def main(argv: list[str] | None = None) -> int:
    """Train, report clean and handwriting accuracy, save the model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="*", default=[256], help="hidden layer sizes")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-augment", action="store_true", help="train on plain MNIST")
    parser.add_argument("--eval-digits", type=int, default=500, help="handwriting eval digits")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    data = load_mnist()
    net_config = NetworkConfig(hidden=tuple(args.hidden), activation="relu", init="he")
    train_config = TrainConfig(
        optimizer="adam",
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        epochs=args.epochs,
        weight_decay=args.weight_decay,
        lr_schedule="cosine",
        seed=args.seed,
    )
    init_rng, data_rng = trainer_rngs(args.seed)
    net = Network(net_config, init_rng)
    augment = None if args.no_augment else AUGMENTATION
    trainer = Trainer(
        net, train_config, data.X_train, data.y_train, data.X_test, data.y_test, augment, data_rng
    )
    start = time.perf_counter()
    for event in trainer.run():
        if event["type"] == "epoch":
            print(
                f"epoch {event['epoch']:>2}/{args.epochs}  cost {event['cost']:.4f}  "
                f"train {event['train_accuracy']:.2%}  test {event['test_accuracy']:.2%}  "
                f"{time.perf_counter() - start:.0f}s",
                flush=True,
            )
        elif event["type"] == "diverged":
            print(event["reason"], file=sys.stderr)
            return 1

    test_accuracy = net.accuracy(data.X_test, data.y_test)
    # Handwriting: the first digits of a fixed shuffle of the test set, never trained on.
    pick = np.random.default_rng(1234).permutation(len(data.y_test))[: args.eval_digits]
    report = evaluate_handwriting(net.predict, data.X_test[pick], data.y_test[pick])
    print(f"clean MNIST test accuracy {test_accuracy:.2%}")
    print(report.format())

    training = {
        "data": "MNIST train (60000)",
        "config": train_config.to_dict(),
        "augmentation": None if augment is None else asdict(augment),
        "test_accuracy": round(test_accuracy, 4),
        "handwriting_accuracy": round(report.overall, 4),
        "script": "scripts/train_pretrained.py",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_model(net, args.out, {"training": training})
    reloaded = load_model(args.out)
    assert reloaded.accuracy(data.X_test, data.y_test) == test_accuracy
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
