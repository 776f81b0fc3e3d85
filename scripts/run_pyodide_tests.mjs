#!/usr/bin/env node
// Run the unit tests inside Pyodide (CPython 3.12 on WebAssembly) under Node.
//
// Usage:  node scripts/run_pyodide_tests.mjs [--source] [-- <extra pytest args>]
//
// Uses the built site (run `python scripts/build_site.py` first): numpy + Pillow from the
// verified wheels in dist/pyodide/ and our package from dist/wheels/ (the very wheel the page
// installs); the runtime itself from node_modules/pyodide. --source imports py/ from the work
// tree instead of the wheel.
// pytest and hypothesis are pure-Python wheels pinned and verified by fetch_wheels.py.
// The repository is mounted (NODEFS) at its own absolute path, so pytest reads
// pyproject.toml (markers, strict options) and tracebacks show real paths.
// Exits with pytest's exit code.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DIST = path.join(ROOT, "dist");
const MARKERS = "not slow and not native and not e2e";

function fail(message) {
  console.error(`run_pyodide_tests: ERROR: ${message}`);
  process.exit(2);
}

function parseArgs(argv) {
  const dash = argv.indexOf("--");
  const own = dash === -1 ? argv : argv.slice(0, dash);
  const pytestArgs = dash === -1 ? [] : argv.slice(dash + 1);
  for (const arg of own) {
    if (arg !== "--source") fail(`unknown option ${arg} (pytest options go after --)`);
  }
  return { source: own.includes("--source"), pytestArgs };
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else if (entry.name.endsWith(".py")) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function testWheels() {
  const venvPython = path.join(ROOT, ".venv", "bin", "python");
  const python = fs.existsSync(venvPython) ? venvPython : "python3";
  const script = path.join(ROOT, "scripts", "fetch_wheels.py");
  const out = execFileSync(python, [script, "--test-deps", "--json"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out);
}

async function main() {
  const { source, pytestArgs } = parseArgs(process.argv.slice(2));
  const manifestPath = path.join(DIST, "manifest.json");
  if (!fs.existsSync(manifestPath)) fail(`${manifestPath} not found: run scripts/build_site.py`);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, "utf8"));
  const wheelPath = path.join(DIST, manifest.wheel);
  if (!source && newestMtime(path.join(ROOT, "py")) > fs.statSync(wheelPath).mtimeMs) {
    fail(`${wheelPath} is older than py/: rebuild (scripts/build_site.py) or pass --source`);
  }
  const wheels = testWheels();

  // The runtime comes from node_modules/pyodide (byte-identical to dist/pyodide/, which
  // build_site.py copies): its own package.json makes Node load pyodide.asm.js as CommonJS,
  // which our "type": "module" package.json would otherwise prevent. Packages (numpy, Pillow)
  // come from the verified wheels in dist/pyodide/, never from the network.
  const runtimeDir = path.join(ROOT, "node_modules", "pyodide");
  const packageDir = path.join(DIST, manifest.pyodide);
  const { loadPyodide } = await import(pathToFileURL(path.join(runtimeDir, "pyodide.mjs")).href);
  const env = { PYTHONDONTWRITEBYTECODE: "1", HOME: "/home/pyodide" };
  for (const name of ["CI", "SCRIBBLENET_MNIST_DIR", "HYPOTHESIS_PROFILE"]) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  const started = Date.now();
  const pyodide = await loadPyodide({
    indexURL: runtimeDir + path.sep,
    packageCacheDir: packageDir + path.sep,
    env,
  });
  const write = (fd) => ({
    write: (buf) => {
      fs.writeSync(fd, buf);
      return buf.length;
    },
  });
  pyodide.setStdout(write(1));
  pyodide.setStderr(write(2));
  await pyodide.loadPackage(manifest.pyodide_packages);

  const { FS } = pyodide;
  FS.mkdirTree(ROOT);
  FS.mount(FS.filesystems.NODEFS, { root: ROOT }, ROOT);
  if (source) {
    pyodide.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(path.join(ROOT, "py"))})`);
  } else {
    await pyodide.loadPackage(wheelPath);
  }
  // Pure-Python wheels need no installer: copy into MEMFS and unzip into site-packages.
  FS.mkdirTree("/tmp/test-wheels");
  for (const wheel of wheels) {
    FS.writeFile(`/tmp/test-wheels/${path.basename(wheel)}`, fs.readFileSync(wheel));
  }
  pyodide.runPython(`
  import pathlib, site, zipfile
  for wheel in sorted(pathlib.Path("/tmp/test-wheels").glob("*.whl")):
      with zipfile.ZipFile(wheel) as archive:
          archive.extractall(site.getsitepackages()[0])
  `);
  console.log(
    `[run_pyodide_tests] Pyodide ${pyodide.version} ready in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
      `scribblenet from ${source ? "py/ (source)" : manifest.wheel}`,
  );

  // Run from the repo root, as natively (node ids relative to it). tests/conftest.py turns
  // hypothesis' example database off under Pyodide, so nothing is written there.
  FS.chdir(ROOT);
  const args = [
    "tests",
    "--rootdir",
    ROOT,
    "-c",
    path.join(ROOT, "pyproject.toml"),
    "-m",
    MARKERS,
    "-p",
    "no:cacheprovider",
    "-p",
    "no:faulthandler", // needs a real file descriptor for a watchdog thread
    "--capture=sys", // fd capture fstat()s an unlinked temp file, which Emscripten's FS refuses
    ...pytestArgs,
  ];
  pyodide.globals.set("pytest_args", pyodide.toPy(args));
  const code = pyodide.runPython(`
  import pytest
  int(pytest.main(list(pytest_args)))
  `);
  console.log(`[run_pyodide_tests] pytest exit code ${code}`);
  return code;
}

// Print only the message: an uncaught Pyodide error would dump the minified runtime source.
main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`run_pyodide_tests: ERROR: ${err && err.message ? err.message : err}`);
    process.exit(2);
  },
);
