// The drawing panel: the pad, and the network's reading of it (the digit, a bar per digit and
// the 28×28 image it saw). One prediction is in flight at a time; strokes made meanwhile are
// read once it returns, and Clear drops an answer still on its way. "Try a test digit" paints an
// MNIST test image on the pad and reads it the same way: a prediction without a pointer.
import { InkPad, paintInput28 } from "./draw.js";
import { $, shortError } from "./page-state.js";
import { request } from "./worker-life.js";

const prediction = $("prediction");
const note = $("prediction-note");
const testLabel = $("test-digit-label");
const bars = [];
for (let d = 0; d < 10; d++) {
  const li = $("probabilities").appendChild(document.createElement("li"));
  li.innerHTML = `<span class="digit">${d}</span><span class="bar"><span></span></span><span class="value">–</span>`;
  bars.push(li);
}
const pad = new InkPad($("pad"), stroked);
let generation = 0; // bumped whenever the ink is replaced, so a late answer for old ink is dropped
let inkEdits = 0; // strokes and clears: a test image arriving after either is not pasted over them
let tries = 0; // presses of "Try a test digit": only the latest one's image is shown
let predicting = null; // the request in flight
let predictAgain = false;
let predicted = null; // hears of each reading shown (explain-panel.js): see onPredicted

/**
 * Call `listener({result, ink})` whenever a prediction is shown for the ink now on the pad (ink:
 * {alpha, width, height}, a copy of what was read) and `listener(null)` when the pad is cleared.
 */
export function onPredicted(listener) {
  predicted = listener;
}

function stroked() {
  inkEdits++;
  showTestLabel(null); // the pad no longer holds just the test image
  predict();
}

async function predict() {
  if (predicting) {
    predictAgain = true;
    return;
  }
  const asked = generation;
  prediction.setAttribute("aria-busy", "true");
  const { alpha, width, height } = pad.alpha();
  const ink = predicted && { alpha: alpha.slice(0), width, height }; // the original is transferred
  predicting = request("predict", { alpha, width, height }, [alpha]);
  let result = null;
  try {
    result = await predicting;
    if (asked === generation) showPrediction(result);
  } catch (err) {
    if (asked === generation) showPrediction({ empty: true, message: shortError(err) });
  } finally {
    predicting = null;
    const again = predictAgain && pad.hasInk;
    predictAgain = false;
    if (again) predict();
    else prediction.setAttribute("aria-busy", "false");
    // Only the ink still on the pad, and no newer reading coming: strokes made meanwhile win.
    if (!again && asked === generation && ink) predicted(result ? { result, ink } : null);
  }
}

/**
 * Show a "prediction" reply (protocol.js). Its verdict says how far to trust it: "digit" shows
 * the digit and how sure; "unsure" and "not_digit" show no digit ("?") but the reply's message,
 * and the bars still show every probability. A reply without a verdict is a "digit".
 * Exported for the tests, which show replies the network would rarely give on demand.
 */
export function showPrediction(result) {
  const empty = !result || result.empty;
  const verdict = empty ? "" : (result.verdict ?? "digit");
  const confident = verdict === "digit";
  prediction.textContent = empty ? "" : confident ? String(result.digit) : "?";
  prediction.dataset.verdict = verdict;
  note.textContent = empty
    ? (result?.message ?? "")
    : confident
      ? `(${(100 * result.probabilities[result.digit]).toFixed(1)} % sure)`
      : (result.message ?? "Not sure what this is");
  bars.forEach((li, d) => {
    const p = empty ? 0 : result.probabilities[d];
    li.querySelector(".bar > span").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".value").textContent = empty ? "–" : `${(100 * p).toFixed(1)} %`;
    li.classList.toggle("top", confident && d === result.digit); // only a digit it stands by
    li.dataset.p = empty ? "" : String(p);
  });
  paintInput28($("input28"), empty ? null : result.input28);
}

/** Say which test image the pad shows (null: none). */
function showTestLabel(digit) {
  const article = digit?.label === 8 ? "an" : "a";
  testLabel.textContent = digit ? `An MNIST test image of ${article} ${digit.label} (no. ${digit.index + 1}).` : "";
  if (digit) testLabel.dataset.label = String(digit.label);
  else delete testLabel.dataset.label;
}

/** The network changed: read the drawing again, if there is one. */
export function rereadDrawing() {
  if (pad.hasInk) predict();
}

/** The pad's ink now ({alpha, width, height}, see draw.js) and `unchanged()`: true while no
 *  stroke or clear came after it, so that a teach button clears only the ink it labelled. */
export function currentInk() {
  const edits = inkEdits;
  return { ...pad.alpha(), unchanged: () => edits === inkEdits };
}

export function clearDrawing() {
  inkEdits++;
  pad.clear();
  generation++;
  predictAgain = false;
  prediction.setAttribute("aria-busy", "false");
  showPrediction(null);
  showTestLabel(null);
  predicted?.(null);
}
$("clear").addEventListener("click", clearDrawing);

/** "Try a test digit": a random MNIST test image on the pad, read as a drawing would be. */
async function tryTestDigit() {
  const [ticket, edits] = [++tries, inkEdits];
  // The seed is chosen here rather than in Python so that a test can pin it (Math.random).
  const seed = Math.floor(Math.random() * 2 ** 31);
  prediction.setAttribute("aria-busy", "true");
  if (!testLabel.dataset.label) testLabel.textContent = "Picking a test image…"; // data may load
  let reply;
  try {
    reply = await request("test_digit", { seed });
  } catch (err) {
    reply = { ok: false, error: shortError(err) };
  }
  // The user drew or cleared meanwhile (their ink wins), or pressed again (the later one does).
  if (ticket !== tries || edits !== inkEdits) return;
  if (!reply.ok) {
    if (!predicting) prediction.setAttribute("aria-busy", "false");
    showTestLabel(null);
    testLabel.textContent = `No test image: ${reply.error}.`;
    return;
  }
  generation++; // an answer still coming for the old ink is not this image's
  predictAgain = false;
  pad.paintImage28(reply.image);
  showTestLabel(reply);
  predict();
}
$("try-test-digit").addEventListener("click", tryTestDigit);
showPrediction(null);
