// "Why did it say that?": after each reading of the pad, the worker's "explain" request shows
// where ink raised or lowered the predicted digit's score (a saliency map), the runner-up, a
// CNN's first feature maps, the nearest MNIST test images as the last hidden layer sees them,
// and each hidden layer's activations. An explanation costs a backward pass and a search of
// 10,000 images, so one is in flight at a time and only the latest drawing is explained; Clear
// hides it.
import { DIVERGING_U8, GREY_U8, diverging, paintStrip } from "./colormap.js";
import { paintInput28 } from "./draw.js";
import { $, shortError } from "./page-state.js";
import { onPredicted } from "./predict-panel.js";
import { request } from "./worker-life.js";

const panel = $("explain");
const saliency = $("saliency");
let latest = null; // the newest reading not yet sent: {ink, result, ticket}
let ticket = 0; // bumped by every reading and clear: only the newest one's answer is shown
let inFlight = false;

onPredicted((reading) => {
  ticket++;
  if (!reading || reading.result.empty) {
    latest = null;
    hide();
    return;
  }
  latest = { ...reading, ticket };
  panel.setAttribute("aria-busy", "true");
  if (!inFlight) explainLatest();
});

async function explainLatest() {
  const job = latest;
  latest = null;
  inFlight = true;
  const { alpha, width, height } = job.ink;
  try {
    const reply = await request("explain", { alpha, width, height }, [alpha]);
    if (job.ticket === ticket) show(reply, job.result);
  } catch (err) {
    if (job.ticket === ticket) show({ empty: true, message: shortError(err) }, job.result);
  } finally {
    inFlight = false;
    if (latest) explainLatest();
    else panel.setAttribute("aria-busy", "false");
  }
}

function hide() {
  panel.hidden = true;
  delete panel.dataset.digit;
}

const percent = (p) => (p < 0.0005 ? "< 0.1 %" : `${(100 * p).toFixed(1)} %`);

/** Show an "explanation" reply (protocol.js) for the prediction `result` it explains. */
function show(reply, result) {
  if (reply.empty) {
    hide();
    return;
  }
  const d = reply.digit;
  panel.hidden = false;
  panel.dataset.digit = String(d);
  const r = reply.runner_up;
  $("runner-up").textContent = `Runner-up: ${r.digit} (${percent(r.probability)})`;
  paintSaliency(reply.saliency, result.input28);
  const kind = (reply.saliency_kind ?? "gradient of log p(digit) with respect to the input").replace("digit", d);
  $("saliency-caption").textContent =
    `Red: ink there raises the score for ${d}; blue: lowers it. The ${kind}, over a faint copy of the input.`;
  saliency.setAttribute("aria-label", `Saliency map for ${d}: red where ink raises its score, blue where it lowers it`);
  showFeatureMaps(reply.feature_maps ?? null);
  showNeighbours(reply.neighbours ?? []);
  showActivations(reply.activations ?? []);
}

/** The saliency colours over the 28×28 input, darkened where the ink is (up to 30 %). */
function paintSaliency(values, input) {
  const ctx = saliency.getContext("2d");
  const image = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const [r, g, b] = diverging(values[i]);
    const shade = 1 - (0.3 * (input ? input[i] : 0)) / 255;
    image.data.set([r * shade, g * shade, b * shade, 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
}

const MAP_COLUMNS = 8; // maps per row: 16 maps of 24×24 make two rows as wide as the panel
const MAP_GAP = 1; // white pixels between maps

/** A CNN's first conv layer for this drawing ({n, side, maps (n×side² uint8), signed}); null hides it. */
function showFeatureMaps(fm) {
  const figure = $("feature-maps");
  figure.hidden = !fm;
  if (!fm) return;
  const { n, side, maps, signed } = fm;
  const values = new Uint8Array(maps); // Python's bytes arrive as a Uint8Array
  const lut = signed ? DIVERGING_U8 : GREY_U8;
  const cols = Math.min(n, MAP_COLUMNS);
  const rows = Math.ceil(n / cols);
  const canvas = $("feature-maps-canvas");
  canvas.width = cols * (side + MAP_GAP) + MAP_GAP;
  canvas.height = rows * (side + MAP_GAP) + MAP_GAP;
  canvas.style.width = `${(100 * cols) / MAP_COLUMNS}%`; // a map is as wide whatever the count
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height);
  image.data.fill(255); // white gaps
  for (let m = 0; m < n; m++) {
    const x0 = MAP_GAP + (m % cols) * (side + MAP_GAP);
    const y0 = MAP_GAP + Math.floor(m / cols) * (side + MAP_GAP);
    for (let i = 0; i < side * side; i++) {
      const at = 4 * ((y0 + Math.floor(i / side)) * canvas.width + x0 + (i % side));
      image.data.set(lut[values[m * side * side + i]], at); // alpha stays 255
    }
  }
  ctx.putImageData(image, 0, 0);
  figure.dataset.maps = String(n);
  figure.dataset.side = String(side);
  const shade = signed ? "red above zero, blue below" : "darker where a filter responds more";
  $("feature-maps-caption").textContent =
    `The first conv layer's ${n} feature maps (${side}×${side}) for this drawing: ${shade}`;
  canvas.setAttribute("aria-label",
    `${n} feature maps of ${side}×${side}: what each filter of the first conv layer finds in the drawing`);
}

function showNeighbours(neighbours) {
  const box = $("neighbours");
  box.replaceChildren();
  box.closest("figure").hidden = !neighbours.length; // none until the test images are in
  for (const n of neighbours) {
    const figure = document.createElement("figure");
    figure.className = "neighbour";
    figure.dataset.label = String(n.label);
    const canvas = figure.appendChild(document.createElement("canvas"));
    canvas.width = canvas.height = 28;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `MNIST test image no. ${n.index + 1}, a ${n.label}`);
    paintInput28(canvas, n.image);
    figure.appendChild(document.createElement("figcaption")).textContent = String(n.label);
    box.append(figure);
  }
}

function showActivations(layers) {
  const box = $("activations");
  box.replaceChildren();
  layers.forEach((layer, k) => {
    const row = document.createElement("div");
    row.className = "strip";
    const active = layer.values.filter((v) => (layer.signed ? v !== 128 : v > 0)).length;
    const name = row.appendChild(document.createElement("span"));
    name.textContent = `${k + 1}`;
    name.title = `hidden layer ${k + 1}: ${layer.units} units`;
    const canvas = row.appendChild(document.createElement("canvas"));
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label",
      `Hidden layer ${k + 1}: ${layer.units} units, ${active} of them ${layer.signed ? "non-zero" : "active"}`);
    paintStrip(canvas, layer.values, layer.signed ? DIVERGING_U8 : GREY_U8);
    box.append(row);
  });
}
