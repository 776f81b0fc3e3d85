"""Weight initialisers: the scale keeps activations from vanishing or exploding at the start."""

from __future__ import annotations

import numpy as np

__all__ = ["init_weights"]


def init_weights(
    scheme: str, fan_in: int, fan_out: int, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """Draw a (fan_in, fan_out) weight matrix.

    Parameters
    ----------
    scheme : "he" (N(0, 2/fan_in), for ReLU), "glorot" (U(±√(6/(fan_in+fan_out)))),
        "lecun" (N(0, 1/fan_in)) or "tutorial" (randn / √fan_in, as the tutorial did).
    rng : the only source of randomness.

    Returns
    -------
    W : (fan_in, fan_out) array of `dtype`.
    """
    shape = (fan_in, fan_out)
    if scheme == "he":
        W = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif scheme == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        W = rng.uniform(-limit, limit, shape)
    elif scheme in ("lecun", "tutorial"):
        # The tutorial's randn/sqrt(fan_in) is exactly LeCun normal; both names are kept.
        W = rng.standard_normal(shape) / np.sqrt(fan_in)
    else:
        raise ValueError(f"unknown init {scheme!r}; choose from he, glorot, lecun, tutorial")
    out: np.ndarray = W.astype(dtype, copy=False)
    return out
