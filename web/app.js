// The page: wires the drawing pad, the training form, the charts and model storage to the
// worker that runs scribblenet under Pyodide (see protocol.js for the messages).
import { WorkerClient } from "./protocol.js";
import { InkPad, paintInput28 } from "./draw.js";
import { TrainingCharts } from "./charts.js";
import { saveModel, loadSavedModel, forgetModel } from "./store.js";
import { takeWorker } from "./spawn.js";

const $ = (id) => document.getElementById(id);

// ?debug (tests only) passes its query to the worker (spawn.js), which then accepts "debug"
// requests, and exposes window.scribblenet.
const pageQuery = new URLSearchParams(location.search);
const DEBUG = pageQuery.has("debug");
// A worker that stays silent this long while a request or a ping is waiting is presumed dead.
// Long: an epoch's test pass on the biggest network takes tens of seconds on a slow phone.
const WATCHDOG_MS = Number((DEBUG && pageQuery.get("watchdog")) || 120_000);
const MAX_RESTARTS = 3; // automatic restarts within RESTART_WINDOW_MS; after that, a Retry button
const RESTART_WINDOW_MS = 5 * 60_000;

// The first worker was started by spawn.js before this module loaded; restarts make new ones.
let worker, client;
function startWorker() {
  const spawned = takeWorker();
  worker = spawned.worker;
  client = new WorkerClient(worker, onEvent);
  queueMicrotask(spawned.replay); // after this module has run: onEvent needs its state
}
startWorker();

const FIELDS = ["hidden", "activation", "init", "optimizer", "learning_rate", "lr_schedule", "batch_size", "epochs", "seed", "dtype"];
const PRESETS = {
  // Measured (scripts/bench_browser.py): ≥ 97.5 % on the full MNIST test set from epoch 2 for seeds 0-2.
  fast: { label: "Fast: 128 ReLU units, Adam 0.007 annealed, 3 epochs (≈ 97.8 %)", hidden: "128", activation: "relu", init: "he", optimizer: "adam", learning_rate: "0.007", lr_schedule: "cosine", batch_size: "128", epochs: "3", seed: "0", dtype: "float32" },
  quick: { label: "Quick look: 32 ReLU units, 1 epoch", hidden: "32", activation: "relu", init: "he", optimizer: "adam", lr_schedule: "constant", learning_rate: "0.003", batch_size: "128", epochs: "1", seed: "0", dtype: "float32" },
  deep: { label: "Deeper: 256,128 ReLU, Adam, 5 epochs", hidden: "256,128", activation: "relu", init: "he", optimizer: "adam", lr_schedule: "constant", learning_rate: "0.001", batch_size: "64", epochs: "5", seed: "0", dtype: "float32" },
  tutorial: { label: "The tutorial's: 50 sigmoid, full-batch gradient descent, lr 0.1", hidden: "50", activation: "sigmoid", init: "tutorial", optimizer: "sgd", lr_schedule: "constant", learning_rate: "0.1", batch_size: "full", epochs: "100", seed: "1", dtype: "float32" },
  custom: { label: "Custom" },
};
const STAGE_NAME = { runtime: "the Python runtime", packages: "NumPy, Pillow and scribblenet", model: "the pretrained model", data: "the training data" };
const STAGE_TEXT = { runtime: "Loading the Python runtime…", packages: "Loading NumPy, Pillow and scribblenet…", model: "Loading the pretrained model…", data: "Loading the training data…" };

// notice: why the worker was restarted, kept in the status line until the next training run
const state = { ready: false, dataReady: false, training: null, model: null, restarts: [], notice: "" };
const form = $("train-form");
const charts = new TrainingCharts({ cost: $("cost-chart"), accuracy: $("accuracy-chart"), confusion: $("confusion"), confusionEmpty: $("confusion-empty") });
const pad = new InkPad($("pad"), predict);

// ── Status and loading stages ─────────────────────────────────────────────────────────────
function setStatus(text, ready = state.ready) {
  const el = $("status");
  el.textContent = text;
  el.dataset.ready = String(ready);
}

function onEvent(msg) {
  switch (msg.type) {
    case "stage": {
      const li = document.querySelector(`#stages [data-stage="${msg.stage}"]`);
      li.dataset.state = msg.state;
      li.dataset.ms = msg.ms ?? "";
      if (msg.detail && msg.state === "done") {
        li.dataset.detail = msg.detail; // a start-up cache was not used: slower, still fine
        console.info(`scribblenet: ${msg.stage}: ${msg.detail}`);
      } else delete li.dataset.detail;
      const stages = [...document.querySelectorAll("#stages li")];
      $("stages").dataset.done = String(stages.every((el) => el.dataset.state === "done"));
      if (msg.state === "loading" && !state.ready) setStatus(`${state.notice}${STAGE_TEXT[msg.stage]}`);
      if (msg.state === "error") loadFailed(`Could not load ${STAGE_NAME[msg.stage]}: ${msg.detail}.`);
      break;
    }
    case "fatal":
      workerDied(`the Python runtime failed (${shortError(msg)})`);
      break;
    case "crash":
      workerDied(msg.message);
      break;
    case "dataset":
      state.dataReady = true;
      $("backend").textContent = `Matrix products: ${msg.backend}.`;
      if (state.ready && !state.notice) setStatus(`Ready: draw a digit, or train on ${msg.n_train.toLocaleString()} MNIST images.`);
      updateButtons();
      break;
    case "batch":
      charts.addBatch(msg);
      showProgress(msg);
      break;
    case "epoch":
      if (DEBUG) window.scribblenet.epochs.push(msg);
      charts.addEpoch(msg);
      break;
    case "done":
      trainingEnded(msg);
      break;
    case "error":
      setStatus(`Error: ${msg.message}`);
      break;
  }
}

// ── Drawing and prediction ─────────────────────────────────────────────────────────────────
const prediction = $("prediction");
const bars = [];
for (let d = 0; d < 10; d++) {
  const li = $("probabilities").appendChild(document.createElement("li"));
  li.innerHTML = `<span class="digit">${d}</span><span class="bar"><span></span></span><span class="value">–</span>`;
  bars.push(li);
}
let predictGeneration = 0; // bumped by Clear so a late answer for old ink is dropped
let predicting = null; // the request in flight; strokes made meanwhile are read once it returns
let predictAgain = false;

async function predict() {
  if (predicting) {
    predictAgain = true;
    return;
  }
  const generation = predictGeneration;
  prediction.setAttribute("aria-busy", "true");
  const { alpha, width, height } = pad.alpha();
  predicting = client.request("predict", { alpha, width, height }, [alpha]);
  try {
    const result = await predicting;
    if (generation === predictGeneration) showPrediction(result);
  } catch (err) {
    if (generation === predictGeneration) showPrediction({ empty: true, message: shortError(err) });
  } finally {
    predicting = null;
    const again = predictAgain && pad.hasInk;
    predictAgain = false;
    if (again) predict();
    else prediction.setAttribute("aria-busy", "false");
  }
}

function showPrediction(result) {
  const empty = !result || result.empty;
  prediction.textContent = empty ? "" : String(result.digit);
  $("prediction-note").textContent = empty ? (result?.message ?? "") : `(${(100 * result.probabilities[result.digit]).toFixed(1)} % sure)`;
  bars.forEach((li, d) => {
    const p = empty ? 0 : result.probabilities[d];
    li.querySelector(".bar > span").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".value").textContent = empty ? "–" : `${(100 * p).toFixed(1)} %`;
    li.classList.toggle("top", !empty && d === result.digit);
    li.dataset.p = empty ? "" : String(p);
  });
  paintInput28($("input28"), empty ? null : result.input28);
}

function clearDrawing() {
  pad.clear();
  predictGeneration++;
  predictAgain = false;
  prediction.setAttribute("aria-busy", "false");
  showPrediction(null);
}
$("clear").addEventListener("click", clearDrawing);

// ── Training form ──────────────────────────────────────────────────────────────────────────
for (const [key, preset] of Object.entries(PRESETS)) {
  $("preset").add(new Option(preset.label, key));
}

function applyPreset(key) {
  const preset = PRESETS[key];
  for (const f of FIELDS) if (preset[f] !== undefined) form.elements[f].value = preset[f];
  $("preset").value = key;
  validate();
}
$("preset").addEventListener("change", (e) => applyPreset(e.target.value));

function readForm() {
  return Object.fromEntries(FIELDS.map((f) => [f, form.elements[f].value]));
}

function showErrors(errors = {}) {
  for (const el of form.querySelectorAll("[data-error-for]")) {
    const message = errors[el.dataset.errorFor] ?? "";
    el.textContent = message;
    form.elements[el.dataset.errorFor]?.setAttribute("aria-invalid", String(Boolean(message)));
  }
}

let validateTimer = 0;
let validateSeq = 0;
async function validate() {
  const seq = ++validateSeq;
  const reply = await client
    .request("configure", { config: readForm() })
    .catch((err) => ({ ok: false, errors: { _: shortError(err) } }));
  if (seq === validateSeq) showErrors(reply.errors); // only the latest answer counts
}

form.addEventListener("input", (e) => {
  if (e.target.id !== "preset") $("preset").value = "custom";
  clearTimeout(validateTimer);
  validateTimer = setTimeout(validate, 250);
});

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!$("train").disabled) await startTraining();
});

async function startTraining() {
  clearTimeout(validateTimer);
  $("train").disabled = true;
  const config = readForm();
  const subset = DEBUG && pageQuery.has("subset") ? Number(pageQuery.get("subset")) : undefined;
  const reply = await client.request("train", { config, subset }).catch((err) => ({ ok: false, errors: { _: shortError(err) } }));
  showErrors(reply.errors);
  if (!reply.ok) {
    const first = FIELDS.find((f) => reply.errors?.[f]);
    if (first) form.elements[first].focus();
    updateButtons();
    return;
  }
  charts.reset();
  state.notice = "";
  state.training = { paused: false, started: performance.now() };
  showModel(reply.model);
  setStatus(`Training ${reply.model.architecture} on ${reply.n_train.toLocaleString()} images…`);
  $("progress").value = 0;
  $("progress").dataset.totalSteps = reply.total_steps;
  $("progress-text").textContent = "Starting…";
  updateButtons();
}

// Batches can arrive thousands of times a second: the progress line is redrawn once a frame.
let latestBatch = null;
function showProgress(e) {
  if (!latestBatch) requestAnimationFrame(renderProgress);
  latestBatch = e;
}

function renderProgress() {
  const e = latestBatch;
  latestBatch = null;
  const t = state.training;
  if (!t || !e) return;
  const fraction = e.step / e.total_steps;
  $("progress").value = fraction;
  // Time left from the measured wall-clock pace, which includes the per-epoch test pass.
  const elapsed = (performance.now() - t.started) / 1000;
  const eta = fraction > 0 ? (elapsed * (1 - fraction)) / fraction : NaN;
  $("progress-text").textContent =
    `Epoch ${e.epoch} · batch ${e.batch}/${e.n_batches} · ${Math.round(e.examples_per_s).toLocaleString()} examples/s` +
    (Number.isFinite(eta) ? ` · ${formatSeconds(eta)} left` : "");
}

async function trainingEnded(msg) {
  if (!state.training && msg.reason === "replaced") return; // a restart's leftovers
  state.training = null;
  updateButtons();
  showModel(msg.model);
  const text = {
    finished: "Training finished.",
    stopped: "Training stopped; the network keeps the weights it reached.",
    diverged: `Training diverged: ${msg.message}`,
    replaced: "Training stopped.",
    error: `Training failed: ${shortError({ message: msg.message })}`,
  }[msg.reason] ?? "Training ended.";
  setStatus(text);
  $("progress-text").textContent = text;
  if (msg.reason === "finished") $("progress").value = 1;
  // "replaced": reset/upload took over; a diverged first epoch brings back the previous model,
  // which is the pretrained one or already saved.
  if (msg.reason !== "replaced" && msg.model?.source === "trained") await persistModel();
  if (pad.hasInk) predict(); // the drawing, read by the new network
}

// ── Buttons and keys ───────────────────────────────────────────────────────────────────────
function updateButtons() {
  const training = Boolean(state.training);
  $("train").disabled = !state.dataReady || training;
  $("pause").disabled = !training;
  $("stop").disabled = !training;
  $("reset").disabled = !state.ready;
  $("download").disabled = !state.ready;
  $("upload-button").disabled = !state.ready;
  $("pause").textContent = state.training?.paused ? "Resume" : "Pause";
  $("pause").setAttribute("aria-pressed", String(Boolean(state.training?.paused)));
}

$("pause").addEventListener("click", async () => {
  const t = state.training;
  if (!t) return;
  t.paused = !t.paused;
  updateButtons();
  if (t.paused) {
    t.pausedAt = performance.now();
    await client.request("pause");
    setStatus("Paused. Draw to try the network as it is now, or resume.");
  } else {
    t.started += performance.now() - t.pausedAt; // the pause does not count towards the ETA
    await client.request("resume");
    setStatus("Training…");
  }
});

async function stopTraining() {
  if (state.training) await client.request("stop");
}
$("stop").addEventListener("click", stopTraining);

$("reset").addEventListener("click", async () => {
  const reply = await client.request("reset");
  if (reply.ok) {
    showModel(reply.model);
    await forgetModel().catch(() => {});
    setStatus("Back to the pretrained model.");
    if (pad.hasInk) predict();
  } else {
    setStatus(`Could not reset: ${reply.error}`);
  }
});

document.addEventListener("keydown", (e) => {
  if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = e.target.closest?.("input, select, textarea");
  if (e.key === "Escape" && state.training) {
    e.preventDefault();
    stopTraining();
  } else if (e.key === "Delete" && !typing) {
    e.preventDefault();
    clearDrawing();
  } else if (e.key === "Enter" && !typing && !e.target.closest?.("button, a, summary")) {
    e.preventDefault();
    form.requestSubmit();
  }
});

// ── Model: description, IndexedDB, download and upload ────────────────────────────────────
function showModel(model) {
  if (!model) return;
  state.model = model;
  const source = { pretrained: "pretrained", trained: "trained here", uploaded: "uploaded", saved: "saved in this browser" }[model.source] ?? model.source;
  const acc = model.training?.test_accuracy;
  $("model-info").textContent =
    `${model.architecture} (${model.activation}) · ${model.n_parameters.toLocaleString()} parameters · ${source}` +
    (acc != null ? ` · test accuracy ${(100 * acc).toFixed(1)} %` : "");
  $("model-info").dataset.source = model.source;
}

async function exportModel() {
  return (await client.request("export")).bytes;
}

async function persistModel() {
  try {
    await saveModel(await exportModel(), state.model);
  } catch (err) {
    console.warn("scribblenet: could not save the model in this browser:", err);
  }
}

$("download").addEventListener("click", async () => {
  const blob = new Blob([await exportModel()], { type: "application/octet-stream" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `scribblenet-${state.model?.architecture ?? "model"}.npz`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
});

const MAX_MODEL_BYTES = 256 * 1024 * 1024; // = scribblenet.model_io.MAX_FILE_BYTES

function modelMessage(text) {
  $("model-message").textContent = text;
  if (text) setStatus(text);
}

$("upload-button").addEventListener("click", () => $("upload").click());
$("upload").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file) return;
  if (file.size > MAX_MODEL_BYTES) {
    modelMessage(`Could not use ${file.name}: it is larger than 256 MB, so it is not a scribblenet model. The current model is unchanged.`);
    return;
  }
  const bytes = await file.arrayBuffer();
  // Copied, not transferred: `bytes` is saved below.
  const reply = await client.request("import", { bytes }).catch((err) => ({ ok: false, error: shortError(err) }));
  if (!reply.ok) {
    modelMessage(`Could not use ${file.name}: ${reply.error}. The current model is unchanged.`);
    return;
  }
  modelMessage("");
  showModel(reply.model);
  setStatus(`Using ${file.name}.`);
  await saveModel(bytes, reply.model).catch((err) => console.warn(err));
  if (pad.hasInk) predict();
});

// ── Start-up ───────────────────────────────────────────────────────────────────────────────
function shortError(err) {
  const lines = String(err.message ?? err).trim().split("\n");
  return lines[lines.length - 1];
}

function formatSeconds(s) {
  s = Math.max(0, Math.round(s));
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

// ── Worker life: start-up, load failures (Retry), crashes (restart with the saved model) ──
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
  restart(`${state.notice}`, true);
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
setInterval(() => {
  if (!state.ready || !client) return;
  const silent = performance.now() - client.lastHeard;
  if (silent > WATCHDOG_MS && client.pending.size) workerDied(`no answer for ${Math.round(silent / 1000)} s`);
  else if (silent > WATCHDOG_MS / 2 && !client.pending.size) client.request("ping").catch(() => {});
}, Math.min(2000, WATCHDOG_MS / 4));

async function boot(crashed = false) {
  const saved = await loadSavedModel();
  const booting = client;
  try {
    const reply = await client.request("init", { savedModel: saved?.bytes ?? null });
    if (booting !== client) return;
    state.ready = true;
    showModel(reply.model);
    if (reply.warning) console.warn("scribblenet:", reply.warning);
    if (DEBUG) window.scribblenet.startup = reply.startup; // which start-up caches were used
    const restored = reply.model?.source === "saved" ? "restored the model saved in this browser" : "using the pretrained model";
    if (crashed) setStatus(`${state.notice}Ready again, ${restored}.`);
    else setStatus(state.dataReady ? "Ready: draw a digit, or train your own network." : "Ready: draw a digit. (The training data is still loading.)");
    updateButtons();
    if (pad.hasInk) predict();
  } catch (err) {
    if (booting === client && $("retry").hidden) loadFailed(`Could not start: ${shortError(err)}.`);
  }
}

if (DEBUG) {
  // For tests: the current client, and a way to kill the worker as the browser might.
  window.scribblenet = { get client() { return client; }, get worker() { return worker; }, state, epochs: [] };
}

applyPreset("fast");
showPrediction(null);
updateButtons();
boot();

// ── Offline copy and fast repeat visits (web/sw.js) ─────────────────────────────────────────
if ("serviceWorker" in navigator) {
  // After load, so installing (which re-reads the big files, from the HTTP cache) never
  // competes with the first visit's own downloads.
  window.addEventListener("load", () => {
    navigator.serviceWorker
      .register(new URL("./sw.js", import.meta.url))
      .catch((err) => console.warn("scribblenet: no offline copy of the site:", err));
  });
}
