// The training panel's runs: Train, Pause/Resume and Stop, the progress line, the charts, and
// what happens when a run ends (the new model is shown, saved and asked about the drawing).
import { formatInteger } from "./locale.js";
import { keepRun, showModel } from "./model-panel.js";
import { $, DEBUG, debugHooks, pageQuery, setStatus, shortError, state, updateButtons } from "./page-state.js";
import { rereadDrawing } from "./predict-panel.js";
import { cancelValidation, cautionCleared, focusFirstError, readForm, showErrors } from "./train-form.js";
import { request } from "./worker-life.js";

// The charts are optional: charts.js (and uPlot in it) loads on its own, so that if it fails (a
// file that did not arrive, a browser uPlot cannot start in) drawing, predicting and training
// still work, and a note says the charts are off. Until it has loaded, `charts` is null.
let charts = null;
/** The charts once loaded, or undefined if they could not be (mistakes-gallery.js shows in them). */
export const chartsLoaded = import("./charts.js")
  .then(({ createCharts }) => createCharts({
    cost: $("cost-chart"),
    accuracy: $("accuracy-chart"),
    confusion: $("confusion"),
    confusionEmpty: $("confusion-empty"),
  }))
  .then((loaded) => (charts = loaded))
  .catch(chartsFailed);
/** The model a training run's end showed: the charts' confusion matrix is its run's last epoch. */
export let runModel = null;

function chartsFailed(err) {
  console.warn("scribblenet: the training charts could not be loaded:", err);
  const area = $("cost-chart").closest(".charts");
  // style.display: .charts and .confusion-wrap set their own display, which beats `hidden`.
  area.style.display = "none";
  $("confusion").closest(".confusion-wrap").style.display = "none";
  const note = document.createElement("p");
  note.className = "hint";
  note.dataset.testid = "charts-note";
  note.setAttribute("role", "status");
  note.textContent = `The training charts could not be loaded (${shortError(err)}). ` +
    "Drawing, predicting and training work without them; reload the page to try again.";
  area.before(note);
}

/** The worker's "dataset" event: training is possible now. */
export function dataReady(msg) {
  state.dataReady = true;
  $("backend").textContent = `Matrix products: ${msg.backend}.`;
  if (state.ready && !state.notice) setStatus(`Ready: draw a digit, or train on ${formatInteger(msg.n_train)} MNIST images.`);
  updateButtons();
}

export async function startTraining() {
  if ($("train").disabled || !cautionCleared()) return;
  cancelValidation();
  $("train").disabled = true;
  const subset = DEBUG && pageQuery.has("subset") ? Number(pageQuery.get("subset")) : undefined;
  const reply = await request("train", { config: readForm(), subset })
    .catch((err) => ({ ok: false, errors: { _: shortError(err) } }));
  showErrors(reply.errors);
  if (!reply.ok) {
    focusFirstError(reply.errors);
    updateButtons();
    return;
  }
  charts?.reset();
  state.notice = "";
  state.training = { paused: false, started: performance.now() };
  showModel(reply.model);
  setStatus(`Training ${reply.model.architecture} on ${formatInteger(reply.n_train)} images…`);
  $("progress").value = 0;
  $("progress").dataset.totalSteps = reply.total_steps;
  $("progress-text").textContent = "Starting…";
  updateButtons();
}

export async function stopTraining() {
  // A dead worker's run is over anyway (worker-life.js says so): nothing to report here.
  if (state.training) await request("stop").catch(() => {});
}

/** The worker's training events: batch, progress (part of a big batch), epoch and done. */
export function trainingEvent(msg) {
  if (msg.type === "batch") {
    charts?.addBatch(msg);
    showProgress(msg);
  } else if (msg.type === "progress") {
    showProgress(msg);
  } else if (msg.type === "epoch") {
    if (debugHooks) debugHooks.epochs.push(msg);
    charts?.addEpoch(msg);
  } else if (msg.type === "done") {
    trainingEnded(msg);
  }
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
  // A "progress" event is a batch part-way through: batch_fraction of it is done.
  const fraction = (e.step + (e.batch_fraction ?? 0)) / e.total_steps;
  $("progress").value = fraction;
  // Time left from the measured wall-clock pace, which includes the per-epoch test pass.
  const elapsed = (performance.now() - t.started) / 1000;
  const eta = fraction > 0 ? (elapsed * (1 - fraction)) / fraction : NaN;
  // test_fraction: the epoch's batches are done and the test set is being scored, in parts.
  const pace = e.test_fraction != null
    ? `testing, ${Math.round(100 * e.test_fraction)} %`
    : e.type === "progress"
      ? `${Math.round(100 * e.batch_fraction)} % of it done`
      : `${formatInteger(e.examples_per_s)} examples/s`;
  $("progress-text").textContent =
    `Epoch ${e.epoch} · batch ${e.batch}/${e.n_batches} · ${pace}` +
    (Number.isFinite(eta) ? ` · ${formatSeconds(eta)} left` : "");
}

function formatSeconds(s) {
  s = Math.max(0, Math.round(s));
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

async function trainingEnded(msg) {
  if (!state.training && msg.reason === "replaced") return; // a restart's leftovers
  state.training = null;
  updateButtons();
  if (msg.kind !== "finetune" && !$("confusion").hidden) runModel = msg.model; // an epoch's is up
  showModel(msg.model);
  // Python words the message; only a failure's (an exception) needs saying what it is.
  const failed = msg.reason === "error" && msg.kind !== "finetune"; // fine-tuning's says so itself
  const text = failed ? `Training failed: ${shortError(msg)}` : msg.message;
  setStatus(text);
  $("progress-text").textContent = text;
  if (msg.reason === "finished") $("progress").value = 1;
  await keepRun(msg); // into the history; current only if the run was not cut short
  rereadDrawing(); // the drawing, read by the model now in use
}

// Pause and Resume race the run's end: the worker may finish the run (its "done" event is then
// already on its way) just as the button is pressed. The run's own object `t` is the state:
// once "done" has replaced it (state.training is null or another run), a late reply changes
// nothing, so the page can never say "Paused" with nothing to resume.
$("pause").addEventListener("click", async () => {
  const t = state.training;
  if (!t) return;
  const pausing = !t.paused;
  t.paused = pausing;
  updateButtons();
  if (pausing) t.pausedAt = performance.now();
  else t.started += performance.now() - t.pausedAt; // the pause does not count towards the ETA
  const reply = await request(pausing ? "pause" : "resume").catch(() => null);
  if (state.training !== t || !reply) return; // the run ended (or the worker died) meanwhile
  // A fine-tune works on a copy: until it ends, drawings are read by the model it started from.
  const paused = t.kind === "finetune"
    ? "Fine-tuning paused. Drawings are read by the current model until it ends; resume or stop."
    : "Paused. Draw to try the network as it is now, or resume.";
  const going = t.kind === "finetune" ? "Fine-tuning…" : "Training…";
  setStatus(pausing ? paused : going);
});
$("stop").addEventListener("click", stopTraining);
$("train-form").addEventListener("submit", (e) => {
  e.preventDefault();
  startTraining();
});
