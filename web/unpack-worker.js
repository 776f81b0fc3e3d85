// A helper worker that downloads, verifies and unzips the wheels on the machine's other core
// while the Python worker restores its runtime (the two are each single-threaded work).
//
//   request  {id, url, path, sha256}   a file of the site, with its manifest hash
//   reply    {id, files: [{path, data}]}  (the data buffers are transferred)  |  {id, error}
import { unzip } from "./unzip.js";

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

self.onmessage = async ({ data: { id, url, path, sha256 } }) => {
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (sha256 && crypto.subtle && (await sha256Hex(bytes)) !== sha256) {
      throw new Error(`${path} is corrupt (its sha256 does not match the manifest)`);
    }
    const files = await unzip(bytes);
    // A stored entry is a view into the archive: copy it so that every buffer can be moved.
    const own = files.map(({ path: name, data }) =>
      ({ path: name, data: data.byteLength === data.buffer.byteLength ? data : data.slice() }));
    self.postMessage({ id, files: own }, own.map((f) => f.data.buffer));
  } catch (err) {
    self.postMessage({ id, error: err.message ?? String(err) });
  }
};
