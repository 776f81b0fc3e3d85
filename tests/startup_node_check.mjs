// Node half of tests/test_startup.py: the page's start-up path outside the browser.
//
//   node tests/startup_node_check.mjs unzip ARCHIVE OUT.json
//       unzip ARCHIVE with web/unzip.js; write {path: sha256} of every file to OUT.json
//   node tests/startup_node_check.mjs restore PYODIDE_DIR DIST [HOLDS]
//       restore DIST's snapshot (the first, or the one holding HOLDS: numpy | stdlib) and load its
//       extension modules back in (web/dynlibs.js) or preload them (the stdlib one), install
//       its wheels with web/unzip.js and its bytecode, import scribblenet.session, predict and
//       train a little; print "RESULT {json}" (which caches took effect)
//   node tests/startup_node_check.mjs dynlibs PYODIDE_DIR DIST
//       a start without the snapshot, with DIST's extension modules compiled and preloaded by
//       web/dynlibs.js, then their .so files in site-packages overwritten with garbage; the same
//       prediction and training: print "RESULT {json}" (also which libraries Python loaded, and
//       a corrupt one refused)
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gunzipSync } from "node:zlib";
import { compileDynlibs, preloadDynlibs, relinkSnapshot } from "../web/dynlibs.js";
import { unzip, writeTree } from "../web/unzip.js";

const [mode, ...args] = process.argv.slice(2);
const bytesOf = (path) => new Uint8Array(readFileSync(path));
// The site's files as a server sends them (compileStreaming wants application/wasm).
globalThis.fetch = async (url) =>
  new Response(readFileSync(fileURLToPath(url)), { headers: { "Content-Type": "application/wasm" } });

// After the start: predict the probe stroke, then what training uses (numpy.random's extension
// modules load now, after the snapshot's), linear algebra and Pillow's drawing. Every figure is
// compared between a restored start and a fresh one.
const EXERCISE = `
import numpy as np
from scribblenet import Network, NetworkConfig, TrainConfig, Trainer, trainer_rngs
from scribblenet.session import Session

session = Session()
assert session.load_model(open("/tmp/model.npz", "rb").read(), source="pretrained")["ok"]
alpha = bytearray(280 * 280)
for y in range(60, 220):
    for x in range(135, 147):
        alpha[y * 280 + x] = 255
prediction = session.predict_ink(bytes(alpha), 280, 280)
init_rng, data_rng = trainer_rngs(seed=0)
X = data_rng.random((256, 784), dtype=np.float32)  # (256, 784)
y = (X[:, :10].argmax(axis=1)).astype(np.int64)  # (256,)
net = Network(NetworkConfig(hidden=(16,)), init_rng)
costs = [e["cost"] for e in Trainer(net, TrainConfig(epochs=2), X, y, rng=data_rng).run() if e["type"] == "epoch"]
A = np.arange(16.0).reshape(4, 4) + np.eye(4) * 10  # (4, 4)
exercised = {
    "digit": int(prediction["digit"]),
    "probabilities": [float(p) for p in prediction["probabilities"]],
    "costs": [float(c) for c in costs],
    "solve": [float(v) for v in np.linalg.solve(A, np.ones(4))],
}
`;

if (mode === "unzip") {
  const [archive, out] = args;
  const files = await unzip(bytesOf(archive));
  const digests = Object.fromEntries(
    files.map(({ path, data }) => [path, createHash("sha256").update(data).digest("hex")]),
  );
  writeFileSync(out, JSON.stringify(digests));
} else if (mode === "restore") {
  const [pyodideDir, dist, holds] = args;
  const manifest = JSON.parse(readFileSync(`${dist}/manifest.json`, "utf8"));
  const { loadPyodide } = await import(`${pyodideDir}/pyodide.mjs`);
  const chosen = manifest.snapshots.find((s) => !holds || s.holds === holds);
  const snapshot = new Uint8Array(gunzipSync(readFileSync(`${dist}/${chosen.file}`)));
  const compiled = await compileDynlibs(manifest, pathToFileURL(`${dist}/`));
  const pyodide = await loadPyodide({ indexURL: `${pyodideDir}/`, _loadSnapshot: snapshot });
  const { link } = chosen;
  if (link.libs.length) await relinkSnapshot(pyodide, link.site_packages, link, compiled); // first
  else await preloadDynlibs(pyodide, link.site_packages, compiled); // a snapshot without them
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
random_imported = "numpy.random" in sys.modules  # before EXERCISE trains
session_imported = "scribblenet.session" in sys.modules  # by the snapshot
${EXERCISE}
ours = [m for m in sys.modules.values() if (getattr(m, "__file__", None) or "").startswith("${sitePackages}")]
py = [m for m in ours if m.__file__.endswith(".py")]
from importlib.util import cache_from_source
import os
json.dumps({
    **exercised,
    "py_modules": len(py),
    "with_bytecode": sum(os.path.exists(cache_from_source(m.__file__)) for m in py),
    "random_imported": random_imported,
    "session_imported": session_imported,
    "environ_underscore": os.environ.get("_"),
})`);
  console.log(`RESULT ${JSON.stringify({ ...JSON.parse(result), preimported: before.length })}`);
} else if (mode === "dynlibs") {
  const [pyodideDir, dist] = args;
  const manifest = JSON.parse(readFileSync(`${dist}/manifest.json`, "utf8"));
  const base = pathToFileURL(`${dist}/`);
  const wrongHash = structuredClone(manifest);
  wrongHash.files[wrongHash.dynlibs[0].file].sha256 = "0".repeat(64);
  const refused = await compileDynlibs(wrongHash, base).then(() => "", (err) => err.message);
  const compiled = compileDynlibs(manifest, base); // begun before the runtime, as in the page
  const { loadPyodide } = await import(`${pyodideDir}/pyodide.mjs`);
  const pyodide = await loadPyodide({ indexURL: `${pyodideDir}/` }); // the start without snapshot
  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  const wheels = Object.keys(manifest.files).filter((p) => /^pyodide\/[^/]*\.whl$/.test(p));
  for (const path of [...wheels, manifest.wheel, manifest.bytecode]) {
    writeTree(pyodide.FS, sitePackages, await unzip(bytesOf(`${dist}/${path}`)));
  }
  await preloadDynlibs(pyodide, sitePackages, await compiled);
  // Proof that the preloaded modules are what Python loads: their files can no longer load.
  for (const { path } of manifest.dynlibs) pyodide.FS.writeFile(`${sitePackages}/${path}`, "not wasm");
  pyodide.FS.writeFile("/tmp/model.npz", bytesOf(`${dist}/${manifest.model}`));
  const loaded = () =>
    Object.keys(pyodide._module.LDSO.loadedLibsByName)
      .filter((name) => name.startsWith(`${sitePackages}/`))
      .map((name) => name.slice(sitePackages.length + 1));
  const exercised = JSON.parse(pyodide.runPython(`${EXERCISE}\nimport json; json.dumps(exercised)`));
  console.log(`RESULT ${JSON.stringify({ ...exercised, loaded: loaded(), refused })}`);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
