// The model panel: the current model, and the history of models kept in this browser
// (store.js): each can be used again, downloaded or deleted. A model is never lost silently: a
// stopped run goes to the history without replacing the current model, and Reset is undoable.
import { $, setStatus, shortError, state } from "./page-state.js";
import { rereadDrawing } from "./predict-panel.js";
import { addModel, deleteModel, getModel, listModels, setCurrent } from "./store.js";
import { showSettings } from "./train-form.js";
import { request } from "./worker-life.js";

const MAX_MODEL_BYTES = 256 * 1024 * 1024; // = scribblenet.model_io.MAX_FILE_BYTES
const SOURCE = {
  pretrained: "pretrained",
  trained: "trained here",
  uploaded: "uploaded",
  saved: "saved in this browser",
  finetuned: "fine-tuned on your digits",
};

const modelListeners = [];
/** Hear of every model shown as the current one (its weights, its confusion matrix…). */
export const onModelShown = (listener) => modelListeners.push(listener);

/** Show a Session.describe() (see protocol.js); nothing happens for a missing one. */
export function showModel(model) {
  if (!model) return;
  state.model = model;
  $("model-info").textContent = describe(model, SOURCE[model.source] ?? model.source);
  $("model-info").dataset.source = model.source;
  // The form says how the current model was made, unless that was not in this page.
  if (model.settings && model.source !== "pretrained" && !state.training) showSettings(model.settings);
  for (const listener of modelListeners) listener(model);
}

function describe(info, source) {
  const acc = info.training?.test_accuracy;
  const parts = [info.name, `${info.n_parameters.toLocaleString()} parameters`, source];
  if (acc != null) parts.push(`test accuracy ${(100 * acc).toFixed(1)} %`);
  return parts.join(" · ");
}

/** A short message with one action, e.g. "Undo" after a reset; null hides it. */
function offer(text, label = "", action = null) {
  $("model-offer").hidden = !text;
  $("model-offer-text").textContent = text ?? "";
  $("model-offer-button").textContent = label;
  $("model-offer-button").onclick = action && (() => {
    offer(null);
    action();
  });
}

function modelMessage(text) {
  $("model-message").textContent = text;
  if (text) setStatus(text);
}

/** A run ended (train-panel.js): keep its model in the history, current only if it finished. */
export async function keepRun(msg) {
  if (!msg.file) return;
  const stopped = msg.reason === "stopped" || msg.reason === "replaced";
  const info = stopped ? msg.stopped_model : msg.model;
  try {
    const id = await addModel(msg.file.buffer ?? msg.file, info, { current: !stopped });
    if (stopped) offer("The stopped run's model is in the history.", "Use it instead", () => use(id));
    else modelMessage("");
  } catch (err) {
    console.warn("scribblenet: could not keep the model in this browser:", err);
  }
  await renderHistory();
}

/** Make a history entry the current model. */
async function use(id) {
  const entry = await getModel(id);
  if (!entry) return renderHistory();
  const reply = await request("import", { bytes: entry.bytes, source: entry.info?.source ?? "uploaded" })
    .catch((err) => ({ ok: false, error: shortError(err) }));
  if (!reply.ok) {
    modelMessage(`Could not use that model: ${reply.error}. The current model is unchanged.`);
    return;
  }
  await setCurrent(id).catch(() => {});
  await renderHistory(); // before the model is shown: the panel never names one and marks another
  modelMessage("");
  showModel(reply.model);
  setStatus(`Using ${reply.model.name} from the history.`);
  rereadDrawing();
}

async function remove(id) {
  const { current } = await listModels();
  if (current === id) await resetToPretrained({ undoable: false });
  await deleteModel(id).catch(() => {});
  await renderHistory();
}

function download(bytes, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  a.download = `scribblenet-${name ?? "model"}.npz`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

const button = (text, testid, action, disabled = false) => {
  const b = document.createElement("button");
  Object.assign(b, { type: "button", textContent: text, disabled, onclick: action });
  b.dataset.testid = testid;
  return b;
};

/** Draw the history list from IndexedDB. */
export async function renderHistory() {
  const { entries, current } = await listModels().catch(() => ({ entries: [], current: null }));
  const list = $("history");
  list.replaceChildren();
  for (const entry of entries) {
    const li = document.createElement("li");
    li.dataset.testid = "history-entry";
    li.dataset.current = String(entry.id === current);
    const info = entry.info ?? {};
    const source = info.training?.stopped ? "stopped run" : (SOURCE[info.source] ?? "kept");
    const when = new Date(entry.savedAt).toLocaleString();
    const text = document.createElement("span");
    text.textContent = `${describe(info, source)} · ${when}${entry.id === current ? " · current" : ""}`;
    const arch = info.architecture;
    li.append(
      text,
      button("Use", "history-use", () => use(entry.id), entry.id === current),
      button("Download", "history-download", () => download(entry.bytes, arch)),
      button("Delete", "history-delete", () => remove(entry.id)),
    );
    list.append(li);
  }
  $("history-empty").hidden = entries.length > 0;
}

async function resetToPretrained({ undoable = true } = {}) {
  const { current } = await listModels().catch(() => ({ current: null }));
  const reply = await request("reset").catch((err) => ({ ok: false, error: shortError(err) }));
  if (!reply.ok) {
    setStatus(`Could not reset: ${reply.error}`);
    return;
  }
  await setCurrent(null).catch(() => {});
  await renderHistory(); // as in use(): the history first, then the model it marks
  showModel(reply.model);
  modelMessage("");
  setStatus("Back to the pretrained model.");
  if (undoable && current !== null) offer("Back to the pretrained model.", "Undo", () => use(current));
  rereadDrawing();
}
$("reset").addEventListener("click", () => resetToPretrained());

$("download").addEventListener("click", async () => {
  const reply = await request("export").catch((err) => ({ error: shortError(err) }));
  if (reply.bytes) download(reply.bytes, state.model?.architecture);
  else modelMessage(`Could not download the model: ${reply.error}.`);
});

$("upload-button").addEventListener("click", () => $("upload").click());
$("upload").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file) return;
  if (file.size > MAX_MODEL_BYTES) {
    modelMessage(`Could not use ${file.name}: it is larger than 256 MB, so it is not a scribblenet model. ` +
      "The current model is unchanged.");
    return;
  }
  const bytes = await file.arrayBuffer();
  // Copied, not transferred: `bytes` is kept below.
  const reply = await request("import", { bytes }).catch((err) => ({ ok: false, error: shortError(err) }));
  if (!reply.ok) {
    modelMessage(`Could not use ${file.name}: ${reply.error}. The current model is unchanged.`);
    return;
  }
  modelMessage("");
  offer(null);
  showModel(reply.model);
  setStatus(`Using ${file.name}.`);
  await addModel(bytes, reply.model).catch((err) => console.warn(err));
  await renderHistory();
  rereadDrawing();
});
