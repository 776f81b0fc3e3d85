// The model panel: what the current model is, and where it is kept: in this browser
// (IndexedDB, store.js), in a downloaded .npz, or back to the pretrained one.
import { $, setStatus, shortError, state } from "./page-state.js";
import { rereadDrawing } from "./predict-panel.js";
import { forgetModel, saveModel } from "./store.js";
import { request } from "./worker-life.js";

const MAX_MODEL_BYTES = 256 * 1024 * 1024; // = scribblenet.model_io.MAX_FILE_BYTES
const SOURCE = {
  pretrained: "pretrained",
  trained: "trained here",
  uploaded: "uploaded",
  saved: "saved in this browser",
};

/** Show a Session.describe() (see protocol.js); nothing happens for a missing one. */
export function showModel(model) {
  if (!model) return;
  state.model = model;
  const acc = model.training?.test_accuracy;
  const parts = [
    model.name,
    `${model.n_parameters.toLocaleString()} parameters`,
    SOURCE[model.source] ?? model.source,
  ];
  if (acc != null) parts.push(`test accuracy ${(100 * acc).toFixed(1)} %`);
  $("model-info").textContent = parts.join(" · ");
  $("model-info").dataset.source = model.source;
}

async function exportModel() {
  return (await request("export")).bytes;
}

/** Keep the current model in this browser, so that a reload (or a restarted worker) has it. */
export async function persistModel() {
  try {
    await saveModel(await exportModel(), state.model);
  } catch (err) {
    console.warn("scribblenet: could not save the model in this browser:", err);
  }
}

$("reset").addEventListener("click", async () => {
  const reply = await request("reset");
  if (reply.ok) {
    showModel(reply.model);
    await forgetModel().catch(() => {});
    setStatus("Back to the pretrained model.");
    rereadDrawing();
  } else {
    setStatus(`Could not reset: ${reply.error}`);
  }
});

$("download").addEventListener("click", async () => {
  const blob = new Blob([await exportModel()], { type: "application/octet-stream" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `scribblenet-${state.model?.architecture ?? "model"}.npz`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
});

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
    modelMessage(`Could not use ${file.name}: it is larger than 256 MB, so it is not a scribblenet model. ` +
      "The current model is unchanged.");
    return;
  }
  const bytes = await file.arrayBuffer();
  // Copied, not transferred: `bytes` is saved below.
  const reply = await request("import", { bytes }).catch((err) => ({ ok: false, error: shortError(err) }));
  if (!reply.ok) {
    modelMessage(`Could not use ${file.name}: ${reply.error}. The current model is unchanged.`);
    return;
  }
  modelMessage("");
  showModel(reply.model);
  setStatus(`Using ${file.name}.`);
  await saveModel(bytes, reply.model).catch((err) => console.warn(err));
  rereadDrawing();
});
