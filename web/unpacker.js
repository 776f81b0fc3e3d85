// Wheels and the bytecode archive, fetched, verified and unzipped by a helper worker
// (unpack-worker.js) on the machine's other core while this one restores the Python runtime.
// Without the helper (an old browser, a blocked script) the same work is done on this thread;
// without DecompressionStream the archive is handed over whole, for Pyodide's own unpacker.
import { startBlobWorker } from "./blob-worker.js";
import { base, fetchVerified } from "./site.js";
import { unzip } from "./unzip.js";

const jobs = new Map(); // id -> {manifest, path, resolve, reject}
let helper = null;
let lastId = 0;

function unpackHere(job) {
  fetchVerified(job.manifest, job.path).then(unzip).then(job.resolve, job.reject);
}

function startHelper() {
  const worker = startBlobWorker(new URL("./unpack-worker.js", base)); // the page's CSP binds it
  worker.onmessage = ({ data }) => {
    const job = jobs.get(data.id);
    if (!job) return; // after an error event its jobs were taken back (see onerror)
    jobs.delete(data.id);
    if (data.error) job.reject(new Error(data.error));
    else job.resolve(data.files);
    if (!jobs.size) worker.terminate(); // its work is done: give its memory back
  };
  worker.onerror = (event) => {
    event.preventDefault(); // no helper: unzip here instead
    for (const job of jobs.values()) unpackHere(job);
    jobs.clear();
  };
  return worker;
}

/**
 * Fetch, verify and unzip a site file: resolves to [{path, data}], or to {archive: bytes} when
 * `inJavaScript` is false (this browser cannot unzip: Pyodide's unpackArchive will).
 */
export function unpack(manifest, path, inJavaScript) {
  if (!inJavaScript) return fetchVerified(manifest, path).then((archive) => ({ archive }));
  return new Promise((resolve, reject) => {
    const job = { manifest, path, resolve, reject };
    try {
      if (!helper || !jobs.size) helper = startHelper();
    } catch {
      return unpackHere(job);
    }
    const id = ++lastId;
    jobs.set(id, job);
    const url = new URL(path, base).href;
    helper.postMessage({ id, url, path, sha256: manifest.files?.[path]?.sha256 });
  });
}
