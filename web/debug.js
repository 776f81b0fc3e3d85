// Test hooks, loaded only for a page opened with ?debug: ways to break the Python worker on
// purpose, and to look inside it. One "debug" request per action (see protocol.js).
import { pyodide } from "./python-bridge.js";

const actions = {
  memory() {
    const objects = pyodide.runPython("import gc; gc.collect(); len(gc.get_objects())");
    return { type: "memory", heap: pyodide._module.HEAPU8.length, objects };
  },
  throw() {
    setTimeout(() => {
      throw new Error("debug: an uncaught error in the worker");
    });
    return { type: "debugged" };
  },
  close() {
    setTimeout(() => self.close()); // the worker goes silent, as if the tab had killed it
    return { type: "debugged" };
  },
  async fetch(msg) {
    // Would the Content-Security-Policy stop this worker from sending anything elsewhere?
    const violation = new Promise((resolve) => {
      self.addEventListener("securitypolicyviolation", (e) => resolve(e.violatedDirective), { once: true });
      setTimeout(() => resolve(null), 2000);
    });
    try {
      await fetch(msg.url, { method: "POST", body: "ink" });
      return { type: "fetched", ok: true };
    } catch (err) {
      return { type: "fetched", ok: false, error: err.message, blocked_by: await violation };
    }
  },
  python_error() {
    pyodide.runPython("raise RuntimeError('debug: an error raised in Python')");
  },
  fatal() {
    // What Pyodide does on a WebAssembly trap or out-of-memory abort: the runtime is finished.
    pyodide._api.fatal_error(new Error("debug: a fatal error in the runtime"));
  },
};

/** Answer a "debug" request {action, …}. */
export function debugRequest(msg) {
  if (!Object.hasOwn(actions, msg.action)) throw new Error(`unknown debug action ${msg.action}`);
  return actions[msg.action](msg);
}
