// Starts the Python worker as soon as the page's first script runs: index.html loads this
// module on its own (async), so the worker's downloads begin before app.js and its imports
// (uPlot, the charts) have even arrived. app.js takes the worker with takeWorker(); events the
// worker sent before that are kept and replayed, so none is lost.

// ?debug (tests only) passes its query to the worker, which then accepts "debug" requests.
const DEBUG = new URLSearchParams(location.search).has("debug");
const WORKER_URL = new URL(`./worker.js${DEBUG ? location.search : ""}`, import.meta.url);

/** A new worker. */
export function spawnWorker() {
  // Started from a blob: URL so that it inherits this page's Content-Security-Policy: a worker
  // loaded from its own URL would get only its response's CSP header, and GitHub Pages sends
  // none. So connect-src 'self' binds the worker (and Python inside it) too.
  const source = `import ${JSON.stringify(WORKER_URL.href)};\n`;
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  URL.revokeObjectURL(url);
  return worker;
}

let first = spawnWorker();
const early = []; // events the first worker sent before anyone listened
const keep = (event) => early.push(event);
first.addEventListener("message", keep);
first.addEventListener("error", keep);

/** The worker started at page load, the first time; a fresh one after that.
 *  Returns {worker, replay}: call replay() once your listeners are attached. */
export function takeWorker() {
  if (!first) return { worker: spawnWorker(), replay() {} };
  const worker = first;
  first = null;
  worker.removeEventListener("message", keep);
  worker.removeEventListener("error", keep);
  const replay = () => {
    for (const event of early.splice(0)) {
      const copy = event.type === "message"
        ? new MessageEvent("message", { data: event.data })
        : new ErrorEvent("error", { message: event.message, cancelable: true });
      worker.dispatchEvent(copy);
    }
  };
  return { worker, replay };
}
