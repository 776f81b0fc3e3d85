// Starting Pyodide: from a memory snapshot of a started interpreter when there is a sound one
// (the first skips Python's own start-up and the imports of numpy, Pillow and the Session, whose
// extension modules dynlibs.js loads back in; the second, the fallback, only Python's own
// start-up), else the slow way, and saying which. Pyodide
// fetches its own files, and a missing one can leave loadPyodide waiting forever, so its
// downloads are watched while it starts: a failed one fails the start at once, named.
import { relinkSnapshot } from "./dynlibs.js";
import { base, blaming, fetchVerified, manifestPromise } from "./site.js";

// A corrupt file makes loadPyodide throw, and `blaming` then checks every runtime file's
// sha256; this slower check only catches a start that hangs instead.
const RUNTIME_CHECK_MS = 20_000;
const runtimeDir = new URL("./pyodide/", base).href;
const runtimeFiles = (m) =>
  Object.keys(m.files ?? {}).filter((p) => /^pyodide\/[^/]*$/.test(p) && !p.endsWith(".whl"));
const isRuntimeFile = (url) => url.startsWith(runtimeDir) && !/\.whl$/.test(new URL(url).pathname);

// Run in a restored interpreter: what the snapshot froze but must differ between visitors.
const AFTER_RESTORE = `
import sys
if "random" in sys.modules:
    sys.modules["random"].seed()  # the snapshot's state is the same for every visitor
`;

/** Replace self.fetch until `stop()`: rejects `failed` at the first failed runtime download. */
function watchRuntimeFetches() {
  const realFetch = self.fetch;
  let fail;
  const failed = new Promise((_, reject) => (fail = reject));
  failed.catch(() => {}); // raced below; unheard if the start succeeds
  self.fetch = async function watchedFetch(input, init) {
    const url = String(input?.url ?? input);
    const name = url.startsWith(base.href) ? url.slice(base.href.length) : url;
    try {
      const response = await realFetch.call(self, input, init);
      if (!response.ok && isRuntimeFile(url)) fail(new Error(`${name}: HTTP ${response.status}`));
      return response;
    } catch (err) {
      if (isRuntimeFile(url)) fail(new Error(`${name}: ${err.message}`));
      throw err;
    }
  };
  return { failed, stop: () => (self.fetch = realFetch) };
}

// What a snapshot holds, as the stage list says it.
const HOLDS = { numpy: "the snapshot with NumPy", stdlib: "the standard-library snapshot" };

// Fetched as this module loads, alongside the manifest, not after it.
const pyodideModule = import("./pyodide/pyodide.mjs");
pyodideModule.catch(() => {}); // awaited (and reported) in load

async function load(snapshots, dynlibs, notes) {
  const { loadPyodide } = await pyodideModule;
  const indexURL = runtimeDir;
  // In order: the first that restores and links as recorded is used. Each try is a runtime of
  // its own (a refused one is dropped whole: its memory holds the snapshot's libraries' state).
  for (const [i, { holds, link, bytes }] of snapshots.entries()) {
    const libs = Boolean(link?.libs?.length);
    try {
      // A snapshot that holds extension modules is of no use without them: not even restored.
      const needed = libs ? Promise.all([bytes(), dynlibs]).then(([b]) => b) : bytes();
      needed.catch(() => {}); // loadPyodide awaits it only after fetching its script: heard there
      const restored = await loadPyodide({ indexURL, _loadSnapshot: needed });
      if (libs) await relinkSnapshot(restored, link.site_packages, link, await dynlibs);
      restored.runPython(AFTER_RESTORE);
      return { pyodide: restored, snapshot: holds, relinked: libs, used: HOLDS[holds] ?? holds };
    } catch (err) {
      const last = i === snapshots.length - 1;
      const what = last ? "started without the start-up snapshot" : `${HOLDS[holds] ?? holds} was not used`;
      notes.push(`${what} (${err.message ?? err})`);
    }
  }
  return { pyodide: await loadPyodide({ indexURL }), snapshot: false, relinked: false };
}

// A start that failed (its stage reports why) leaves Pyodide's own loaders rejecting with no one
// to hear, e.g. the standard library's after a 404: the same failure, not a new one to report.
let startFailed = false;
self.addEventListener("unhandledrejection", (event) => {
  if (startFailed) event.preventDefault();
});

/**
 * Start the runtime; resolves to {pyodide, snapshot: what the snapshot it was restored from holds
 * ("numpy" | "stdlib") or false, relinked: whether with its extension modules, used: the
 * snapshot's name for the stage list}. `snapshots` lists those to try, in order (none: start the
 * slow way): [{holds, link: how its extension modules were linked, bytes: () => a promise of it,
 * decompressed (a download begun only when called)}]; `dynlibs` is a promise of the compiled
 * extension modules (dynlibs.js). Why a snapshot was not used goes into `notes`.
 */
export function startRuntime(snapshots, dynlibs, notes) {
  return blaming(runtimeFiles, async () => {
    const watch = watchRuntimeFetches();
    let settled = false;
    // After RUNTIME_CHECK_MS of a start that has not ended: check every runtime file's sha256.
    const verifiedLate = new Promise((resolve) => setTimeout(resolve, RUNTIME_CHECK_MS))
      .then(() => (settled ? new Promise(() => {}) : manifestPromise))
      .then((m) => Promise.all(runtimeFiles(m).map((path) => fetchVerified(m, path))));
    const loading = load(snapshots, dynlibs, notes);
    loading.catch(() => {}); // raced below: when a failed download wins, its later failure is moot
    try {
      return await Promise.race([loading, watch.failed, verifiedLate.then(() => loading)]);
    } catch (err) {
      startFailed = true;
      throw err;
    } finally {
      settled = true;
      watch.stop(); // only the runtime's own downloads needed watching
    }
  });
}
