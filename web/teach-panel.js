// Teaching the network your handwriting. The "This is a 0…9" buttons under the pad keep the
// drawing, as the network sees it (Session.digitize), in My digits (my-digits.js) under that
// label. Fine-tune then trains the current model further on them, as a run like any other
// (Pause, Stop and Escape work, drawings are read meanwhile, the charts stay as they are), and
// says what it bought: accuracy on your digits, by cross-validation, and on MNIST, before → after.
import { aDigit, allDigits, keepDigits, packDigits } from "./my-digits.js";
import { showModel } from "./model-panel.js";
import { $, buttonUpdates, setStatus, shortError, state, updateButtons } from "./page-state.js";
import { clearDrawing, currentInk } from "./predict-panel.js";
import { request } from "./worker-life.js";

// = scribblenet.finetune_run.MIN_DIGITS and its two labels; Python says so too, should they differ.
const MIN_DIGITS = 5;
const MIN_LABELS = 2;

const result = $("fine-tune-result");
let teaching = false; // a press is being read: a second press would keep the same ink twice
let fineTuning = false; // a fine-tune run of this page is on

for (let d = 0; d < 10; d++) {
  const button = document.createElement("button");
  Object.assign(button, { type: "button", textContent: String(d), onclick: () => teach(d) });
  button.dataset.testid = `teach-digit-${d}`;
  button.setAttribute("aria-label", `This is ${aDigit(d)}`);
  $("teach-digits").append(button);
}

function say(text) {
  $("teach-message").textContent = text;
}

/** A teach button: keep the pad's drawing as a `label`, then clear the pad for the next one. */
async function teach(label) {
  if (teaching) return;
  teaching = true;
  try {
    const ink = currentInk();
    const { alpha, width, height } = ink;
    const reply = await request("digitize", { alpha, width, height }, [alpha])
      .catch((err) => ({ empty: true, message: shortError(err) }));
    if (reply.empty) {
      say(`Nothing kept: ${reply.message}.`);
      return;
    }
    await keepDigits([{ label, image: Uint8Array.from(reply.input28), created: Date.now() }]);
    if (ink.unchanged()) clearDrawing(); // not strokes drawn while it was being read
    say(`Kept as ${aDigit(label)}. Draw the next one.`);
  } finally {
    teaching = false;
  }
}

/** Why Fine-tune cannot start now ("" if it can). */
function blocked(n, labels) {
  if (!state.ready) return "";
  if (fineTuning) return "Fine-tuning… Pause and Stop (or Escape) are with the training controls.";
  if (state.training) return "A training run is in progress: fine-tune once it has ended.";
  if (!state.dataReady) return "Fine-tuning needs the training data, which is still loading.";
  if (n < MIN_DIGITS) return `Label at least ${MIN_DIGITS} of your digits to fine-tune (you have ${n}).`;
  if (labels < MIN_LABELS) return `Label at least ${MIN_LABELS} different digits to fine-tune.`;
  return null;
}

buttonUpdates.push(() => {
  const digits = allDigits();
  const labels = new Set(digits.map((d) => d.label)).size;
  const why = blocked(digits.length, labels);
  $("fine-tune").disabled = why !== null;
  $("fine-tune-hint").textContent = why ??
    `Fine-tunes the current model on your ${digits.length} digits, rehearsing MNIST so as not to ` +
    "forget it. It first measures what that buys on your digits by cross-validation.";
  // The worker died mid-run (worker-life.js ended it): no "done" will come.
  if (fineTuning && state.training?.kind !== "finetune") {
    fineTuning = false;
    result.textContent = "Fine-tuning was interrupted: the worker stopped.";
  }
});

async function startFineTune() {
  if ($("fine-tune").disabled) return;
  $("fine-tune").disabled = true;
  const digits = allDigits();
  const { images, labels } = packDigits(digits);
  const reply = await request("finetune", { images: images.buffer, labels: labels.buffer },
    [images.buffer, labels.buffer]).catch((err) => ({ ok: false, errors: { _: shortError(err) } }));
  if (!reply.ok) {
    result.textContent = `Could not fine-tune: ${Object.values(reply.errors ?? {})[0] ?? "unknown error"}.`;
    result.dataset.done = "false";
    updateButtons();
    return;
  }
  state.notice = "";
  state.training = { paused: false, started: performance.now(), kind: "finetune" };
  fineTuning = true;
  showModel(reply.model);
  setStatus(`Fine-tuning ${reply.model.name} on your ${reply.n} digits…`);
  result.textContent = "Fine-tuning…";
  result.dataset.done = "false";
  $("progress").value = 0;
  $("progress-text").textContent = "Starting…";
  updateButtons();
}
$("fine-tune").addEventListener("click", startFineTune);

/**
 * The worker's events while fine-tuning: its "finetune" progress, and its "done" (shown here,
 * then by train-panel.js like any run's end). True if the event is this panel's alone.
 */
export function fineTuneEvent(msg) {
  const mine = state.training?.kind === "finetune";
  if (msg.type === "finetune") {
    if (mine) showProgress(msg);
    return true;
  }
  if (msg.type === "done" && msg.kind === "finetune" && (mine || msg.reason !== "replaced")) ended(msg);
  return mine && msg.type !== "done"; // no training charts for a fine-tune
}

function showProgress(e) {
  const t = state.training;
  $("progress").value = e.fraction;
  const elapsed = (performance.now() - t.started) / 1000;
  const left = e.fraction > 0 ? Math.round((elapsed * (1 - e.fraction)) / e.fraction) : NaN;
  $("progress-text").textContent = e.message + (Number.isFinite(left) ? ` · ${left} s left` : "");
}

const percent = (p) => `${(100 * p).toFixed(1)} %`;

function ended(msg) {
  fineTuning = false;
  const r = msg.result;
  if (msg.reason === "finished" && r) {
    result.textContent = `Your digits (held out, ${r.folds}-fold cross-validation): ` +
      `${percent(r.own_before)} → ${percent(r.own_after)} · MNIST test: ` +
      `${percent(r.test_before)} → ${percent(r.test_after)} · ${r.seconds.toFixed(1)} s` +
      // A model that already reads you gains nothing, and a few digits can even cost one.
      (r.own_after <= r.own_before
        ? ". It read your held-out digits no better: Reset to pretrained, or an earlier " +
          "model in the history, brings the one before back."
        : "");
    result.dataset.done = "true";
  } else {
    result.textContent = msg.message; // stopped, replaced or failed: Python says which model is in use
    result.dataset.done = "false";
  }
}
