// Start-up: from "the worker exists" to "the page can predict", then "the page can train",
// reported to the page stage by stage (runtime, packages, model, data).
//
// The downloads start at once, in parallel with the runtime. The fast path uses the start-up
// caches of dist/startup/ (scripts/build_startup.mjs): a memory snapshot of the interpreter with
// numpy, Pillow and the Session already imported (runtime.js), their extension modules, compiled
// from their own URLs while the runtime starts (Chrome keeps their compiled code for the next
// visit) and loaded back into the restored runtime (dynlibs.js), and the .pyc of the modules
// imported later. The wheels are unzipped by a helper worker meanwhile (unpacker.js) and
// installed for those later imports. Without the snapshot, the compiled extension modules are
// handed to Python's import instead. If a cache is missing, corrupt or refused, the worker starts
// the slow way and says so in the stage's detail; a missing or corrupt wheel, runtime file or
// model is the stage's error, naming the file.
import { captureWasmMemory, installGemm } from "./gemm/gemm.js";
import { compileDynlibs, preloadDynlibs } from "./dynlibs.js";
import { bindSession, call, yieldToEventLoop } from "./python-bridge.js";
import { startRuntime } from "./runtime.js";
import { base, fetchVerified, manifestPromise } from "./site.js";
import { unpack } from "./unpacker.js";
import { writeTree } from "./unzip.js";

const quietly = (promise) => (promise.catch(() => {}), promise); // awaited (and reported) later

/** Report a loading stage around `work`; `detail()` may add a note when it is done. */
async function stage(name, work, detail = () => undefined) {
  const t0 = performance.now();
  self.postMessage({ type: "stage", stage: name, state: "loading" });
  try {
    const result = await work();
    const ms = Math.round(performance.now() - t0);
    self.postMessage({ type: "stage", stage: name, state: "done", ms, detail: detail() });
    return result;
  } catch (err) {
    self.postMessage({ type: "stage", stage: name, state: "error", detail: err.message });
    throw err;
  }
}

/** Every download of the start-up, begun now: promises of verified bytes or unzipped files. */
function startDownloads({ snapshot, unzip, dynlibs }) {
  const files = {};
  files.model = quietly(manifestPromise.then((m) => fetchVerified(m, m.model)));
  const gzipped = quietly(
    manifestPromise.then((m) => (snapshot && m.snapshot ? fetchVerified(m, m.snapshot, "high") : null)),
  );
  files.snapshot = quietly(
    gzipped.then(async (bytes) => {
      if (!bytes) return null;
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      return new Uint8Array(await new Response(stream).arrayBuffer());
    }),
  );
  // Wheels (numpy and Pillow, verified against pyodide-lock.json at build time and against the
  // manifest here, then ours) and the bytecode wait for the snapshot's download, which is on
  // the critical path with the runtime's own files.
  const afterSnapshot = gzipped.catch(() => null).then(() => manifestPromise);
  const wheels = (m) => [...Object.keys(m.files ?? {}).filter((p) => /^pyodide\/[^/]*\.whl$/.test(p)), m.wheel];
  files.wheels = quietly(afterSnapshot.then((m) => Promise.all(wheels(m).map((p) => unpack(m, p, unzip)))));
  files.bytecode = quietly(afterSnapshot.then((m) => (m.bytecode ? unpack(m, m.bytecode, unzip) : [])));
  // The extension modules: at once if the snapshot holds them (it is restored with them), else
  // with the wheels, for Python's import.
  const off = () => Promise.reject(new Error("turned off by ?nodynlibs"));
  const whenNeeded = (m) => (m.snapshot_link?.libs?.length || !snapshot ? m : afterSnapshot);
  const compiled = () => manifestPromise.then(whenNeeded).then((m) => compileDynlibs(m, base));
  files.dynlibs = quietly(dynlibs ? compiled() : off());
  return files;
}

/** Install the wheels and the bytecode into site-packages, then make the Session. */
async function installPackages(pyodide, files, info) {
  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  const install = (unpacked, format) => {
    if (unpacked.archive) pyodide.unpackArchive(unpacked.archive, format, { extractDir: sitePackages });
    else writeTree(pyodide.FS, sitePackages, unpacked);
  };
  for (const unpacked of await files.wheels) install(unpacked, "wheel");
  try {
    install(await files.bytecode, "zip");
    info.bytecode = true;
  } catch (err) {
    info.notes.push(`compiling Python modules on this visit (${err.message ?? err})`);
  }
  try {
    await preloadDynlibs(pyodide, sitePackages, await files.dynlibs); // those not in the snapshot
    info.dynlibs = true;
  } catch (err) {
    info.notes.push(`compiling extension modules on import (${err.message ?? err})`);
  }
  // Directory listings cached before these files existed (the snapshot's) must be re-read.
  // Not importlib.invalidate_caches(): it imports importlib.metadata, half a second here.
  pyodide.runPython(`
import sys
for path, finder in list(sys.path_importer_cache.items()):
    if path.startswith(${JSON.stringify(sitePackages)}) and hasattr(finder, "invalidate_caches"):
        finder.invalidate_caches()
`);
  bindSession(pyodide);
}

/** The pretrained model, then the one saved in this browser if there is one and it loads. */
async function loadModels(pretrainedBytes, savedModel) {
  const pretrained = call("load_model", [await pretrainedBytes], { source: "pretrained" });
  if (!pretrained.ok) throw new Error(pretrained.error);
  if (!savedModel) return pretrained;
  const saved = call("load_model", [new Uint8Array(savedModel)], { source: "saved" });
  return saved.ok ? saved : { ...pretrained, warning: `saved model ignored: ${saved.error}` };
}

/** Decode the dataset and install the SIMD matmul kernel: what training needs. */
async function loadData(pyodide, dataBytes, kernel) {
  // In steps of one block of images, with a yield between, so that predictions of drawings
  // made meanwhile are answered within one step instead of after the whole decode.
  call("begin_dataset", [await dataBytes]);
  let result;
  do {
    await yieldToEventLoop();
    result = call("continue_dataset");
  } while (!result.done);
  if (!result.ok) throw new Error(result.error);
  // Threads when the page is cross-origin isolated (a visit the service worker served).
  const gemm = kernel
    ? await installGemm(pyodide, new URL("./gemm/gemm.wasm", base))
    : { ok: false, reason: "NumPy (the kernel is disabled by ?kernel=numpy)" };
  const backend = gemm.ok ? call("use_wasm_backend") : { ok: false, reason: gemm.reason };
  const line = backend.ok ? `${backend.reason}, ${gemm.threadsNote}` : backend.reason;
  self.postMessage({ type: "dataset", n_train: result.n_train, n_test: result.n_test, backend: line });
}

/**
 * Start everything. Options (all true unless a ?debug test turns one off): snapshot (start from
 * it), unzip (in JavaScript), dynlibs (compile the extension modules ahead, from their own URLs),
 * kernel (multiply with the SIMD kernel). Returns
 *   loaded      resolves to {ok, model, warning?} once the page can predict
 *   dataLoaded  resolves once the page can train
 *   init        call with {savedModel} when the page's "init" request arrives
 *   info        {snapshot, bytecode, dynlibs, notes}: which start-up caches were used, and why not
 */
export function startUp(options) {
  // Without DecompressionStream the snapshot would be downloaded for nothing, and the archives
  // are unzipped by Pyodide's own unpackArchive (Python's zipfile): slower, the same result.
  const decompress = typeof DecompressionStream === "function";
  const snapshot = decompress && options.snapshot;
  const files = startDownloads({ snapshot, unzip: decompress && options.unzip, dynlibs: options.dynlibs });
  const info = { snapshot: false, bytecode: false, dynlibs: false, notes: [] };
  const notesSince = (n) => () => info.notes.slice(n).join("; ") || undefined;
  let init;
  const initReceived = new Promise((resolve) => (init = resolve));

  captureWasmMemory(); // before loadPyodide: lets the SIMD matmul kernel find Python's heap later
  const runtime = quietly(
    stage("runtime", async () => {
      const m = await manifestPromise;
      const restore = { bytes: files.snapshot, link: m.snapshot_link, dynlibs: files.dynlibs };
      const started = await startRuntime(snapshot && m.snapshot ? restore : null, info.notes);
      info.snapshot = started.snapshot;
      info.dynlibs = started.relinked;
      return started.pyodide;
    }, notesSince(0)),
  );
  const loaded = quietly(
    (async () => {
      const pyodide = await runtime;
      await stage("packages", () => installPackages(pyodide, files, info), notesSince(info.notes.length));
      const { savedModel } = await initReceived;
      return stage("model", () => loadModels(files.model, savedModel));
    })(),
  );
  // The dataset is only needed for training: it is fetched once the page can predict, so that
  // it never competes with the runtime for the line or the CPU.
  const dataBytes = quietly(loaded.then(() => manifestPromise).then((m) => fetchVerified(m, m.dataset)));
  const dataLoaded = quietly(
    loaded.then(async () => {
      await yieldToEventLoop(); // predictions that waited for the model go first
      const pyodide = await runtime;
      return stage("data", () => loadData(pyodide, dataBytes, options.kernel));
    }),
  );
  return { loaded, dataLoaded, init, info };
}
