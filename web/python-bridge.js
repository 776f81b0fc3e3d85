// The bridge to Python: the one Session that holds this visitor's model, data and run, called
// with JavaScript values and answering plain JavaScript values, with no proxy left behind.
// Also what the bridge's callers share: a fatal-error report, and a turn of the event loop.
export let pyodide = null; // set by bindSession, once the runtime and packages are in
let py = null; // the Session's bound methods, proxied once and reused

const METHODS = ["begin_dataset", "continue_dataset", "load_model", "reset_to_pretrained",
  "export_model", "configure", "start_training", "train_chunk", "stop_training", "predict_ink",
  "use_wasm_backend", "test_digit", "digitize", "export_digits", "import_digits", "start_finetune",
  "explain_ink", "weight_tiles", "confusion", "mistakes"];

/** Make the Session that `call` talks to (scribblenet.session must be importable). */
export function bindSession(runtime) {
  pyodide = runtime;
  const module = pyodide.pyimport("scribblenet.session");
  const session = module.Session(); // kept: its methods' proxies are borrowed from it
  module.destroy();
  py = Object.fromEntries(METHODS.map((name) => [name, session[name]]));
}

/** Call a Session method with JS arguments; returns plain JS values and leaks no proxies. */
export function call(name, args = [], kwargs = null) {
  const pyArgs = args.map((a) => (a !== null && typeof a === "object" ? pyodide.toPy(a) : a));
  let result;
  try {
    result = kwargs ? py[name].callKwargs(...pyArgs, kwargs) : py[name](...pyArgs);
  } finally {
    for (const a of pyArgs) a?.destroy?.();
  }
  if (!(result instanceof pyodide.ffi.PyProxy)) return result;
  try {
    return result.toJs({ dict_converter: Object.fromEntries, create_pyproxies: false });
  } finally {
    result.destroy();
  }
}

/** A Pyodide "fatal error": the runtime is unusable from now on. */
export const isFatal = (err) => Boolean(err?.pyodide_fatal_error) || /fatally failed/.test(err?.message);

let fatalReported = false;
/** Tell the page this worker is finished (it starts a fresh one); said once. */
export function reportFatal(err) {
  if (fatalReported) return;
  fatalReported = true;
  self.postMessage({ type: "fatal", message: err?.message ?? String(err) });
}

/** Let waiting messages in between two calls into Python. */
export const yieldToEventLoop = () =>
  new Promise((resolve) => {
    const channel = new MessageChannel(); // unlike setTimeout, not clamped to 4 ms
    channel.port1.onmessage = resolve;
    channel.port2.postMessage(null);
  });
