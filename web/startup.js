// Start-up: from "the worker exists" to "the page can predict", then "the page can train",
// reported to the page stage by stage (runtime, packages, model, data).
//
// The downloads start at once, in parallel with the runtime. The fast path uses the start-up
// caches of dist/startup/ (scripts/build_startup.mjs): a memory snapshot of the interpreter with
// numpy, Pillow and the Session already imported (runtime.js), their extension modules, compiled
// from their own URLs while the runtime starts (Chrome keeps their compiled code for the next
// visit) and loaded back into the restored runtime (dynlibs.js), and the .pyc of the modules
// imported later. The page can predict as soon as the model is in; the wheels, unzipped by a
// helper worker meanwhile (unpacker.js), are installed after it, for those later imports (every
// request but a prediction waits for them). If that snapshot is refused (WebKit, or its links
// would differ from the recorded ones) or broken, the standard-library snapshot is downloaded
// and restored instead, and the wheels installed and the compiled extension modules handed to
// Python's import before the Session is imported; without either, the worker starts the slow
// way. The stages' details say which snapshot was used and why not another; a missing or
// corrupt wheel, runtime file or model is a stage's error, naming the file.
import { captureWasmMemory, installGemm } from "./gemm/gemm.js";
import { compileDynlibs, preloadDynlibs } from "./dynlibs.js";
import { sha256Hex } from "./fetch-checked.js";
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

/**
 * A gzipped site file, decompressed as it downloads (DecompressionStream), and its compressed
 * bytes checked against the manifest's sha256 once all are in: nothing is used before that.
 */
async function fetchGunzipped(m, path) {
  const response = await fetch(new URL(path, base), { priority: "high" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  const [raw, unzipping] = response.body.tee();
  const inflated = new Response(unzipping.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
  inflated.catch(() => {}); // a corrupt file fails its check first, below
  const compressed = new Uint8Array(await new Response(raw).arrayBuffer());
  const sha256 = m.files?.[path]?.sha256;
  if (sha256 && crypto.subtle && (await sha256Hex(compressed)) !== sha256) {
    throw new Error(`${path} is corrupt (its sha256 does not match the manifest)`);
  }
  return new Uint8Array(await inflated);
}

/**
 * The snapshots to try, in the manifest's order (the one with NumPy, then the standard-library
 * one), each with `bytes()`: its download (verified, decompressed), begun at the first call.
 * `numpy` false leaves out those holding extension modules.
 */
function snapshotsToTry(m, numpy, refuse) {
  let listed = (m.snapshots ?? []).filter((s) => numpy || !s.link?.libs?.length);
  // ?debug&refusesnapshot: the first one's global offset table "differs", as a refusal would.
  if (refuse) listed = listed.map((s, i) => (i ? s : { ...s, link: { ...s.link, got_sha256: "refused" } }));
  return listed.map((s) => {
    let bytes = null;
    return { ...s, bytes: () => (bytes ??= quietly(fetchGunzipped(m, s.file))) };
  });
}

/** Every download of the start-up, begun now: promises of verified bytes or unzipped files. */
function startDownloads({ snapshot, numpy, refuse, unzip, dynlibs, wheelsWanted }) {
  const files = {};
  files.model = quietly(manifestPromise.then((m) => fetchVerified(m, m.model)));
  // Only the first snapshot is downloaded now: the next only if the first is refused.
  files.snapshots = quietly(manifestPromise.then((m) => (snapshot ? snapshotsToTry(m, numpy, refuse) : [])));
  const first = files.snapshots.then((list) => list[0]?.bytes());
  // Wheels (numpy and Pillow, verified against pyodide-lock.json at build time and against the
  // manifest here, then ours) and the bytecode wait for the snapshot's download, which is on
  // the critical path with the runtime's own files, and for `wheelsWanted` (with the snapshot
  // with NumPy: until the page can predict, so that they never compete with what it needs).
  const afterSnapshot = first.catch(() => null).then(() => manifestPromise);
  const afterWanted = Promise.all([afterSnapshot, wheelsWanted]).then(() => manifestPromise);
  const wheels = (m) => [...Object.keys(m.files ?? {}).filter((p) => /^pyodide\/[^/]*\.whl$/.test(p)), m.wheel];
  files.wheels = quietly(afterWanted.then((m) => Promise.all(wheels(m).map((p) => unpack(m, p, unzip)))));
  files.bytecode = quietly(afterWanted.then((m) => (m.bytecode ? unpack(m, m.bytecode, unzip) : [])));
  // The extension modules: at once if the first snapshot holds them (it is restored with them),
  // else with the wheels, for Python's import.
  const off = () => Promise.reject(new Error("turned off by ?nodynlibs"));
  const whenNeeded = (list) => (list[0]?.link?.libs?.length ? manifestPromise : afterSnapshot);
  const compiled = () => files.snapshots.then(whenNeeded).then((m) => compileDynlibs(m, base));
  files.dynlibs = quietly(dynlibs ? compiled() : off());
  return files;
}

/** Install the wheels and the bytecode into site-packages (and the extension modules the
 *  snapshot does not hold where Python's import finds them). */
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
}

/**
 * The pretrained model, then the one saved in this browser if there is one and it loads. If it
 * does not, and `install` is given (the packages are not installed yet: it may need an import
 * the snapshot does not hold), once more after `await install()`.
 */
async function loadModels(pretrainedBytes, savedModel, install) {
  const pretrained = call("load_model", [await pretrainedBytes], { source: "pretrained" });
  if (!pretrained.ok) throw new Error(pretrained.error);
  if (!savedModel) return pretrained;
  const loadSaved = () => {
    try {
      return call("load_model", [new Uint8Array(savedModel)], { source: "saved" });
    } catch (err) {
      return { ok: false, error: err.message ?? String(err) };
    }
  };
  let saved = loadSaved();
  if (!saved.ok && install) saved = await install().then(loadSaved);
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
 * one), numpy (try the snapshot that holds NumPy first; else a string, why not: a note unless
 * empty), refuse (false unless a test makes the first snapshot's check fail), unzip (in
 * JavaScript), dynlibs (compile the extension modules ahead, from their own URLs), kernel
 * (multiply with the SIMD kernel). Returns
 *   loaded      resolves to {ok, model, warning?} once the page can predict
 *   ready       the same, once the packages are installed too (before any call but a prediction)
 *   untilInstalled(work)  call work() (a prediction) once loaded, again if it throws before then
 *   dataLoaded  resolves once the page can train
 *   init        call with {savedModel} when the page's "init" request arrives
 *   info        {snapshot: "numpy" | "stdlib" | false (what the snapshot restored holds), bytecode
 *               (null: installed after the model, the data stage says if not), dynlibs, notes}:
 *               which start-up caches were used, and why not
 */
export function startUp(options) {
  // Without DecompressionStream the snapshot would be downloaded for nothing, and the archives
  // are unzipped by Pyodide's own unpackArchive (Python's zipfile): slower, the same result.
  const decompress = typeof DecompressionStream === "function";
  const snapshot = decompress && options.snapshot;
  let wantWheels;
  const wheelsWanted = new Promise((resolve) => (wantWheels = resolve));
  const files = startDownloads({
    wheelsWanted,
    snapshot,
    numpy: options.numpy === true && options.dynlibs, // useless without its extension modules
    refuse: options.refuse,
    unzip: decompress && options.unzip,
    dynlibs: options.dynlibs,
  });
  const info = { snapshot: false, bytecode: false, dynlibs: false, notes: [] };
  if (snapshot && typeof options.numpy === "string" && options.numpy) info.notes.push(options.numpy);
  const notesSince = (n) => () => info.notes.slice(n).join("; ") || undefined;
  let init;
  const initReceived = new Promise((resolve) => (init = resolve));

  captureWasmMemory(); // before loadPyodide: lets the SIMD matmul kernel find Python's heap later
  let used = null; // the snapshot's name, for the stage list
  const runtimeDetail = () => [used && `from ${used}`, ...info.notes].filter(Boolean).join("; ") || undefined;
  const runtime = quietly(
    stage("runtime", async () => {
      const started = await startRuntime(await files.snapshots, files.dynlibs, info.notes);
      info.snapshot = started.snapshot;
      info.dynlibs = started.relinked;
      used = started.used ?? null;
      return started.pyodide;
    }, runtimeDetail),
  );
  // The snapshot with NumPy holds the Session, imported: the page can predict without the files
  // of the wheels, which are installed after the model (for the imports that come later:
  // training's, and any the snapshot does not hold). Otherwise they are needed first.
  const later = quietly(runtime.then(() => info.snapshot === "numpy"));
  let afterModel;
  const modelDone = new Promise((resolve) => (afterModel = resolve));
  files.snapshots.then((list) => list[0]?.link?.libs?.length || wantWheels(), wantWheels);
  later.then((numpy) => numpy || wantWheels(), wantWheels);
  modelDone.then(wantWheels);
  let installNotes = []; // installing's notes when it comes after the model: the data stage's
  const installed = quietly(
    runtime.then(async (pyodide) => {
      if (!(await later)) {
        const work = async () => (await installPackages(pyodide, files, info), bindSession(pyodide));
        return stage("packages", work, notesSince(info.notes.length));
      }
      info.bytecode = null; // not known when the page can predict: the data stage says
      await modelDone;
      const n = info.notes.length;
      try {
        await installPackages(pyodide, files, info);
      } finally {
        installNotes = info.notes.slice(n);
      }
    }),
  );
  let isInstalled = false;
  installed.then(() => (isInstalled = true), () => {});
  const loaded = quietly(
    (async () => {
      const pyodide = await runtime;
      try {
        if (await later) await stage("packages", async () => bindSession(pyodide), () => "from the snapshot");
        else await installed;
        const { savedModel } = await initReceived;
        const install = (await later) ? () => (afterModel(), installed) : null;
        return await stage("model", () => loadModels(files.model, savedModel, install));
      } finally {
        afterModel(); // whether or not the page can predict: the packages go in now
      }
    })(),
  );
  /** Call `work` (into Python) once the page can predict; if it throws before the packages are
   *  installed (an import the snapshot does not hold), once more after. */
  const untilInstalled = async (work) => {
    await loaded;
    try {
      return work();
    } catch (err) {
      if (isInstalled) throw err;
      await installed;
      return work();
    }
  };
  // The dataset is only needed for training: it is fetched once the page can predict, so that
  // it never competes with the runtime for the line or the CPU.
  const dataBytes = quietly(loaded.then(() => manifestPromise).then((m) => fetchVerified(m, m.dataset)));
  const dataLoaded = quietly(
    loaded.then(async () => {
      await yieldToEventLoop(); // predictions that waited for the model go first
      const pyodide = await runtime;
      const detail = () => installNotes.join("; ") || undefined;
      return stage("data", () => installed.then(() => loadData(pyodide, dataBytes, options.kernel)), detail);
    }),
  );
  const ready = quietly(Promise.all([loaded, installed]).then(([result]) => result));
  return { loaded, ready, dataLoaded, untilInstalled, init, info };
}
