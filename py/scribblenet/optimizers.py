"""Gradient-descent optimisers; each keeps its own state, keyed by parameter position."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .config import TrainConfig

__all__ = ["SGD", "Adam", "Momentum", "Optimizer", "make_optimizer"]


def _check_lr(learning_rate: float) -> float:
    if not (isinstance(learning_rate, int | float) and math.isfinite(learning_rate)):
        raise ValueError(f"learning rate must be a finite number, got {learning_rate!r}")
    if learning_rate <= 0:
        raise ValueError(f"learning rate must be > 0, got {learning_rate}")
    return float(learning_rate)


class Optimizer:
    """Updates parameters in place from their gradients."""

    def __init__(self, learning_rate: float):
        self.learning_rate = _check_lr(learning_rate)
        self.t = 0  # steps taken

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """Apply one update to every parameter (in place)."""
        if len(params) != len(grads):
            raise ValueError(f"{len(params)} parameters but {len(grads)} gradients")
        self.t += 1
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            self._update(i, p, g)

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The optimiser's state, for inspection and tests."""
        return {}


class SGD(Optimizer):
    """Plain gradient descent: p ← p − η·g."""

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        p -= self.learning_rate * g  # (in, out) or (out,)

    def __repr__(self) -> str:
        return f"SGD(learning_rate={self.learning_rate})"


class Momentum(Optimizer):
    """Heavy-ball momentum: v ← μ·v − η·g; p ← p + v."""

    def __init__(self, learning_rate: float, momentum: float = 0.9):
        super().__init__(learning_rate)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.v: dict[int, np.ndarray] = {}

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        v = self.v.get(i)
        if v is None:
            v = self.v[i] = np.zeros_like(p)
        v *= self.momentum
        v -= self.learning_rate * g
        p += v

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Velocities by parameter index."""
        return {f"v{i}": v for i, v in self.v.items()}

    def __repr__(self) -> str:
        return f"Momentum(learning_rate={self.learning_rate}, momentum={self.momentum})"


class Adam(Optimizer):
    """Adam (Kingma & Ba): bias-corrected first and second moment estimates."""

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ):
        super().__init__(learning_rate)
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= beta < 1:
                raise ValueError(f"{name} must be in [0, 1), got {beta}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m: dict[int, np.ndarray] = {}
        self.v: dict[int, np.ndarray] = {}
        self._scratch: dict[int, np.ndarray] = {}
        # Optional fused update (the browser's WebAssembly kernel): returns False to decline.
        self.fused: Callable[..., bool] | None = None

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """One Adam step; the bias corrections fold into a single step size per call."""
        t = self.t + 1
        self._alpha = self.learning_rate * math.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)
        self._eps_hat = self.eps * math.sqrt(1 - self.beta2**t)
        super().step(params, grads)

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        m = self.m.get(i)
        if m is None:
            m = self.m[i] = np.zeros_like(p)
            self.v[i] = np.zeros_like(p)
            self._scratch[i] = np.empty_like(p)
        v, tmp = self.v[i], self._scratch[i]
        fused = self.fused
        if fused is not None and fused(
            p, g, m, v, self._alpha, self.beta1, self.beta2, self._eps_hat
        ):
            return
        # Every operation writes into existing arrays: under WebAssembly an allocation per
        # parameter per step costs as much as the arithmetic.
        np.multiply(g, 1 - self.beta1, out=tmp)
        m *= self.beta1
        m += tmp  # m = β1·m + (1−β1)·g
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.beta2
        v *= self.beta2
        v += tmp  # v = β2·v + (1−β2)·g²
        # α·m / (√v + ε̂) with α, ε̂ bias-corrected: the textbook update in fewer passes.
        np.sqrt(v, out=tmp)
        tmp += self._eps_hat
        np.divide(m, tmp, out=tmp)
        tmp *= self._alpha
        p -= tmp

    def state_arrays(self) -> dict[str, np.ndarray]:
        """First and second moments by parameter index."""
        out = {f"m{i}": m for i, m in self.m.items()}
        out.update({f"v{i}": v for i, v in self.v.items()})
        return out

    def __repr__(self) -> str:
        return (
            f"Adam(learning_rate={self.learning_rate}, beta1={self.beta1}, "
            f"beta2={self.beta2}, eps={self.eps})"
        )


def make_optimizer(config: TrainConfig) -> Optimizer:
    """The optimiser a `TrainConfig` names."""
    if config.optimizer == "sgd":
        return SGD(config.learning_rate)
    if config.optimizer == "momentum":
        return Momentum(config.learning_rate, config.momentum)
    if config.optimizer == "adam":
        return Adam(config.learning_rate)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")
