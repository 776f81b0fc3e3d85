// What the page's panels share: their state, the status line, which buttons can be pressed,
// and, for tests (?debug), window.scribblenet.
export const $ = (id) => document.getElementById(id);

// ?debug (tests only) passes its query to the worker (spawn.js), which then accepts "debug"
// requests, and exposes window.scribblenet; other keys tune the page for tests.
export const pageQuery = new URLSearchParams(location.search);
export const DEBUG = pageQuery.has("debug");

// ready: the worker can predict; dataReady: it can train; formReady: the form is built;
// training: {paused, started, pausedAt?, kind?} during a run (kind "finetune": fine-tuning on
// My digits); model: the current model's description; restarts: times of automatic worker
// restarts; notice: why the worker was restarted, kept in the status line until the next run.
export const state = {
  ready: false,
  dataReady: false,
  formReady: false,
  training: null,
  model: null,
  restarts: [],
  notice: "",
};

// For tests: the state, each epoch event, every message type sent to and received from the
// worker (test_protocol.py checks them against protocol.js), and later the client and worker.
export const debugHooks = DEBUG
  ? (window.scribblenet = { state, epochs: [], messageTypes: { sent: {}, received: {} } })
  : null;

export function setStatus(text, ready = state.ready) {
  const el = $("status");
  el.textContent = text;
  el.dataset.ready = String(ready);
}

/** The last line of an error's message: a Python traceback's is the one that says what. */
export function shortError(err) {
  const lines = String(err.message ?? err).trim().split("\n");
  return lines[lines.length - 1];
}

export function updateButtons() {
  const training = Boolean(state.training);
  $("train").disabled = !state.dataReady || !state.formReady || training;
  $("pause").disabled = !training;
  $("stop").disabled = !training;
  $("reset").disabled = !state.ready;
  $("download").disabled = !state.ready;
  $("upload-button").disabled = !state.ready;
  $("pause").textContent = state.training?.paused ? "Resume" : "Pause";
  $("pause").setAttribute("aria-pressed", String(Boolean(state.training?.paused)));
  for (const update of buttonUpdates) update();
}

/** Panels whose buttons also depend on the state above (e.g. Fine-tune) add their update here. */
export const buttonUpdates = [];
