// Colours for what the network holds inside: a diverging map (blue below zero, white at zero,
// red above) for signed values — weights, a saliency map, tanh activations — and a grey ramp
// for ReLU-like ones. Shared by explain-panel.js and weights-panel.js.

const NEGATIVE = [33, 102, 172]; // blue
const POSITIVE = [178, 24, 43]; // red

/**
 * [r, g, b] for t in [-1, 1]. |t| is raised to 0.6 first: a few large values usually dominate
 * (a gradient's peak, a weight tile's strongest pixel) and a linear map would wash the rest out.
 */
export function diverging(t) {
  const s = Math.min(1, Math.abs(t)) ** 0.6;
  const end = t < 0 ? NEGATIVE : POSITIVE;
  return end.map((c) => Math.round(255 + (c - 255) * s));
}

/** The same map for uint8 values with 128 = zero (how Python sends tiles and strips). */
export const DIVERGING_U8 = Array.from({ length: 256 }, (_, v) => diverging((v - 128) / 127));

/** Grey for uint8 values, 0 = white (inactive), 255 = near black (most active). */
export const GREY_U8 = Array.from({ length: 256 }, (_, v) => {
  const g = Math.round(255 - (v * 215) / 255);
  return [g, g, g];
});

/** Paint one row of uint8 values into a canvas one pixel high, one pixel per value. */
export function paintStrip(canvas, values, lut) {
  canvas.width = Math.max(1, values.length);
  canvas.height = 1;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, 1);
  values.forEach((v, i) => image.data.set([...lut[v], 255], 4 * i));
  ctx.putImageData(image, 0, 0);
}
