// Node half of tests/test_startup.py: the page's start-up path outside the browser.
//
//   node tests/startup_node_check.mjs unzip ARCHIVE OUT.json
//       unzip ARCHIVE with web/unzip.js; write {path: sha256} of every file to OUT.json
//   node tests/startup_node_check.mjs restore PYODIDE_DIR DIST
//       restore DIST's snapshot, install its wheels with web/unzip.js and its bytecode, import
//       scribblenet.session and predict; print "RESULT {json}" (which caches took effect)
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { unzip, writeTree } from "../web/unzip.js";

const [mode, ...args] = process.argv.slice(2);
const bytesOf = (path) => new Uint8Array(readFileSync(path));

if (mode === "unzip") {
  const [archive, out] = args;
  const files = await unzip(bytesOf(archive));
  const digests = Object.fromEntries(
    files.map(({ path, data }) => [path, createHash("sha256").update(data).digest("hex")]),
  );
  writeFileSync(out, JSON.stringify(digests));
} else if (mode === "restore") {
  const [pyodideDir, dist] = args;
  const manifest = JSON.parse(readFileSync(`${dist}/manifest.json`, "utf8"));
  const { loadPyodide } = await import(`${pyodideDir}/pyodide.mjs`);
  const snapshot = new Uint8Array(gunzipSync(readFileSync(`${dist}/${manifest.snapshot}`)));
  const pyodide = await loadPyodide({ indexURL: `${pyodideDir}/`, _loadSnapshot: snapshot });
  const before = pyodide.runPython("import sys; sorted(sys.modules)").toJs();
  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  const wheels = Object.keys(manifest.files).filter((p) => /^pyodide\/[^/]*\.whl$/.test(p));
  for (const path of [...wheels, manifest.wheel, manifest.bytecode]) {
    writeTree(pyodide.FS, sitePackages, await unzip(bytesOf(`${dist}/${path}`)));
  }
  pyodide.FS.writeFile("/tmp/model.npz", bytesOf(`${dist}/${manifest.model}`));
  // Proof that the bytecode is what runs: a module whose source now fails still imports.
  pyodide.FS.writeFile(`${sitePackages}/scribblenet/ink.py`, "raise RuntimeError('source was read')\n");
  const result = pyodide.runPython(`
import json, sys
from scribblenet.session import Session

session = Session()
assert session.load_model(open("/tmp/model.npz", "rb").read(), source="pretrained")["ok"]
alpha = bytearray(280 * 280)
for y in range(60, 220):
    for x in range(135, 147):
        alpha[y * 280 + x] = 255
prediction = session.predict_ink(bytes(alpha), 280, 280)
ours = [m for m in sys.modules.values() if (getattr(m, "__file__", None) or "").startswith("${sitePackages}")]
py = [m for m in ours if m.__file__.endswith(".py")]
from importlib.util import cache_from_source
import os
json.dumps({
    "digit": prediction["digit"],
    "py_modules": len(py),
    "with_bytecode": sum(os.path.exists(cache_from_source(m.__file__)) for m in py),
    "random_imported": "numpy.random" in sys.modules,
    "environ_underscore": os.environ.get("_"),
})`);
  console.log(`RESULT ${JSON.stringify({ ...JSON.parse(result), preimported: before.length })}`);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
