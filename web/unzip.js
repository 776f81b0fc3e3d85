// Reads a zip archive (a wheel) in JavaScript, with the browser's native inflate
// (DecompressionStream "deflate-raw"). Pyodide's own installer unpacks wheels with Python's
// zipfile inside WebAssembly, which costs most of a second for NumPy on a slow machine; this
// needs no runtime at all, so it runs while Pyodide is still starting.
//
//   const files = await unzip(bytes);            // [{path, data: Uint8Array}], in archive order
//   writeTree(pyodide.FS, "/lib/python3.12/site-packages", files);
//
// Only what wheels use: stored (0) and deflated (8) entries, no zip64, no encryption. The bytes
// must already be trusted (checked against a sha256), so CRCs are not re-checked.

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;

/** Locate the end-of-central-directory record: the archive's table of contents. */
function findEndOfCentralDirectory(view) {
  const last = view.byteLength - 22; // a record with no comment
  for (let at = last; at >= Math.max(0, last - 0xffff); at--) {
    if (view.getUint32(at, true) === EOCD_SIGNATURE) return at;
  }
  throw new Error("not a zip archive (no end-of-central-directory record)");
}

async function inflateRaw(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The archive's files as [{path, data}]; directories are left out. */
export async function unzip(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const eocd = findEndOfCentralDirectory(view);
  const count = view.getUint16(eocd + 10, true);
  let at = view.getUint32(eocd + 16, true);
  const decoder = new TextDecoder();
  const pending = [];
  for (let i = 0; i < count; i++) {
    if (view.getUint32(at, true) !== CENTRAL_SIGNATURE) throw new Error("corrupt zip central directory");
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const compressedSize = view.getUint32(at + 20, true);
    const size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const localHeader = view.getUint32(at + 42, true);
    const path = decoder.decode(bytes.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extraLength + commentLength;
    if (path.endsWith("/")) continue;
    if (flags & 1) throw new Error(`${path}: encrypted zip entries are not supported`);
    if (path.startsWith("/") || path.split("/").includes("..")) throw new Error(`${path}: unsafe path in zip`);
    if (view.getUint32(localHeader, true) !== LOCAL_SIGNATURE) throw new Error(`${path}: corrupt zip entry`);
    // The local header repeats the name and has its own extra field: skip both to the data.
    const start = localHeader + 30 + view.getUint16(localHeader + 26, true) + view.getUint16(localHeader + 28, true);
    const raw = bytes.subarray(start, start + compressedSize);
    if (method !== 0 && method !== 8) throw new Error(`${path}: zip compression method ${method} is not supported`);
    pending.push({ path, size, data: method === 0 ? raw : inflateRaw(raw) });
  }
  const files = [];
  for (const { path, data, size } of pending) {
    const content = await data;
    if (content.length !== size) throw new Error(`${path}: inflated to ${content.length} bytes, expected ${size}`);
    files.push({ path, data: content });
  }
  return files;
}

/** Write [{path, data}] under `root` in an Emscripten file system (Pyodide's `pyodide.FS`). */
export function writeTree(FS, root, files) {
  const made = new Set();
  for (const { path, data } of files) {
    const slash = path.lastIndexOf("/");
    const dir = slash < 0 ? root : `${root}/${path.slice(0, slash)}`;
    if (!made.has(dir)) {
      FS.mkdirTree(dir);
      made.add(dir);
    }
    FS.writeFile(`${root}/${path}`, data, { canOwn: true });
  }
}
