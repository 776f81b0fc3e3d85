// Micro-benchmark of the WebAssembly GEMM kernel under Node, alone and against NumPy.
//
//   node web/gemm/bench.mjs [kernels|pyodide] [simd|relaxed] [--vs a.wasm,b.wasm]
//                           [--repeats N] [--native PYTHON]
//
// 1. kernels (no Pyodide needed): GFLOP/s of the raw exports on the products of the MLP
//    784-128-10 and the cnn preset's training steps (batch 128), for gemm.wasm and
//    gemm_relaxed.wasm and any variant modules given with --vs, all on one memory, the
//    modules interleaved sample by sample; each figure is the median (--stat best: the
//    fastest) of --repeats (default 15) samples of >= --sample-ms (default 10) ms. Then the products' milliseconds per training step, summed. With
//    --native PYTHON, the same products in that Python's NumPy (one BLAS thread) too.
// 2. pyodide: GFLOP/s for the three layouts at the MLP 784-128-10 batch-128 shapes, for the
//    products of the cnn preset's step (conv5x16,pool2,conv5x32,pool2,dense128, batch 128),
//    the milliseconds of that step's element-wise passes (conv_ops.c) against NumPy, and the
//    examples/s of whole training steps, NumPy-in-Pyodide vs the kernel (simd, or relaxed).
//    Pyodide and numpy come from dist/pyodide (the built site) or node_modules/pyodide +
//    .cache/pyodide-wheels. Figures, not a test: the best of several short runs, so other
//    load on the machine mostly drops out.
// Without kernels/pyodide both run. Node 20 needs --experimental-wasm-relaxed-simd for the
// relaxed module: the script sets that V8 flag itself before compiling anything.

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { captureWasmMemory, detectFeatures, installGemm } from "./gemm.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const value = argv[i + 1];
  argv.splice(i, 2);
  return value;
};
const variants = option("--vs", "").split(",").filter(Boolean);
const repeats = Number(option("--repeats", "15"));
const sampleMs = Number(option("--sample-ms", "10"));
const stat = option("--stat", "median"); // or "best": less sensitive to other load
const only = option("--only", "").split(",").filter(Boolean); // labels, e.g. "h1 Z,conv2 dX"
const nativePython = option("--native", "");
const part = argv.find((a) => a === "kernels" || a === "pyodide");
const flavour = argv.find((a) => a === "simd" || a === "relaxed") ?? "simd";

if (!detectFeatures().relaxed) setFlagsFromString("--experimental-wasm-relaxed-simd");
// The kernels compile straight to the optimising tier: with dynamic tiering the first samples
// of a module could still run baseline (Liftoff) code, or wait for a busy machine's
// background compile. Pyodide's big module is left to the default tiering.

// The products of one training step, batch 128: [label, layout, M, N, K, bias?, count per
// step]. NHWC im2col convs: conv1 cols (73728 x 25), conv2 cols (8192 x 400); the first
// layer's dX is never computed.
const STEPS = {
  mlp: [
    ["h1 Z", "nn", 128, 128, 784, true],
    ["h1 dW", "tn", 784, 128, 128, false],
    ["out Z", "nn", 128, 10, 128, true],
    ["out dW", "tn", 128, 10, 128, false],
    ["out dX", "nt", 128, 128, 10, false],
  ],
  cnn: [
    ["conv1 Z", "nn", 73728, 16, 25, true],
    ["conv1 dW", "tn", 25, 16, 73728, false],
    ["conv2 Z", "nn", 8192, 32, 400, true],
    ["conv2 dW", "tn", 400, 32, 8192, false],
    ["conv2 dX", "nt", 8192, 400, 32, false],
    ["dense Z", "nn", 128, 128, 512, true],
    ["dense dW", "tn", 512, 128, 128, false],
    ["dense dX", "nt", 128, 512, 128, false],
    ["out Z", "nn", 128, 10, 128, true],
    ["out dW", "tn", 128, 10, 128, false],
    ["out dX", "nt", 128, 128, 10, false],
  ],
};
// The MLP's dX = dZ @ W.T of the hidden layer is not part of its step (X needs no gradient)
// but is the same product as a deeper net's, so it is measured too.
const EXTRA = [["h1 dX", "nt", 128, 784, 128, false]];

function kernelBench() {
  const modules = [
    ["simd", join(ROOT, "web", "gemm", "gemm.wasm")],
    ["relaxed", join(ROOT, "web", "gemm", "gemm_relaxed.wasm")],
    ...variants.map((v) => [basename(v, ".wasm"), resolve(v)]),
  ];
  const shapes = [];
  const seen = new Set();
  for (const list of [...Object.values(STEPS), EXTRA]) {
    for (const s of list) {
      const key = s.slice(1, 6).join();
      if (seen.has(key) || (only.length && !only.includes(s[0]))) continue;
      shapes.push(s);
      seen.add(key);
    }
  }
  // One memory for every module; the operands of every shape, each on a fresh 64-byte line.
  let floats = 16;
  const at = shapes.map(([, , M, N, K]) => {
    const p = { A: floats, B: floats + M * K + 16, C: 0, bias: 0 };
    p.C = p.B + K * N + 16;
    p.bias = p.C + M * N + 16;
    floats = p.bias + N + 16;
    for (const k of Object.keys(p)) p[k] = Math.ceil(p[k] / 16) * 16;
    floats = Math.ceil(floats / 16) * 16;
    return p;
  });
  const memory = new WebAssembly.Memory({ initial: Math.ceil((4 * floats + 65536) / 65536) + 1 });
  const heap = new Float32Array(memory.buffer);
  let seed = 12345;
  for (let i = 16; i < floats; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    heap[i] = (seed >>> 8) / (1 << 23) - 1;
  }
  const kernels = modules.map(([name, path]) => {
    const mod = new WebAssembly.Module(readFileSync(path));
    return [name, new WebAssembly.Instance(mod, { env: { memory } }).exports];
  });
  const call = (k, [, layout, M, N, K, bias], p) => {
    const [lda, ldb] = [layout === "tn" ? M : K, layout === "nt" ? K : N];
    k[`gemm_${layout}`](M, N, K, 4 * p.A, lda, 4 * p.B, ldb, 4 * p.C, N, 0, bias ? 4 * p.bias : 0);
  };
  const sample = (k, s, p) => {
    let calls = 0;
    const t0 = performance.now();
    let t;
    do {
      call(k, s, p);
      calls++;
    } while ((t = performance.now() - t0) < sampleMs);
    return t / calls; // ms
  };
  const median = (xs) => xs.slice().sort((a, b) => a - b)[stat === "best" ? 0 : xs.length >> 1];
  const ms = new Map(); // key -> [ms per module]
  const native = nativePython ? nativeBench(nativePython, shapes) : null;
  const head = `${"product".padEnd(10)}${"layout".padEnd(7)}${"M x N x K".padStart(17)}` +
    (native ? "numpy-1T".padStart(10) : "") + kernels.map(([n]) => n.slice(0, 13).padStart(14)).join("");
  console.log(`kernel GFLOP/s, ${stat} of ${repeats} (${kernels.map(([n]) => n).join(", ")})`);
  console.log(head);
  shapes.forEach((s, i) => {
    const times = kernels.map(() => []);
    call(kernels[0][1], s, at[i]);
    for (let r = 0; r < repeats; r++) kernels.forEach(([, k], j) => times[j].push(sample(k, s, at[i])));
    const med = times.map(median);
    ms.set(s.slice(1, 6).join(), med);
    const [label, layout, M, N, K] = s;
    const gf = (t) => (2 * M * N * K / (t * 1e6)).toFixed(2).padStart(14);
    console.log(`${label.padEnd(10)}${layout.padEnd(7)}${`${M} x ${N} x ${K}`.padStart(17)}` +
      (native ? (2 * M * N * K / (native[i] * 1e6)).toFixed(2).padStart(10) : "") + med.map(gf).join(""));
  });
  for (const [step, list] of Object.entries(STEPS)) {
    if (only.length) break;
    const total = kernels.map((_, j) => list.reduce((a, s) => a + ms.get(s.slice(1, 6).join())[j], 0));
    const nat = native ? list.reduce((a, s) => a + native[shapes.findIndex((t) => t.slice(1, 6).join() === s.slice(1, 6).join())], 0) : 0;
    console.log(`${`${step} step products, ms`.padEnd(34)}` + (native ? nat.toFixed(3).padStart(10) : "") +
      total.map((t) => t.toFixed(3).padStart(14)).join("") +
      (native ? `   (numpy-1T / kernel: ${total.map((t) => (nat / t).toFixed(2)).join(", ")})` : ""));
  }
}

// The same products in a native NumPy, one BLAS thread: ms per product, median of samples.
function nativeBench(python, shapes) {
  const code = `
import json, sys, time
import numpy as np
shapes = json.loads(sys.argv[1]); reps = int(sys.argv[2])
rng = np.random.default_rng(0); out = []
for label, layout, M, N, K, bias in shapes:
    A = rng.standard_normal((K, M) if layout == "tn" else (M, K), dtype=np.float32)
    B = rng.standard_normal((N, K) if layout == "nt" else (K, N), dtype=np.float32)
    b = rng.standard_normal(N, dtype=np.float32); C = np.empty((M, N), np.float32)
    def f():
        if layout == "nn": np.matmul(A, B, out=C)
        elif layout == "tn": np.matmul(A.T, B, out=C)
        else: np.matmul(A, B.T, out=C)
        if bias: np.add(C, b, out=C)
    f(); samples = []
    for _ in range(reps):
        n, t0 = 0, time.perf_counter()
        while True:
            f(); n += 1; t = time.perf_counter() - t0
            if t > %SAMPLE%: break
        samples.append(1000 * t / n)
    out.append(sorted(samples)[0 if sys.argv[3] == 'best' else len(samples) // 2])
print(json.dumps(out))`.replace("%SAMPLE%", String(sampleMs / 1000));
  const env = { ...process.env, OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" };
  const r = spawnSync(python, ["-c", code, JSON.stringify(shapes), String(repeats), stat], { env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`--native ${python}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

if (part !== "pyodide") {
  setFlagsFromString("--no-liftoff");
  kernelBench();
  setFlagsFromString("--liftoff");
}
if (part === "kernels") process.exit(0);

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
