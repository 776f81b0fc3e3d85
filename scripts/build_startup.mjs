// Make the two files that let the page's worker start in a fraction of the usual time, by
// running the site's own Pyodide under Node (called by scripts/build_site.py):
//
//   startup/snapshot.bin.gz  Pyodide's memory after the interpreter has started and imported the
//                            standard-library modules scribblenet needs (Pyodide's experimental
//                            _makeSnapshot / _loadSnapshot). Restoring it skips Python's own
//                            start-up: about 3 s of the page's 5 on a slow 2-core machine.
//   startup/bytecode.zip     .pyc files (unchecked-hash, so no source is re-read) for the modules
//                            of numpy, Pillow and scribblenet the page imports before it can
//                            predict. The wheels carry only .py: without these every visit
//                            compiles them again.
//
// Both are only caches: the worker falls back to a normal start when either is missing, corrupt
// or refused, and the official wheels themselves are shipped unchanged.
//
//   node scripts/build_startup.mjs --pyodide node_modules/pyodide \
//        --model web/models/pretrained.npz --out dist/startup WHEEL...
//
// (--pyodide is node_modules/pyodide, byte-identical to dist/pyodide: under dist/, the root
// package.json's "type": "module" would make Node misread pyodide.asm.js.)
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";

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
const indexURL = `${resolve(args.pyodide)}/`;
const { loadPyodide } = await import(`${indexURL}pyodide.mjs`);
const quiet = { stdout: () => {}, stderr: (line) => console.error(`[pyodide] ${line}`) };

// 1. Do what the page does before it can predict, and note every module that took.
const probe = await loadPyodide({ indexURL, ...quiet });
await probe.loadPackage(wheels.map((w) => resolve(w)), { messageCallback: () => {} });
probe.FS.writeFile("/tmp/model.npz", new Uint8Array(readFileSync(args.model)));
const found = JSON.parse(
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
json.dumps({"stdlib": stdlib, "compiled": compiled})
`),
);
mkdirSync(args.out, { recursive: true });
const bytecode = probe.FS.readFile("/tmp/bytecode.zip");
writeFileSync(`${args.out}/bytecode.zip`, bytecode);

// 2. A fresh interpreter that imports just those standard-library modules (no extension
// modules: a snapshot holds the heap, not the dynamically loaded libraries), then the snapshot.
const maker = await loadPyodide({ indexURL, _makeSnapshot: true, ...quiet });
maker.runPython(`
import importlib, os
for name in ${JSON.stringify(found.stdlib)}:
    importlib.import_module(name)
os.environ.pop("_", None)  # Node's script path; a browser has none
`);
const snapshot = gzipSync(maker.makeMemorySnapshot(), { level: 9 });
writeFileSync(`${args.out}/snapshot.bin.gz`, snapshot);
console.log(
  `build_startup: snapshot.bin.gz ${(snapshot.length / 2 ** 20).toFixed(1)} MiB ` +
    `(${found.stdlib.length} standard-library modules preloaded), bytecode.zip ` +
    `${(bytecode.length / 2 ** 10).toFixed(0)} KiB (${found.compiled} modules)`,
);
