// Make the files that let the page's worker start in a fraction of the usual time, by running
// the site's own Pyodide under Node (called by scripts/build_site.py):
//
//   startup/snapshot-numpy.bin.gz   Pyodide's memory after the interpreter has started and
//                                   imported everything the page imports before it can predict:
//                                   numpy, Pillow and scribblenet.session, their extension modules
//                                   included (Pyodide's experimental _makeSnapshot /
//                                   _loadSnapshot). The worker loads those modules back in on
//                                   restore (web/dynlibs.js relinkSnapshot), each where it was
//                                   here, and uses the snapshot only if they link exactly as
//                                   recorded. The default.
//   startup/snapshot-stdlib.bin.gz  the same, with only the standard-library modules imported:
//                                   the fallback where the first is refused (WebKit's linker lays
//                                   out its function table differently) or broken. Downloaded
//                                   only then.
//   startup/bytecode.zip            .pyc files (unchecked-hash, so no source is re-read) for the
//                                   modules of numpy, Pillow and scribblenet the page imports
//                                   before it can predict or train. The wheels carry only .py:
//                                   without these every import compiles them again.
//   startup/dynlibs/*.wasm          the extension modules (.so, WebAssembly) the page loads before
//                                   it can predict, copied byte for byte out of the wheels, in the
//                                   order they load, and startup/dynlibs.json listing them and the
//                                   snapshots (with how each links). With a URL of their own the
//                                   worker compiles them by streaming, in parallel with the
//                                   runtime, and Chrome keeps their compiled code for the next
//                                   visit; from the wheel they are compiled at import, every visit.
//
// All are only caches: the worker falls back to the next snapshot, then to a normal start, when
// one is missing, corrupt or refused, and the official wheels themselves are shipped unchanged.
//
//   node scripts/build_startup.mjs --pyodide node_modules/pyodide \
//        --model web/models/pretrained.npz --out dist/startup WHEEL...
//
// (--pyodide is node_modules/pyodide, byte-identical to dist/pyodide: under dist/, the root
// package.json's "type": "module" would make Node misread pyodide.asm.js.)
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { gotDigest } from "../web/dynlibs.js";
import { unzip, writeTree } from "../web/unzip.js";

const { values: args, positionals: wheels } = parseArgs({
  options: { pyodide: { type: "string" }, model: { type: "string" }, out: { type: "string" } },
  allowPositionals: true,
});
if (!args.pyodide || !args.model || !args.out || !wheels.length) {
  console.error("usage: build_startup.mjs --pyodide DIR --model NPZ --out DIR WHEEL...");
  process.exit(2);
}
// Errors are printed as their message: Node's default report quotes the failing line, which
// in pyodide.asm.js is a megabyte of minified code.
process.on("uncaughtException", (err) => {
  console.error(`build_startup: ${err?.message ?? err}`);
  process.exit(1);
});
const TABLE_SPARE = 4096;
const indexURL = `${resolve(args.pyodide)}/`;
const { loadPyodide } = await import(`${indexURL}pyodide.mjs`);
const quiet = { stdout: () => {}, stderr: (line) => console.error(`[pyodide] ${line}`) };

// 1. Do what the page does before it can predict, and note every module that took. The wheels
// are installed as the page installs them (web/unzip.js): Pyodide's loadPackage would load
// every extension module they hold at once, where the page's imports load only what they use.
const probe = await loadPyodide({ indexURL, ...quiet });
const sitePackages = probe.runPython("import site; site.getsitepackages()[0]");
for (const wheel of wheels) writeTree(probe.FS, sitePackages, await unzip(new Uint8Array(readFileSync(wheel))));
probe.FS.writeFile("/tmp/model.npz", new Uint8Array(readFileSync(args.model)));
probe.runPython(`
import json, sys
before = set(sys.modules)
from scribblenet.session import Session

session = Session()
session.load_model(open("/tmp/model.npz", "rb").read(), source="pretrained")
# A stroke like a visitor's "1", so that drawing's code paths (Pillow filters, resizing) import.
alpha = bytearray(280 * 280)
for y in range(60, 220):
    for x in range(135, 147):
        alpha[y * 280 + x] = 255
assert not session.predict_ink(bytes(alpha), 280, 280)["empty"]
needed = [m for m in sys.modules if m not in before]
`);
// The extension modules that took to predict, in the order they loaded (a later one may use
// symbols of an earlier one): the page's worker compiles these ahead of the import.
const dynlibs = Object.keys(probe._module.LDSO.loadedLibsByName)
  .filter((path) => path.startsWith(`${sitePackages}/`) && path.endsWith(".so"))
  .map((path) => path.slice(sitePackages.length + 1));
const found = JSON.parse(
  probe.runPython(`
import numpy.random, scribblenet.augment  # not needed to predict, but to start training

import py_compile, site, zipfile
from pathlib import Path

site_packages = Path(site.getsitepackages()[0])
stdlib, compiled = [], 0
with zipfile.ZipFile("/tmp/bytecode.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
    for name in [m for m in sys.modules if m not in before]:
        source = getattr(sys.modules[name], "__file__", None) or ""
        if not source.endswith(".py"):
            continue  # built in, or an extension module (.so)
        path = Path(source)
        if site_packages not in path.parents:
            stdlib.append(name)
            continue
        rel = path.relative_to(site_packages)
        pyc = py_compile.compile(
            source, cfile="/tmp/module.pyc", doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        entry = zipfile.ZipInfo(str(rel.parent / "__pycache__" / f"{rel.stem}.{sys.implementation.cache_tag}.pyc"))
        entry.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(entry, Path(pyc).read_bytes())
        compiled += 1
json.dumps({"stdlib": stdlib, "compiled": compiled, "needed": needed})
`),
);
mkdirSync(args.out, { recursive: true });
const bytecode = probe.FS.readFile("/tmp/bytecode.zip");
writeFileSync(`${args.out}/bytecode.zip`, bytecode);
// Named .wasm so that servers send them as application/wasm, which compileStreaming requires.
const dynlibFiles = dynlibs.map((path) => ({ path, file: `dynlibs/${path.replace(/\.so$/, ".wasm")}` }));
for (const { path, file } of dynlibFiles) {
  mkdirSync(dirname(`${args.out}/${file}`), { recursive: true });
  writeFileSync(`${args.out}/${file}`, probe.FS.readFile(`${sitePackages}/${path}`));
}

// 2. The snapshots, each from a fresh interpreter: "numpy" imports every module the page imports
// before it can predict (numpy, Pillow, scribblenet.session, their extension modules too),
// "stdlib" only the standard-library ones. A snapshot holds the heap, not the dynamically loaded
// libraries: the worker loads them again on restore, each at the memory and table base it has
// here (dynlibs.js, relinkSnapshot), which `link` records along with what to check that the
// result is the same. In the order the worker tries them.
const snapshots = [];
const sizes = [];
for (const [holds, imports] of [
  ["numpy", [...found.stdlib, ...found.needed]],
  ["stdlib", found.stdlib],
]) {
  const maker = await loadPyodide({ indexURL, _makeSnapshot: true, ...quiet });
  for (const wheel of wheels) writeTree(maker.FS, sitePackages, await unzip(new Uint8Array(readFileSync(wheel))));
  const linker = maker._module;
  // Spare function-table slots before the libraries' own: a browser's runtime may have added a
  // few functions of its own by the time it restores (1 in Chromium 150, 1155 in WebKitGTK 2.50),
  // where Node's had none; a slot costs a pointer.
  if (holds === "numpy") linker.wasmTable.grow(TABLE_SPARE);
  const tableBefore = linker.wasmTable.length;
  maker.runPython(`
import gc, importlib, os
for name in ${JSON.stringify(imports)}:
    importlib.import_module(name)
os.environ.pop("_", None)  # Node's script path; a browser has none
gc.collect()
gc.freeze()  # no collection after the restore walks objects before their libraries are back
`);
  const link = await linkRecord(linker, sitePackages, tableBefore);
  const expected = holds === "numpy" ? dynlibs.join() : "";
  if (link.libs.map((lib) => lib.path).join() !== expected) {
    throw new Error(`the ${holds} snapshot's libraries ${link.libs.map((l) => l.path)} are not ${expected}`);
  }
  const file = `snapshot-${holds}.bin.gz`;
  const snapshot = gzipSync(maker.makeMemorySnapshot(), { level: 9 });
  writeFileSync(`${args.out}/${file}`, snapshot);
  snapshots.push({ holds, file, link });
  sizes.push(`${file} ${(snapshot.length / 2 ** 20).toFixed(1)} MiB`);
}
writeFileSync(`${args.out}/dynlibs.json`, `${JSON.stringify({ dynlibs: dynlibFiles, snapshots }, null, 1)}\n`);
const { link } = snapshots[0];
console.log(
  `build_startup: ${sizes.join(", ")} (${found.stdlib.length} standard-library modules preloaded, ` +
    `${found.needed.length} more in the first), bytecode.zip ` +
    `${(bytecode.length / 2 ** 10).toFixed(0)} KiB (${found.compiled} modules), dynlibs/ ` +
    `${dynlibs.length} extension modules (in the first snapshot, at table ${link.table_before}..${link.table_after})`,
);

/**
 * What the worker needs to load the snapshot's extension modules again exactly as they were: for
 * each, in load order, its dlopen handle (its record in the snapshot's C memory, which holds its
 * memory and table base) and the table slot its PyInit function got from dlsym; the function
 * table's length before and after; and a digest of the linker's global offset table.
 */
async function linkRecord(linker, sitePackages, tableBefore) {
  const handles = new Map(Object.entries(linker.LDSO.loadedLibsByHandle).map(([h, dso]) => [dso, Number(h)]));
  const libs = [];
  for (const [name, dso] of Object.entries(linker.LDSO.loadedLibsByName)) {
    if (!name.startsWith(`${sitePackages}/`)) continue;
    const handle = handles.get(dso);
    const word = (offset) => linker.HEAPU32[(handle + offset) >>> 2];
    const init = Object.keys(dso.exports).find((sym) => sym.startsWith("PyInit_")) ?? null;
    libs.push({
      path: name.slice(sitePackages.length + 1),
      handle,
      memory_base: word(12),
      memory_size: word(16),
      table_base: word(20),
      table_size: word(24),
      init,
      init_slot: init ? linker.getFunctionAddress(dso.exports[init]) : null,
    });
  }
  const tableAfter = linker.wasmTable.length;
  const got = await gotDigest(linker);
  return { site_packages: sitePackages, table_before: tableBefore, table_after: tableAfter, got_sha256: got, libs };
}
