"""The GEMM kernel's threads (web/gemm/threads.js, kernel-worker.js), run in Node.

Node has SharedArrayBuffer and worker_threads, so the pool runs there unchanged, with a
worker_threads Worker in place of the browser's: threaded products must equal the single-thread
kernel's bit for bit (the same per-element arithmetic, whatever the split) and NumPy's to
float32 rounding, on awkward shapes and strides, with accumulate and bias, across heap growth.
Without isolation, or when the kernel workers fail, installGemm must stay on one thread and
say why. The browser side (service-worker isolation, no reload) is tests/e2e/test_threads.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")
ROOT = Path(__file__).resolve().parents[1]
GEMM = ROOT / "web" / "gemm"

# A worker_threads Worker behind the browser Worker's surface, as threads.js uses it.
NODE_WORKER = """
import { Worker as NodeWorker } from "node:worker_threads";
export class Worker {
  constructor(url) {
    this.worker = new NodeWorker(url);
    this.worker.unref(); // a kernel worker loops forever: it must not keep Node alive
  }
  postMessage(message) { this.worker.postMessage(message); }
  addEventListener(type, fn) {
    this.worker.on(type, (d) => fn(type === "message" ? { data: d } : d));
  }
  terminate() { this.worker.terminate(); }
}
"""

# Runs cases.json on data.bin: single-thread, then threaded with 2 and 4 threads.
PRODUCTS = """
import { readFileSync, writeFileSync } from "node:fs";
import { Worker } from "./node_worker.mjs";
import { startPool } from "GEMM/threads.js";
const [dir] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(`${dir}/cases.json`, "utf8"));
const data = new Float32Array(readFileSync(`${dir}/data.bin`).buffer.slice(0));
const heap = new WebAssembly.Memory({ initial: 1, maximum: 16384 });
const wasm = readFileSync(new URL("GEMM/gemm.wasm"));
const kernel = (await WebAssembly.instantiate(wasm, { env: { memory: heap } })).instance.exports;
const module = await WebAssembly.compile(readFileSync(new URL("GEMM/gemm_shared.wasm")));
const makeWorker = () => new Worker(new URL("GEMM/kernel-worker.js"));
const pools = [];
// Every product threaded, in many small chunks (up to the 30 a product can have).
for (const threads of [2, 4]) {
  const options = { heap, kernel, module, threads, makeWorker };
  Object.assign(options, { minWork: 0, chunkWork: 4096, workPerCopy: 0 });
  pools.push(await startPool(options));
}
const BASE = 65536 + 4 * 3; // operands at an address that is 4- but not 16-byte aligned
const out = [];
for (const [i, c] of cases.entries()) {
  if (i === cases.length >> 1) heap.grow(8); // the views of the heap must follow it
  const need = BASE + 4 * data.length * 2;
  if (heap.buffer.byteLength < need) heap.grow(Math.ceil((need - heap.buffer.byteLength) / 65536));
  for (const run of [kernel, ...pools.map((p) => p.functions())]) {
    new Float32Array(heap.buffer).set(data, BASE / 4);
    const at = (o) => BASE + 4 * o;
    const bias = c.bias < 0 ? 0 : at(c.bias);
    run[c.op](c.M, c.N, c.K, at(c.a), c.lda, at(c.b), c.ldb, at(c.c), c.ldc, c.beta, bias);
    out.push(new Float32Array(heap.buffer, at(c.c), c.M * c.ldc).slice());
  }
}
writeFileSync(`${dir}/out.bin`, Buffer.concat(out.map((x) => new Uint8Array(x.buffer))));
console.log(JSON.stringify(pools.map((p) => ({ threads: p.threads, calls: p.calls }))));
for (const p of pools) p.close();
process.exit(0);
"""

# installGemm on a stand-in Pyodide (as tests/gemm_node_check.mjs install): the backend line's
# thread note with and without isolation, with and without a Worker, and a failing worker.
INSTALL = """
import { Worker } from "./node_worker.mjs";
import { captureWasmMemory, installGemm } from "GEMM/gemm.js";
const wasmUrl = new URL("GEMM/gemm.wasm");
const fakePyodide = (heap) => ({
  runPython(code) {
    const marker = JSON.parse(code.match(/\\((".*?")\\.encode/)[1]);
    new Uint8Array(heap.buffer).set(new TextEncoder().encode(marker), 4096 + 16);
    return { get: (i) => (i === 1 ? 4096 : null), destroy() {} };
  },
  registerJsModule(name, module) { this.module = module; },
});
async function install(isolated, cores, WorkerClass) {
  globalThis.crossOriginIsolated = isolated;
  const navigator = { hardwareConcurrency: cores };
  Object.defineProperty(globalThis, "navigator", { value: navigator, configurable: true });
  if (WorkerClass) globalThis.Worker = WorkerClass; else delete globalThis.Worker;
  captureWasmMemory();
  const heap = new WebAssembly.Memory({ initial: 8, maximum: 100 });
  const pyodide = fakePyodide(heap);
  const result = await installGemm(pyodide, wasmUrl, { relaxed: false });
  // A product big enough for the pool, through what Python calls; exact (small integers).
  const [M, N, K] = [256, 128, 128];
  const f = new Float32Array(heap.buffer);
  const [A, B, C] = [16384, 16384 + M * K, 16384 + M * K + K * N];
  for (let i = 0; i < M * K + K * N; i++) f[A + i] = ((i * 7) % 11) - 5;
  pyodide.module.gemm_nn(M, N, K, 4 * A, K, 4 * B, N, 4 * C, N, 0, 0);
  let wrong = 0;
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += f[A + i * K + k] * f[B + k * N + j];
    wrong += s !== f[C + i * N + j];
  }
  const { ok, threads, threadsNote: note } = result;
  return { ok, threads, note, module: pyodide.module.threads, wrong };
}
class BrokenWorker extends Worker {
  constructor() { super(new URL("GEMM/no-such-worker.js")); }
}
const results = {
  firstVisit: await install(false, 2, Worker),
  oneCore: await install(true, 1, Worker),
  noWorker: await install(true, 2, null),
  brokenWorker: await install(true, 2, BrokenWorker),
  isolated: await install(true, 2, Worker),
  manyCores: await install(true, 64, Worker),
};
console.log(`RESULT ${JSON.stringify(results)}`);
process.exit(0); // the pools' workers loop forever
"""


def run_node(tmp_path: Path, script: str, *args: str) -> str:
    """Write `script` (GEMM standing for web/gemm's file URL) beside the Worker shim; run it."""
    (tmp_path / "node_worker.mjs").write_text(NODE_WORKER, encoding="utf-8")
    path = tmp_path / "check.mjs"
    path.write_text(script.replace("GEMM", GEMM.as_uri()), encoding="utf-8")
    proc = subprocess.run(
        [NODE, str(path), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


# op, M, N, K: edges of the 2x16 tiles, splits smaller than the alignment, one row or column,
# tall and wide, and the MLP's own products (784-128-10 at batch 128).
SHAPES = [
    ("gemm_nn", 1, 1, 1), ("gemm_nn", 3, 17, 5), ("gemm_tn", 9, 33, 7), ("gemm_nt", 17, 3, 33),
    ("gemm_nn", 1, 300, 20), ("gemm_tn", 300, 1, 20), ("gemm_nt", 37, 41, 1),
    ("gemm_nn", 130, 70, 65), ("gemm_tn", 70, 130, 65), ("gemm_nt", 129, 31, 100),
    ("gemm_nn", 128, 128, 784), ("gemm_tn", 784, 128, 128), ("gemm_nt", 128, 784, 128),
    ("gemm_nn", 128, 10, 128), ("gemm_tn", 128, 10, 128), ("gemm_nt", 128, 128, 10),
]  # fmt: skip


def make_cases(rng: np.random.Generator) -> tuple[list[dict], np.ndarray]:
    """Each shape plain, then padded with accumulate and bias: the cases and their data."""
    cases, chunks, size = [], [], 0

    def put(X: np.ndarray) -> int:
        nonlocal size
        chunks.append(X.ravel())
        size += X.size
        return size - X.size

    for op, M, N, K in SHAPES:
        for pad, beta, bias in ((0, 0.0, False), (3, 0.5, True), (5, 1.0, False)):
            a_shape = (K, M) if op == "gemm_tn" else (M, K)
            b_shape = (N, K) if op == "gemm_nt" else (K, N)
            A = rng.uniform(-1, 1, (a_shape[0], a_shape[1] + pad)).astype(np.float32)  # stored
            B = rng.uniform(-1, 1, (b_shape[0], b_shape[1] + pad)).astype(np.float32)  # stored
            C = rng.uniform(-1, 1, (M, N + pad)).astype(np.float32)  # (M, ldc)
            b = rng.uniform(-1, 1, N).astype(np.float32)  # (N,)
            cases.append({
                "op": op, "M": M, "N": N, "K": K, "beta": beta,
                "a": put(A), "lda": A.shape[1], "b": put(B), "ldb": B.shape[1],
                "c": put(C), "ldc": C.shape[1], "bias": put(b) if bias else -1,
            })  # fmt: skip
    return cases, np.concatenate(chunks)


def expected(case: dict, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy's C (M, ldc) in float64 for one case, and the float32 error bound of each element."""
    op, M, N, K = case["op"], case["M"], case["N"], case["K"]

    def stored(at: int, rows: int, ld: int) -> np.ndarray:
        return data[at : at + rows * ld].reshape(rows, ld).astype(np.float64)

    A = stored(case["a"], K if op == "gemm_tn" else M, case["lda"])
    B = stored(case["b"], N if op == "gemm_nt" else K, case["ldb"])
    A = A[:, :M].T if op == "gemm_tn" else A[:, :K]  # (M, K)
    B = B[:, :K].T if op == "gemm_nt" else B[:, :N]  # (K, N)
    C = stored(case["c"], M, case["ldc"])  # (M, ldc); the padding must stay as it was
    want = C.copy()
    want[:, :N] = A @ B + case["beta"] * C[:, :N]  # (M, N)
    if case["bias"] >= 0:
        want[:, :N] += data[case["bias"] : case["bias"] + N]
    scale = np.abs(A) @ np.abs(B) + abs(case["beta"]) * np.abs(C[:, :N]) + 1  # (M, N)
    tol = np.zeros_like(want)
    tol[:, :N] = (K + 4) * 2.0**-23 * scale
    return want, tol


def test_threaded_products_equal_the_single_thread_kernel_and_numpy(tmp_path: Path) -> None:
    cases, data = make_cases(np.random.default_rng(0))
    (tmp_path / "cases.json").write_text(json.dumps(cases), encoding="utf-8")
    data.astype(np.float32).tofile(tmp_path / "data.bin")
    stats = json.loads(run_node(tmp_path, PRODUCTS, str(tmp_path)).strip().splitlines()[-1])
    assert [s["threads"] for s in stats] == [2, 4]
    # Every product with more than one chunk's rows (16) or columns (32) was split.
    splittable = sum(case["M"] > 16 or case["N"] > 32 for case in cases)
    assert all(s["calls"]["threaded"] == splittable for s in stats), stats
    out = np.fromfile(tmp_path / "out.bin", dtype=np.float32)
    at = 0
    for case in cases:
        n = case["M"] * case["ldc"]
        single, *threaded = (out[at + i * n : at + (i + 1) * n] for i in range(3))
        at += 3 * n
        for got in threaded:
            np.testing.assert_array_equal(got, single, err_msg=str(case))
        want, tol = expected(case, data)
        err = np.abs(single.reshape(want.shape).astype(np.float64) - want)  # (M, ldc)
        assert np.all(err <= tol), (case, float(err.max()))
    assert at == out.size


def test_install_stays_on_one_thread_and_says_why(tmp_path: Path) -> None:
    stdout = run_node(tmp_path, INSTALL)
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT "))
    r = json.loads(line[len("RESULT ") :])
    for case in r.values():  # every case has a working kernel, threaded or not
        assert case["ok"] is True and case["wrong"] == 0, r
        assert case["module"] == case["threads"], r
    assert r["firstVisit"]["threads"] == 1
    assert r["firstVisit"]["note"] == "1 thread (not cross-origin isolated: first visit)"
    assert r["oneCore"]["note"] == "1 thread (1 core)"
    assert r["noWorker"]["note"].startswith("1 thread (kernel workers failed: ")
    assert "Worker is not defined" in r["noWorker"]["note"]
    assert r["brokenWorker"]["threads"] == 1
    assert r["brokenWorker"]["note"].startswith("1 thread (kernel workers failed: ")
    assert r["isolated"]["threads"] == 2 and r["isolated"]["note"] == "2 threads"
    assert r["manyCores"]["threads"] == 4  # capped: the copies, not the cores, set the pace
