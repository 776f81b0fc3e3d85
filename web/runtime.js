// Starting Pyodide: from the memory snapshot of a started interpreter when there is a sound one
// (it skips Python's own start-up), else the slow way, and saying which. Pyodide fetches its
// own files, and a missing one can leave loadPyodide waiting forever, so its downloads are
// watched while it starts: a failed one fails the start at once, named.
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

async function load(snapshotBytes, notes) {
  const { loadPyodide } = await import("./pyodide/pyodide.mjs");
  const indexURL = runtimeDir;
  if (snapshotBytes) {
    try {
      const restored = await loadPyodide({ indexURL, _loadSnapshot: snapshotBytes });
      restored.runPython(AFTER_RESTORE);
      return { pyodide: restored, snapshot: true };
    } catch (err) {
      notes.push(`started without the start-up snapshot (${err.message ?? err})`);
    }
  }
  return { pyodide: await loadPyodide({ indexURL }), snapshot: false };
}

// A start that failed (its stage reports why) leaves Pyodide's own loaders rejecting with no one
// to hear, e.g. the standard library's after a 404: the same failure, not a new one to report.
let startFailed = false;
self.addEventListener("unhandledrejection", (event) => {
  if (startFailed) event.preventDefault();
});

/**
 * Start the runtime; resolves to {pyodide, snapshot: whether it was restored}. `snapshotBytes`
 * is a promise of the decompressed snapshot, or null to start the slow way; why a snapshot was
 * not used goes into `notes`.
 */
export function startRuntime(snapshotBytes, notes) {
  return blaming(runtimeFiles, async () => {
    const watch = watchRuntimeFetches();
    let settled = false;
    // After RUNTIME_CHECK_MS of a start that has not ended: check every runtime file's sha256.
    const verifiedLate = new Promise((resolve) => setTimeout(resolve, RUNTIME_CHECK_MS))
      .then(() => (settled ? new Promise(() => {}) : manifestPromise))
      .then((m) => Promise.all(runtimeFiles(m).map((path) => fetchVerified(m, path))));
    const loading = load(snapshotBytes, notes);
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
