// My digits: the drawings the visitor labelled with the teach buttons (teach-panel.js), kept in
// IndexedDB (store.js) so they survive a reload. A gallery grouped by label, each digit
// removable; their count; Export and Import as the .npz file the command line reads
// (`scribblenet finetune --digits`); and Delete all, undoable.
import { paintInput28 } from "./draw.js";
import { $, setStatus, shortError, updateButtons } from "./page-state.js";
import { addDigits, deleteDigits, listDigits } from "./store.js";
import { request } from "./worker-life.js";

const MAX_FILE_BYTES = 10_000 * 785 + 4096; // = scribblenet.finetune's limit on a digits file
const SHOWN_PER_LABEL = 60; // the newest; thousands of imported digits need not be thousands of canvases

let digits = []; // [{id, label, image: Uint8Array(784), created}], oldest first
let unsaved = 0; // digits kept only in this page because the storage failed (ids "unsaved-n")

// Read once at start-up; anything added meanwhile waits for it, so that nothing is overwritten.
const loaded = listDigits()
  .catch((err) => {
    console.warn("scribblenet: cannot read My digits:", err);
    return [];
  })
  .then((list) => {
    digits = list;
    render();
  });

/** The digits kept, oldest first (do not change the array). */
export const allDigits = () => digits;

/** "a 7", "an 8". */
export const aDigit = (d) => `${d === 8 ? "an" : "a"} ${d}`;

/** Keep `items` [{label, image, created}]; resolves once they are stored (or, failing that, at
 *  least shown: the page still has them until it is closed). */
export async function keepDigits(items) {
  await loaded;
  let kept;
  try {
    kept = await addDigits(items);
  } catch (err) {
    console.warn("scribblenet: cannot save My digits in this browser:", err);
    kept = items.map((item) => ({ ...item, id: `unsaved-${++unsaved}` }));
    message("They could not be saved in this browser: they are kept until the page is closed.");
  }
  digits = [...digits, ...kept];
  offer(null);
  render();
}

/** `images` (n×784) and `labels` (n), uint8, as the worker takes them (protocol.js). */
export function packDigits(list = digits) {
  const images = new Uint8Array(784 * list.length);
  list.forEach((d, i) => images.set(d.image, 784 * i));
  return { images, labels: Uint8Array.from(list, (d) => d.label) };
}

function message(text) {
  $("my-digits-message").textContent = text;
  if (text) setStatus(text);
}

/** Undo after Delete all; null hides it. */
function offer(text, action = null) {
  $("digits-offer").hidden = !text;
  $("digits-offer-text").textContent = text ?? "";
  $("digits-offer-button").onclick = action && (() => {
    offer(null);
    action();
  });
}

function tile(d) {
  const li = document.createElement("li");
  li.dataset.id = String(d.id);
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 28;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `${aDigit(d.label)} you drew`);
  paintInput28(canvas, d.image);
  const remove = document.createElement("button");
  Object.assign(remove, { type: "button", textContent: "×", onclick: () => removeDigit(d.id, li) });
  remove.setAttribute("aria-label", `Remove this ${d.label}`);
  remove.dataset.testid = "remove-digit";
  li.append(canvas, remove);
  return li;
}

/** Draw the count and the gallery, one group per label in use. */
function render() {
  $("my-digits-count").textContent = String(digits.length);
  const groups = [];
  for (let label = 0; label < 10; label++) {
    const mine = digits.filter((d) => d.label === label);
    if (!mine.length) continue;
    const group = document.createElement("li");
    group.dataset.label = String(label);
    const title = document.createElement("span");
    title.className = "group-label";
    title.textContent = `${label} (${mine.length})`;
    const tiles = document.createElement("ul");
    tiles.setAttribute("aria-label", `Your ${label}s`);
    tiles.append(...mine.slice(-SHOWN_PER_LABEL).map(tile));
    if (mine.length > SHOWN_PER_LABEL) {
      const more = tiles.appendChild(document.createElement("li"));
      more.className = "more";
      more.textContent = `+${mine.length - SHOWN_PER_LABEL} older`;
    }
    group.append(title, tiles);
    groups.push(group);
  }
  $("my-digits").replaceChildren(...groups);
  $("my-digits-empty").hidden = digits.length > 0;
  $("digits-export").disabled = !digits.length;
  $("digits-clear").disabled = !digits.length;
  updateButtons(); // Fine-tune depends on them
}

async function removeDigit(id, li) {
  // Keyboard users stay where they were: on the next tile's button, else the previous one's.
  const next = li.nextElementSibling?.dataset.id ?? li.previousElementSibling?.dataset.id;
  if (typeof id === "number") await deleteDigits(id).catch((err) => console.warn(err));
  digits = digits.filter((d) => d.id !== id);
  offer(null);
  render();
  const focus = next && $("my-digits").querySelector(`li[data-id="${next}"] button`);
  (focus || $("my-digits")).focus();
}

async function deleteAll() {
  const removed = digits;
  await deleteDigits(null).catch((err) => console.warn(err));
  digits = [];
  render();
  const n = removed.length;
  offer(`Deleted ${n} digit${n === 1 ? "" : "s"}.`, () => keepDigits(removed.map(({ id, ...d }) => d)));
  $("digits-offer-button").focus(); // the button just pressed is disabled now
}

function download(bytes, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function exportDigits() {
  const { images, labels } = packDigits();
  const reply = await request("digits_export", { images: images.buffer, labels: labels.buffer },
    [images.buffer, labels.buffer]).catch((err) => ({ error: shortError(err) }));
  if (!reply.bytes) {
    message(`Could not export your digits: ${reply.error}.`);
    return;
  }
  message("");
  download(reply.bytes, "my-digits.npz");
}

async function importDigits(file) {
  const refused = (why) => message(`Could not import ${file.name}: ${why}. My digits are unchanged.`);
  if (file.size > MAX_FILE_BYTES) return refused("it is too large to be a digits file");
  const bytes = await file.arrayBuffer();
  const reply = await request("digits_import", { bytes }, [bytes])
    .catch((err) => ({ ok: false, error: shortError(err) }));
  if (!reply.ok) return refused(reply.error);
  const [images, labels] = [new Uint8Array(reply.images), new Uint8Array(reply.labels)];
  const created = Date.now();
  const image = (i) => images.slice(784 * i, 784 * (i + 1));
  await keepDigits(Array.from(labels, (label, i) => ({ label, image: image(i), created })));
  message("");
  setStatus(`Added ${labels.length} digit${labels.length === 1 ? "" : "s"} from ${file.name} to My digits.`);
}

$("digits-export").addEventListener("click", exportDigits);
$("digits-clear").addEventListener("click", deleteAll);
$("digits-import-button").addEventListener("click", () => $("digits-import").click());
$("digits-import").addEventListener("change", (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (file) importDigits(file);
});
