// The module worker that owns Pyodide. It starts loading the moment it is created, reports each
// stage, then answers the requests listed in protocol.js. Training runs in short chunks with a
// yield to the event loop between them, so pause, stop and predict get through mid-training.
//
// Failures are named: a file that is missing or does not match manifest.json's sha256 is
// reported in its stage's error, and a Pyodide "fatal error" (after which the runtime is
// unusable) is reported as a {type: "fatal"} event so the page can start a fresh worker.
import { captureWasmMemory, installGemm } from "./gemm/gemm.js";
import { startBlobWorker } from "./blob-worker.js";
import { fetchChecked } from "./fetch-checked.js";
import { unzip, writeTree } from "./unzip.js";

const base = new URL("./", import.meta.url);
const CHUNK_MS = 80; // target length of one training chunk; the page waits at most this long
const post = (msg, transfer = []) => self.postMessage(msg, transfer);
// Test hooks, only when the page was opened with ?debug (it passes the query on to us).
const query = new URL(import.meta.url).searchParams;
const DEBUG = query.has("debug");
const USE_KERNEL = !(DEBUG && query.get("kernel") === "numpy"); // bit-for-bit parity tests

/** Report a loading stage around `work`; `detail()` may add a note when it is done. */
async function stage(name, work, detail = () => undefined) {
  const t0 = performance.now();
  post({ type: "stage", stage: name, state: "loading" });
  try {
    const result = await work();
    const ms = Math.round(performance.now() - t0);
    post({ type: "stage", stage: name, state: "done", ms, detail: detail() });
    return result;
  } catch (err) {
    post({ type: "stage", stage: name, state: "error", detail: err.message });
    throw err;
  }
}

const yieldToEventLoop = () =>
  new Promise((resolve) => {
    const channel = new MessageChannel(); // unlike setTimeout, not clamped to 4 ms
    channel.port1.onmessage = resolve;
    channel.port2.postMessage(null);
  });

/** Fetch a site file as bytes, checked against the manifest's sha256 when it has one. */
function fetchVerified(manifest, path, priority = "auto") {
  return fetchChecked(new URL(path, base), path, manifest.files?.[path]?.sha256, priority);
}

/** After a failed stage: which of its files is missing or corrupt? The first error, or null. */
async function diagnose(manifest, paths) {
  for (const path of paths) {
    try {
      await fetchVerified(manifest, path);
    } catch (err) {
      return err;
    }
  }
  return null;
}

/** Run `work`; if it throws, blame the first of `paths` that fails verification, if any. */
async function blaming(paths, work) {
  try {
    return await work();
  } catch (err) {
    const manifest = await manifestPromise.catch(() => ({}));
    const culprit = await diagnose(manifest, paths(manifest));
    throw culprit ?? err;
  }
}

const isFatal = (err) => Boolean(err?.pyodide_fatal_error) || /fatally failed/.test(err?.message);

// ── Loading: the downloads start at once, in parallel with the runtime. ──────────────────────
//
// The fast path uses the two start-up caches of dist/startup/ (scripts/build_startup.mjs): a
// memory snapshot of the started interpreter, which skips Python's own start-up, and the .pyc
// of the modules imported below. The wheels are unzipped in JavaScript by a helper worker while
// the runtime starts, and their extension modules are compiled when Python first imports them.
// If a cache is missing, corrupt or refused, the worker starts the slow way and says so in the
// stage's detail; a missing or corrupt wheel, runtime file or model is an error naming the file.
let pyodide, session, py; // py: the Session's bound methods, proxied once and reused
const manifestPromise = fetch(new URL("manifest.json", base)).then((r) => {
  if (!r.ok) throw new Error(`manifest.json: HTTP ${r.status}`);
  return r.json();
});
const quietly = (promise) => (promise.catch(() => {}), promise); // awaited (and reported) later
const modelBytes = quietly(manifestPromise.then((m) => fetchVerified(m, m.model)));
// The snapshot is gzipped: without DecompressionStream it would be downloaded for nothing.
const USE_SNAPSHOT = typeof DecompressionStream === "function" && !(DEBUG && query.has("nosnapshot"));
const snapshotGzipped = quietly(
  manifestPromise.then((m) => (USE_SNAPSHOT && m.snapshot ? fetchVerified(m, m.snapshot, "high") : null)),
);
const snapshotBytes = quietly(
  snapshotGzipped.then(async (gzipped) => {
    if (!gzipped) return null;
    const stream = new Blob([gzipped]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }),
);

// Wheels (numpy and Pillow, verified against pyodide-lock.json at build time and against the
// manifest here, then ours) and the bytecode are fetched, verified and unzipped by a helper
// worker on the other core while this one restores the runtime. They wait for the snapshot's
// download, which is on the critical path with the runtime's own files.
const wheelPaths = (m) => [
  ...Object.keys(m.files ?? {}).filter((p) => /^pyodide\/[^/]*\.whl$/.test(p)),
  m.wheel,
];
const unpacking = new Map(); // id -> {manifest, path, resolve, reject}
let unpacker = null;
let unpackIds = 0;
function unpackHere(job) {
  fetchVerified(job.manifest, job.path).then(unzip).then(job.resolve, job.reject);
}
function startUnpacker() {
  const helper = startBlobWorker(new URL("./unpack-worker.js", base)); // the page's CSP binds it
  helper.onmessage = ({ data }) => {
    const job = unpacking.get(data.id);
    if (!job) return; // after an error event its jobs were taken back (see onerror)
    unpacking.delete(data.id);
    if (data.error) job.reject(new Error(data.error));
    else job.resolve(data.files);
    if (!unpacking.size) helper.terminate(); // its work is done: give its memory back
  };
  helper.onerror = (event) => {
    event.preventDefault(); // no helper (an old browser, a blocked script): unzip here instead
    for (const job of unpacking.values()) unpackHere(job);
    unpacking.clear();
  };
  return helper;
}
// Without DecompressionStream (older browsers) the archives are unzipped by Pyodide's own
// unpackArchive (Python's zipfile) once the runtime is up: slower, with the same result.
const CAN_UNZIP = typeof DecompressionStream === "function" && !(DEBUG && query.has("nounzip"));
/** Fetch, verify and unzip a site file, off this thread when possible: [{path, data}], or
 *  {archive: bytes} to be unpacked by Pyodide when this browser cannot unzip. */
function unpack(manifest, path) {
  if (!CAN_UNZIP) return fetchVerified(manifest, path).then((archive) => ({ archive }));
  return new Promise((resolve, reject) => {
    const job = { manifest, path, resolve, reject };
    try {
      if (!unpacker || !unpacking.size) unpacker = startUnpacker();
    } catch {
      return unpackHere(job);
    }
    const id = ++unpackIds;
    unpacking.set(id, job);
    const url = new URL(path, base).href;
    unpacker.postMessage({ id, url, path, sha256: manifest.files?.[path]?.sha256 });
  });
}
const afterSnapshot = snapshotGzipped.catch(() => null).then(() => manifestPromise);
const wheelFiles = quietly(afterSnapshot.then((m) => Promise.all(wheelPaths(m).map((p) => unpack(m, p)))));
const bytecodeFiles = quietly(afterSnapshot.then((m) => (m.bytecode ? unpack(m, m.bytecode) : [])));
let initOptions; // set by the "init" request: {savedModel?}
const initReceived = new Promise((resolve) => (initOptions = resolve));

captureWasmMemory(); // before loadPyodide: lets the SIMD matmul kernel find Python's heap later
const runtimeFiles = (m) => Object.keys(m.files ?? {}).filter((p) => /^pyodide\/[^/]*$/.test(p) && !p.endsWith(".whl"));
// Pyodide fetches its own files, and a missing one can leave loadPyodide waiting forever. So
// while it starts, the worker's fetch is watched: the first failed runtime download fails the
// stage at once, named. (A corrupt file makes loadPyodide throw instead, and `blaming` then
// checks every file's sha256; the slow check below only catches a start that hangs anyway.)
const RUNTIME_CHECK_MS = 20_000;
const realFetch = self.fetch;
let runtimeFetchFailed;
const runtimeFetchFailure = quietly(new Promise((_, reject) => (runtimeFetchFailed = reject)));
const runtimeDir = new URL("./pyodide/", base).href;
const isRuntimeFile = (url) => url.startsWith(runtimeDir) && !/\.whl$/.test(new URL(url).pathname);
self.fetch = async function watchedFetch(input, init) {
  const url = String(input?.url ?? input);
  const name = url.startsWith(base.href) ? url.slice(base.href.length) : url;
  try {
    const response = await realFetch.call(self, input, init);
    if (!response.ok && isRuntimeFile(url)) runtimeFetchFailed(new Error(`${name}: HTTP ${response.status}`));
    return response;
  } catch (err) {
    if (isRuntimeFile(url)) runtimeFetchFailed(new Error(`${name}: ${err.message}`));
    throw err;
  }
};
let runtimeSettled = false;
/** After RUNTIME_CHECK_MS of a start that has not ended: check every runtime file's sha256. */
const runtimeVerifiedLate = () =>
  new Promise((resolve) => setTimeout(resolve, RUNTIME_CHECK_MS))
    .then(() => (runtimeSettled ? new Promise(() => {}) : manifestPromise))
    .then((m) => Promise.all(runtimeFiles(m).map((path) => fetchVerified(m, path))));
// Run in a restored interpreter: what the snapshot froze but must differ between visitors.
const AFTER_RESTORE = `
import sys
if "random" in sys.modules:
    sys.modules["random"].seed()  # the snapshot's state is the same for every visitor
`;
const startup = { snapshot: false, bytecode: false, notes: [] }; // reported with "ready"

async function startRuntime() {
  const { loadPyodide } = await import("./pyodide/pyodide.mjs");
  const indexURL = new URL("./pyodide/", base).href;
  if ((await manifestPromise).snapshot && USE_SNAPSHOT) {
    try {
      const restored = await loadPyodide({ indexURL, _loadSnapshot: snapshotBytes });
      restored.runPython(AFTER_RESTORE);
      startup.snapshot = true;
      return restored;
    } catch (err) {
      startup.notes.push(`started without the start-up snapshot (${err.message ?? err})`);
    }
  }
  return loadPyodide({ indexURL });
}

const notesSince = (n) => () => startup.notes.slice(n).join("; ") || undefined;
const runtime = stage(
  "runtime",
  () =>
    blaming(runtimeFiles, async () => {
      const loading = startRuntime();
      try {
        return await Promise.race([loading, runtimeFetchFailure, runtimeVerifiedLate().then(() => loading)]);
      } finally {
        runtimeSettled = true;
        self.fetch = realFetch; // only the runtime's own downloads needed watching
      }
    }),
  notesSince(0),
);
quietly(runtime);

const loaded = (async () => {
  pyodide = await runtime;
  await stage("packages", async () => {
    const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
    const install = (unpacked, format) => {
      if (unpacked.archive) pyodide.unpackArchive(unpacked.archive, format, { extractDir: sitePackages });
      else writeTree(pyodide.FS, sitePackages, unpacked);
    };
    for (const unpacked of await wheelFiles) install(unpacked, "wheel");
    try {
      install(await bytecodeFiles, "zip");
      startup.bytecode = true;
    } catch (err) {
      startup.notes.push(`compiling Python modules on this visit (${err.message ?? err})`);
    }
    // Directory listings cached before these files existed (the snapshot's) must be re-read.
    // Not importlib.invalidate_caches(): it imports importlib.metadata, half a second here.
    pyodide.runPython(`
import sys
for path, finder in list(sys.path_importer_cache.items()):
    if path.startswith(${JSON.stringify(sitePackages)}) and hasattr(finder, "invalidate_caches"):
        finder.invalidate_caches()
`);
    const module = pyodide.pyimport("scribblenet.session");
    session = module.Session();
    module.destroy();
    py = {};
    for (const name of ["begin_dataset", "continue_dataset", "load_model", "reset_to_pretrained", "export_model",
      "configure", "start_training", "train_chunk", "stop_training", "predict_ink", "describe",
      "use_wasm_backend"]) {
      py[name] = session[name];
    }
  }, notesSince(startup.notes.length));
  const { savedModel } = await initReceived;
  const ready = await stage("model", async () => {
    const pretrained = call("load_model", [await modelBytes], { source: "pretrained" });
    if (!pretrained.ok) throw new Error(pretrained.error);
    if (!savedModel) return pretrained;
    const saved = call("load_model", [new Uint8Array(savedModel)], { source: "saved" });
    return saved.ok ? saved : { ...pretrained, warning: `saved model ignored: ${saved.error}` };
  });
  return ready;
})();
loaded.catch(() => {}); // every request awaits it and reports its error

// The dataset is only needed for training: it is fetched once the page can predict, so that it
// never competes with the runtime for the line or the CPU.
const dataBytes = quietly(loaded.then(() => manifestPromise).then((m) => fetchVerified(m, m.dataset)));
// Training needs the data and, for speed, the SIMD matmul kernel; predicting needs neither.
const dataLoaded = loaded.then(async () => {
  await yieldToEventLoop(); // predictions that waited for the model go first
  return stage("data", async () => {
    // In steps of one block of images, with a yield between, so that predictions of drawings
    // made meanwhile are answered within one step instead of after the whole decode.
    call("begin_dataset", [await dataBytes]);
    let result;
    do {
      await yieldToEventLoop();
      result = call("continue_dataset");
    } while (!result.done);
    if (!result.ok) throw new Error(result.error);
    const gemm = USE_KERNEL
      ? await installGemm(pyodide, new URL("./gemm/gemm.wasm", base))
      : { ok: false, reason: "NumPy (the kernel is disabled by ?kernel=numpy)" };
    const backend = gemm.ok ? call("use_wasm_backend") : { ok: false, reason: gemm.reason };
    post({ type: "dataset", n_train: result.n_train, n_test: result.n_test, backend: backend.reason });
    return result;
  });
});
dataLoaded.catch(() => {});

/** Call a Session method with JS arguments; returns plain JS values and leaks no proxies. */
function call(name, args = [], kwargs = null) {
  const pyArgs = args.map((a) => (a !== null && typeof a === "object" ? pyodide.toPy(a) : a));
  let result;
  try {
    result = kwargs ? py[name].callKwargs(...pyArgs, kwargs) : py[name](...pyArgs);
  } finally {
    for (const a of pyArgs) a?.destroy?.();
  }
  if (!(result instanceof pyodide.ffi.PyProxy)) return result;
  try {
    return result.toJs({ dict_converter: Object.fromEntries, create_pyproxies: false });
  } finally {
    result.destroy();
  }
}

// ── Training: chunks of batches sized to CHUNK_MS, then a yield so messages get in. ─────────
let run = null; // {paused, batches} while a trainer exists

function reportFatal(err) {
  run = null;
  post({ type: "fatal", message: err.message ?? String(err) });
}

function finish(reason, extra = {}) {
  run = null;
  post({ type: "done", reason, model: call("describe"), ...extra });
}

async function trainLoop(current) {
  if (current.looping) return; // a pause and resume within one yield: the old loop goes on
  current.looping = true;
  try {
    await trainChunks(current);
  } catch (err) {
    if (isFatal(err)) reportFatal(err);
    else if (run === current) finish("error", { message: err.message });
  } finally {
    current.looping = false;
  }
}

async function trainChunks(current) {
  for (;;) {
    // Yield first: the request that started (or resumed) training is answered before any batch.
    await yieldToEventLoop();
    if (run !== current || current.paused) return;
    const t0 = performance.now();
    const events = call("train_chunk", [current.batches]);
    const ms = performance.now() - t0;
    let ended = null;
    for (const event of events) {
      if (event.type === "done") ended = { reason: "finished", ...event, type: "done" };
      else if (event.type === "diverged") ended = { ...event, type: "done", reason: "diverged", message: event.reason };
      else post(event);
    }
    if (ended) return finish(ended.reason, ended);
    // Re-size the chunk from this one's speed; epoch ends (a test-set pass) would skew it.
    const batches = events.filter((e) => e.type === "batch").length;
    if (batches && !events.some((e) => e.type === "epoch")) {
      const target = (current.batches * CHUNK_MS) / Math.max(ms, 1);
      current.batches = Math.max(1, Math.min(1000, Math.round(0.5 * current.batches + 0.5 * target)));
    }
  }
}

// ── Requests ─────────────────────────────────────────────────────────────────────────────────
const handlers = {
  async init(msg) {
    initOptions({ savedModel: msg.savedModel });
    const ready = await loaded;
    return { type: "ready", model: ready.model, warning: ready.warning, startup };
  },
  async configure(msg) {
    await loaded;
    return { type: "configured", ...call("configure", [msg.config]) };
  },
  async train(msg) {
    await dataLoaded;
    if (run) finish("replaced");
    const subset = DEBUG ? (msg.subset ?? null) : null; // a quick run on fewer images, for tests
    const result = call("start_training", [msg.config, subset]);
    if (result.ok) {
      run = { paused: false, batches: 1 };
      trainLoop(run);
    }
    return { type: "started", ...result };
  },
  pause() {
    if (run) run.paused = true;
    return { type: "paused" };
  },
  resume() {
    if (run?.paused) {
      run.paused = false;
      trainLoop(run);
    }
    return { type: "resumed" };
  },
  stop() {
    if (run) {
      call("stop_training");
      finish("stopped");
    }
    return { type: "stopped" };
  },
  async predict(msg) {
    await loaded;
    return { type: "prediction", ...call("predict_ink", [new Uint8Array(msg.alpha), msg.width, msg.height]) };
  },
  async reset() {
    await loaded;
    if (run) finish("replaced");
    return { type: "model", ...call("reset_to_pretrained") };
  },
  async export() {
    await loaded;
    const bytes = call("export_model");
    return [{ type: "exported", bytes: bytes.buffer }, [bytes.buffer]];
  },
  async import(msg) {
    await loaded;
    if (run) finish("replaced");
    return { type: "model", ...call("load_model", [new Uint8Array(msg.bytes)]) };
  },
  ping() {
    return { type: "pong" };
  },
};

// Only with ?debug: ways to break this worker on purpose, and to look inside it.
const debugHandlers = {
  memory() {
    const objects = pyodide.runPython("import gc; gc.collect(); len(gc.get_objects())");
    return { type: "memory", heap: pyodide._module.HEAPU8.length, objects };
  },
  throw() {
    setTimeout(() => {
      throw new Error("debug: an uncaught error in the worker");
    });
    return { type: "debugged" };
  },
  close() {
    setTimeout(() => self.close()); // the worker goes silent, as if the tab had killed it
    return { type: "debugged" };
  },
  async fetch(msg) {
    // Would the Content-Security-Policy stop this worker from sending anything elsewhere?
    const violation = new Promise((resolve) => {
      self.addEventListener("securitypolicyviolation", (e) => resolve(e.violatedDirective), { once: true });
      setTimeout(() => resolve(null), 2000);
    });
    try {
      await fetch(msg.url, { method: "POST", body: "ink" });
      return { type: "fetched", ok: true };
    } catch (err) {
      return { type: "fetched", ok: false, error: err.message, blocked_by: await violation };
    }
  },
  python_error() {
    pyodide.runPython("raise RuntimeError('debug: an error raised in Python')");
  },
  fatal() {
    // What Pyodide does on a WebAssembly trap or out-of-memory abort: the runtime is finished.
    pyodide._api.fatal_error(new Error("debug: a fatal error in the runtime"));
  },
};

if (DEBUG) {
  handlers.debug = async (msg) => {
    await loaded;
    if (!Object.hasOwn(debugHandlers, msg.action)) throw new Error(`unknown debug action ${msg.action}`);
    return debugHandlers[msg.action](msg);
  };
}

self.onmessage = async ({ data: msg }) => {
  try {
    const handler = handlers[msg.type];
    if (!handler) throw new Error(`unknown request type ${JSON.stringify(msg.type)}`);
    const reply = await handler(msg);
    const [body, transfer] = Array.isArray(reply) ? reply : [reply, []];
    post({ id: msg.id, ...body }, transfer);
  } catch (err) {
    post({ id: msg.id, type: "error", message: err.message ?? String(err), fatal: isFatal(err) });
    if (isFatal(err)) reportFatal(err);
  }
};
