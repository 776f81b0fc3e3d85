// Plugs the WebAssembly SIMD GEMM kernel (gemm.wasm) into Pyodide's heap so NumPy arrays can
// be multiplied in place, without copies: NumPy under Pyodide has no optimised BLAS.
//
// Pyodide does not expose its WebAssembly.Memory, so it is caught as it is made:
//
//   import { captureWasmMemory, installGemm } from "./gemm/gemm.js";
//   captureWasmMemory();                          // 1. before loadPyodide()
//   const pyodide = await loadPyodide(...);       // 2.
//   const gemm = await installGemm(pyodide);      // 3. {ok, simd, relaxed, reason}
//   // 4. Python: backend, reason = scribblenet.wasm_matmul.load_wasm_backend()
//   //            if backend: net.set_backend(backend)
//
// installGemm never throws: on any failure it returns ok: false with the reason, and Python
// keeps using NumPy. The kernel is registered as the Python-importable module JS_MODULE.
// On a cross-origin isolated page (SharedArrayBuffer) it also starts a pool of kernel workers
// (threads.js) and the registered gemm_nn/tn/nt split big products among them; on any failure
// of the pool it stays on one thread, and `threadsNote` says which and why.
import { startPool, threadCount } from "./threads.js";

export const JS_MODULE = "scribblenet_gemm"; // must match JS_MODULE in wasm_matmul.py

const captured = { original: null, proxy: null, memories: [] };

/** Wrap the WebAssembly.Memory constructor to keep each memory made; call before loadPyodide. */
export function captureWasmMemory() {
  if (typeof WebAssembly === "undefined") return;
  if (captured.proxy && WebAssembly.Memory === captured.proxy) return;
  const original = WebAssembly.Memory;
  captured.original = original;
  // A Proxy keeps `instanceof`, the prototype and the static members of the real constructor.
  captured.proxy = new Proxy(original, {
    construct(target, args, newTarget) {
      const realTarget = newTarget === captured.proxy ? target : newTarget;
      const memory = Reflect.construct(target, args, realTarget);
      captured.memories.push(memory);
      return memory;
    },
  });
  WebAssembly.Memory = captured.proxy;
}

// Put the real constructor back (only Pyodide's start-up needed watching) and let go of the
// memories seen, which may belong to other modules.
function releaseWasmMemory() {
  if (captured.proxy && WebAssembly.Memory === captured.proxy) {
    WebAssembly.Memory = captured.original;
  }
  captured.memories = [];
}

// Tiny modules for feature detection. simd128: () -> v128 { i8x16.splat(i32.const 0) }.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253,
  15, 11,
]);
// relaxed-SIMD: () -> v128 { f32x4.relaxed_madd(f32x4.splat(0), f32x4.splat(0), ...) }.
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 28, 1, 26, 0, 67, 0, 0,
  0, 0, 253, 19, 67, 0, 0, 0, 0, 253, 19, 67, 0, 0, 0, 0, 253, 19, 253, 133, 2, 11,
]);

/** Which SIMD proposals this engine accepts: {simd, relaxed}. */
export function detectFeatures() {
  const valid = (bytes) => {
    try {
      return typeof WebAssembly !== "undefined" && WebAssembly.validate(bytes);
    } catch {
      return false;
    }
  };
  const simd = valid(SIMD_PROBE);
  return { simd, relaxed: simd && valid(RELAXED_PROBE) };
}

async function fetchBytes(url) {
  const u = new URL(url, import.meta.url);
  if (u.protocol === "file:") {
    // Node (tests, benchmarks) has no fetch for file: URLs.
    const { readFile } = await import("node:fs/promises");
    return readFile(u);
  }
  const response = await fetch(u);
  if (!response.ok) throw new Error(`${u.pathname}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function instantiate(url, memory) {
  const { instance } = await WebAssembly.instantiate(await fetchBytes(url), { env: { memory } });
  return instance.exports;
}

// Find which captured memory is Python's heap: Python puts a random marker into a bytes
// object and reports the object's address (CPython's id()); the heap is the memory holding
// the marker a few bytes past that address.
function findPythonHeap(pyodide) {
  const marker = `scribblenet-gemm-${Math.random().toString(36).slice(2)}`;
  const probe = pyodide.runPython(`(lambda b: (b, id(b)))(${JSON.stringify(marker)}.encode())`);
  try {
    const address = probe.get(1);
    const want = new TextEncoder().encode(marker);
    const Shared = globalThis.SharedArrayBuffer;
    for (const memory of captured.memories) {
      if (Shared && memory.buffer instanceof Shared) continue; // Pyodide's heap is not shared
      const heap = new Uint8Array(memory.buffer);
      if (address + 64 + want.length > heap.length) continue;
      for (let at = address; at < address + 64; at++) {
        if (want.every((byte, i) => heap[at + i] === byte)) return memory;
      }
    }
    return null;
  } finally {
    probe.destroy();
  }
}

/**
 * Instantiate the kernel on Pyodide's heap and register it as a Python module.
 *
 * @param pyodide  what loadPyodide resolved to (captureWasmMemory() must have run before it).
 * @param wasmUrl  URL of gemm.wasm (default: beside this file; a relative string is resolved
 *                 against this file); gemm_relaxed.wasm is taken from beside it when the engine
 *                 has relaxed SIMD.
 * @param options  {relaxed: false} keeps the simd128 kernel, whose results do not depend on
 *                 the CPU (relaxed_madd may or may not fuse the multiply-add);
 *                 {threads: n} uses at most n threads (default: every core, up to MAX_THREADS).
 * @returns {Promise<{ok, simd, relaxed, reason, threads, threadsNote}>}: threads is how many
 *          the products use, threadsNote says it for the page ("2 threads", "1 thread (why)").
 */
export async function installGemm(
  pyodide,
  wasmUrl = new URL("./gemm.wasm", import.meta.url),
  options = {},
) {
  const { simd, relaxed: relaxedAvailable } = detectFeatures();
  const result = { ok: false, simd, relaxed: false, reason: "", threads: 1, threadsNote: "1 thread" };
  try {
    if (!simd) throw new Error("this browser has no WebAssembly SIMD (simd128)");
    if (!captured.proxy) throw new Error("captureWasmMemory() was not called before loadPyodide");
    const memory = findPythonHeap(pyodide);
    if (!memory) throw new Error("none of the captured WebAssembly memories is Pyodide's heap");
    releaseWasmMemory();

    let kernel = null;
    if (relaxedAvailable && options.relaxed !== false) {
      try {
        kernel = await instantiate(relaxedUrlOf(wasmUrl), memory);
      } catch (err) {
        result.reason = `relaxed kernel unavailable (${err.message}); `;
      }
    }
    let kernelUrl = relaxedUrlOf(wasmUrl);
    if (kernel === null) {
      kernel = await instantiate(wasmUrl, memory);
      kernelUrl = new URL(wasmUrl, import.meta.url);
    }
    result.relaxed = kernel.gemm_features() === 3;
    // Every exported function (gemm_nn/tn/nt, adam_update, the element-wise kernels ...):
    // what gemm.c exports is what Python sees, under the same names.
    const functions = Object.fromEntries(
      Object.entries(kernel).filter(([, value]) => typeof value === "function"),
    );
    const pool = await startThreads(memory, kernel, kernelUrl, options.threads, result);
    pyodide.registerJsModule(JS_MODULE, {
      ...functions,
      ...pool?.functions(), // gemm_nn/tn/nt, threaded
      threads: result.threads,
      thread_stats: () => JSON.stringify(pool?.calls ?? {}), // products and chunks so far
      features: kernel.gemm_features(),
      relaxed: result.relaxed,
    });
    result.ok = true;
    result.reason += result.relaxed ? "relaxed-SIMD FMA kernel" : "simd128 kernel";
  } catch (err) {
    releaseWasmMemory();
    result.reason += String(err?.message ?? err);
  }
  return result;
}

const relaxedUrlOf = (url) => variantUrl(url, "_relaxed");
function variantUrl(url, suffix) {
  const href = new URL(url, import.meta.url).href;
  return new URL(href.replace(/\.wasm(\?.*)?$/, `${suffix}.wasm$1`));
}

// Why a page is not isolated: ../sw.js isolates the visits it serves, except in WebKit.
function notIsolatedWhy() {
  const ua = globalThis.navigator?.userAgent ?? "";
  const webkit = /AppleWebKit\//.test(ua) && !/Chrome\/|Chromium\//.test(ua);
  return webkit ? "not in WebKit" : "first visit";
}

/** The pool of kernel workers, or null (one thread) with the reason in result.threadsNote. */
async function startThreads(heap, kernel, kernelUrl, wanted, result) {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  const threads = threadCount(Math.min(cores, wanted ?? Infinity));
  let why = null;
  if (threads < 2) why = wanted === 1 ? "asked for one" : `${cores} core${cores === 1 ? "" : "s"}`;
  else if (!globalThis.crossOriginIsolated) why = `not cross-origin isolated: ${notIsolatedWhy()}`;
  else if (typeof SharedArrayBuffer === "undefined") why = "no SharedArrayBuffer";
  if (why) {
    result.threadsNote = `1 thread (${why})`;
    return null;
  }
  try {
    const module = await WebAssembly.compile(await fetchBytes(variantUrl(kernelUrl, "_shared")));
    const workerUrl = new URL("./kernel-worker.js", import.meta.url);
    let made = 0;
    const makeWorker = () => new Worker(workerUrl, { type: "module", name: `gemm kernel ${++made}` });
    const pool = await startPool({ heap, kernel, module, threads, makeWorker });
    result.threads = pool.threads;
    result.threadsNote = `${pool.threads} threads`;
    return pool;
  } catch (err) {
    result.threadsNote = `1 thread (kernel workers failed: ${err?.message ?? err})`;
    return null;
  }
}
