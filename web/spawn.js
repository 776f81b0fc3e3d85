// Starts the Python worker as soon as the page's first script runs: index.html loads this
// module on its own (async), so the worker's downloads begin before app.js and its imports
// (uPlot, the charts) have even arrived. app.js takes the worker with takeWorker(); events the
// worker sent before that are kept and replayed, so none is lost.
import { startBlobWorker } from "./blob-worker.js";

// ?debug (tests only) passes its query to the worker, which then accepts "debug" requests.
const DEBUG = new URLSearchParams(location.search).has("debug");
const WORKER_URL = new URL(`./worker.js${DEBUG ? location.search : ""}`, import.meta.url);

/** A new Python worker. */
export const spawnWorker = () => startBlobWorker(WORKER_URL);

let first = spawnWorker();
const early = []; // events the first worker sent before anyone listened
const keep = (event) => {
  if (event.type === "error") event.preventDefault(); // replayed to the page's handler below
  early.push(event);
};
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
