"""The `scribblenet` command: train, evaluate and predict natively."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .hyperparams import DEFAULT_PRESET, FIELDS, PRESETS, Field, parse_field, preset_configs
from .mnist import MNIST
from .model_io import ModelFileError, load_model, save_model
from .network import Network
from .training import Augment, Trainer, confusion_matrix, trainer_rngs

__all__ = ["DEFAULT_NETWORK", "DEFAULT_TRAINING", "ProgressBar", "main"]

# The default CLI configuration: 98.5 % on the MNIST test set in about half a minute on two
# cores (scripts/benchmark.py). A wide single layer with a cosine-annealed Adam beats deeper or
# longer-trained variants at equal time budget.
DEFAULT_NETWORK, DEFAULT_TRAINING = preset_configs(DEFAULT_PRESET)


def _format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """Renders training events: a live bar on a terminal, one line per epoch elsewhere."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 28):
        self.stream = stream
        self.width = width
        self.live = hasattr(stream, "isatty") and stream.isatty()
        self._last = 0.0

    def update(self, event: dict[str, Any]) -> None:
        """Render one event from `Trainer.run`."""
        kind = event["type"]
        if kind == "batch" and self.live:
            now = time.perf_counter()
            if now - self._last < 0.1 and event["batch"] != event["n_batches"]:
                return
            self._last = now
            frac = event["batch"] / event["n_batches"]
            filled = int(frac * self.width)
            bar = "█" * filled + "·" * (self.width - filled)
            rate = event["examples_per_s"]
            left = (event["total_steps"] - event["step"]) / max(event["step"], 1)
            eta = left * (time.perf_counter() - self._start) if hasattr(self, "_start") else 0
            self.stream.write(
                f"\repoch {event['epoch']} {bar} {frac:4.0%}  cost {event['cost']:.4f}  "
                f"{rate:,.0f} ex/s  ETA {_format_seconds(eta)} "
            )
            self.stream.flush()
        elif kind == "epoch":
            line = (
                f"epoch {event['epoch']}/{event['epochs']}  cost {event['cost']:.4f}  "
                f"train {event['train_accuracy']:.2%}"
            )
            if "test_accuracy" in event:
                line += f"  test {event['test_accuracy']:.2%}"
            line += f"  {event['examples_per_s']:,.0f} ex/s"
            self.stream.write(("\r" if self.live else "") + line.ljust(90) + "\n")
            self.stream.flush()
        elif kind == "diverged":
            self.stream.write(("\n" if self.live else "") + f"stopped: {event['reason']}\n")

    def __enter__(self) -> ProgressBar:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()


def _checked(spec: Field) -> Callable[[str], str]:
    """An argparse type: the text itself, once the package's one parser has accepted it."""

    def check(text: str) -> str:
        try:
            parse_field(spec.name, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = spec.name  # argparse names the option's type in some messages
    return check


def _load_data(data_dir: str | None) -> MNIST:
    from .mnist import load_mnist

    return load_mnist(data_dir)


def _plot_costs(history: dict[str, list[float]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'scribblenet[plot]'") from None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history["batch_cost"], lw=0.6, alpha=0.6, label="batch")
    per_epoch = len(history["batch_cost"]) / max(len(history["epoch_cost"]), 1)
    xs = [per_epoch * (i + 1) for i in range(len(history["epoch_cost"]))]
    ax.plot(xs, history["epoch_cost"], "o-", label="epoch mean")
    ax.set_yscale("log")
    ax.set_xlabel("batch")
    ax.set_ylabel("cross-entropy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _augmentation(name: str | None) -> Augment | None:
    if name is None:
        return None
    from .augment import HANDWRITING_AUGMENTATION, augment_batch

    return HANDWRITING_AUGMENTATION if name == "handwriting" else augment_batch


def cmd_train(args: argparse.Namespace) -> int:
    """Train on MNIST and save the model."""
    overrides = {f.name: getattr(args, f.name) for f in FIELDS if getattr(args, f.name) is not None}
    net_config, train_config = preset_configs(args.preset, **overrides)
    data = _load_data(args.data_dir)
    init_rng, data_rng = trainer_rngs(train_config.seed)
    net = Network(net_config, init_rng)
    augment = _augmentation(args.augment)
    trainer = Trainer(
        net, train_config, data.X_train, data.y_train, data.X_test, data.y_test, augment, data_rng
    )
    batch = train_config.batch_size or "full"
    print(f"{net!r}\n{trainer.optimizer!r}, batch {batch}", file=sys.stderr)
    start = time.perf_counter()
    with ProgressBar() as bar:
        for event in trainer.run():
            bar.update(event)
    seconds = time.perf_counter() - start
    diverged = not trainer.done or trainer.epoch < train_config.epochs
    if trainer.epoch == 0:  # diverged in the first epoch: only the random start is left
        print(f"no model saved: not one epoch completed ({seconds:.1f} s)", file=sys.stderr)
        return 1
    test_acc = trainer.history["test_accuracy"][-1]
    training = {
        "network": net_config.to_dict(),
        "train": train_config.to_dict(),
        "augment": args.augment,
        "epochs_completed": trainer.epoch,
        "test_accuracy": test_acc,
        "seconds": round(seconds, 2),
    }
    save_model(net, args.out, {"training": training})
    kept = f", the weights of epoch {trainer.epoch}" if diverged else ""
    print(f"saved {args.out} ({seconds:.1f} s, test accuracy {test_acc:.2%}{kept})")
    if args.plot:
        _plot_costs(trainer.history, Path(args.plot))
        print(f"cost plot: {args.plot}")
    return 1 if diverged else 0


def _format_confusion(C: np.ndarray) -> str:
    head = "true\\pred " + " ".join(f"{j:>5d}" for j in range(C.shape[1]))
    rows = [f"{i:>9d} " + " ".join(f"{v:>5d}" for v in row) for i, row in enumerate(C)]
    return "\n".join([head, *rows])


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Accuracy and confusion matrix of a model on the MNIST test set."""
    net = load_model(args.model)
    data = _load_data(args.data_dir)
    pred = net.predict(data.X_test)
    accuracy = float((pred == data.y_test).mean())
    print(f"{net!r}")
    print(f"test accuracy: {accuracy:.2%} ({int((pred == data.y_test).sum())}/{len(pred)})")
    print(_format_confusion(confusion_matrix(data.y_test, pred, net.config.n_classes)))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Classify drawn digits in image files, MNIST-style preprocessing first."""
    from .ink import EmptyInkError, ink_to_mnist, load_ink_image

    net = load_model(args.model)
    status = 0
    for path in args.images:
        try:
            x = ink_to_mnist(load_ink_image(path))  # (28, 28) uint8
        except (EmptyInkError, ValueError, OSError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            status = 1
            continue
        p = net.predict_proba(x.reshape(1, -1))[0]  # (10,)
        top = int(p.argmax())
        probs = " ".join(f"{d}:{q:.2f}" for d, q in enumerate(p))
        print(f"{path}: {top} ({p[top]:.1%})  [{probs}]")
    return status


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune a model on "My digits", print before → after, save it with provenance."""
    from .finetune import FinetuneConfig, cross_validate, finetune, load_digits

    net = load_model(args.model)
    X_own, y_own = load_digits(args.digits)
    data = _load_data(args.data_dir)
    config = FinetuneConfig(
        **{k: v for k in ("epochs", "learning_rate") if (v := getattr(args, k)) is not None}
    )
    rng = np.random.default_rng(args.seed)
    print(f"{net!r}\n{len(y_own)} digits of your own, {config}", file=sys.stderr)
    own_before = own_after = None
    if len(y_own) >= 2:
        for event in cross_validate(
            net, X_own, y_own, data.X_train, data.y_train, rng=rng, folds=args.folds, config=config
        ):
            if event["type"] == "cross_validation":
                own_before, own_after = event["own_before"], event["own_after"]
                print(
                    f"your digits, {event['folds']}-fold cross-validated: "
                    f"{own_before:.1%} → {own_after:.1%} ({event['seconds']:.1f} s)"
                )
    test_before = net.accuracy(data.X_test, data.y_test)
    start = time.perf_counter()
    trainer = finetune(net, X_own, y_own, data.X_train, data.y_train, rng=rng, config=config)
    for event in trainer.run():
        if event["type"] == "diverged":
            print(f"stopped: {event['reason']}", file=sys.stderr)
            return 1
    seconds = time.perf_counter() - start
    test_after = net.accuracy(data.X_test, data.y_test)
    print(f"MNIST test accuracy: {test_before:.2%} → {test_after:.2%} ({seconds:.1f} s)")
    training = dict(net.metadata.get("training", {}))
    training.update(
        where="cli finetune",
        test_accuracy=test_after,
        seconds=round(seconds, 2),
        finetune={
            "digits": Path(args.digits).name,
            "n_digits": len(y_own),
            "base_test_accuracy": test_before,
            "config": config.to_dict(),
            **({"folds": args.folds} if own_before is not None else {}),
            **({"own_accuracy_before": own_before} if own_before is not None else {}),
            **({"own_accuracy_after": own_after} if own_after is not None else {}),
        },
    )
    save_model(net, args.out, {"training": training})
    print(f"saved {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="scribblenet", description="A from-scratch NumPy network for handwritten digits."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train on MNIST and save a model file")
    presets = {p.key: p for p in PRESETS}
    names = ", ".join(presets)
    train.add_argument("--preset", choices=list(presets), default=DEFAULT_PRESET, metavar="NAME",
                       help=f"start from a preset: {names} (default %(default)s)")  # fmt: skip
    for spec in FIELDS:
        choices = "{" + ",".join(v for v, _ in spec.choices) + "}" if spec.choices else None
        metavar = choices or ("LAYERS" if spec.kind == "layers" else spec.name.upper())
        default = presets[DEFAULT_PRESET].values[spec.name]
        train.add_argument(spec.flag, *spec.aliases, dest=spec.name, type=_checked(spec),
                           metavar=metavar,
                           help=f"{spec.help} (default: {default})")  # fmt: skip
    train.add_argument("--augment", nargs="?", const="basic", choices=("basic", "handwriting"),
                       help="random shifts, rotations, slants (basic); plus pen width and "
                       "wobble (handwriting, as the pretrained model)")  # fmt: skip
    train.add_argument("--data-dir", help="MNIST IDX directory (default: download and cache)")
    train.add_argument("--out", default="model.npz", help="model file to write")
    train.add_argument("--plot", help="also save the cost curve to this PNG")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="test accuracy and confusion matrix")
    evaluate.add_argument("model", help="model file (.npz)")
    evaluate.add_argument("--data-dir", help="MNIST IDX directory (default: download and cache)")
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="classify drawn digits in PNG/JPEG files")
    predict.add_argument("images", nargs="+", help="image files, one digit each")
    predict.add_argument("--model", required=True, help="model file (.npz)")
    predict.set_defaults(func=cmd_predict)

    tune = sub.add_parser("finetune", help="teach a model your own handwriting (My digits)")
    tune.add_argument("--model", required=True, help="model file to start from (.npz)")
    tune.add_argument("--digits", required=True, help='"My digits" file (.npz) from the page')
    tune.add_argument("--out", required=True, help="fine-tuned model file to write")
    tune.add_argument("--data-dir", help="MNIST IDX directory (default: download and cache)")
    tune.add_argument("--epochs", type=int, help="passes over the mixed set (default 3)")
    tune.add_argument("--learning-rate", type=float, help="step size (default 0.01)")
    tune.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    tune.add_argument("--seed", type=int, default=0, help="replayed images, shuffling, folds")
    tune.set_defaults(func=cmd_finetune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scribblenet` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
        return status
    except (ValueError, ModelFileError, OSError) as exc:
        parser.exit(2, f"scribblenet: error: {exc}\n")
    except KeyboardInterrupt:
        return 130
