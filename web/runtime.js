// Starting Pyodide: from the memory snapshot of a started interpreter when there is a sound one
// (it skips Python's own start-up and the imports of numpy, Pillow and the Session, whose
// extension modules dynlibs.js loads back in), else the slow way, and saying which. Pyodide
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

async function load(snapshot, notes) {
  const { loadPyodide } = await import("./pyodide/pyodide.mjs");
  const indexURL = runtimeDir;
  if (snapshot) {
    const { bytes, link, dynlibs } = snapshot;
    try {
      // A snapshot that holds extension modules is of no use without them: not even restored.
      const needed = link?.libs?.length ? Promise.all([bytes, dynlibs]).then(([b]) => b) : bytes;
      needed.catch(() => {}); // loadPyodide awaits it only after fetching its script: heard there
      const restored = await loadPyodide({ indexURL, _loadSnapshot: needed });
      if (link?.libs?.length) await relinkSnapshot(restored, link.site_packages, link, await dynlibs);
      restored.runPython(AFTER_RESTORE);
      return { pyodide: restored, snapshot: true, relinked: Boolean(link?.libs?.length) };
    } catch (err) {
      notes.push(`started without the start-up snapshot (${err.message ?? err})`);
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
 * Start the runtime; resolves to {pyodide, snapshot: whether it was restored, relinked: whether
 * with its extension modules}. `snapshot` is null to start the slow way, or {bytes: a promise
 * of the decompressed snapshot, link: the manifest's snapshot_link, dynlibs: a promise of the
 * compiled extension modules (dynlibs.js)}; why a snapshot was not used goes into `notes`.
 */
export function startRuntime(snapshot, notes) {
  return blaming(runtimeFiles, async () => {
    const watch = watchRuntimeFetches();
    let settled = false;
    // After RUNTIME_CHECK_MS of a start that has not ended: check every runtime file's sha256.
    const verifiedLate = new Promise((resolve) => setTimeout(resolve, RUNTIME_CHECK_MS))
      .then(() => (settled ? new Promise(() => {}) : manifestPromise))
      .then((m) => Promise.all(runtimeFiles(m).map((path) => fetchVerified(m, path))));
    const loading = load(snapshot, notes);
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
