// The extension modules (numpy's and Pillow's .so files: WebAssembly) that the page's imports
// load, compiled ahead: by streaming from their own URLs (startup/dynlibs/, copied out of the
// wheels at build time) while the runtime starts, so that Chrome keeps their compiled code for
// the next visit, then handed to the runtime's dynamic linker, where Python's import (dlopen)
// finds them instead of compiling the file from the wheel on the spot. Only a cache: when it
// fails, the import compiles them as before.
//
//   const compiled = compileDynlibs(manifest, base);          // begun at once, awaited later
//   await preloadDynlibs(pyodide, sitePackages, await compiled); // before the first import
import { sha256Hex } from "./fetch-checked.js";

/** Compile one extension module by streaming from its URL; checked against the manifest. */
async function compileDynlib(manifest, base, { path, file }) {
  const sha256 = manifest.files?.[file]?.sha256;
  if (!sha256) throw new Error(`${file} is not in the manifest`);
  const response = await fetch(new URL(file, base));
  if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
  // The bytes are hashed from a copy of the stream: compileStreaming must have the response
  // itself, as it came from the cache, for Chrome to find or keep its compiled code.
  const checked = response
    .clone()
    .arrayBuffer()
    .then(sha256Hex)
    .then((hex) => {
      if (hex !== sha256) throw new Error(`${file} is corrupt (its sha256 does not match the manifest)`);
    });
  const [module] = await Promise.all([WebAssembly.compileStreaming(response), checked]);
  return { path, module };
}

/**
 * Compile the extension modules manifest.dynlibs lists ([{path in site-packages, file under
 * `base`}]), in parallel; resolves to [{path, module}] in the manifest's order (the order they
 * load in), or rejects with the first problem: the caller then lets Python's import compile them.
 */
export async function compileDynlibs(manifest, base) {
  if (!manifest.dynlibs?.length) throw new Error("the manifest lists none");
  if (typeof WebAssembly.compileStreaming !== "function" || !crypto.subtle) {
    throw new Error("this browser cannot compile them by streaming or check them");
  }
  return Promise.all(manifest.dynlibs.map((entry) => compileDynlib(manifest, base, entry)));
}

/**
 * Instantiate compiled extension modules in the runtime, where its dynamic linker looks first
 * when Python's import opens the .so of the same path (Emscripten's `preloadedWasm`, which its
 * own preload plugin fills the same way, from bytes). Each gets its memory and table slots now
 * instead of at its import; its files in site-packages stay as they are.
 */
export async function preloadDynlibs(pyodide, sitePackages, compiled) {
  const linker = pyodide._module;
  if (typeof linker?.loadWebAssemblyModule !== "function" || !linker.preloadedWasm) {
    throw new Error("this runtime's dynamic linker takes no preloaded modules");
  }
  for (const { path, module } of compiled) {
    const name = `${sitePackages}/${path}`; // the path dlopen is given, normalised
    if (name in linker.preloadedWasm || linker.LDSO?.loadedLibsByName?.[name]) continue;
    const flags = { loadAsync: true, nodelete: true }; // as dlopen loads it, but asynchronously
    linker.preloadedWasm[name] = await linker.loadWebAssemblyModule(module, flags, name, {});
  }
}

/** SHA-256 of the linker's global offset table: every symbol with its address or table slot. */
export function gotDigest(linker) {
  const entries = Object.entries(linker.GOT).map(([name, global]) => `${name}=${global.value}`);
  return sha256Hex(new TextEncoder().encode(entries.sort().join("\n")));
}

/**
 * Load the extension modules of a restored snapshot again, as they were when it was taken
 * (scripts/build_startup.mjs records `link`): each at its memory and table base, which its dlopen
 * handle in the restored C memory still holds, with its data left as the snapshot has it (not as
 * the module initialises it), then registered where dlopen and dlsym look. Nothing Python runs may
 * come before this. Throws, with the first difference, unless the function table and the global
 * offset table come out exactly as recorded: the caller must then start without the snapshot.
 */
export async function relinkSnapshot(pyodide, sitePackages, link, compiled) {
  const linker = pyodide._module;
  if (typeof linker?.loadWebAssemblyModule !== "function" || !linker.LDSO || !linker.GOT) {
    throw new Error("this runtime's dynamic linker cannot load the snapshot's libraries");
  }
  const modules = new Map(compiled.map(({ path, module }) => [path, module]));
  // The snapshot's libraries start at table_before: the spare slots below it left room for the
  // functions this runtime added of its own, and the rest are filled with nothing, as there.
  const table = linker.wasmTable;
  if (table.length > link.table_before) {
    throw new Error(`function table of ${table.length} slots, the snapshot's libraries start at ${link.table_before}`);
  }
  table.grow(link.table_before - table.length);
  for (const lib of link.libs) {
    const module = modules.get(lib.path);
    if (!module) throw new Error(`${lib.path} was not compiled`);
    const word = (offset) => linker.HEAPU32[(lib.handle + offset) >>> 2];
    const loaded = linker.HEAPU8[lib.handle + 8] === 1;
    if (!loaded || word(12) !== lib.memory_base || word(20) !== lib.table_base || word(16) !== lib.memory_size) {
      throw new Error(`${lib.path}: its dlopen handle does not hold the recorded bases`);
    }
    const name = `${sitePackages}/${lib.path}`;
    const data = linker.HEAPU8.slice(lib.memory_base, lib.memory_base + lib.memory_size);
    // With a handle that says "loaded", the linker reuses its bases instead of allocating new.
    const exports = linker.loadWebAssemblyModule(module, { loadAsync: false, nodelete: true }, name, {}, lib.handle);
    linker.HEAPU8.set(data, lib.memory_base); // undo its data segments, relocations, constructors
    const dso = linker.newDSO(name, lib.handle, exports);
    dso.global = false; // as Python's dlopen (RTLD_LOCAL) had it
    if (lib.init) {
      const slot = linker.addFunction(exports[lib.init], exports[lib.init]?.sig); // as dlsym did
      if (slot !== lib.init_slot) throw new Error(`${lib.path}: ${lib.init} in slot ${slot}, not ${lib.init_slot}`);
    }
  }
  if (table.length !== link.table_after) {
    throw new Error(`function table of ${table.length} slots after linking, not ${link.table_after}`);
  }
  if ((await gotDigest(linker)) !== link.got_sha256) throw new Error("the global offset table differs");
}
