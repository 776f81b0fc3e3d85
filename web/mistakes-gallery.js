// The confusion matrix of the current model, and the images behind each of its cells.
//
// Outside a run, the matrix shown is the current model's on the 10,000 test images: asked for
// ("confusion") once the test images are in and whenever the model changes (upload, reset, a
// history entry, fine-tuning); when a training run ends, its last epoch's matrix stays.
// Choosing a cell (click, Enter or Space; the arrow keys move between cells) asks for its test
// images ("mistakes") and shows them with the model's probability for the predicted digit:
// for a mistake the most confident first, on the diagonal the least confident correct ones.
import { paintInput28 } from "./draw.js";
import { formatInteger } from "./locale.js";
import { onModelShown } from "./model-panel.js";
import { $, shortError, state } from "./page-state.js";
import { chartsLoaded, runModel } from "./train-panel.js";
import { request } from "./worker-life.js";

const table = $("confusion");
const gallery = $("gallery");
let askedFor = null; // the model whose matrix was last asked for
let opened = 0; // cells chosen so far: only the latest one's images are shown
let origin = null; // {t, p}: the cell the gallery shows, to give the focus back to

/** Show the current model's confusion matrix, unless a run is on (or just showed it). */
export async function showModelConfusion(model = state.model) {
  if (!model || state.training || !state.dataReady || model === runModel || model === askedFor) return;
  askedFor = model;
  const [reply, charts] = await Promise.all([request("confusion").catch(() => null), chartsLoaded]);
  if (!reply?.ok || !charts || state.training || askedFor !== model) return;
  const pct = (100 * reply.accuracy).toFixed(1);
  charts.showConfusion(reply.matrix, `Confusion matrix of the current model (${model.name}) on the ` +
    `${formatInteger(reply.n)} test images, ${pct} % right`);
}

onModelShown((model) => {
  closeGallery(false); // its images were read by the model before
  showModelConfusion(model);
});

const cellOf = (el) => el?.closest?.('[data-testid="confusion-cell"]');

table.addEventListener("click", (e) => {
  const cell = cellOf(e.target);
  if (cell) openGallery(Number(cell.dataset.true), Number(cell.dataset.pred));
});

const MOVES = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
table.addEventListener("keydown", (e) => {
  const cell = cellOf(e.target);
  if (!cell || e.ctrlKey || e.metaKey || e.altKey) return;
  const [t, p] = [Number(cell.dataset.true), Number(cell.dataset.pred)];
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault(); // not the page's Enter (Train), nor a scroll
    openGallery(t, p);
  } else if (MOVES[e.key]) {
    e.preventDefault();
    const [dt, dp] = MOVES[e.key];
    focusCell(Math.min(9, Math.max(0, t + dt)), Math.min(9, Math.max(0, p + dp)));
  }
});

const focusCell = (t, p) => table.querySelector(`[data-true="${t}"][data-pred="${p}"]`)?.focus();

// One Tab stop for the whole matrix (a hundred would bury the rest of the page): the cell last
// focused, which a redraw keeps (charts.js reads data-cell).
table.addEventListener("focusin", (e) => {
  const cell = cellOf(e.target);
  if (!cell) return;
  for (const other of table.querySelectorAll('[tabindex="0"]')) other.tabIndex = -1;
  cell.tabIndex = 0;
  table.dataset.cell = `${cell.dataset.true},${cell.dataset.pred}`;
});

async function openGallery(t, p) {
  const ticket = ++opened;
  origin = { t, p };
  gallery.hidden = false;
  gallery.setAttribute("aria-busy", "true");
  Object.assign(gallery.dataset, { true: t, pred: p });
  $("gallery-title").textContent = `True ${t}, predicted ${p}: looking…`;
  $("gallery-note").textContent = "";
  $("gallery-items").replaceChildren();
  const reply = await request("mistakes", { true: t, pred: p })
    .catch((err) => ({ ok: false, error: shortError(err) }));
  if (ticket !== opened || gallery.hidden) return;
  gallery.setAttribute("aria-busy", "false");
  if (!reply.ok) {
    $("gallery-title").textContent = `True ${t}, predicted ${p}`;
    $("gallery-note").textContent = `No images: ${reply.error}.`;
    return;
  }
  showImages(reply);
}

function showImages({ true: t, pred: p, total, items }) {
  const count = total ? `${formatInteger(total)} image${total === 1 ? "" : "s"}` : "no images";
  $("gallery-title").textContent = t === p
    ? `True ${t}, predicted ${p} — the least confident correct ones`
    : `True ${t}, predicted ${p} — ${count}${total > 1 ? ", most confident first" : ""}`;
  const none = t === p ? `It reads none of the ${t}s right.` : "It makes no such mistake on the test set.";
  $("gallery-note").textContent = !total
    ? none
    : `${items.length < total ? `The first ${items.length} of ${count}. ` : ""}` +
      `Under each: the model's probability for ${p}.`;
  const list = $("gallery-items");
  for (const item of items) {
    const li = document.createElement("li");
    const canvas = li.appendChild(document.createElement("canvas"));
    canvas.width = canvas.height = 28;
    canvas.setAttribute("role", "img");
    const pct = `${(100 * item.probability).toFixed(1)} %`;
    canvas.setAttribute("aria-label", `MNIST test image no. ${item.index + 1}, a ${t}: p(${p}) = ${pct}`);
    paintInput28(canvas, item.image);
    li.appendChild(document.createElement("span")).textContent = pct;
    li.dataset.probability = String(item.probability);
    list.append(li);
  }
}

/** Hide the gallery; `refocus`: give the keyboard focus back to the cell it came from. */
function closeGallery(refocus = true) {
  if (gallery.hidden) return;
  opened++; // an answer still on its way is not shown
  gallery.hidden = true;
  if (refocus && origin) focusCell(origin.t, origin.p);
}

$("gallery-close").addEventListener("click", () => closeGallery());
gallery.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  e.preventDefault(); // the gallery closes; a run goes on (the page's Escape stops it)
  closeGallery();
});
