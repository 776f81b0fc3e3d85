// One kernel worker of the thread pool (threads.js, which documents the protocol).
//
// Its first and only message is {memory, module}: the shared WebAssembly.Memory and the
// compiled gemm_shared.wasm. It instantiates the kernel on the shared memory, answers
// {ready: true} (or {error}), then never returns to its event loop: take chunks of the posted
// product while there are any, then wait for the next.
import { BETA, BY_ROWS, DONE, GEN, JOB, M_, N_, NEXT, OPS, OWNED, SIZE, part } from "./threads.js";

// A browser worker, or a Node worker_threads one (the tests).
const port = typeof WorkerGlobalScope !== "undefined" ? null : (await import("node:worker_threads")).parentPort;
const reply = (message) => (port ?? self).postMessage(message);
if (port) port.once("message", start);
else self.addEventListener("message", ({ data }) => start(data), { once: true });

async function start({ memory, module }) {
  let kernel;
  try {
    kernel = (await WebAssembly.instantiate(module, { env: { memory } })).exports;
  } catch (err) {
    reply({ error: String(err?.message ?? err) });
    return;
  }
  reply({ ready: true });
  setTimeout(() => work(kernel, memory)); // after the reply is on its way
}

function work(kernel, memory) {
  const ctl = new Int32Array(memory.buffer, 0, 256);
  const ctlF32 = new Float32Array(memory.buffer, 0, 256);
  let seen = Atomics.load(ctl, GEN);
  for (;;) {
    for (let next; ((next = Atomics.load(ctl, NEXT)) & 255) < next >> 8; ) {
      if (Atomics.compareExchange(ctl, NEXT, next, next + 1) !== next) continue; // another took it
      const chunk = next & 255;
      const job = Array.from(ctl.subarray(JOB, JOB + 14));
      job[BETA] = ctlF32[JOB + BETA];
      const [op, byRows, size] = [OPS[job[0]], job[BY_ROWS] === 1, job[SIZE]];
      const args = job.slice(1, 12); // M, N, K, A, lda, B, ldb, C, ldc, beta, bias
      const lo = (chunk - 1) * size; // the copies start at chunk 1
      const hi = Math.min(byRows ? job[M_] : job[N_], lo + size);
      kernel[op](...part(op, byRows, lo, hi, args));
      Atomics.or(ctl, OWNED, 1 << chunk);
      Atomics.add(ctl, DONE, 1);
      Atomics.notify(ctl, DONE);
    }
    Atomics.wait(ctl, GEN, seen); // returns at once if a job was posted since `seen`
    seen = Atomics.load(ctl, GEN);
  }
}
