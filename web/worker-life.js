// The Python worker's life: its start-up (the loading stages), load failures (Retry), deaths
// noticed (a crash, a fatal error, or silence: the watchdog) and restarts with the saved model.
// Panels talk to it through `request`, which always reaches the current worker.
import { WorkerClient } from "./protocol.js";
import { $, DEBUG, debugHooks, pageQuery, setStatus, shortError, state, updateButtons } from "./page-state.js";
import { takeWorker } from "./spawn.js";
import { currentModel } from "./store.js";

// A worker that stays silent this long while a request or a ping is waiting is presumed dead.
// Long: an epoch's test pass on the biggest network takes tens of seconds on a slow phone.
const WATCHDOG_MS = Number((DEBUG && pageQuery.get("watchdog")) || 120_000);
const MAX_RESTARTS = 3; // automatic restarts within RESTART_WINDOW_MS; after that, a Retry button
const RESTART_WINDOW_MS = 5 * 60_000;
const STAGE_NAME = {
  runtime: "the Python runtime",
  packages: "NumPy, Pillow and scribblenet",
  model: "the pretrained model",
  data: "the training data",
};

let worker, client, onEvent, onReady;
// Under ?debug, every message type that crosses, by direction (see page-state.js).
const trace = debugHooks && ((direction, type) => {
  const seen = debugHooks.messageTypes[direction];
  seen[type] = (seen[type] ?? 0) + 1;
});

/** Send a request to the current worker (see protocol.js); rejects if it dies meanwhile. */
export const request = (type, payload, transfer) => client.request(type, payload, transfer);

/**
 * Take the worker spawn.js started and boot it. `events(msg)` gets its events other than the
 * loading stages and deaths; `ready(reply, crashed)` runs each time a worker can predict.
 */
export function startWorkerLife({ events, ready }) {
  onEvent = events;
  onReady = ready;
  if (debugHooks) {
    Object.defineProperties(debugHooks, {
      client: { get: () => client }, // the current client, and a way to kill the worker as the
      worker: { get: () => worker }, // browser might
    });
  }
  startWorker();
  setInterval(watch, Math.min(2000, WATCHDOG_MS / 4));
  boot();
}

function startWorker() {
  const spawned = takeWorker(); // the first was started by spawn.js before the page's modules
  worker = spawned.worker;
  client = new WorkerClient(worker, receive, trace);
  queueMicrotask(spawned.replay); // events sent before anyone listened
}

function receive(msg) {
  if (msg.type === "stage") showStage(msg);
  else if (msg.type === "fatal") workerDied(`the Python runtime failed (${shortError(msg)})`);
  else if (msg.type === "crash") workerDied(msg.message);
  else onEvent(msg);
}

function showStage(msg) {
  const li = document.querySelector(`#stages [data-stage="${msg.stage}"]`);
  li.dataset.state = msg.state;
  li.dataset.ms = msg.ms ?? "";
  if (msg.detail && msg.state === "done") {
    li.dataset.detail = msg.detail; // a start-up cache was not used: slower, still fine
    console.info(`scribblenet: ${msg.stage}: ${msg.detail}`);
  } else delete li.dataset.detail;
  const stages = [...document.querySelectorAll("#stages li")];
  $("stages").dataset.done = String(stages.every((el) => el.dataset.state === "done"));
  if (msg.state === "loading" && !state.ready) setStatus(`${state.notice}Loading ${STAGE_NAME[msg.stage]}…`);
  if (msg.state === "error") loadFailed(`Could not load ${STAGE_NAME[msg.stage]}: ${msg.detail}.`);
}

async function boot(crashed = false) {
  const saved = await currentModel();
  const booting = client;
  try {
    const reply = await client.request("init", { savedModel: saved?.bytes ?? null });
    if (booting !== client) return;
    state.ready = true;
    if (reply.warning) console.warn("scribblenet:", reply.warning);
    if (debugHooks) debugHooks.startup = reply.startup; // which start-up caches were used
    onReady(reply, crashed);
  } catch (err) {
    if (booting === client && $("retry").hidden) loadFailed(`Could not start: ${shortError(err)}.`);
  }
}

function loadFailed(text) {
  setStatus(`${text} Check the connection and press Retry.`, false);
  $("retry").hidden = false;
}

function workerDied(reason) {
  if (!worker) return;
  worker.terminate();
  worker = null;
  client.close(new Error(`the worker stopped: ${reason}`));
  const wasReady = state.ready;
  if (state.training) $("progress-text").textContent = "Training was interrupted: the worker stopped.";
  Object.assign(state, { ready: false, dataReady: false, training: null });
  updateButtons();
  if (!wasReady) {
    loadFailed(`Could not start: ${reason}.`);
    return;
  }
  const now = performance.now();
  state.restarts = state.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
  if (state.restarts.length >= MAX_RESTARTS) {
    loadFailed(`The worker stopped again (${reason}); it has been restarted ${MAX_RESTARTS} times.`);
    return;
  }
  state.restarts.push(now);
  state.notice = `The worker stopped (${reason}) and was restarted. `;
  restart(state.notice, true);
}

function restart(text, crashed = false) {
  if (!crashed) state.notice = "";
  if (worker) worker.terminate();
  $("retry").hidden = true;
  for (const li of document.querySelectorAll("#stages li")) li.dataset.state = "";
  $("stages").dataset.done = "false";
  setStatus(text, false);
  startWorker();
  boot(crashed);
}
$("retry").addEventListener("click", () => restart("Retrying…"));

// Liveness: a worker that dies quietly (killed, closed, hung) never answers again.
function watch() {
  if (!state.ready || !client) return;
  const silent = performance.now() - client.lastHeard;
  if (silent > WATCHDOG_MS && client.pending.size) workerDied(`no answer for ${Math.round(silent / 1000)} s`);
  else if (silent > WATCHDOG_MS / 2 && !client.pending.size) client.request("ping").catch(() => {});
}
