"""Benchmark tasks shared by the browser bench worker (under Pyodide) and native runs.

The same functions time the same `Trainer` steps in both places, so browser and native figures
compare like with like. Each task returns a JSON-able dict; `run_json` is the single entry point
the worker calls (name + JSON arguments in, JSON out). Not a test: figures depend on the machine.
"""

from __future__ import annotations

import cProfile
import io
import json
import math
import pstats
import statistics
import sys
import time
from typing import Any

import numpy as np

from scribblenet.config import NetworkConfig, TrainConfig
from scribblenet.matmul import MatmulBackend, NumpyBackend
from scribblenet.network import Network
from scribblenet.training import Trainer, trainer_rngs

__all__ = [
    "make_backend",
    "phases",
    "profile",
    "run_json",
    "throughput",
    "train_to_target",
]

_SESSION_DATA: dict[str, Any] = {}  # the decoded dataset, kept between tasks in one worker


def heap_mb() -> float | None:
    """Size of Pyodide's WebAssembly heap in MB (it only ever grows); None natively."""
    try:
        import pyodide_js
    except ImportError:
        return None
    return pyodide_js._module.HEAPU8.length / 2**20


def make_backend(kind: str) -> MatmulBackend:
    """ "numpy" or "wasm" (the WebAssembly kernel, which gemm.js must have installed)."""
    if kind == "numpy":
        return NumpyBackend()
    if kind == "wasm":
        from scribblenet.wasm_matmul import load_wasm_backend

        backend, reason = load_wasm_backend()
        if backend is None:
            raise RuntimeError(reason)
        return backend
    raise ValueError(f"backend must be numpy or wasm, got {kind!r}")


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images (n, 784) and labels (n,): matrix products cost the same as MNIST's."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 784), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def _use_proto(names) -> None:
    """Apply bench/proto.py's patches (an empty list undoes them)."""
    if names or "proto" in sys.modules:
        import proto

        proto.apply(list(names))


def _trainer(hidden, batch_size, backend, optimizer, n, seed) -> tuple[Trainer, MatmulBackend]:
    X, y = _synthetic(n, seed)
    init_rng, data_rng = trainer_rngs(seed)
    net = Network(NetworkConfig(hidden=tuple(hidden)), init_rng)
    b = make_backend(backend)
    net.set_backend(b)
    config = TrainConfig(optimizer=optimizer, batch_size=batch_size, epochs=1000, seed=seed)
    return Trainer(net, config, X, y, rng=data_rng), b


def throughput(
    hidden: list[int] = (128,),
    batch_size: int = 128,
    backend: str = "wasm",
    optimizer: str = "adam",
    steps: int = 20,
    repeats: int = 7,
    n: int = 8192,
    seed: int = 0,
    budget_s: float = 20.0,
    proto: list[str] = (),
) -> dict[str, Any]:
    """Training examples/s of whole `Trainer` steps (gather, forward, backward, update).

    Parameters
    ----------
    hidden : hidden layer sizes. batch_size : rows per step. backend : "numpy" or "wasm".
    steps : batches per timed block. repeats : timed blocks (best and median reported).
    n : synthetic training images (uint8, normalised once by the Trainer as on the page).
    budget_s : stop early once this much time has been spent (slow backends).
    proto : bench/proto.py patches to apply while timing (undone afterwards).

    Returns
    -------
    {"best", "median", "rates" (examples/s per block), "ms_per_step" (best), ...}.
    """
    _use_proto(proto)
    try:
        trainer, b = _trainer(hidden, batch_size, backend, optimizer, n, seed)
        list(trainer.run(max_batches=min(steps, 3)))  # warm-up: buffers, optimiser state
        rates = []
        start = time.perf_counter()
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(trainer.run(max_batches=steps))
            rates.append(steps * batch_size / (time.perf_counter() - t0))
            if time.perf_counter() - start > budget_s and len(rates) >= 2:
                break
    finally:
        _use_proto([])
    best = max(rates)
    return {
        "backend": b.name,
        "hidden": list(hidden),
        "batch_size": batch_size,
        "optimizer": optimizer,
        "best": best,
        "median": statistics.median(rates),
        "rates": rates,
        "ms_per_step": 1000 * batch_size / best,
        "kernel_calls": getattr(b, "calls", None),
        "platform": sys.platform,
        "proto": list(proto),
    }


def phases(
    hidden: list[int] = (128,),
    batch_size: int = 128,
    backend: str = "wasm",
    steps: int = 30,
    n: int = 8192,
    seed: int = 0,
    proto: list[str] = (),
) -> dict[str, Any]:
    """Median milliseconds per step of each phase of `Trainer._train_batch`, timed by hand.

    Mirrors the Trainer's step (same calls, same order) with a clock between phases, which
    distorts less than cProfile does for code that is mostly short NumPy calls.
    """
    _use_proto(proto)
    try:
        return _phases(hidden, batch_size, backend, steps, n, seed, proto)
    finally:
        _use_proto([])


def _phases(hidden, batch_size, backend, steps, n, seed, proto) -> dict[str, Any]:
    trainer, _ = _trainer(hidden, batch_size, backend, "adam", n, seed)
    list(trainer.run(max_batches=3))
    net, opt = trainer.net, trainer.optimizer
    times: dict[str, list[float]] = {}

    def lap(name: str, t0: float) -> float:
        t1 = time.perf_counter()
        times.setdefault(name, []).append(1000 * (t1 - t0))
        return t1

    order = trainer.rng.permutation(trainer.n_train)
    bs = batch_size
    for step in range(steps):
        t = t_start = time.perf_counter()
        idx = order[(step * bs) % (trainer.n_train - bs) :][:bs]
        Xb, yb = trainer.X[idx], trainer.y[idx]  # (b, 784), (b,)
        if Xb.dtype == np.uint8:  # pixels scaled per batch, as Trainer._scaled does
            Xb = trainer._scaled(Xb)
        t = lap("gather batch", t)
        A = Xb
        for i, (layer, act) in enumerate(zip(net.dense, net.activations, strict=False)):
            Z = layer.forward(A, True)  # (b, units)
            t = lap(f"forward dense {i + 1} (matmul + bias)", t)
            A = act.forward(Z)
            t = lap(f"forward {act.name} {i + 1}", t)
        Z = net.dense[-1].forward(A, True)  # (b, 10)
        t = lap(f"forward dense {len(net.dense)} (matmul + bias)", t)
        cost = net.loss.forward(Z, yb)
        dA = net.loss.backward()  # (b, 10)
        t = lap("softmax cross-entropy fwd+bwd", t)
        for i in range(len(net.dense) - 1, -1, -1):
            if i < len(net.dense) - 1:
                dA = net.activations[i].backward(dA)
                t = lap(f"backward {net.activations[i].name} {i + 1}", t)
            dA = net.dense[i].backward(dA, need_dX=i > 0)
            t = lap(f"backward dense {i + 1} (dW, db" + (", dX)" if i > 0 else ")"), t)
        grads = net.gradients()
        finite = math.isfinite(cost) and all(math.isfinite(g.sum()) for g in grads)
        t = lap("finite check (one sum per gradient)", t)
        int((net.loss.predicted == yb).sum())
        opt.learning_rate = trainer._learning_rate()
        opt.step(net.parameters(), grads)
        t = lap("optimizer step (" + type(opt).__name__ + ")", t)
        lap("total", t_start)
        assert finite
    medians = {name: statistics.median(v) for name, v in times.items()}
    return {"hidden": list(hidden), "batch_size": batch_size, "backend": backend,
            "proto": list(proto), "ms": medians}  # fmt: skip


def profile(
    hidden: list[int] = (128,),
    batch_size: int = 128,
    backend: str = "wasm",
    steps: int = 60,
    n: int = 8192,
    seed: int = 0,
    top: int = 25,
) -> dict[str, Any]:
    """cProfile of `steps` Trainer steps: the pstats table (by own time) and the wall time."""
    trainer, _ = _trainer(hidden, batch_size, backend, "adam", n, seed)
    list(trainer.run(max_batches=3))
    t0 = time.perf_counter()
    list(trainer.run(max_batches=steps))
    plain = time.perf_counter() - t0
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    list(trainer.run(max_batches=steps))
    prof.disable()
    profiled = time.perf_counter() - t0
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    rows = []
    for (file, line, func), (_, nc, tt, ct, _) in stats.stats.items():
        rows.append(
            {"function": f"{file.rsplit('/', 1)[-1]}:{line}({func})", "calls": nc,
             "tottime_ms_per_step": 1000 * tt / steps, "cumtime_ms_per_step": 1000 * ct / steps}
        )  # fmt: skip
    rows.sort(key=lambda r: -r["tottime_ms_per_step"])
    return {
        "steps": steps,
        "ms_per_step": 1000 * plain / steps,
        "ms_per_step_profiled": 1000 * profiled / steps,
        "rows": rows[:top],
        "text": out.getvalue(),
    }


def load_data(path: str) -> dict[str, Any]:
    """Decode the compact dataset at `path` once per worker; its sizes and decode time."""
    from scribblenet.compact import read_compact

    t0 = time.perf_counter()
    with open(path, "rb") as f:
        data = read_compact(f.read())
    _SESSION_DATA["mnist"] = data
    return {"n_train": len(data.y_train), "n_test": len(data.y_test),
            "seconds": time.perf_counter() - t0}  # fmt: skip


def train_to_target(
    form: dict[str, Any],
    backend: str = "wasm",
    target: float = 0.975,
    stop_at_target: bool = False,
    data_path: str | None = None,
    proto: list[str] = (),
) -> dict[str, Any]:
    """Train through `Session` (the page's Python path) and time each epoch's end.

    Parameters
    ----------
    form : the page's form fields (hidden, learning_rate, batch_size, epochs, ...), plus
        lr_schedule, which the page's form does not offer.
    backend : "numpy" or "wasm". target : test accuracy to time.
    stop_at_target : stop as soon as an epoch reaches the target.
    data_path : the compact dataset file, if `load_data` has not been called.
    proto : bench/proto.py patches to apply (undone afterwards).

    Returns
    -------
    {"epochs": [{epoch, test_accuracy, seconds (since start_training)}], "seconds_to_target",
    "setup_seconds" (start_training: network + normalising the data)}.
    """
    _use_proto(proto)
    try:
        return _train_to_target(form, backend, target, stop_at_target, data_path, proto)
    finally:
        _use_proto([])


def _train_to_target(form, backend, target, stop_at_target, data_path, proto) -> dict[str, Any]:
    from scribblenet.session import Session

    if "mnist" not in _SESSION_DATA:
        load_data(data_path)
    session = Session()
    session.data = _SESSION_DATA["mnist"]
    session.set_backend(make_backend(backend))
    heap = {"data loaded": heap_mb()}
    t0 = time.perf_counter()
    started = session.start_training({k: str(v) for k, v in form.items()})
    if not started["ok"]:
        raise ValueError(f"bad settings: {started['errors']}")
    setup = time.perf_counter() - t0
    heap["trainer made"] = heap_mb()
    n_batches = started["n_batches"]
    epochs, reached = [], None
    while session.trainer is not None:
        events = session.train_chunk(n_batches)
        now = time.perf_counter() - t0
        for e in events:
            if e["type"] == "diverged":
                raise RuntimeError(e["reason"])
            if e["type"] == "epoch":
                epochs.append({"epoch": e["epoch"], "test_accuracy": e["test_accuracy"],
                               "train_seconds": e["seconds"], "seconds": now})  # fmt: skip
                if reached is None and e["test_accuracy"] >= target:
                    reached = now
        if reached is not None and stop_at_target:
            break
    return {
        "form": form,
        "backend": backend,
        "proto": list(proto),
        "epochs": epochs,
        "seconds_to_target": reached,
        "final_accuracy": epochs[-1]["test_accuracy"] if epochs else None,
        "setup_seconds": setup,
        "seconds": time.perf_counter() - t0,
        "heap_mb": {**heap, "trained": heap_mb()},
    }


def ab_throughput(
    proto: list[str],
    hidden: list[int] = (128,),
    batch_size: int = 128,
    steps: int = 20,
    pairs: int = 10,
    n: int = 8192,
    seed: int = 0,
) -> dict[str, Any]:
    """Unpatched (A) and patched (B) Trainer steps in alternating blocks, kernel on.

    Alternating block by block puts A and B under the same background load, so the median of
    the per-pair ratios B/A is a steadier figure on a shared machine than two separate runs.
    """
    import proto as proto_module

    proto_module.apply([])
    trainer_a = _trainer(hidden, batch_size, "wasm", "adam", n, seed)[0]
    proto_module.apply(list(proto))  # before making B: some patches change construction
    try:
        trainer_b = _trainer(hidden, batch_size, "wasm", "adam", n, seed)[0]
        rates_a, rates_b = [], []
        for i in range(pairs + 1):
            for trainer, patched, rates in ((trainer_a, [], rates_a), (trainer_b, proto, rates_b)):
                proto_module.apply(list(patched))
                t0 = time.perf_counter()
                list(trainer.run(max_batches=steps))
                if i:  # the first pair warms up buffers and optimiser state
                    rates.append(steps * batch_size / (time.perf_counter() - t0))
    finally:
        proto_module.apply([])
    ratios = [b / a for a, b in zip(rates_a, rates_b, strict=True)]
    return {
        "proto": list(proto),
        "best_a": max(rates_a),
        "best_b": max(rates_b),
        "median_ratio": statistics.median(ratios),
        "ratio_of_bests": max(rates_b) / max(rates_a),
        "ms_per_step_a": 1000 * batch_size / max(rates_a),
        "ms_per_step_b": 1000 * batch_size / max(rates_b),
    }


def check_proto(proto: list[str], backend: str = "wasm", steps: int = 5) -> dict[str, Any]:
    """Largest parameter difference after a few steps with bench/proto.py patches vs without."""
    import proto as proto_module

    def make() -> Trainer:
        return _trainer((128,), 128, backend, "adam", 2048, 0)[0]

    return {"proto": list(proto), **proto_module.check(list(proto), make, steps)}


_TASKS = {
    "ab_throughput": ab_throughput,
    "check_proto": check_proto,
    "throughput": throughput,
    "phases": phases,
    "profile": profile,
    "load_data": load_data,
    "train_to_target": train_to_target,
}


def run_json(name: str, args_json: str = "{}") -> str:
    """Run task `name` with keyword arguments from JSON; the result as JSON."""
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(_TASKS)}")
    return json.dumps(_TASKS[name](**json.loads(args_json)))


if __name__ == "__main__":  # native: python scripts/bench/bench_tasks.py TASK '{"json": "args"}'
    print(run_json(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"))
