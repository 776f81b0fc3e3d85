// Bench worker: Pyodide + NumPy + scribblenet + the SIMD kernel, as the page's worker loads them,
// then runs the Python tasks of bench_tasks.py on request. Benchmark-only: never shipped in dist/.
//
//  request {id, cmd: "init"}                       -> {id, ok, result: {gemm, ms: {...}}}
//  request {id, cmd: "task", name, args}           -> {id, ok, result: task's JSON}
//  request {id, cmd: "heap"}                       -> {id, ok, result: {heap_bytes}}
//  any failure                                     -> {id, ok: false, error}
import { loadPyodide } from "../pyodide/pyodide.mjs";
import { captureWasmMemory, installGemm } from "../gemm/gemm.js";

const site = new URL("../", import.meta.url);
let pyodide = null;
const memories = []; // every WebAssembly.Memory made while Pyodide starts (for proto kernels)
let tasks = null; // bench_tasks.run_json, proxied once

const IMPORT_PROFILE = `
import importlib, json, pathlib, time
times = {}
for name in ("numpy", "urllib.request", "dataclasses", "zipfile", "PIL.Image",
             "scribblenet.compact", "scribblenet.ink", "scribblenet.session"):
    t0 = time.perf_counter()
    module = importlib.import_module(name)
    times[name] = round(1000 * (time.perf_counter() - t0), 1)
# Compiling source to bytecode is part of every import above: the wheels carry no .pyc files
# and the file system is new on every visit. This is what shipping .pyc would save (roughly).
import sys
compile_ms = {}
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None) or ""
    if "site-packages" in path and path.endswith(".py"):
        top = path.split("site-packages/")[1].split("/")[0]
        t0 = time.perf_counter()
        compile(pathlib.Path(path).read_bytes(), path, "exec")
        compile_ms[top] = compile_ms.get(top, 0) + 1000 * (time.perf_counter() - t0)
for top, ms in sorted(compile_ms.items()):
    times[f"of which compiling {top} .py"] = round(ms, 1)
json.dumps(times)
`;

async function fetchBytes(path) {
  const response = await fetch(new URL(path, site));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function init() {
  const ms = {};
  let t = performance.now();
  const lap = (name) => {
    const now = performance.now();
    ms[name] = Math.round(now - t);
    t = now;
  };
  const manifest = await (await fetch(new URL("manifest.json", site))).json();
  const RealMemory = WebAssembly.Memory;
  WebAssembly.Memory = new Proxy(RealMemory, {
    construct(target, args, newTarget) {
      const memory = Reflect.construct(target, args, newTarget === WebAssembly.Memory ? target : newTarget);
      memories.push(memory);
      return memory;
    },
  });
  captureWasmMemory();
  pyodide = await loadPyodide({ indexURL: new URL("pyodide/", site).href });
  lap("runtime");
  // Each package on its own, to see where start-up time goes (the page loads them together).
  await pyodide.loadPackage("numpy", { messageCallback: () => {} });
  lap("numpy");
  await pyodide.loadPackage("pillow", { messageCallback: () => {} });
  lap("pillow");
  await pyodide.loadPackage(new URL(manifest.wheel, site).href, { messageCallback: () => {} });
  lap("scribblenet wheel");
  // What importing the page's Python costs, module by module (each figure excludes what the
  // earlier ones already imported), and how much of it is compiling our .py files to bytecode.
  const imports = JSON.parse(pyodide.runPython(IMPORT_PROFILE));
  lap("import scribblenet.session");
  const gemm = await installGemm(pyodide, new URL("gemm/gemm.wasm", site));
  WebAssembly.Memory = RealMemory;
  lap("gemm");
  const proto = await installProto().catch((err) => String(err?.message ?? err));
  lap("proto kernels");
  pyodide.FS.mkdirTree("/bench");
  for (const name of ["bench_tasks.py", "proto.py"]) {
    const bytes = await fetchBytes(`bench/${name}`).catch(() => null);
    if (bytes) pyodide.FS.writeFile(`/bench/${name}`, bytes);
  }
  pyodide.FS.writeFile("/bench/data.bin", await fetchBytes(manifest.dataset));
  lap("bench files + dataset");
  pyodide.runPython("import sys; sys.path.insert(0, '/bench')");
  const module = pyodide.pyimport("bench_tasks");
  tasks = module.run_json.copy();
  module.destroy();
  return { gemm, proto, ms, imports, dataset: "/bench/data.bin", heap_bytes: heapBytes() };
}

// bench/proto_kernels.wasm (built by bench_browser.py when clang is there) on Python's heap,
// registered as the Python module scribblenet_proto.
async function installProto() {
  const heap = memories.find((m) => m.buffer === pyodide._module.HEAPU8.buffer);
  if (!heap) return "Pyodide's memory was not captured";
  const response = await fetch(new URL("bench/proto_kernels.wasm", site));
  if (!response.ok) return `proto_kernels.wasm: HTTP ${response.status}`;
  const { instance } = await WebAssembly.instantiate(await response.arrayBuffer(), { env: { memory: heap } });
  pyodide.registerJsModule("scribblenet_proto", { adam_update: instance.exports.adam_update });
  return "ok";
}

function heapBytes() {
  return pyodide?._module?.HEAPU8?.length ?? null;
}

self.onmessage = async ({ data: msg }) => {
  try {
    let result;
    if (msg.cmd === "init") result = await init();
    else if (msg.cmd === "task") {
      const t0 = performance.now();
      result = JSON.parse(tasks(msg.name, JSON.stringify(msg.args ?? {})));
      result.wall_ms = performance.now() - t0;
      result.heap_bytes = heapBytes();
    } else if (msg.cmd === "heap") result = { heap_bytes: heapBytes() };
    else throw new Error(`unknown command ${msg.cmd}`);
    self.postMessage({ id: msg.id, ok: true, result });
  } catch (err) {
    self.postMessage({ id: msg.id, ok: false, error: String(err?.message ?? err) });
  }
};
