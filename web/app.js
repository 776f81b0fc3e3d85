// The page's entry: it wires the panels to the Python worker and starts both.
//
// How data flows (the messages are listed in protocol.js):
//  - A drawn stroke: draw.js's InkPad → predict-panel.js sends "predict" with the canvas's
//    alpha → worker.js → Session.predict_ink → the "prediction" reply → the digit, the bars and
//    the 28×28 image the network saw.
//  - A click on Train: train-panel.js reads the form (train-form.js, built from settings.json)
//    and sends "train" → worker.js → Session.start_training, then train-loop.js calls
//    Session.train_chunk until the run ends → "batch", "progress", "epoch", "done" → events()
//    below → train-panel.js: progress, charts, and at "done" the model panel and IndexedDB.
//  - "This is a 7" under the pad: teach-panel.js sends "digitize" → Session.digitize → the
//    28×28 image, kept in My digits (my-digits.js, IndexedDB). Fine-tune sends them all as
//    "finetune" → Session.start_finetune, then the same train-loop.js → "finetune" progress and
//    "done" events → teach-panel.js (before → after figures), then train-panel.js as above.
//  - Inside the network: each reading is followed by "explain" (explain-panel.js); each new
//    current model (model-panel.js's showModel) by "weights" (weights-panel.js; live events
//    while training) and, outside a run, "confusion", whose cells ask for "mistakes"
//    (mistakes-gallery.js).
//
// The worker was started by spawn.js before these modules loaded; worker-life.js takes it over,
// boots it, and restarts it if it dies.
import "./explain-panel.js"; // "Why did it say that?" under the prediction
import { showModelConfusion } from "./mistakes-gallery.js";
import { renderHistory, showModel } from "./model-panel.js";
import { $, debugHooks, setStatus, state, updateButtons } from "./page-state.js";
import { clearDrawing, rereadDrawing } from "./predict-panel.js";
import { buildForm } from "./train-form.js";
import { fineTuneEvent } from "./teach-panel.js";
import { dataReady, stopTraining, trainingEvent } from "./train-panel.js";
import { showLiveWeights } from "./weights-panel.js";
import { startWorkerLife } from "./worker-life.js";

/** The worker's events, other than the loading stages and its death (worker-life.js's). */
function events(msg) {
  if (msg.type === "dataset") {
    dataReady(msg);
    showModelConfusion(); // the test images are in: the current model's confusion matrix
  } else if (msg.type === "weights") showLiveWeights(msg);
  else if (!fineTuneEvent(msg)) trainingEvent(msg);
}

// For tests (?debug): deliver an event as if the worker had sent it, to stage races.
if (debugHooks) debugHooks.deliver = events;

/** A worker (the first, or a restarted one) can predict. */
function ready(reply, crashed) {
  showModel(reply.model);
  const restored = reply.model?.source === "saved"
    ? "restored the model saved in this browser"
    : "using the pretrained model";
  if (crashed) setStatus(`${state.notice}Ready again, ${restored}.`);
  else if (state.dataReady) setStatus("Ready: draw a digit, or train your own network.");
  else setStatus("Ready: draw a digit. (The training data is still loading.)");
  updateButtons();
  rereadDrawing();
}

document.addEventListener("keydown", (e) => {
  if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = e.target.closest?.("input, select, textarea");
  if (e.key === "Escape" && state.training) {
    e.preventDefault();
    stopTraining();
  } else if ((e.key === "Delete" || e.key === "Backspace") && !typing) {
    // Backspace too: Mac keyboards label it "delete" (and have no Delete key of their own).
    e.preventDefault();
    clearDrawing();
  } else if (e.key === "Enter" && !typing && !e.target.closest?.("button, a, summary")) {
    e.preventDefault();
    $("train-form").requestSubmit();
  }
});

updateButtons();
startWorkerLife({ events, ready });
buildForm().then(() => showModel(state.model)); // the form shows the current model's settings
renderHistory();

// ── Offline copy and fast repeat visits (web/sw.js) ─────────────────────────────────────────
if ("serviceWorker" in navigator) {
  // After load, so installing (which re-reads the big files, from the HTTP cache) never
  // competes with the first visit's own downloads. boot.js imports this module dynamically,
  // which the load event does not wait for: it may have fired already.
  const register = () => {
    navigator.serviceWorker
      .register(new URL("./sw.js", import.meta.url)) // classic: see sw.js
      .catch((err) => console.warn("scribblenet: no offline copy of the site:", err));
  };
  if (document.readyState === "complete") register();
  else window.addEventListener("load", register, { once: true });
}
