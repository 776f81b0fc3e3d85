// Micro-benchmark: NumPy-in-Pyodide vs the WebAssembly GEMM kernel, under Node.
//
//   node web/gemm/bench.mjs                 # simd128 kernel
//   node --experimental-wasm-relaxed-simd web/gemm/bench.mjs relaxed   # Node 20 needs the flag
//
// Prints GFLOP/s for the three layouts at the MLP 784-128-10 batch-128 shapes, for the
// products of the cnn preset's step (conv5x16,pool2,conv5x32,pool2,dense128, batch 128), the
// milliseconds of that step's element-wise passes (conv_ops.c) against NumPy, and the
// examples/s of whole training steps. Pyodide and numpy come from dist/pyodide (the built
// site) or node_modules/pyodide + .cache/pyodide-wheels. Figures, not a test: the best of
// several short runs, so other load on the machine mostly drops out.

import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { captureWasmMemory, installGemm } from "./gemm.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const flavour = process.argv[2] ?? "simd";

// The runtime always from node_modules: the repo's package.json says "type": "module", so
// Node would load dist/pyodide/pyodide.asm.js (CommonJS) as an ES module and fail.
function findPyodide() {
  const runtime = join(ROOT, "node_modules", "pyodide");
  const candidates = [
    [runtime, join(ROOT, "dist", "pyodide")],
    [runtime, join(ROOT, ".cache", "pyodide-wheels")],
  ];
  for (const [dir, wheels] of candidates) {
    const wheel = existsSync(wheels) && readdirSync(wheels).find((f) => /^numpy-.*wasm32\.whl$/.test(f));
    if (existsSync(join(dir, "pyodide.mjs")) && wheel) return [dir, join(wheels, wheel)];
  }
  throw new Error("no Pyodide + numpy wheel: run npm ci and python scripts/fetch_wheels.py");
}

const [pyodideDir, numpyWheel] = findPyodide();
captureWasmMemory();
const { loadPyodide } = await import(pathToFileURL(join(pyodideDir, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ indexURL: pyodideDir + "/" });
const install = await installGemm(pyodide, pathToFileURL(join(ROOT, "web", "gemm", "gemm.wasm")),
  { relaxed: flavour === "relaxed" });
console.log(`installGemm: ${JSON.stringify(install)}`);
if (!install.ok) process.exit(1);
await pyodide.loadPackage(numpyWheel, { messageCallback: () => {} });
const py = join(ROOT, "py");
pyodide.FS.mkdirTree(py);
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: py }, py);
pyodide.setStdout({ batched: (line) => console.log(line) });
pyodide.globals.set("PY_DIR", py);
pyodide.runPython(`
import sys, time
sys.path.insert(0, PY_DIR)
import numpy as np
from scribblenet.matmul import NumpyBackend
from scribblenet.wasm_matmul import WasmBackend

def best_seconds(fn, repeats=15, budget=1.5):
    fn()
    best, start = float("inf"), time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return best

rng = np.random.default_rng(0)
numpy_b, wasm_b = NumpyBackend(), WasmBackend()
print(f"{'layout':<7}{'M x N x K':>16}{'numpy GFLOP/s':>16}{'kernel GFLOP/s':>16}{'speed-up':>10}")
for M, N, K in [(128, 128, 784), (128, 10, 128), (784, 128, 128), (128, 128, 10)]:
    for layout in ("nn", "tn", "nt"):
        A = rng.standard_normal((K, M) if layout == "tn" else (M, K), dtype=np.float32)
        B = rng.standard_normal((N, K) if layout == "nt" else (K, N), dtype=np.float32)
        out = np.empty((M, N), np.float32)
        method = {"nn": "mm", "tn": "mm_tn", "nt": "mm_nt"}[layout]
        rates = []
        for backend in (numpy_b, wasm_b):
            f = getattr(backend, method)
            rates.append(2 * M * N * K / best_seconds(lambda: f(A, B, out=out)) / 1e9)
        print(f"{layout:<7}{f'{M} x {N} x {K}':>16}{rates[0]:>16.2f}{rates[1]:>16.2f}"
              f"{rates[1] / rates[0]:>9.1f}x")

# The cnn preset's products (batch 128): conv1 forward/dW, conv2 forward/dW/dX, dense128's.
print(f"{'cnn product':<12}{'layout':<7}{'M x N x K':>18}{'numpy GFLOP/s':>15}{'kernel GFLOP/s':>16}")
for label, layout, M, N, K in [("conv1 Z", "nn", 73728, 16, 25), ("conv1 dW", "tn", 25, 16, 73728),
                               ("conv2 Z", "nn", 8192, 32, 400), ("conv2 dW", "tn", 400, 32, 8192),
                               ("conv2 dX", "nt", 8192, 400, 32), ("dense Z", "nn", 128, 128, 512),
                               ("dense dW", "tn", 512, 128, 128), ("dense dX", "nt", 128, 512, 128)]:
    A = rng.standard_normal((K, M) if layout == "tn" else (M, K), dtype=np.float32)
    B = rng.standard_normal((N, K) if layout == "nt" else (K, N), dtype=np.float32)
    out = np.empty((M, N), np.float32)
    method = {"nn": "mm", "tn": "mm_tn", "nt": "mm_nt"}[layout]
    rates = [2 * M * N * K / best_seconds(lambda f=getattr(b, method): f(A, B, out=out),
                                          repeats=5, budget=1.0) / 1e9 for b in (numpy_b, wasm_b)]
    print(f"{label:<12}{layout:<7}{f'{M} x {N} x {K}':>18}{rates[0]:>15.2f}{rates[1]:>16.2f}")

# The cnn preset's element-wise passes, per training step, NumPy code vs kernel (ms).
n = 128
X1 = rng.standard_normal((n, 28, 28, 1), dtype=np.float32)
X2 = rng.standard_normal((n, 12, 12, 16), dtype=np.float32)
P1, P2 = np.empty((n, 24, 24, 5, 5, 1), np.float32), np.empty((n, 8, 8, 5, 5, 16), np.float32)
Z1, Z2 = rng.standard_normal((n, 24, 24, 16), dtype=np.float32), rng.standard_normal((n, 8, 8, 32), dtype=np.float32)
Y1, Y2 = np.empty((n, 12, 12, 16), np.float32), np.empty((n, 4, 4, 32), np.float32)
a1, a2 = np.empty(Y1.shape, np.uint8), np.empty(Y2.shape, np.uint8)
dZ1 = rng.standard_normal(Z1.shape, dtype=np.float32)  # apart from Z1: aliases go to NumPy
ops = [("im2col 28x28x1 k5", lambda b: b.im2col(X1, 0, P1)),
       ("im2col 12x12x16 k5", lambda b: b.im2col(X2, 0, P2)),
       ("col2im 12x12x16 k5", lambda b: b.col2im(P2, 0, X2)),
       ("maxpool 24x24x16", lambda b: b.maxpool(Z1, 2, Y1, a1)),
       ("maxpool 8x8x32", lambda b: b.maxpool(Z2, 2, Y2, a2)),
       ("unpool 24x24x16", lambda b: b.maxpool_backward(Y1, a1, 2, Z1)),
       ("unpool 8x8x32", lambda b: b.maxpool_backward(Y2, a2, 2, Z2)),
       ("relu 24x24x16", lambda b: b.relu(Z1)),
       ("relu backward 24x24x16", lambda b: b.relu_backward(dZ1, Z1)),
       ("db 73728x16", lambda b: b.sum_rows(Z1.reshape(-1, 16), Y1[0, 0, 0])),
       ("db 8192x32", lambda b: b.sum_rows(Z2.reshape(-1, 32), Y2[0, 0, 0]))]
print(f"{'cnn pass':<24}{'numpy ms':>10}{'kernel ms':>11}{'speed-up':>10}")
totals = [0.0, 0.0]
for label, op in ops:
    ms = [1000 * best_seconds(lambda b=b: op(b), repeats=5, budget=1.0) for b in (numpy_b, wasm_b)]
    totals = [t + m for t, m in zip(totals, ms)]
    print(f"{label:<24}{ms[0]:>10.2f}{ms[1]:>11.2f}{ms[0] / ms[1]:>9.1f}x")
print(f"{'total':<24}{totals[0]:>10.2f}{totals[1]:>11.2f}{totals[0] / totals[1]:>9.1f}x")

# Cost of one call into the kernel (2x2x2: all overhead).
a = np.ones((2, 2), np.float32)
o = np.empty((2, 2), np.float32)
wasm_b.min_work = 0
t = best_seconds(lambda: [wasm_b.mm(a, a, out=o) for _ in range(1000)], repeats=5) / 1000
print(f"overhead of one kernel call from Python: {t * 1e6:.1f} us")
wasm_b.min_work = 2048

from scribblenet import Network, NetworkConfig, TrainConfig, Trainer
X = rng.integers(0, 256, (4096, 784), dtype=np.uint8)
y = rng.integers(0, 10, 4096).astype(np.uint8)
for backend in (numpy_b, wasm_b):
    net = Network(NetworkConfig(hidden=(128,)), np.random.default_rng(0))
    net.set_backend(backend)
    trainer = Trainer(net, TrainConfig(batch_size=128, epochs=1), X, y, rng=np.random.default_rng(1))
    steps = 24 if backend is wasm_b else 6
    events = [e for e in trainer.run(max_batches=steps) if e["type"] == "batch"]
    # The trainer's own figure: examples over the seconds spent inside training steps.
    print(f"MLP 784-128-10 batch 128, {backend.name}: "
          f"{events[-1]['examples_per_s']:,.0f} examples/s (Trainer's examples_per_s)")

`);
