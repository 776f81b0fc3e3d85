"""The tutorial's API ("neural network from scratch, part 2: softmax"), on scribblenet's engine.

The tutorial's `__main__` runs unchanged but for its data-loading line::

    from scribblenet.mnist import load_mnist
    from scribblenet.tutorial import NeuralNetwork, pre_process_data

    train_x, train_y, test_x, test_y = load_mnist()
    train_x, train_y, test_x, test_y = pre_process_data(train_x, train_y, test_x, test_y)
    ann = NeuralNetwork([50, 10])
    ann.fit(train_x, train_y, learning_rate=0.1, n_iterations=100)
    print("Test Accuracy:", ann.predict(test_x, test_y))

Defects of the original, fixed here: softmax took one max over the whole matrix instead of per
column; the printed cost was the cross-entropy divided by the number of classes; `fit` mutated
the caller's `layers_size` list (so a second call broke); it seeded NumPy's global generator; and
`predict` needed labels. Same as the original: sigmoid hidden layers, randn/√fan_in weights,
float64, full-batch gradient descent, a cost recorded every 10 iterations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .config import NetworkConfig, TrainConfig
from .losses import one_hot
from .network import Network
from .training import Trainer

__all__ = ["ANN", "NeuralNetwork", "pre_process_data"]


class NeuralNetwork:
    """A sigmoid MLP with a softmax output, trained by full-batch gradient descent.

    Parameters
    ----------
    layers_size : hidden layer sizes followed by the number of classes, e.g. [50, 10].
    seed : seeds this network's own generator (the tutorial used np.random.seed(1)).
    """

    def __init__(self, layers_size: Sequence[int], seed: int = 1):
        sizes = list(layers_size)
        if len(sizes) < 1:
            raise ValueError("layers_size needs at least the number of classes, e.g. [50, 10]")
        self.layers_size = sizes
        self.seed = seed
        self.costs: list[float] = []
        self.network: Network | None = None

    def fit(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        learning_rate: float = 0.01,
        n_iterations: int = 2500,
        verbose: bool = True,
    ) -> NeuralNetwork:
        """Train from scratch on X (n, features) and one-hot Y (n, classes); returns self."""
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y)
        if Y.ndim != 2 or Y.shape != (len(X), self.layers_size[-1]):
            raise ValueError(
                f"Y must be one-hot of shape ({len(X)}, {self.layers_size[-1]}), got {Y.shape}"
            )
        config = NetworkConfig(
            n_inputs=X.shape[1],
            hidden=tuple(self.layers_size[:-1]),
            n_classes=self.layers_size[-1],
            activation="sigmoid",
            init="tutorial",
            dtype="float64",
        )
        self.network = Network(config, np.random.default_rng(self.seed))
        train = TrainConfig(
            optimizer="sgd", learning_rate=learning_rate, batch_size=None, epochs=n_iterations
        )
        trainer = Trainer(self.network, train, X, Y.argmax(axis=1))
        self.costs = []
        for event in trainer.run():
            if event["type"] == "diverged":
                raise FloatingPointError(event["reason"])
            if event["type"] != "epoch":
                continue
            loop = event["epoch"] - 1
            if verbose and loop % 100 == 0:
                print("Cost: ", event["cost"], "Train Accuracy:", 100 * event["train_accuracy"])
            if loop % 10 == 0:
                self.costs.append(event["cost"])
        return self

    def _require_fit(self) -> Network:
        if self.network is None:
            raise RuntimeError("call fit() before predict()")
        return self.network

    def predict(self, X: np.ndarray, Y: np.ndarray | None = None) -> float | np.ndarray:
        """Accuracy in % against one-hot (or integer) labels Y; predicted classes if Y is None."""
        y_hat = self._require_fit().predict(np.asarray(X, dtype=np.float64))
        if Y is None:
            return y_hat
        Y = np.asarray(Y)
        y = Y.argmax(axis=1) if Y.ndim == 2 else Y
        return float((y_hat == y).mean() * 100)

    def plot_cost(self, path: str | None = None) -> None:
        """Plot the cost curve (needs matplotlib); save to `path` or show a window."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError(
                "plot_cost needs matplotlib: pip install 'scribblenet[plot]'"
            ) from None
        fig = plt.figure()
        plt.plot(np.arange(len(self.costs)) * 10, self.costs)
        plt.xlabel("iterations")
        plt.ylabel("cost")
        if path:
            fig.savefig(path)
            plt.close(fig)
        else:
            plt.show()

    def __repr__(self) -> str:
        return f"NeuralNetwork({self.layers_size}, fitted={self.network is not None})"


ANN = NeuralNetwork  # the tutorial's own class name


def pre_process_data(
    train_x: npt.ArrayLike, train_y: npt.ArrayLike, test_x: npt.ArrayLike, test_y: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scale pixels to [0, 1] and one-hot encode labels (no scikit-learn needed).

    Returns
    -------
    train_x (n, 784) float64, train_y (n, 10), test_x, test_y: the tutorial's shapes.
    """
    n_classes = int(max(np.max(train_y), np.max(test_y))) + 1
    return (
        np.asarray(train_x, dtype=np.float64) / 255.0,
        one_hot(train_y, n_classes, np.float64),
        np.asarray(test_x, dtype=np.float64) / 255.0,
        one_hot(test_y, n_classes, np.float64),
    )
