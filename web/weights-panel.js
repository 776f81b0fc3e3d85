// "What it has learned": the first layer's weights into its first 64 hidden units, each unit a
// 28×28 tile of the pixels it weighs (red: ink there excites the unit, blue: inhibits it). The
// worker sends them as uint8 (128 = zero), each tile scaled to its own largest weight, so a
// unit's pattern shows whatever its size. They are asked for whenever the current model changes
// and stream in as "weights" events while a run trains (about once a second and after each
// epoch), drawn at most once per animation frame.
import { DIVERGING_U8 } from "./colormap.js";
import { onModelShown } from "./model-panel.js";
import { $ } from "./page-state.js";
import { request } from "./worker-life.js";

const SIDE = 28;
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
  const { n, tiles, units, epoch } = latest;
  latest = null;
  const cols = Math.ceil(Math.sqrt(n)) || 1;
  const rows = Math.ceil(n / cols) || 1;
  canvas.width = cols * (SIDE + GAP) + GAP;
  canvas.height = rows * (SIDE + GAP) + GAP;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height);
  image.data.fill(255); // white gaps (and the empty cells of a last row)
  for (let t = 0; t < n; t++) {
    const x0 = GAP + (t % cols) * (SIDE + GAP);
    const y0 = GAP + Math.floor(t / cols) * (SIDE + GAP);
    for (let i = 0; i < SIDE * SIDE; i++) {
      const [r, g, b] = DIVERGING_U8[tiles[t * SIDE * SIDE + i]];
      image.data.set([r, g, b, 255], 4 * ((y0 + Math.floor(i / SIDE)) * canvas.width + x0 + (i % SIDE)));
    }
  }
  ctx.putImageData(image, 0, 0);
  canvas.dataset.epoch = epoch ?? "";
  canvas.dataset.tiles = String(n);
  const which = n < units ? `the first ${n} of its ${units} hidden units` : `its ${units} hidden units`;
  const when = epoch == null ? "" : epoch === 0 ? ", before training" : `, after epoch ${epoch}`;
  $("weights-caption").textContent =
    `First-layer weights of ${which}${when}: red where ink excites a unit, blue where it inhibits it.`;
  canvas.setAttribute("aria-label", `The input weights of ${which} as 28×28 images${when}`);
}
