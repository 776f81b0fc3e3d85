// Node checks of the WebAssembly GEMM kernel, driven by tests/test_gemm.py.
//
//   node tests/gemm_node_check.mjs kernel <kernel.wasm> <out_dir> [seed]
//     Runs the kernel alone, on its own WebAssembly.Memory, over random matrices (edge sizes,
//     padded leading dimensions, misaligned pointers, accumulate and bias) and writes
//     <out_dir>/cases.json + <out_dir>/data.bin (float32) for Python to compare with NumPy.
//     Also checks in place that the kernel never writes outside C and that it still works
//     after the memory grows; those failures are listed in cases.json as "errors".
//
//   node tests/gemm_node_check.mjs adam <kernel.wasm> <out_dir> [seed]
//     Runs the kernel's adam_update alone over random arrays of edge sizes (n % 4 != 0, n = 1,
//     misaligned pointers) and writes <out_dir>/adam.json + <out_dir>/adam.bin (float32: the
//     inputs p, g, m, v then the outputs p, m, v of each case) for Python to compare with
//     NumPy's Adam step; writes outside the arrays are listed as "errors".
//
//   node tests/gemm_node_check.mjs pyodide <pyodide_dir> <numpy_wheel> [relaxed|simd]
//     The real integration: captureWasmMemory(), loadPyodide, installGemm, then in Python
//     scribblenet.wasm_matmul.load_wasm_backend() and products against NumPy, before and
//     after heap growth. Prints one line "RESULT <json>".
//
//   node tests/gemm_node_check.mjs install
//     installGemm's own logic against a stand-in for Pyodide (no runtime needed): it must find
//     the heap among the captured memories, register working functions, and on every failure
//     return ok: false with a reason instead of throwing. Prints one line "RESULT <json>".

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const [mode, ...args] = process.argv.slice(2);
if (mode === "kernel") await kernelCheck(...args);
else if (mode === "adam") await adamCheck(...args);
else if (mode === "pyodide") await pyodideCheck(...args);
else if (mode === "install") await installCheck();
else {
  console.error("usage: node tests/gemm_node_check.mjs kernel|adam|pyodide|install ... (see the header)");
  process.exit(2);
}

// Small deterministic PRNG (mulberry32) so a failing case can be reproduced from its seed.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function kernelCheck(wasmPath, outDir, seedArg) {
  const rand = rng(Number(seedArg ?? 1234));

  // The memory the kernel imports, standing in for Pyodide's heap. Page 0 is left unused so a
  // null bias pointer never aliases data.
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 4096 });
  const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), { env: { memory } });
  const k = instance.exports;

  let top = 65536; // bump allocator, in bytes
  function alloc(nFloats, pad) {
    // pad (in floats) deliberately misaligns some buffers: wasm loads need no alignment.
    const ptr = top + 4 * pad;
    top = ptr + 4 * nFloats + 64;
    const need = Math.ceil(top / 65536) - memory.buffer.byteLength / 65536;
    if (need > 0) memory.grow(need);
    return ptr;
}
  const f32 = (ptr, n) => new Float32Array(memory.buffer, ptr, n);

  const GUARD = 8;
  const SENTINEL = 12345.5;
  const shapes = [
    [1, 1, 1], [3, 17, 5], [2, 16, 1], [1, 15, 7], [5, 1, 9], [7, 3, 1], [4, 4, 4],
    [2, 10, 128], [128, 10, 128], [128, 128, 10], [33, 31, 29], [16, 16, 300], [3, 20, 257],
    [9, 47, 513], [128, 128, 784], [64, 33, 0],
  ];
  const layouts = ["nn", "tn", "nt"];
  const cases = [];
  const chunks = [];
  let offset = 0; // in floats, into data.bin
  const errors = [];

  function emit(arr) {
    chunks.push(Float32Array.from(arr));
    const at = offset;
    offset += arr.length;
    return at;
}

  let index = 0;
  for (const [M, N, K] of shapes) {
    for (const layout of layouts) {
      for (const variant of ["plain", "accumulate", "bias", "padded"]) {
        index += 1;
        const beta = variant === "accumulate" ? 0.5 : 0.0;
        const withBias = variant === "bias" || variant === "accumulate";
        const extra = variant === "padded" ? 3 : 0; // leading dimension > row length
        // Stored shapes: A is (M, K) for nn/nt and (K, M) for tn; B is (K, N) or (N, K) for nt.
        const [ar, ac] = layout === "tn" ? [K, M] : [M, K];
        const [br, bc] = layout === "nt" ? [N, K] : [K, N];
        const lda = ac + extra, ldb = bc + extra, ldc = N + extra;
        const pad = index % 4; // vary the alignment
        const A = alloc(Math.max(ar * lda, 1), pad);
        const B = alloc(Math.max(br * ldb, 1), (pad + 1) % 4);
        const Cfull = alloc(M * ldc + 2 * GUARD, (pad + 2) % 4);
        const C = Cfull + 4 * GUARD;
        const bias = withBias ? alloc(N, pad) : 0;
        const random = (n) => Float32Array.from({ length: n }, () => 2 * rand() - 1);
        f32(A, ar * lda).set(random(ar * lda));
        f32(B, br * ldb).set(random(br * ldb));
        // Garbage (NaN) in C must be ignored when beta == 0.
        const c0 = new Float32Array(M * ldc).map(() => (beta === 0 ? NaN : 2 * rand() - 1));
        const cview = f32(Cfull, M * ldc + 2 * GUARD);
        cview.fill(SENTINEL);
        f32(C, M * ldc).set(c0);
        // The padding columns of C are not ours either: put sentinels there.
        const cpad = f32(C, M * ldc);
        for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) cpad[i * ldc + j] = SENTINEL;
        if (bias) f32(bias, N).set(random(N));
        const rec = {
          layout, M, N, K, lda, ldb, ldc, beta, bias: Boolean(bias),
          a: emit(f32(A, ar * lda)), a_shape: [ar, lda],
          b: emit(f32(B, br * ldb)), b_shape: [br, ldb],
          c0: emit(f32(C, M * ldc).map((v) => (Number.isNaN(v) ? 0 : v))),
          bias_at: bias ? emit(f32(bias, N)) : -1,
        };
        k[`gemm_${layout}`](M, N, K, A, lda, B, ldb, C, ldc, beta, bias);
        const out = f32(C, M * ldc);
        rec.c = emit(out);
        for (let g = 0; g < GUARD; g++) {
          if (cview[g] !== SENTINEL || cview[GUARD + M * ldc + g] !== SENTINEL) {
            errors.push(`${layout} ${M}x${N}x${K} ${variant}: wrote outside C`);
            break;
          }
        }
        for (let i = 0; i < M; i++)
          for (let j = N; j < ldc; j++)
            if (out[i * ldc + j] !== SENTINEL) errors.push(`${layout} ${M}x${N}x${K}: padding`);
        rec.variant = variant;
        cases.push(rec);
      }
    }
}

  // Heap growth: the instance imported the Memory object, not a buffer, so growing it must
  // neither break the kernel nor move its view of earlier data.
  const before = memory.buffer.byteLength;
  const Ag = alloc(6, 0), Bg = alloc(6, 0);
  f32(Ag, 6).set([1, 2, 3, 4, 5, 6]);
  f32(Bg, 6).set([1, 0, 0, 1, 1, 1]);
  memory.grow(16);
  const Cg = alloc(4, 0);
  k.gemm_nn(2, 2, 3, Ag, 3, Bg, 2, Cg, 2, 0, 0);
  const got = Array.from(f32(Cg, 4));
  if (memory.buffer.byteLength <= before || got.join() !== [4, 5, 10, 11].join()) {
    errors.push(`after memory.grow: got ${got}`);
}

  mkdirSync(outDir, { recursive: true });
  const data = new Float32Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
}
  writeFileSync(join(outDir, "data.bin"), Buffer.from(data.buffer));
  writeFileSync(
    join(outDir, "cases.json"),
    JSON.stringify({ features: k.gemm_features(), cases, errors }, null, 0),
  );
  console.log(`${cases.length} cases, ${errors.length} errors, features=${k.gemm_features()}`);
}

async function adamCheck(wasmPath, outDir, seedArg) {
  const rand = rng(Number(seedArg ?? 4321));
  const memory = new WebAssembly.Memory({ initial: 4 });
  const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), { env: { memory } });
  const k = instance.exports;
  const GUARD = 4;
  const SENTINEL = 12345.5;
  // Step-size scalars as Adam makes them at step 3 with lr 1e-3 (alpha, eps_hat bias-corrected).
  const t = 3, lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const alpha = (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
  const epsHat = eps * Math.sqrt(1 - beta2 ** t);
  const sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 127, 1000, 1027];
  const cases = [];
  const errors = [];
  const chunks = [];
  let offset = 0;
  const emit = (arr) => {
    chunks.push(Float32Array.from(arr));
    offset += arr.length;
    return offset - arr.length;
  };
  let top = 65536;
  sizes.forEach((n, index) => {
    // Four arrays with guards around each; pad misaligns them differently per case.
    const ptrs = [0, 1, 2, 3].map((j) => {
      const ptr = top + 4 * (GUARD + ((index + j) % 4));
      top = ptr + 4 * (n + GUARD) + 64;
      return ptr;
    });
    const need = Math.ceil(top / 65536) - memory.buffer.byteLength / 65536;
    if (need > 0) memory.grow(need);
    const view = (ptr, len) => new Float32Array(memory.buffer, ptr, len);
    const fill = (fn) => Float32Array.from({ length: n }, fn);
    const inputs = [
      fill(() => 2 * rand() - 1), // p
      fill(() => (rand() < 0.1 ? 0 : 4 * rand() - 2)), // g, some exact zeros
      fill(() => 0.2 * rand() - 0.1), // m
      fill(() => (index === 0 ? 0 : 0.01 * rand())), // v (all zero: the first step)
    ];
    ptrs.forEach((ptr, j) => {
      view(ptr - 4 * GUARD, n + 2 * GUARD).fill(SENTINEL);
      view(ptr, n).set(inputs[j]);
    });
    const rec = { n, in: inputs.map(emit) };
    const [p, g, m, v] = ptrs;
    k.adam_update(n, p, g, m, v, alpha, beta1, beta2, 1 - beta1, 1 - beta2, epsHat);
    rec.out = [p, m, v].map((ptr) => emit(view(ptr, n)));
    if (view(g, n).some((x, i) => x !== inputs[1][i])) errors.push(`n=${n}: g was written`);
    for (const ptr of ptrs) {
      const before = view(ptr - 4 * GUARD, GUARD), after = view(ptr + 4 * n, GUARD);
      if ([...before, ...after].some((x) => x !== SENTINEL)) {
        errors.push(`n=${n}: wrote outside an array`);
      }
    }
    cases.push(rec);
  });
  mkdirSync(outDir, { recursive: true });
  const data = new Float32Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  writeFileSync(join(outDir, "adam.bin"), Buffer.from(data.buffer));
  const scalars = { alpha, beta1, beta2, eps_hat: epsHat };
  const report = { features: k.gemm_features(), scalars, cases, errors };
  writeFileSync(join(outDir, "adam.json"), JSON.stringify(report));
  console.log(`${cases.length} adam cases, ${errors.length} errors`);
}

async function pyodideCheck(pyodideDir, numpyWheel, flavour = "simd") {
  const { captureWasmMemory, installGemm } = await import(
    pathToFileURL(join(ROOT, "web", "gemm", "gemm.js")).href
  );
  captureWasmMemory(); // must precede loadPyodide, which creates the heap
  const { loadPyodide } = await import(pathToFileURL(join(pyodideDir, "pyodide.mjs")).href);
  const pyodide = await loadPyodide({ indexURL: resolve(pyodideDir) + "/" });
  const wasmUrl = pathToFileURL(join(ROOT, "web", "gemm", "gemm.wasm"));
  const install = await installGemm(pyodide, wasmUrl, { relaxed: flavour === "relaxed" });
  await pyodide.loadPackage(resolve(numpyWheel), { messageCallback: () => {} });
  const py = join(ROOT, "py");
  pyodide.FS.mkdirTree(py);
  pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: py }, py);
  pyodide.globals.set("PY_DIR", py);
  const report = pyodide.runPython(`
import json, sys
sys.path.insert(0, PY_DIR)
import numpy as np
from scribblenet.wasm_matmul import load_wasm_backend, self_test

rng = np.random.default_rng(7)
backend, reason = load_wasm_backend(rng)
out = {"reason": reason, "ok": backend is not None}
if backend is not None:
    out["relaxed"] = backend.relaxed
    # The training step's own shapes, through the layers' calls (out= buffers included).
    X = rng.uniform(0, 1, (128, 784)).astype(np.float32)
    W1 = rng.normal(0, 0.05, (784, 128)).astype(np.float32)
    dZ = rng.normal(0, 1, (128, 128)).astype(np.float32)
    W2 = rng.normal(0, 0.1, (128, 10)).astype(np.float32)
    dZ2 = rng.normal(0, 1, (128, 10)).astype(np.float32)
    pairs = [
        (backend.mm(X, W1, out=np.empty((128, 128), np.float32)), X @ W1),
        (backend.mm_tn(X, dZ, out=np.empty((784, 128), np.float32)), X.T @ dZ),
        (backend.mm(dZ, W2), dZ @ W2),
        (backend.mm_tn(dZ, dZ2), dZ.T @ dZ2),
        (backend.mm_nt(dZ2, W2, out=np.empty((128, 128), np.float32)), dZ2 @ W2.T),
        (backend.mm(X[::2], W1[:, 3:40]), X[::2] @ W1[:, 3:40]),  # strided views
    ]
    out["layer_err"] = max(float(np.abs(got - want).max()) for got, want in pairs)
    calls = backend.calls
    # Grow the heap well past its size at install time: the kernel holds the Memory, not a
    # buffer, so it must still see (and write) the arrays allocated after growth.
    ballast = [np.empty(25_000_000, np.float32) for _ in range(5)]
    ok, err = self_test(backend, rng)
    out["after_growth"] = {"ok": ok, "max_abs_err": err, "top_address": max(
        a.__array_interface__["data"][0] for a in ballast)}
    del ballast
    out["kernel_calls"] = backend.calls
    out["selftest_calls"] = backend.calls - calls

    # Adam: the kernel's fused step against the optimiser's own NumPy path.
    from scribblenet.config import NetworkConfig, TrainConfig
    from scribblenet.network import Network
    from scribblenet.optimizers import Adam
    from scribblenet.training import Trainer

    ulps = 0.0
    for n in (1, 3, 4, 7, 1000, 100_003):
        p, g, m = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
        v = rng.uniform(0, 1, n).astype(np.float32) ** 2
        args = (7e-4, 0.9, 0.999, 3e-9)
        ref = Adam(learning_rate=1.0)
        ref.m[0], ref.v[0], ref._scratch[0] = m.copy(), v.copy(), np.empty_like(p)
        ref._alpha, ref._eps_hat = args[0], args[3]
        want_p = p.copy()
        ref._update(0, want_p, g)
        assert backend.adam_update(p, g, m, v, *args)
        for got, want in ((p, want_p), (m, ref.m[0]), (v, ref.v[0])):
            err = np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want))
            ulps = max(ulps, float(err.max()))
    shapes = [(784, 128), (128,), (128, 10), (10,)]
    params = [rng.normal(0, 0.05, s).astype(np.float32) for s in shapes]
    plain, fused = Adam(learning_rate=1e-3), Adam(learning_rate=1e-3)
    fused.fused = backend.adam_update
    p_plain, p_fused = [p.copy() for p in params], [p.copy() for p in params]
    for _ in range(3):
        grads = [rng.normal(0, 0.1, s).astype(np.float32) for s in shapes]
        plain.step(p_plain, grads)
        fused.step(p_fused, grads)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(p_plain, p_fused))
    # The Trainer wires the backend's adam_update into Adam by itself.
    net = Network(NetworkConfig(hidden=(32,)), np.random.default_rng(0))
    net.set_backend(backend)
    Xt = rng.integers(0, 256, (64, 784), dtype=np.uint8)
    yt = rng.integers(0, 10, 64, dtype=np.uint8)
    trainer = Trainer(net, TrainConfig(batch_size=32, epochs=1), Xt, yt)
    before = backend.adam_calls
    list(trainer.run(max_batches=2))
    out["adam"] = {"calls": backend.adam_calls, "max_ulps": ulps, "fused_vs_numpy": diff,
                   "trainer_fused": trainer.optimizer.fused is not None,
                   "trainer_calls": backend.adam_calls - before}
json.dumps(out)
`);
  console.log(`RESULT ${JSON.stringify({ install, python: JSON.parse(report) })}`);
}

async function installCheck() {
  const gemm = await import(pathToFileURL(join(ROOT, "web", "gemm", "gemm.js")).href);
  const wasmUrl = pathToFileURL(join(ROOT, "web", "gemm", "gemm.wasm"));
  const OriginalMemory = WebAssembly.Memory;
  const results = {};
  // A stand-in runtime: its "heap" is a Memory made after captureWasmMemory(), and its
  // runPython places the probe's marker bytes 16 bytes past the address it reports, as
  // CPython does for bytes objects.
  const fakePyodide = (heap, { failPython = false } = {}) => ({
    registered: null,
    runPython(code) {
      if (failPython) throw new Error("python is broken");
      const marker = JSON.parse(code.match(/\((".*?")\.encode/)[1]);
      new Uint8Array(heap.buffer).set(new TextEncoder().encode(marker), 4096 + 16);
      return { get: (i) => (i === 1 ? 4096 : null), destroy() {} };
    },
    registerJsModule(name, module) {
      this.registered = { name, module };
    },
  });

  const early = fakePyodide(new OriginalMemory({ initial: 1 }));
  results.notCaptured = await gemm.installGemm(early, wasmUrl);

  gemm.captureWasmMemory();
  const decoy = new WebAssembly.Memory({ initial: 1 }); // another module's memory
  const heap = new WebAssembly.Memory({ initial: 2, maximum: 100 });
  results.wrapped = WebAssembly.Memory !== OriginalMemory && heap instanceof OriginalMemory;
  const ok = fakePyodide(heap);
  results.installed = await gemm.installGemm(ok, wasmUrl, { relaxed: false });
  results.restored = WebAssembly.Memory === OriginalMemory;
  results.moduleName = ok.registered?.name;
  if (ok.registered) {
    // 2x3 @ 3x2 at byte 8192, after growing the heap: must still land in the same Memory.
    heap.grow(1);
    const f = new Float32Array(heap.buffer, 8192, 16);
    f.set([1, 2, 3, 4, 5, 6, 1, 0, 0, 1, 1, 1]);
    ok.registered.module.gemm_nn(2, 2, 3, 8192, 3, 8192 + 24, 2, 8192 + 48, 2, 0, 0);
    results.product = Array.from(new Float32Array(heap.buffer, 8192 + 48, 4));
  }
  void decoy;

  gemm.captureWasmMemory();
  new WebAssembly.Memory({ initial: 1 });
  results.pythonFails = await gemm.installGemm(fakePyodide(heap, { failPython: true }), wasmUrl);
  gemm.captureWasmMemory();
  const heap2 = new WebAssembly.Memory({ initial: 2 });
  const missing = pathToFileURL(join(ROOT, "web", "gemm", "no-such.wasm"));
  results.missingWasm = await gemm.installGemm(fakePyodide(heap2), missing, { relaxed: false });
  results.restoredAfterFailure = WebAssembly.Memory === OriginalMemory;
  console.log(`RESULT ${JSON.stringify(results)}`);
}
