// "What it has learned": the first layer's weights into its first 64 hidden units, each unit a
// 28×28 tile of the pixels it weighs (red: ink there excites the unit, blue: inhibits it), or
// for a CNN its first conv layer's k×k filters, each weight drawn as a square block so a 5×5
// filter is about as big as a unit's tile. The worker sends them as uint8 (128 = zero), each tile
// scaled to its own largest weight, so a unit's pattern shows whatever its size. They are asked
// for whenever the current model changes and stream in as "weights" events while a run trains
// (about once a second and after each epoch), drawn at most once per animation frame.
import { DIVERGING_U8 } from "./colormap.js";
import { onModelShown } from "./model-panel.js";
import { $ } from "./page-state.js";
import { request } from "./worker-life.js";

const SIDE = 28; // an MLP's tiles; a CNN's filters are scaled up to about this size
const GAP = 1; // white pixels between tiles
const canvas = $("weights");
let latest = null; // the newest tiles not drawn yet
let live = 0; // "weights" events so far: a reply asked for before the newest one is older
let shown = null; // the model whose weights were last asked for

/** A "weights" event of the run in progress (protocol.js). */
export function showLiveWeights(event) {
  live++;
  schedule(event);
}

onModelShown(async (model) => {
  if (model === shown) return; // shown again (the form was built, say): the same weights
  shown = model;
  const seen = live;
  const reply = await request("weights").catch(() => null);
  if (!reply?.ok || live !== seen) return;
  // A model not trained here may not know its epochs; its description may.
  schedule({ ...reply, epoch: reply.epoch ?? model.training?.epochs ?? null });
});

function schedule(tiles) {
  if (!latest) requestAnimationFrame(draw);
  latest = tiles;
}

function draw() {
  const { n, tiles, units, epoch, conv } = latest;
  const side = latest.side ?? SIDE; // k for a CNN's k×k filters
  latest = null;
  const scale = Math.max(1, Math.floor(SIDE / side)); // whole canvas pixels per weight: crisp
  const cell = side * scale;
  const cols = Math.ceil(Math.sqrt(n)) || 1;
  const rows = Math.ceil(n / cols) || 1;
  canvas.width = cols * (cell + GAP) + GAP;
  canvas.height = rows * (cell + GAP) + GAP;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height);
  image.data.fill(255); // white gaps (and the empty cells of a last row)
  for (let t = 0; t < n; t++) {
    const x0 = GAP + (t % cols) * (cell + GAP);
    const y0 = GAP + Math.floor(t / cols) * (cell + GAP);
    for (let i = 0; i < side * side; i++) {
      const rgba = [...DIVERGING_U8[tiles[t * side * side + i]], 255];
      const x = x0 + (i % side) * scale;
      const y = y0 + Math.floor(i / side) * scale;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) image.data.set(rgba, 4 * ((y + dy) * canvas.width + x + dx));
      }
    }
  }
  ctx.putImageData(image, 0, 0);
  canvas.dataset.epoch = epoch ?? "";
  canvas.dataset.tiles = String(n);
  canvas.dataset.side = String(side);
  const when = epoch == null ? "" : epoch === 0 ? ", before training" : `, after epoch ${epoch}`;
  // "First conv layer's 16 filters (5×5)"; "First layer's weights: the first 64 of its 256 hidden units"
  const some = n < units;
  const [caption, what] = conv
    ? [`First conv layer's ${some ? `first ${n} of ${units}` : units} filters (${side}×${side})`, "a filter"]
    : [`First layer's weights: ${some ? `the first ${n} of its` : "its"} ${units} hidden units`, "a unit"];
  $("weights-caption").textContent = `${caption}${when}: red where ink excites ${what}, blue where it inhibits it.`;
  canvas.setAttribute("aria-label", `${caption}${when}, each a ${side}×${side} image of weights`);
}
