// Micro-benchmark: NumPy-in-Pyodide vs the WebAssembly GEMM kernel, under Node.
//
//   node web/gemm/bench.mjs                 # simd128 kernel
//   node --experimental-wasm-relaxed-simd web/gemm/bench.mjs relaxed   # Node 20 needs the flag
//
// Prints GFLOP/s for the three layouts at the MLP 784-128-10 batch-128 shapes and the
// examples/s of whole training steps. Pyodide and numpy come from dist/pyodide (the built
// site) or node_modules/pyodide + .cache/pyodide-wheels. Figures, not a test: the best of
// several short runs, so other load on the machine mostly drops out.

import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { captureWasmMemory, installGemm } from "./gemm.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const flavour = process.argv[2] ?? "simd";

function findPyodide() {
  const candidates = [
    [join(ROOT, "dist", "pyodide"), join(ROOT, "dist", "pyodide")],
    [join(ROOT, "node_modules", "pyodide"), join(ROOT, ".cache", "pyodide-wheels")],
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
