// A helper worker that downloads, verifies and unzips the wheels on the machine's other core
// while the Python worker restores its runtime (the two are each single-threaded work).
//
//   request  {id, url, path, sha256}   a file of the site, with its manifest hash
//   reply    {id, files: [{path, data}]}  (the data buffers are transferred)  |  {id, error}
import { fetchChecked } from "./fetch-checked.js";
import { unzip } from "./unzip.js";

self.onmessage = async ({ data: { id, url, path, sha256 } }) => {
  try {
    const files = await unzip(await fetchChecked(url, path, sha256));
    // A stored entry is a view into the archive: copy it so that every buffer can be moved.
    const own = files.map(({ path: name, data }) =>
      ({ path: name, data: data.byteLength === data.buffer.byteLength ? data : data.slice() }));
    self.postMessage({ id, files: own }, own.map((f) => f.data.buffer));
  } catch (err) {
    self.postMessage({ id, error: err.message ?? String(err) });
  }
};
