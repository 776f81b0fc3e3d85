// The drawing panel: the pad, and the network's reading of it (the digit, a bar per digit and
// the 28×28 image it saw). One prediction is in flight at a time; strokes made meanwhile are
// read once it returns, and Clear drops an answer still on its way.
import { InkPad, paintInput28 } from "./draw.js";
import { $, shortError } from "./page-state.js";
import { request } from "./worker-life.js";

const prediction = $("prediction");
const bars = [];
for (let d = 0; d < 10; d++) {
  const li = $("probabilities").appendChild(document.createElement("li"));
  li.innerHTML = `<span class="digit">${d}</span><span class="bar"><span></span></span><span class="value">–</span>`;
  bars.push(li);
}
const pad = new InkPad($("pad"), predict);
let generation = 0; // bumped by Clear so a late answer for old ink is dropped
let predicting = null; // the request in flight
let predictAgain = false;

async function predict() {
  if (predicting) {
    predictAgain = true;
    return;
  }
  const asked = generation;
  prediction.setAttribute("aria-busy", "true");
  const { alpha, width, height } = pad.alpha();
  predicting = request("predict", { alpha, width, height }, [alpha]);
  try {
    const result = await predicting;
    if (asked === generation) showPrediction(result);
  } catch (err) {
    if (asked === generation) showPrediction({ empty: true, message: shortError(err) });
  } finally {
    predicting = null;
    const again = predictAgain && pad.hasInk;
    predictAgain = false;
    if (again) predict();
    else prediction.setAttribute("aria-busy", "false");
  }
}

function showPrediction(result) {
  const empty = !result || result.empty;
  prediction.textContent = empty ? "" : String(result.digit);
  $("prediction-note").textContent = empty
    ? (result?.message ?? "")
    : `(${(100 * result.probabilities[result.digit]).toFixed(1)} % sure)`;
  bars.forEach((li, d) => {
    const p = empty ? 0 : result.probabilities[d];
    li.querySelector(".bar > span").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".value").textContent = empty ? "–" : `${(100 * p).toFixed(1)} %`;
    li.classList.toggle("top", !empty && d === result.digit);
    li.dataset.p = empty ? "" : String(p);
  });
  paintInput28($("input28"), empty ? null : result.input28);
}

/** The network changed: read the drawing again, if there is one. */
export function rereadDrawing() {
  if (pad.hasInk) predict();
}

export function clearDrawing() {
  pad.clear();
  generation++;
  predictAgain = false;
  prediction.setAttribute("aria-busy", "false");
  showPrediction(null);
}
$("clear").addEventListener("click", clearDrawing);
showPrediction(null);
