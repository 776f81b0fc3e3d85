// Threads for the GEMM kernel: a pool of kernel workers (kernel-worker.js) over one shared
// WebAssembly.Memory, behind the same gemm_nn/gemm_tn/gemm_nt signature as the kernel itself.
//
// Pyodide's heap is not shared, so each big product is cut into chunks of rows of C or of
// columns (whichever copies less), and the calling worker and the kernel workers take chunks
// from one counter until none are left. The caller computes its chunks in place on the heap
// with the single-thread kernel; for the others it copies what they read (the rest of A's rows
// or B's columns, the other operand whole, C when beta != 0, the bias) into the shared memory
// first, and copies back the chunks of C the workers computed. A worker that is slow to wake
// (a busy machine) just takes fewer chunks, so a product is never slower than one thread by
// more than the copies. Products under `minWork` multiply-adds stay on one thread, and so do
// products whose copies are big against their work (fewer than `workPerCopy` multiply-adds a
// copied float): the CNN's im2col products, which measured slower threaded in Chromium here
// (1.2-1.4k against 1.5-1.7k examples/s), while the MLP's (80-110 a float) held even or gained.
//
// Protocol: an Int32Array `ctl` at byte 0 of the shared memory.
//   ctl[GEN]      the caller adds 1 and notifies once a job is posted; workers wait on it
//   ctl[NEXT]     chunks << 8 | the next chunk to take; taken with compareExchange by workers
//                 (never past the last chunk), with add by the caller. Chunk 0 is the caller's.
//   ctl[DONE]     chunks the workers finished (add + notify); ctl[OWNED]: a bit per such chunk
//   ctl[JOB...]   OP, M, N, K, A, LDA, B, LDB, C, LDC, BETA (float), BIAS, BY_ROWS, SIZE: the
//                 product on the copies, and the rows or columns per chunk
// The caller writes JOB, resets DONE and OWNED, then stores NEXT (which publishes them), so a
// worker that takes a chunk always reads the job it belongs to; the job is only rewritten once
// every chunk is done.

export const MAX_THREADS = 4; // beyond this the copies, not the products, set the pace
export const [GEN, NEXT, DONE, OWNED] = [0, 1, 2, 3];
export const JOB = 8;
export const [OP, M_, N_, K_, A_, LDA, B_, LDB, C_, LDC, BETA, BIAS, BY_ROWS, SIZE] = [...Array(14).keys()];
export const OPS = ["gemm_nn", "gemm_tn", "gemm_nt"]; // OP codes 0, 1, 2
const SCRATCH = 1024; // bytes: where the copied operands start (after the control block)
const MAX_PAGES = 16384; // 1 GiB of shared memory at most
const MAX_CHUNKS = 30; // a bit each in OWNED
const ALIGN = { rows: 16, cols: 32 }; // chunks of whole register tiles (2x16), not too thin

/** How many threads to use: the cores, capped, and at least one. */
export function threadCount(hardwareConcurrency, cap = MAX_THREADS) {
  return Math.max(1, Math.min(Math.floor(hardwareConcurrency) || 1, cap));
}

/**
 * How to cut one product into chunks: {byRows, size, chunks}, or null if it cannot be.
 * About `chunkWork` multiply-adds a chunk, at least `threads` chunks, aligned to the register
 * tile; by rows (copying A's other rows and B whole) or by columns, whichever copies less.
 */
export function plan(op, M, N, K, beta, threads, chunkWork = 1 << 23) {
  const wanted = Math.min(MAX_CHUNKS, Math.max(threads, Math.round((M * N * K) / chunkWork)));
  const cOps = beta !== 0 ? 2 : 1; // C is copied in too when it is read
  let best = null;
  for (const byRows of [true, false]) {
    const [total, align] = byRows ? [M, ALIGN.rows] : [N, ALIGN.cols];
    const size = Math.ceil(total / wanted / align) * align;
    const chunks = Math.ceil(total / size);
    if (chunks < 2) continue;
    const h = total - size; // what the workers may take: every chunk but the caller's first
    const copies = byRows ? h * K + K * N + cOps * h * N : M * K + K * h + cOps * M * h;
    if (!best || copies < best.copies) best = { byRows, size, chunks, copies };
  }
  return best;
}

/** Arguments of the rows or columns [lo, hi) of a product, in its own memory. */
export function part(op, byRows, lo, hi, [M, N, K, A, lda, B, ldb, C, ldc, beta, bias]) {
  if (byRows) {
    const A0 = op === "gemm_tn" ? A + 4 * lo : A + 4 * lo * lda; // tn: A is stored (K, M)
    return [hi - lo, N, K, A0, lda, B, ldb, C + 4 * lo * ldc, ldc, beta, bias];
  }
  const B0 = op === "gemm_nt" ? B + 4 * lo * ldb : B + 4 * lo; // nt: B is stored (N, K)
  return [M, hi - lo, K, A, lda, B0, ldb, C + 4 * lo, ldc, beta, bias && bias + 4 * lo];
}

// Copy a (rows, cols) block with leading dimension ld from src (float index at) to dst,
// packed (leading dimension cols) at float index to.
function packBlock(src, at, ld, rows, cols, dst, to) {
  if (ld === cols || rows === 1) dst.set(src.subarray(at, at + rows * cols), to);
  else for (let r = 0; r < rows; r++) dst.set(src.subarray(at + r * ld, at + r * ld + cols), to + r * cols);
}

// The reverse: a packed (rows, cols) block at float index at of src into dst with leading dimension ld.
function unpackBlock(src, at, rows, cols, dst, to, ld) {
  if (ld === cols || rows === 1) dst.set(src.subarray(at, at + rows * cols), to);
  else for (let r = 0; r < rows; r++) dst.set(src.subarray(at + r * cols, at + (r + 1) * cols), to + r * ld);
}

/**
 * The pool: threads - 1 kernel workers on a new shared memory, all started and checked.
 *
 * @param heap      the non-shared WebAssembly.Memory the operands live in (Pyodide's heap).
 * @param kernel    the single-thread kernel's exports, instantiated on `heap`.
 * @param module    the compiled gemm_shared.wasm (or its relaxed build, matching `kernel`).
 * @param threads   threads in all, the caller included (threadCount(...)); >= 2.
 * @param makeWorker  () => a Worker running kernel-worker.js (Node tests pass a worker_threads one).
 * @param minWork   products of fewer multiply-adds (M·N·K) stay on one thread.
 * @param chunkWork about how many multiply-adds a chunk has (see plan).
 * @param workPerCopy products with fewer multiply-adds per float copied stay on one thread.
 * @param timeoutMs how long a kernel worker may take to start.
 * @returns {Promise<Pool>}; rejects (with every worker terminated) if any fails to start.
 */
export async function startPool({
  heap, kernel, module, threads, makeWorker, minWork = 1 << 22, chunkWork = 1 << 23, workPerCopy = 64,
  timeoutMs = 10000,
}) {
  if (typeof SharedArrayBuffer === "undefined") throw new Error("no SharedArrayBuffer");
  const memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
  const pool = new Pool(heap, kernel, memory, { minWork, chunkWork, workPerCopy });
  try {
    for (let h = 0; h < threads - 1; h++) pool.workers.push(makeWorker());
    await Promise.all(pool.workers.map((w) => started(w, { memory, module }, timeoutMs)));
    pool.check(); // a known product through the real protocol
  } catch (err) {
    pool.close();
    throw err;
  }
  return pool;
}

// Resolve when the worker says it is ready; reject on its error or after timeoutMs.
function started(worker, init, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`a kernel worker did not start in ${timeoutMs} ms`)), timeoutMs);
    worker.addEventListener("message", ({ data }) => {
      clearTimeout(timer);
      if (data?.ready) resolve();
      else reject(new Error(`a kernel worker failed: ${data?.error ?? "unknown reply"}`));
    });
    worker.addEventListener("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`a kernel worker failed to load: ${e?.message || "kernel-worker.js"}`));
    });
    worker.postMessage(init);
  });
}

class Pool {
  constructor(heap, kernel, memory, { minWork, chunkWork, workPerCopy }) {
    Object.assign(this, { heap, kernel, memory, minWork, chunkWork, workPerCopy, workers: [] });
    this.ctl = new Int32Array(memory.buffer, 0, SCRATCH / 4);
    this.ctlF32 = new Float32Array(memory.buffer, 0, SCRATCH / 4);
    this.calls = { threaded: 0, single: 0, chunks: 0, helped: 0 }; // chunks: all; helped: the workers'
  }

  get threads() {
    return this.workers.length + 1;
  }

  /** gemm_nn/gemm_tn/gemm_nt with the kernel's signature, threaded when big enough. */
  functions() {
    return Object.fromEntries(OPS.map((op) => [op, (...args) => this.gemm(op, args)]));
  }

  close() {
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }

  gemm(op, args) {
    const [M, N, K, A, , B, , C, , beta, bias] = args;
    const big = M * N * K >= this.minWork && ((A | B | C | bias) & 3) === 0;
    const p = big && this.workers.length ? plan(op, M, N, K, beta, this.threads, this.chunkWork) : null;
    if (!p || M * N * K < this.workPerCopy * p.copies) {
      this.calls.single++;
      return this.kernel[op](...args);
    }
    const { byRows, size, chunks } = p;
    const total = byRows ? M : N;
    const copies = this.copyIn(op, byRows, size, args);
    this.post(OPS.indexOf(op), copies.job, byRows, size, chunks);
    let mine = 0;
    for (let c = 0; c < chunks; c = Atomics.add(this.ctl, NEXT, 1) & 255, mine++) {
      this.kernel[op](...part(op, byRows, c * size, Math.min(total, (c + 1) * size), args));
    }
    const theirs = chunks - mine;
    for (let spins = 0; Atomics.load(this.ctl, DONE) < theirs && spins < 4000; spins++); // a short spin
    for (let done; (done = Atomics.load(this.ctl, DONE)) < theirs; ) {
      if (Atomics.wait(this.ctl, DONE, done, 60000) === "timed-out") throw new Error("a kernel worker hung");
    }
    const owned = Atomics.load(this.ctl, OWNED);
    for (let c = 1; c < chunks; c++) {
      if (owned & (1 << c)) copies.copyOut(c * size, Math.min(total, (c + 1) * size));
    }
    this.calls.threaded++;
    this.calls.chunks += chunks;
    this.calls.helped += theirs;
  }

  // Write the job, reset the counts, then open its chunks (NEXT publishes the rest) and wake
  // the workers. `job` is the product on the copies, from the second chunk on.
  post(opCode, [M, N, K, A, lda, B, ldb, C, ldc, beta, bias], byRows, size, chunks) {
    this.ctl.set([opCode, M, N, K, A, lda, B, ldb, C, ldc], JOB + OP);
    this.ctlF32[JOB + BETA] = beta;
    this.ctl.set([bias, byRows ? 1 : 0, size], JOB + BIAS);
    Atomics.store(this.ctl, DONE, 0);
    Atomics.store(this.ctl, OWNED, 0);
    Atomics.store(this.ctl, NEXT, (chunks << 8) | 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
  }

  // Room for `bytes` of operands in the shared memory; fresh views of both memories.
  views(bytes) {
    const need = SCRATCH + bytes;
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / 65536));
    if (this.shared?.buffer !== this.memory.buffer) this.shared = new Float32Array(this.memory.buffer);
    if (this.heapF32?.buffer !== this.heap.buffer) this.heapF32 = new Float32Array(this.heap.buffer);
    return [this.heapF32, this.shared];
  }

  // Copy what the chunks after the first read into the shared memory, packed. Returns
  // {job: the product of those rows (or columns) on the copies, copyOut(lo, hi): C back}.
  copyIn(op, byRows, u, [M, N, K, A, lda, B, ldb, C, ldc, beta, bias]) {
    const h = (byRows ? M : N) - u; // rows (columns) [u, end) of C
    const [tn, nt] = [op === "gemm_tn", op === "gemm_nt"];
    let a, b; // [stored rows, stored columns, float index of the first] of what is copied
    if (byRows) {
      a = tn ? [K, h, A / 4 + u] : [h, K, A / 4 + u * lda];
      b = nt ? [N, K, B / 4] : [K, N, B / 4];
    } else {
      a = tn ? [K, M, A / 4] : [M, K, A / 4];
      b = nt ? [h, K, B / 4 + u * ldb] : [K, h, B / 4 + u];
    }
    const [cRows, cCols, cAt] = byRows ? [h, N, C / 4 + u * ldc] : [M, h, C / 4 + u];
    const [biasAt, biasLen] = byRows ? [bias / 4, N] : [bias / 4 + u, h];
    const sizes = [a[0] * a[1], b[0] * b[1], cRows * cCols, bias ? biasLen : 0];
    const at = [SCRATCH / 4];
    for (const n of sizes) at.push(at[at.length - 1] + Math.ceil(n / 16) * 16); // 64-byte aligned
    const [heap, shared] = this.views(4 * (at[4] - at[0]));
    const [sA, sB, sC, sBias] = at;
    packBlock(heap, a[2], lda, a[0], a[1], shared, sA);
    packBlock(heap, b[2], ldb, b[0], b[1], shared, sB);
    if (beta !== 0) packBlock(heap, cAt, ldc, cRows, cCols, shared, sC);
    if (bias) shared.set(heap.subarray(biasAt, biasAt + biasLen), sBias);
    const [Mj, Nj] = byRows ? [h, N] : [M, h];
    const job = [Mj, Nj, K, 4 * sA, a[1], 4 * sB, b[1], 4 * sC, cCols, beta, bias && 4 * sBias];
    const copyOut = (lo, hi) => {
      const [heapNow, sharedNow] = this.views(0);
      const o = lo - u;
      if (byRows) unpackBlock(sharedNow, sC + o * cCols, hi - lo, N, heapNow, cAt + o * ldc, ldc);
      else {
        for (let r = 0; r < M; r++) {
          const from = sC + r * cCols + o;
          heapNow.set(sharedNow.subarray(from, from + hi - lo), cAt + r * ldc + o);
        }
      }
    };
    return { job, copyOut };
  }

  // The workers compute a small known product (integers: exact) through the real protocol:
  // one 8-row chunk per worker; the caller skips its own chunk 0.
  check() {
    const [rows, n, k] = [8 * this.workers.length, 16, 8];
    const [, shared] = this.views(4 * (rows * k + k * n + rows * n));
    const [a, b, c] = [SCRATCH / 4, SCRATCH / 4 + rows * k, SCRATCH / 4 + rows * k + k * n];
    for (let i = 0; i < rows * k + k * n; i++) shared[a + i] = (i % 7) - 3;
    shared.fill(NaN, c, c + rows * n);
    this.post(0, [rows, n, k, 4 * a, k, 4 * b, n, 4 * c, n, 0, 0], true, 8, this.workers.length + 1);
    for (let done; (done = Atomics.load(this.ctl, DONE)) < this.workers.length; ) {
      if (Atomics.wait(this.ctl, DONE, done, 5000) === "timed-out") {
        throw new Error("the kernel workers did not take their first job");
      }
    }
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n; j++) {
        let want = 0;
        for (let t = 0; t < k; t++) want += shared[a + r * k + t] * shared[b + t * n + j];
        if (shared[c + r * n + j] !== want) throw new Error("a kernel worker computed a wrong product");
      }
    }
  }
}
