"""scribblenet: a neural network from scratch in NumPy, for handwritten digits.

The same package runs natively and in the browser under Pyodide. Quick start::

    import numpy as np
    from scribblenet import NetworkConfig, TrainConfig, Network, Trainer, trainer_rngs

    init_rng, data_rng = trainer_rngs(seed=0)
    net = Network(NetworkConfig(hidden=(128,)), init_rng)
    trainer = Trainer(net, TrainConfig(epochs=2), X_train, y_train, X_test, y_test, rng=data_rng)
    for event in trainer.run():
        if event["type"] == "epoch":
            print(event["epoch"], event["test_accuracy"])
"""

from .config import NetworkConfig, TrainConfig
from .losses import SoftmaxCrossEntropy, one_hot, softmax
from .matmul import MatmulBackend, NumpyBackend
from .model_io import ModelFileError, load_model, model_from_bytes, model_to_bytes, save_model
from .network import Network
from .optimizers import SGD, Adam, Momentum
from .training import Trainer, confusion_matrix, trainer_rngs

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adam",
    "MatmulBackend",
    "ModelFileError",
    "Momentum",
    "Network",
    "NetworkConfig",
    "NumpyBackend",
    "SoftmaxCrossEntropy",
    "TrainConfig",
    "Trainer",
    "__version__",
    "confusion_matrix",
    "load_model",
    "model_from_bytes",
    "model_to_bytes",
    "one_hot",
    "save_model",
    "softmax",
    "trainer_rngs",
]
