// Live training charts (uPlot): cost per batch and per epoch, accuracy per epoch, and the
// confusion matrix of the last epoch (or of the current model, mistakes-gallery.js), whose cells
// open the images behind them. Data arrive many times a second; drawing happens at most once
// per animation frame.
//
// Optional by design: train-panel.js imports this module dynamically and the page works without
// it (drawing, predicting and training never wait for it). uPlot is imported here, not at the
// top, so that its failure is this module's createCharts() rejecting, not the page's.
import { LOCALE } from "./locale.js";

let uPlot = null; // the uPlot class, once importUPlot() has run

/**
 * Import uPlot. Its module runs `new Intl.NumberFormat(navigator.language)` as it is evaluated,
 * which throws a RangeError where the browser's language is no valid tag (WebKitGTK under
 * LANG=C.UTF-8 says "C"). For that one evaluation navigator.language reads as the page's
 * validated locale (locale.js); the browser's own getter is back as soon as it is done.
 */
async function importUPlot() {
  if (uPlot) return uPlot;
  const shadow = navigator.language !== LOCALE
    && !Object.prototype.hasOwnProperty.call(navigator, "language");
  if (shadow) Object.defineProperty(navigator, "language", { value: LOCALE, configurable: true });
  try {
    uPlot = (await import("./vendor/uplot/uPlot.esm.js")).default;
  } finally {
    if (shadow) delete navigator.language;
  }
  return uPlot;
}

const COLORS = { batch: "#9db4d6", epoch: "#1f4e9c", train: "#c2571a", test: "#1f7a3d" };

function chartWidth(container) {
  return Math.max(240, container.clientWidth);
}

/** The index of each series' last value (null: none yet); series 0 is x. */
function latestIdxs(u) {
  return u.data.map((ys) => {
    for (let i = ys.length - 1; i >= 0; i--) if (ys[i] != null) return i;
    return null;
  });
}

/**
 * uPlot's live legend shows the values under the cursor, and "–" when there is none: always, on
 * a touch screen, where no hover comes. So whenever the cursor is off the chart, the legend
 * shows each series' latest value instead (uPlot's setLegend hook, re-set without firing it).
 */
function legendShowsLatest(u) {
  if (u.cursor.idx != null) return; // over the chart: the point under the cursor
  const idxs = latestIdxs(u);
  if (idxs[0] != null) u.setLegend({ idxs }, false);
}

function makePlot(container, series, yLabel, xLabel, yRange, xIncrs = undefined) {
  const opts = {
    width: chartWidth(container),
    height: 200,
    series: [{ label: xLabel, value: (u, v) => (v == null ? "–" : v.toFixed(2)) }, ...series],
    // Fixed ranges where the data allow, so the axes show before the first point arrives.
    scales: {
      x: { time: false, range: (u, min, max) => [0, Math.max(1, max ?? 1)] },
      y: { range: yRange },
    },
    axes: [{ label: xLabel, incrs: xIncrs }, { label: yLabel, size: 56 }],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    hooks: { setLegend: [legendShowsLatest] },
  };
  return new uPlot(opts, [[], ...series.map(() => [])], container);
}

/**
 * The charts, once uPlot has loaded; rejects if it cannot be (the caller shows a note instead).
 * @param {{cost, accuracy: HTMLElement, confusion: HTMLTableElement, confusionEmpty: HTMLElement}} els
 */
export async function createCharts(els) {
  await importUPlot();
  return new TrainingCharts(els);
}

export class TrainingCharts {
  /** Use createCharts(), which loads uPlot first. */
  constructor(els) {
    this.els = els;
    this.cost = makePlot(
      els.cost,
      [
        { label: "cost (batch)", stroke: COLORS.batch, width: 1, points: { show: false } },
        { label: "cost (epoch)", stroke: COLORS.epoch, width: 2, spanGaps: true, points: { show: true, size: 6 } },
      ],
      "cost",
      "epoch",
      (u, min, max) => [0, Math.max(0.5, (max ?? 2.5) * 1.05)],
    );
    const pct = (u, v) => (v == null ? "–" : `${v.toFixed(1)} %`);
    this.accuracy = makePlot(
      els.accuracy,
      [
        { label: "train", stroke: COLORS.train, width: 2, value: pct, points: { show: true, size: 6 } },
        { label: "test", stroke: COLORS.test, width: 2, value: pct, points: { show: true, size: 6 } },
      ],
      "accuracy %",
      "epoch",
      (u, min, max) => [min == null ? 0 : Math.max(0, Math.floor(min - 2)), 100],
      [1, 2, 5, 10, 20, 50, 100, 200, 500], // whole epochs
    );
    new ResizeObserver(() => {
      for (const [plot, el] of [[this.cost, els.cost], [this.accuracy, els.accuracy]]) {
        plot.setSize({ width: chartWidth(el), height: 200 });
      }
    }).observe(els.cost);
    this.reset();
  }

  reset() {
    this.costData = [[], [], []]; // x (epochs, fractional), batch cost, epoch cost
    this.accData = [[], [], []]; // epoch, train %, test %
    this.#schedule();
    this.showConfusion(null);
  }

  addBatch(e) {
    const x = e.epoch - 1 + e.batch / e.n_batches;
    this.costData[0].push(x);
    this.costData[1].push(e.cost);
    this.costData[2].push(null);
    this.#schedule();
  }

  addEpoch(e) {
    const [xs, , epochCost] = this.costData;
    // The epoch's mean cost sits on its last batch.
    if (xs.length && Math.abs(xs[xs.length - 1] - e.epoch) < 1e-9) epochCost[epochCost.length - 1] = e.cost;
    this.accData[0].push(e.epoch);
    this.accData[1].push(100 * e.train_accuracy);
    this.accData[2].push(e.test_accuracy == null ? null : 100 * e.test_accuracy);
    this.#schedule();
    if (e.confusion) this.showConfusion(e.confusion, `Confusion matrix after epoch ${e.epoch} (test set)`);
  }

  #schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.cost.setData(this.costData);
      this.accuracy.setData(this.accData);
      // Test hooks and a text alternative: how many points, and the first and last cost.
      const costs = this.costData[1];
      Object.assign(this.els.cost.dataset, {
        points: costs.length,
        first: costs.length ? costs[0] : "",
        last: costs.length ? costs[costs.length - 1] : "",
      });
      const epochCosts = this.costData[2].filter((c) => c != null);
      this.els.cost.setAttribute(
        "aria-label",
        costs.length
          ? `Cost chart: ${costs.length} batches, cost from ${costs[0].toFixed(3)} to ${costs[costs.length - 1].toFixed(3)}` +
              (epochCosts.length ? `; epoch ${epochCosts.length} cost ${epochCosts.at(-1).toFixed(3)}` : "")
          : "Cost chart: no training yet",
      );
      this.els.accuracy.setAttribute("aria-label", this.#accuracyText());
    });
  }

  /** The accuracy chart's accessible name: its latest values, as the legend shows them. */
  #accuracyText() {
    const [epochs, train, test] = this.accData;
    if (!epochs.length) return "Accuracy chart: no epochs yet";
    const pct = (v) => (v == null ? "not measured" : `${v.toFixed(1)} %`);
    return `Accuracy chart: epoch ${epochs.at(-1)}, train ${pct(train.at(-1))}, test ${pct(test.at(-1))}`;
  }

  /**
   * Fill the 10×10 table: row = true digit, column = predicted; shade ∝ row share. `title` says
   * whose matrix it is. Each cell is a button (mistakes-gallery.js listens on the table); the
   * table is one stop for Tab, at its last focused cell (data-cell), the arrow keys move within.
   */
  showConfusion(matrix, title = "Confusion matrix (test set)") {
    const table = this.els.confusion;
    // A cell with the keyboard focus keeps it across a redraw (a new epoch's matrix, say).
    const focused = table.contains(document.activeElement) ? { ...document.activeElement.dataset } : null;
    table.replaceChildren();
    table.hidden = !matrix;
    this.els.confusionEmpty.hidden = Boolean(matrix);
    if (!matrix) return;
    table.createCaption().textContent =
      `${title}: rows are the true digit, columns the prediction. Choose a cell to see its images.`;
    const head = table.createTHead().insertRow();
    const corner = head.appendChild(document.createElement("th"));
    corner.innerHTML = '<abbr title="true digit (rows) and predicted digit (columns)">true\\pred</abbr>';
    for (let j = 0; j < 10; j++) {
      const th = head.appendChild(document.createElement("th"));
      th.scope = "col";
      th.textContent = j;
    }
    const body = table.createTBody();
    matrix.forEach((row, i) => {
      const tr = body.insertRow();
      const th = tr.appendChild(document.createElement("th"));
      th.scope = "row";
      th.textContent = i;
      const total = row.reduce((a, b) => a + b, 0) || 1;
      row.forEach((count, j) => {
        const td = tr.insertCell();
        td.textContent = count;
        const share = count / total;
        td.className = i === j ? "hit" : count ? "miss" : "";
        td.style.setProperty("--share", share.toFixed(3));
        Object.assign(td.dataset, { testid: "confusion-cell", true: i, pred: j });
        td.tabIndex = `${i},${j}` === (table.dataset.cell ?? "0,0") ? 0 : -1;
        td.setAttribute("role", "button");
        td.setAttribute("aria-label", `true ${i}, predicted ${j}: ${count} image${count === 1 ? "" : "s"}`);
      });
    });
    if (focused?.true) table.querySelector(`[data-true="${focused.true}"][data-pred="${focused.pred}"]`)?.focus();
  }
}
