// Training in chunks. Python trains for about CHUNK_MS (it times its batches itself) and returns
// page-ready events, posted here as they are: batch, progress, epoch (or, fine-tuning, finetune),
// and last a "done" that says why the run ended and what model it left. Between chunks the
// worker yields to its event loop, so that pause, stop and predict get through mid-training.
import { call, reportFatal, yieldToEventLoop } from "./python-bridge.js";

const CHUNK_MS = 80; // the longest a request waits behind training
let run = null; // {paused, looping} while Python has a trainer

/** The user's Stop: end the run, if there is one. Python shapes its done event. */
export function stop() {
  run = null;
  const done = call("stop_training", ["stopped"]);
  if (done) self.postMessage(done);
}

/**
 * A reply of a Session method that replaces the model (start_training, load_model, …) and so
 * may have ended a run: post that run's done event, `ended`, and return the rest of the reply.
 */
export function replacing({ ended, ...reply }) {
  if (ended) {
    run = null;
    self.postMessage(ended);
  }
  return reply;
}

/** Start a run with the form's `config` (one in progress ends); {ok, errors?, model, …}. */
export function train(config, subset) {
  return begin(call("start_training", [config, subset]));
}

/**
 * Fine-tune the current model on the visitor's digits (`images` n×784 and `labels` n, uint8):
 * a run like any other — the same chunks of `Session.train_chunk`, pause and stop — whose
 * events are "finetune" progress and a "done" of kind "finetune"; {ok, errors?, model, n, …}.
 */
export function finetune(images, labels) {
  return begin(call("start_finetune", [images, labels]));
}

/** A Session's reply to starting a run: if it started, train it in chunks from now on. */
function begin(reply) {
  const result = replacing(reply);
  if (result.ok) {
    run = { paused: false, looping: false };
    loop(run);
  }
  return result;
}

export function pause() {
  if (run) run.paused = true;
}

export function resume() {
  if (!run?.paused) return;
  run.paused = false;
  loop(run);
}

async function loop(current) {
  if (current.looping) return; // a pause and resume within one yield: the old loop goes on
  current.looping = true;
  try {
    for (;;) {
      // Yield first: the request that started (or resumed) training is answered before any batch.
      await yieldToEventLoop();
      if (run !== current || current.paused) return;
      for (const event of call("train_chunk", [CHUNK_MS])) {
        self.postMessage(event);
        if (event.type === "done") run = null;
      }
    }
  } catch (err) {
    // Python turns its own exceptions into a "done" event; what gets here is the runtime
    // failing (or the bridge), after which nothing can tell what state the run is in.
    run = null;
    reportFatal(err);
  } finally {
    current.looping = false;
  }
}
