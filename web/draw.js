// The drawing pad: Pointer Events ink on a canvas, read back as its alpha channel.
//
// The pen is round and BRUSH_FRACTION of the canvas side wide, as scribblenet.ink assumes
// (a digit about 2/3 of the pad high then has MNIST-like strokes); ink_to_mnist evens out the
// rest. The canvas is transparent: the ink is whatever has alpha, whatever colour it shows in.
export const BRUSH_FRACTION = 0.08; // = scribblenet.ink.BRUSH_FRACTION
const MAX_BACKING = 560; // pixels per side; more only slows the worker's preprocessing

export class InkPad {
  /** @param {HTMLCanvasElement} canvas  @param {() => void} onStroke  called after each stroke */
  constructor(canvas, onStroke) {
    this.canvas = canvas;
    this.onStroke = onStroke;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.last = null; // last point of the stroke in progress
    this.pointerId = null; // the pointer drawing it: one at a time
    this.hasInk = false;
    canvas.addEventListener("pointerdown", (e) => this.#down(e));
    canvas.addEventListener("pointermove", (e) => this.#move(e));
    canvas.addEventListener("pointerup", (e) => this.#up(e));
    canvas.addEventListener("pointercancel", (e) => this.#up(e));
    canvas.addEventListener("lostpointercapture", (e) => this.#up(e)); // or the pen stays taken
    // Without capture (refused, see #down) the pen can be lifted off the pad: the stroke ends
    // there too. With capture the canvas has already ended it and these find nothing to do.
    window.addEventListener("pointerup", (e) => this.#up(e));
    window.addEventListener("pointercancel", (e) => this.#up(e));
    new ResizeObserver(() => this.#resize()).observe(canvas);
    this.#resize();
  }

  #resize() {
    const side = Math.min(MAX_BACKING, Math.round(this.canvas.clientWidth * devicePixelRatio));
    if (side > 0 && side !== this.canvas.width) {
      // Resizing wipes the bitmap; keep the drawing by scaling a copy back in.
      const copy = this.hasInk ? this.#snapshot() : null;
      this.canvas.width = this.canvas.height = side;
      if (copy) this.ctx.drawImage(copy, 0, 0, side, side);
    }
    const ink = getComputedStyle(this.canvas).color;
    Object.assign(this.ctx, { lineCap: "round", lineJoin: "round", strokeStyle: ink, fillStyle: ink });
    this.ctx.lineWidth = BRUSH_FRACTION * this.canvas.width;
  }

  #snapshot() {
    const copy = document.createElement("canvas");
    copy.width = this.canvas.width;
    copy.height = this.canvas.height;
    copy.getContext("2d").drawImage(this.canvas, 0, 0);
    return copy;
  }

  #point(e) {
    const rect = this.canvas.getBoundingClientRect();
    const scale = this.canvas.width / rect.width;
    return [(e.clientX - rect.left) * scale, (e.clientY - rect.top) * scale];
  }

  #down(e) {
    // One pen: only the primary pointer draws, so a second finger (or a palm) on a touch screen
    // neither starts a stroke nor joins the first one's points into a zig-zag.
    if (e.button !== 0 || !e.isPrimary || this.pointerId !== null) return;
    e.preventDefault();
    this.pointerId = e.pointerId;
    // Capture keeps the stroke's moves coming when the pen strays off the pad. A browser may
    // refuse it (an InvalidStateError or NotFoundError, seen in Firefox with a pointer id it does
    // not know): the stroke is drawn all the same, ending at pointerup wherever it happens.
    try {
      this.canvas.setPointerCapture(e.pointerId);
    } catch (err) {
      console.warn("scribblenet: pointer capture refused, drawing without it:", err);
    }
    this.last = this.#point(e);
    const [x, y] = this.last;
    this.ctx.beginPath(); // a dot, so a tap leaves a mark like a pen would
    this.ctx.arc(x, y, this.ctx.lineWidth / 2, 0, 2 * Math.PI);
    this.ctx.fill();
    this.hasInk = true;
  }

  #move(e) {
    if (!this.last || e.pointerId !== this.pointerId) return;
    // Coalesced events keep fast strokes smooth when the browser batches pointer moves.
    const events = e.getCoalescedEvents?.() ?? [e];
    this.ctx.beginPath();
    this.ctx.moveTo(...this.last);
    for (const ev of events.length ? events : [e]) {
      this.last = this.#point(ev);
      this.ctx.lineTo(...this.last);
    }
    this.ctx.stroke();
  }

  #up(e) {
    if (!this.last || e.pointerId !== this.pointerId) return;
    this.last = null;
    this.pointerId = null;
    try {
      if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    } catch {
      // Already released (the pointer is gone): nothing to give back.
    }
    this.onStroke();
  }

  clear() {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.hasInk = false;
    this.last = null;
    this.pointerId = null;
  }

  /**
   * Replace the drawing with a 28×28 uint8 image (784 values, 255 = ink), scaled up to fill the
   * pad as ink of the pen's colour. Its alpha is then read like a drawing's, so an MNIST image
   * goes through the same preprocessing and prediction as ink drawn by hand.
   */
  paintImage28(pixels) {
    this.clear();
    const small = document.createElement("canvas");
    small.width = small.height = 28;
    const smallCtx = small.getContext("2d");
    const image = smallCtx.createImageData(28, 28);
    const [r, g, b] = inkRGB(getComputedStyle(this.canvas).color);
    for (let i = 0; i < 784; i++) image.data.set([r, g, b, pixels[i]], 4 * i);
    smallCtx.putImageData(image, 0, 0);
    // Smoothed (bilinear), not blocky: pixel steps would read as a ragged outline.
    Object.assign(this.ctx, { imageSmoothingEnabled: true, imageSmoothingQuality: "high" });
    this.ctx.drawImage(small, 0, 0, this.canvas.width, this.canvas.height);
    this.hasInk = true;
  }

  /** The ink as {alpha: ArrayBuffer (height·width bytes, row-major), width, height}. */
  alpha() {
    const { width, height } = this.canvas;
    const rgba = this.ctx.getImageData(0, 0, width, height).data;
    const alpha = new Uint8Array(width * height);
    for (let i = 0; i < alpha.length; i++) alpha[i] = rgba[4 * i + 3];
    return { alpha: alpha.buffer, width, height };
  }
}

/** "rgb(17, 17, 17)" → [17, 17, 17] (a computed colour; black if it cannot be read). */
function inkRGB(css) {
  const values = css.match(/[\d.]+/g)?.map(Number) ?? [];
  return values.length >= 3 ? values.slice(0, 3) : [0, 0, 0];
}

/** Paint a 28×28 uint8 image (784 values, 255 = ink) white-on-black, as MNIST shows digits. */
export function paintInput28(canvas, pixels) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = pixels ? pixels[i] : 0;
    image.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
}
