"""The conv layers' WebAssembly kernels (web/gemm/conv_ops.c) and their NumPy fallbacks.

The kernels run in Node on their own memory (a small driver, `DRIVER`, written next to the
data), every buffer fenced by guard bytes and some of them misaligned, and must equal the NumPy
code of `MatmulBackend` bit for bit. The backend's routing and fallbacks are checked against a
stand-in kernel that marks its outputs, so these tests also run inside Pyodide.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from scribblenet.activations import ReLU, make_activation
from scribblenet.conv import Conv2D, MaxPool2D
from scribblenet.matmul import NumpyBackend
from scribblenet.wasm_matmul import CONV_KERNELS, WasmBackend, self_test
from test_gemm import FakeKernel, relaxed_flags

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
REF = NumpyBackend()

# Instantiate the module on a fresh memory, place each buffer (misaligned by its `skew` bytes,
# 0xA5 guard bytes around), make the calls ({"buf": i} is buffer i's address), write the
# buffers back and list any guard byte that changed.
DRIVER = """
import { readFileSync, writeFileSync } from "node:fs";
const [wasmPath, specPath, dataPath, outPath] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specPath, "utf8"));
const data = readFileSync(dataPath);
const GUARD = 64;
let top = 65536;
const places = spec.buffers.map((b) => {
  const at = top + GUARD + b.skew;
  top = (at + b.nbytes + GUARD + 15) & ~15;
  return at;
});
const memory = new WebAssembly.Memory({ initial: Math.ceil(top / 65536) + 1 });
const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), { env: { memory } });
const bytes = new Uint8Array(memory.buffer);
bytes.fill(0xa5, 65536, top);
spec.buffers.forEach((b, i) => bytes.set(data.subarray(b.offset, b.offset + b.nbytes), places[i]));
for (const call of spec.calls) {
  const args = call.args.map((a) => (typeof a === "number" ? a : places[a.buf]));
  instance.exports[call.op](...args);
}
const out = Buffer.alloc(data.length);
const errors = [];
spec.buffers.forEach((b, i) => {
  out.set(bytes.subarray(places[i], places[i] + b.nbytes), b.offset);
  for (const start of [places[i] - GUARD, places[i] + b.nbytes])
    for (let k = 0; k < GUARD; k++)
      if (bytes[start + k] !== 0xa5) errors.push(`buffer ${i}: byte ${start + k - places[i]}`);
});
writeFileSync(outPath, out);
console.log(JSON.stringify({ errors }));
"""


class KernelRun:
    """Buffers and calls for one run of DRIVER; `run` returns the buffers afterwards."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.calls: list[dict] = []

    def buf(self, array: np.ndarray) -> dict:
        """A reference to a copy of `array` in the kernel's memory."""
        self.arrays.append(np.ascontiguousarray(array).copy())
        return {"buf": len(self.arrays) - 1}

    def call(self, op: str, *args: int | dict) -> None:
        self.calls.append({"op": op, "args": list(args)})

    def run(self, repo_root: Path, tmp_path: Path, wasm: str) -> list[np.ndarray]:
        flags: tuple[str, ...] = ()
        if "relaxed" in wasm:
            found = relaxed_flags()
            if found is None:
                pytest.skip("this Node cannot run relaxed SIMD")
            flags = found
        offset, buffers, blobs = 0, [], []
        for i, a in enumerate(self.arrays):
            skew = (i % 4) * (1 if a.dtype == np.uint8 else 4)  # vary the alignment
            buffers.append({"offset": offset, "nbytes": a.nbytes, "skew": skew})
            blobs.append(a.tobytes())
            offset += a.nbytes
        (tmp_path / "driver.mjs").write_text(DRIVER)
        (tmp_path / "spec.json").write_text(json.dumps({"buffers": buffers, "calls": self.calls}))
        (tmp_path / "data.bin").write_bytes(b"".join(blobs))
        proc = subprocess.run(
            [NODE, *flags, str(tmp_path / "driver.mjs"), str(repo_root / "web" / "gemm" / wasm),
             str(tmp_path / "spec.json"), str(tmp_path / "data.bin"), str(tmp_path / "out.bin")],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads(proc.stdout.splitlines()[-1])["errors"] == []  # nothing outside
        raw = (tmp_path / "out.bin").read_bytes()
        out, at = [], 0
        for a in self.arrays:
            out.append(np.frombuffer(raw[at : at + a.nbytes], a.dtype).reshape(a.shape))
            at += a.nbytes
        return out


def assert_same(got: np.ndarray, want: np.ndarray, label: str, zero_signs: bool = True) -> None:
    """Equal values, NaN included, and (unless told not to) the sign of every zero.

    Max-pool and ReLU keep the first of a tie between −0 and +0, as NumPy's scalar loops (in
    Pyodide, where the kernels replace them) do; native NumPy's x86 SIMD keeps the second.
    """
    assert got.shape == want.shape, label
    np.testing.assert_array_equal(got, want, err_msg=label)
    if zero_signs:
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=label)


def awkward(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Float32 values with ties, zeros of both signs, a NaN and an infinity among them."""
    X = np.round(rng.standard_normal(shape), 1).astype(np.float32)
    flat = X.reshape(-1)
    flat[rng.integers(0, flat.size, max(1, flat.size // 7))] = -0.0
    flat[rng.integers(0, flat.size, max(1, flat.size // 7))] = 0.0
    if flat.size > 20:
        flat[flat.size // 3] = np.nan
        flat[flat.size // 2] = -np.inf
    return X


# (n, h, w, c, k, pad): 1 channel, channels not a multiple of 4, "same" padding with odd and
# even k, k = 1, a kernel larger than the image ("same"), and the cnn preset's two layers.
CONV_CASES = [
    (2, 7, 5, 1, 3, 0), (1, 6, 6, 3, 5, 2), (2, 5, 7, 5, 4, 1), (3, 3, 3, 2, 3, 1),
    (1, 4, 6, 7, 1, 0), (1, 2, 3, 3, 5, 2), (2, 6, 9, 6, 6, 2), (2, 28, 28, 1, 5, 0),
    (2, 12, 12, 16, 5, 0), (1, 9, 9, 33, 3, 1),
]  # fmt: skip
# (n, h, w, c, size): remainders dropped, 1 channel, tails, size 1, the cnn preset's pools.
POOL_CASES = [
    (2, 5, 7, 3, 2), (1, 6, 6, 16, 3), (2, 4, 5, 1, 2), (1, 9, 8, 7, 4), (1, 3, 3, 5, 1),
    (2, 24, 24, 16, 2), (1, 8, 8, 32, 2), (1, 17, 17, 2, 16),
]  # fmt: skip
RELU_SIZES = [1, 2, 3, 4, 5, 17, 1001]


def conv_out(h: int, w: int, k: int, pad: int) -> tuple[int, int]:
    """(oh, ow) of the cases' convs: "same" (as Conv2D pads it) when pad > 0, else "valid"."""
    return (h, w) if pad else (h - k + 1, w - k + 1)


@pytest.mark.native
@needs_node
@pytest.mark.parametrize("wasm", ["gemm.wasm", "gemm_relaxed.wasm"])
def test_im2col_and_col2im_kernels_equal_numpy(repo_root, tmp_path, rng, wasm):
    job, expected = KernelRun(), []
    for n, h, w, c, k, pad in CONV_CASES:
        oh, ow = conv_out(h, w, k, pad)
        X = awkward(rng, (n, h, w, c))  # (n, h, w, c)
        P = np.full((n, oh, ow, k, k, c), np.nan, np.float32)  # (n, oh, ow, k, k, c)
        job.call("im2col", n, h, w, c, k, pad, pad, oh, ow, job.buf(X), job.buf(P))
        expected.append(("im2col", REF.im2col(X, pad, P.copy())))
        dP = rng.standard_normal(P.shape).astype(np.float32)  # (n, oh, ow, k, k, c)
        dX = np.full(X.shape, np.nan, np.float32)  # (n, h, w, c), every element written
        job.call("col2im", n, h, w, c, k, pad, pad, oh, ow, job.buf(dP), job.buf(dX))
        expected.append(("col2im", REF.col2im(dP, pad, dX.copy())))
    out = job.run(repo_root, tmp_path, wasm)
    for (name, want), got, case in zip(expected, out[1::2], np.repeat(CONV_CASES, 2, axis=0),
                                       strict=True):  # fmt: skip
        assert_same(got, want, f"{name} {tuple(case)}")


@pytest.mark.native
@needs_node
@pytest.mark.parametrize("wasm", ["gemm.wasm", "gemm_relaxed.wasm"])
def test_maxpool_kernels_equal_numpy(repo_root, tmp_path, rng, wasm):
    job, expected = KernelRun(), []
    for n, h, w, c, s in POOL_CASES:
        X = awkward(rng, (n, h, w, c))  # (n, h, w, c)
        Y = np.full((n, h // s, w // s, c), np.nan, np.float32)  # (n, oh, ow, c)
        arg = np.full(Y.shape, 77, np.uint8)  # (n, oh, ow, c), every element written
        arg_want = arg.copy()
        Y_want = REF.maxpool(X, s, Y.copy(), arg_want)  # (n, oh, ow, c)
        x = job.buf(X)
        job.call("maxpool_forward", n, h, w, c, s, x, job.buf(Y), job.buf(arg))
        job.call("maxpool_forward", n, h, w, c, s, x, job.buf(Y), 0)  # no argmax wanted
        dY = awkward(rng, Y.shape)  # (n, oh, ow, c)
        dX = np.full(X.shape, np.nan, np.float32)  # (n, h, w, c)
        job.call("maxpool_backward", n, h, w, c, s, job.buf(dY), job.buf(arg_want), job.buf(dX))
        with np.errstate(invalid="ignore"):  # ±inf · 0 in dY, as NumPy would compute it
            dX_want = REF.maxpool_backward(dY, arg_want, s, dX.copy())
        expected.append((Y_want, arg_want, dX_want))
    out = job.run(repo_root, tmp_path, wasm)
    for i, (case, (Y_want, arg_want, dX_want)) in enumerate(zip(POOL_CASES, expected, strict=True)):
        _, Y, arg, Y_no_arg, _, _, dX = out[7 * i : 7 * i + 7]
        assert_same(Y, Y_want, f"maxpool {case}", zero_signs=False)
        np.testing.assert_array_equal(arg, arg_want, err_msg=f"argmax {case}")
        assert_same(Y_no_arg, Y_want, f"maxpool without argmax {case}", zero_signs=False)
        assert_same(dX, dX_want, f"maxpool backward {case}")


@pytest.mark.native
@needs_node
@pytest.mark.parametrize("wasm", ["gemm.wasm", "gemm_relaxed.wasm"])
def test_relu_kernels_equal_numpy(repo_root, tmp_path, rng, wasm):
    job, expected = KernelRun(), []
    for size in RELU_SIZES:
        Z = awkward(rng, (size,))  # (size,)
        A = REF.relu(Z.copy())  # (size,)
        dA = awkward(rng, (size,))  # (size,)
        job.call("relu_forward", size, job.buf(Z))
        job.call("relu_backward", size, job.buf(dA), job.buf(A))
        with np.errstate(invalid="ignore"):  # ±inf · 0 in dA, as NumPy would compute it
            expected.append((A, REF.relu_backward(dA.copy(), A)))
    out = job.run(repo_root, tmp_path, wasm)
    for i, (size, (A, dZ)) in enumerate(zip(RELU_SIZES, expected, strict=True)):
        assert_same(out[3 * i], A, f"relu n={size}", zero_signs=False)
        assert_same(out[3 * i + 1], dZ, f"relu backward n={size}")


@pytest.mark.native
@needs_node
@pytest.mark.parametrize("wasm", ["gemm.wasm", "gemm_relaxed.wasm"])
def test_sum_rows_kernel_equals_numpy(repo_root, tmp_path, rng, wasm):
    shapes = [(1, 2), (3, 3), (7, 5), (128, 10), (1000, 16), (33, 17), (5, 40), (73728, 16)]
    job, expected = KernelRun(), []
    for n, m in shapes:
        A = awkward(rng, (n, m)) * 10.0 ** rng.integers(-3, 4, (n, m))  # (n, m), mixed scales
        A = np.nan_to_num(A, nan=1.0, neginf=-1e30).astype(np.float32)
        job.call("sum_rows", n, m, job.buf(A), job.buf(np.full(m, np.nan, np.float32)))
        expected.append(np.sum(A, axis=0))  # (m,), row by row from 0: rounding order matters
    out = job.run(repo_root, tmp_path, wasm)
    for i, (shape, want) in enumerate(zip(shapes, expected, strict=True)):
        assert_same(out[2 * i + 1], want, f"sum_rows {shape}", zero_signs=False)


# ---- the backend's routing and fallbacks, with a stand-in kernel ---------------------------


class MarkingKernel(FakeKernel):
    """FakeKernel plus conv ops that only log their call: a kernel's work shows up as NaN."""

    def __init__(self, ops: tuple[str, ...] = CONV_KERNELS):
        super().__init__()
        for name in ops:
            setattr(self, name, self._marker(name))

    def _marker(self, name: str):
        def op(*args: int) -> None:
            self.log.append(name)

        return op


def conv_arrays(rng, dtype=np.float32):
    """X, P, dP, dX, Y, arg: a "same" 3×3 conv and a 2×2 pool of X (2, 5, 6, 3)."""
    X = rng.standard_normal((2, 5, 6, 3)).astype(dtype)  # (n, h, w, c)
    dP = rng.standard_normal((2, 5, 6, 3, 3, 3)).astype(dtype)  # (n, oh, ow, k, k, c)
    Y, arg = np.zeros((2, 2, 3, 3), dtype), np.zeros((2, 2, 3, 3), np.uint8)  # (n, oh, ow, c)
    return X, np.zeros_like(dP), dP, np.zeros_like(X), Y, arg


def fresh(a: np.ndarray) -> np.ndarray:
    """A copy of a, C-contiguous only if a is."""
    return a.copy() if a.flags.c_contiguous else np.asfortranarray(a)


def rows_and_sums(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X's examples as rows (n, h·w·c), strided if X is, and an array for their sum."""
    rows = X.reshape(len(X), -1) if X.flags.c_contiguous and X.size else X[:, 0, 0]
    return rows, np.zeros(rows.shape[1], X.dtype)


def run_ops(backend, X, P, dP, dX, Y, arg):
    """Every conv op once, on copies of the outputs: their results in a list."""
    return [
        backend.im2col(X, 1, fresh(P)),
        backend.col2im(dP, 1, fresh(dX)),
        backend.maxpool(X, 2, fresh(Y), fresh(arg)),
        backend.maxpool(X, 2, fresh(Y)),
        backend.maxpool_backward(Y, arg, 2, fresh(dX)),
        backend.relu(fresh(X)),
        backend.relu_backward(fresh(X), np.maximum(X, 0)),
        backend.sum_rows(*rows_and_sums(X)),
    ]


def test_backend_runs_each_conv_op_on_the_kernel(rng):
    kernel = MarkingKernel()
    backend = WasmBackend(kernel)
    run_ops(backend, *conv_arrays(rng))
    assert kernel.log == ["im2col", "col2im", "maxpool_forward", "maxpool_forward",
                          "maxpool_backward", "relu_forward", "relu_backward",
                          "sum_rows"]  # fmt: skip
    assert backend.op_calls == 8


@pytest.mark.parametrize("case", ["float64", "strided", "stale_module", "empty"])
def test_backend_conv_ops_fall_back_to_numpy(rng, case):
    kernel = MarkingKernel(() if case == "stale_module" else CONV_KERNELS)
    backend = WasmBackend(kernel)
    X, P, dP, dX, Y, arg = conv_arrays(rng, np.float64 if case == "float64" else np.float32)
    if case == "strided":
        X = np.repeat(X, 2, axis=2)[:, :, ::2]  # (2, 5, 6, 3), not contiguous
        dP = np.repeat(dP, 2, axis=0)[::2]  # (2, 5, 6, 3, 3, 3), not contiguous
        P, dX, Y = (np.asfortranarray(a) for a in (P, dX, Y))
    elif case == "empty":
        X, P, dP, dX, Y, arg = (a[:0] for a in (X, P, dP, dX, Y, arg))
    for got, want in zip(run_ops(backend, X, P, dP, dX, Y, arg),
                         run_ops(REF, X, P, dP, dX, Y, arg), strict=True):  # fmt: skip
        np.testing.assert_array_equal(got, want)
    assert kernel.log == [] and backend.op_calls == 0


def test_backend_never_hands_overlapping_or_readonly_arrays_to_the_kernel(rng):
    kernel = MarkingKernel()
    backend = WasmBackend(kernel)
    X, P, dP, dX, Y, _ = conv_arrays(rng)
    backend.im2col(P.reshape(-1)[: X.size].reshape(X.shape), 1, P)  # reads what it writes
    backend.col2im(dP, 1, dP.reshape(-1)[: dX.size].reshape(dX.shape))
    backend.relu_backward(dX[:, 1:], dX[:, :-1])  # shifted views of one buffer
    backend.maxpool(X, 2, Y, Y.reshape(-1).view(np.uint8)[: Y.size].reshape(Y.shape))
    P.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        backend.im2col(X, 1, P)  # NumPy's own error: nothing was handed over
    assert kernel.log == []


def test_layers_route_through_their_backend(rng):
    kernel = MarkingKernel()
    backend = WasmBackend(kernel, min_work=1 << 40)  # products on NumPy, conv ops marked
    conv = Conv2D(3, 4, 3, "same", rng, backend=backend)
    pool, relu = MaxPool2D(2, backend=backend), ReLU(backend)
    X = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)  # (n, h, w, c)
    Z = relu.forward(conv.forward(X))  # (2, 6, 6, 4)
    Y = pool.forward(Z)  # (2, 3, 3, 4)
    conv.backward(relu.backward(pool.backward(np.ones_like(Y))))
    assert kernel.log == ["im2col", "relu_forward", "maxpool_forward", "maxpool_backward",
                          "relu_backward", "sum_rows", "col2im"]  # fmt: skip


def test_make_activation_puts_it_on_the_backend():
    backend = WasmBackend(MarkingKernel())
    for name in ("relu", "sigmoid", "tanh", "leaky_relu"):
        assert make_activation(name, backend).backend is backend
        assert isinstance(make_activation(name).backend, NumpyBackend)


def test_wide_pools_train_on_numpy(rng):
    # pool17..pool28 are valid configs: offsets up to 783 need more than a byte.
    kernel = MarkingKernel()
    pool = MaxPool2D(17, backend=WasmBackend(kernel))
    X = rng.standard_normal((2, 17, 18, 3)).astype(np.float32)  # (n, h, w, c)
    Y = pool.forward(X)  # (2, 1, 1, 3)
    np.testing.assert_array_equal(Y, X[:, :17, :17].max(axis=(1, 2), keepdims=True))
    dX = pool.backward(np.ones_like(Y))  # (2, 17, 18, 3)
    assert dX.sum() == Y.size and np.all(dX[:, :, 17] == 0)
    flat = X[:, :17, :17].reshape(2, -1, 3).argmax(axis=1)  # (2, 3), first max
    assert np.all(dX[:, :17, :17].reshape(2, -1, 3)[np.arange(2)[:, None], flat, [0, 1, 2]])
    assert kernel.log == []  # uint16 offsets: the kernel's are bytes


def test_self_test_checks_the_conv_ops(rng):
    class Wrong(FakeKernel):
        def relu_forward(self, n: int, Z: int) -> None:
            pass  # leaves negatives in place

    ok, _ = self_test(WasmBackend(Wrong()), rng)
    assert not ok
    ok, _ = self_test(WasmBackend(FakeKernel()), rng)  # a module without conv_ops.c
    assert ok
