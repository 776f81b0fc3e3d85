"""Benchmark-only prototypes of faster training steps, applied as patches (never shipped).

Each patch is a candidate change for the lead's modules, measured by `bench_tasks.throughput`
with ``proto=[...]``; `check` compares a patched step with the unpatched one. Patches:

- ``adam_wasm``: Adam's update as one fused SIMD pass (bench/proto_kernels.c) instead of ten
  NumPy passes; bit-identical results.
- ``no_grad_check``: drop the per-step finiteness check of every gradient; a non-finite
  gradient still shows up as a non-finite cost one step later, and the epoch snapshot is
  restored as before.
- ``lean_loss``: softmax cross-entropy with fewer NumPy calls (one exp, reused for the cost).
- ``bias_in_gemm``: the forward pass adds the bias inside the GEMM call (the kernel's ``bias``
  argument) instead of a separate ``Z += b`` pass.
- ``fast_reduce``: ``np.add.reduce`` for the bias gradient (skips ``np.sum``'s Python wrapper).
- ``uint8_batches``: the Trainer keeps uint8 pixels and scales each batch into a reused float32
  buffer, instead of normalising the whole training set once (188 MB of float32 for 60k images).
"""

from __future__ import annotations

import math
import time

import numpy as np

from scribblenet import activations, layers, losses, optimizers, training, wasm_matmul

__all__ = ["PATCHES", "apply", "check"]

_ORIGINAL: dict[str, object] = {}


def _save(owner, name: str) -> None:
    key = f"{owner.__name__}.{name}"
    _ORIGINAL.setdefault(key, getattr(owner, name))


def _restore_all() -> None:
    owners = {
        "Adam": optimizers.Adam,
        "Trainer": training.Trainer,
        "SoftmaxCrossEntropy": losses.SoftmaxCrossEntropy,
        "Dense": layers.Dense,
        "ReLU": activations.ReLU,
    }
    for key, value in _ORIGINAL.items():
        owner, name = key.split(".")
        setattr(owners[owner], name, value)


# ── adam_wasm ─────────────────────────────────────────────────────────────────────────────────
def _patch_adam_wasm() -> None:
    import scribblenet_proto  # registered by bench/train_worker.js

    kernel = scribblenet_proto.adam_update
    _save(optimizers.Adam, "_update")
    original = _ORIGINAL["Adam._update"]
    address = wasm_matmul._address

    def _update(self, i, p, g):
        m = self.m.get(i)
        if m is None:
            m = self.m[i] = np.zeros_like(p)
            self.v[i] = np.zeros_like(p)
            self._scratch[i] = np.empty_like(p)
        if p.dtype != np.float32 or not (p.flags.c_contiguous and g.flags.c_contiguous):
            return original(self, i, p, g)
        kernel(p.size, address(p), address(g), address(m), address(self.v[i]),
               self._alpha, self.beta1, self.beta2, self._eps_hat,
               1 - self.beta1, 1 - self.beta2)  # fmt: skip

    optimizers.Adam._update = _update


# ── no_grad_check + uint8_batches: a Trainer step with either change ──────────────────────────
_FLAGS = {"no_grad_check": False, "uint8_batches": False}


def _patch_train_batch() -> None:
    if "Trainer._train_batch" in _ORIGINAL:
        return
    _save(training.Trainer, "_train_batch")
    _save(training.Trainer, "__init__")
    init = _ORIGINAL["Trainer.__init__"]

    def __init__(self, net, config, X_train, y_train, *args, **kwargs):
        if _FLAGS["uint8_batches"] and np.asarray(X_train).dtype == np.uint8:
            # Keep the pixels: the Trainer only normalises when not augmenting, so pass a
            # no-op augment through construction and take it back afterwards.
            kwargs = dict(kwargs)
            real_augment = kwargs.pop("augment", None)
            init(self, net, config, X_train, y_train, *args, augment=lambda b, r: b, **kwargs)
            self.augment = real_augment
            self._scale = np.float32(255)
            self._xbuf = None
        else:
            init(self, net, config, X_train, y_train, *args, **kwargs)
            self._xbuf = False

    def _train_batch(self):
        bs = self.batch_size
        t0 = time.perf_counter()
        if self.n_batches == 1:
            Xb, yb = self.X, self.y
        else:
            idx = self._order[self._batch * bs : (self._batch + 1) * bs]  # (b,)
            Xb, yb = self.X[idx], self.y[idx]  # (b, n_inputs), (b,)
        if self.augment is not None:
            Xb = self.augment(Xb, self.rng)
        if self._xbuf is not False and Xb.dtype == np.uint8:
            buf = self._xbuf
            if buf is None or buf.shape != Xb.shape:
                buf = self._xbuf = np.empty(Xb.shape, self.net.dtype)
            np.divide(Xb, self._scale, out=buf)  # (b, n_inputs) in [0, 1], as _as_input does
            Xb = buf
        cost = self.net.loss_and_grad(Xb, yb, self.config.weight_decay)
        grads = self.net.gradients()
        if _FLAGS["no_grad_check"]:
            finite = math.isfinite(cost)
        else:
            finite = math.isfinite(cost) and all(math.isfinite(g.sum()) for g in grads)
        if not finite or cost > self._cost_limit:
            return self._diverged(cost)
        correct = int((self.net.loss.predicted == yb).sum()) if len(yb) else 0
        self.optimizer.learning_rate = self._learning_rate()
        self.optimizer.step(self.net.parameters(), grads)
        seconds = time.perf_counter() - t0
        self._batch += 1
        self.step += 1
        sums = self._epoch_sums
        sums[0] += cost * len(yb)
        sums[1] += correct
        sums[2] += len(yb)
        sums[3] += seconds
        self.history["batch_cost"].append(cost)
        return {
            "type": "batch", "epoch": self.epoch + 1, "batch": self._batch,
            "n_batches": self.n_batches, "step": self.step, "total_steps": self.total_steps,
            "cost": cost, "batch_accuracy": correct / len(yb),
            "learning_rate": self.optimizer.learning_rate, "seen": sums[2],
            "examples_per_s": sums[2] / sums[3] if sums[3] > 0 else 0.0,
        }  # fmt: skip

    training.Trainer.__init__ = __init__
    training.Trainer._train_batch = _train_batch


def _patch_no_grad_check() -> None:
    _patch_train_batch()
    _FLAGS["no_grad_check"] = True


def _patch_uint8_batches() -> None:
    _patch_train_batch()
    _FLAGS["uint8_batches"] = True


# ── lean_loss ─────────────────────────────────────────────────────────────────────────────────
def _patch_lean_loss() -> None:
    _save(losses.SoftmaxCrossEntropy, "forward")
    _save(losses.SoftmaxCrossEntropy, "backward")
    original_forward = _ORIGINAL["SoftmaxCrossEntropy.forward"]
    original_backward = _ORIGINAL["SoftmaxCrossEntropy.backward"]

    def forward(self, Z, y):
        if y.ndim != 1 or len(y) != len(Z):
            return original_forward(self, Z, y)
        n = len(Z)
        self.predicted = Z.argmax(axis=1)  # (n,)
        rows = np.arange(n)
        self.y = y.astype(np.intp, copy=False)
        self._rows = rows
        P = Z - Z[rows, self.predicted][:, None]  # (n, k), every row's max is 0
        z_true = P[rows, self.y]  # (n,) log-numerators, taken before exp overwrites P
        np.exp(P, out=P)
        s = P.sum(axis=1)  # (n,)
        cost = float(np.log(s).sum() - z_true.sum()) / n  # mean of log s - (z_y - max)
        P /= s[:, None]
        self.P = P
        return cost

    def backward(self):
        if getattr(self, "_rows", None) is None or self.y.ndim != 1:
            return original_backward(self)
        dZ = self.P
        dZ[self._rows, self.y] -= 1
        dZ *= 1 / len(dZ)
        self._rows = None
        return dZ

    losses.SoftmaxCrossEntropy.forward = forward
    losses.SoftmaxCrossEntropy.backward = backward


# ── bias_in_gemm + fast_reduce: Dense ─────────────────────────────────────────────────────────
def _patch_bias_in_gemm() -> None:
    _save(layers.Dense, "forward")
    original = _ORIGINAL["Dense.forward"]

    def forward(self, X, train=True):
        backend = self.backend
        if not (train and isinstance(backend, wasm_matmul.WasmBackend)):
            return original(self, X, train)
        self.X = X
        out = self._buffer("Z", (len(X), self.W.shape[1]))
        plan = backend._plan(X, self.W, out)
        if plan is None or self.b.dtype != np.float32:
            return original(self, X, train)
        name, lda, ldb, ldc = plan
        M, K = X.shape
        N = self.W.shape[1]
        address = wasm_matmul._address
        backend._kernels[name](M, N, K, address(X), lda, address(self.W), ldb, address(out),
                               ldc, 0.0, address(self.b))  # fmt: skip
        backend.calls += 1
        return out  # (n, out), bias included

    layers.Dense.forward = forward


def _patch_fast_reduce() -> None:
    _save(layers.Dense, "backward")

    def backward(self, dZ, need_dX=True):
        self.backend.mm_tn(self.X, dZ, out=self.dW)  # (in, out)
        np.add.reduce(dZ, axis=0, out=self.db)  # (out,)
        if not need_dX:
            return None
        return self.backend.mm_nt(dZ, self.W, out=self._buffer("dX", self.X.shape))

    layers.Dense.backward = backward


PATCHES = {
    "adam_wasm": _patch_adam_wasm,
    "no_grad_check": _patch_no_grad_check,
    "lean_loss": _patch_lean_loss,
    "bias_in_gemm": _patch_bias_in_gemm,
    "fast_reduce": _patch_fast_reduce,
    "uint8_batches": _patch_uint8_batches,
}


def apply(names: list[str]) -> None:
    """Undo earlier patches, then apply `names` (in PATCHES)."""
    _restore_all()
    _ORIGINAL.clear()
    for flag in _FLAGS:
        _FLAGS[flag] = False
    for name in names:
        if name not in PATCHES:
            raise ValueError(f"unknown patch {name!r}; choose from {', '.join(PATCHES)}")
        PATCHES[name]()


def check(names: list[str], make_trainer, steps: int = 5) -> dict[str, float]:
    """Largest parameter difference after `steps` steps, patched vs unpatched (same seeds)."""
    apply([])
    reference = make_trainer()
    list(reference.run(max_batches=steps))
    apply(names)
    patched = make_trainer()
    list(patched.run(max_batches=steps))
    apply([])
    worst = 0.0
    for a, b in zip(reference.net.parameters(), patched.net.parameters(), strict=True):
        worst = max(worst, float(np.max(np.abs(a - b))))
    return {"max_abs_param_diff": worst}
