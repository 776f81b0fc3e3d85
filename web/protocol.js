// The page ⇄ worker protocol. Every request carries an `id`; the worker answers it exactly once
// with a reply of the listed type and the same `id`, or with {id, type: "error", message}.
// Events without an `id` stream from the worker on their own.
//
//  request    payload                               reply (same id)
//  ─────────  ────────────────────────────────────  ──────────────────────────────────────────────
//  init       {savedModel: ArrayBuffer | null}      ready      {model, warning?, startup: {snapshot:
//                                                              numpy|stdlib|false, bytecode (null:
//                                                              after the model), dynlibs, notes}}
//                                                              (can predict)
//  configure  {config: {field: string}}             configured {ok, errors?: {field: message},
//                                                              network?, train?}
//  train      {config, subset?}                     started    {ok, errors?, model, n_train,
//                                                              n_batches, total_steps, batch_size}
//                                                              (subset: first n images; ?debug only)
//  pause      {}                                    paused
//  resume     {}                                    resumed
//  stop       {}                                    stopped    (and a "done" event, reason stopped)
//  predict    {alpha: ArrayBuffer (transferred),    prediction {empty: false, digit, input28[784],
//              width, height}                                  probabilities[10]}
//                                                              | {empty: true, message}
//  test_digit {seed?: int ≥ 0}                      test_digit {ok, image[784] (uint8, 255 = ink),
//                                                              label, index} | {ok: false, error}
//                                                              (an MNIST test image; after the data)
//  reset      {}                                    model      {ok, model | error}  (pretrained)
//  export     {}                                    exported   {bytes: ArrayBuffer (transferred)}
//  import     {bytes: ArrayBuffer, source?:         model      {ok, model | error}
//              the history entry's, else uploaded}
//  explain    {alpha, width, height}  (as predict)  explanation {empty: false, digit, probability,
//                                                              runner_up: {digit, probability},
//                                                              saliency[784] (-1..1), neighbours:
//                                                              [{image, label, index, similarity}],
//                                                              activations: [{units, values, signed}],
//                                                              feature_maps?: {n, side, maps (n×side²
//                                                              uint8), signed}  (CNN: 1st conv layer)}
//                                                              | {empty: true, message}
//  weights    {}                                    weights    {ok, n, side, tiles (n×side² uint8,
//                                                              128 = 0), units, conv, epoch} | {ok:
//                                                              false, error}  (side: 28, or a CNN's k)
//  confusion  {}  (after the data)                  confusion  {ok, matrix (10×10), accuracy, n}
//                                                              | {ok: false, error}
//  mistakes   {true, pred}  (a confusion cell)      mistakes   {ok, true, pred, total, items: [{image,
//                                                              index, probability}] (≤ 24)}
//  digitize   {alpha, width, height}  (as predict)  digitized  {empty: false, input28[784]}
//                                                              | {empty: true, message}
//  digits_export  {images: ArrayBuffer (n×784),     digits_file {bytes: ArrayBuffer (transferred)}
//              labels: ArrayBuffer (n), uint8}                 ("My digits" as an .npz file)
//  digits_import  {bytes: ArrayBuffer}              digits     {ok, n, images, labels (ArrayBuffers,
//                                                              transferred)} | {ok: false, error}
//  finetune   {images, labels} (as digits_export)   started    {ok, errors?, model, n, kind}
//                                                              (then "finetune" events and "done")
//  ping       {}                                    pong       (the page's liveness check)
//  debug      {action: memory}                      memory     {heap, objects}
//   (only     {action: throw | close}               debugged   (then it throws, or goes silent)
//   ?debug)   {action: fetch, url}                  fetched    {ok, error?, blocked_by?}
//             {action: python_error | fatal}        error      (and after fatal, a "fatal" event)
//
//  event      payload (no id)
//  ─────────  ─────────────────────────────────────────────────────────────────────────────────
//  stage      {stage: runtime|packages|model|data, state: loading|done|error, ms?, detail?}
//             (detail when done: which snapshot the runtime came from, a start-up cache not
//             used and why; with the snapshot with NumPy the wheels are installed in "data")
//  dataset    {n_train, n_test, backend}  training is possible; backend: how matrices multiply
//  batch      the Trainer's batch event   {epoch, batch, n_batches, step, total_steps, cost, …}
//  progress   a big batch split in parts  {epoch, batch, n_batches, step, total_steps,
//             or the test pass stopped     batch_fraction, test_fraction?}  (test_fraction: in the
//             part-way (a chunk)           epoch's test pass, of the test set scored so far)
//  epoch      the Trainer's epoch event   {epoch, cost, train_accuracy, test_accuracy, confusion}
//  weights    a run's first layer, live   {n, side, tiles, units, conv, epoch, step} as the reply:
//             (not when fine-tuning)       about once a second, and after each epoch
//  finetune   fine-tuning's progress      {phase: cross-validating|fine-tuning, fold, folds,
//                                          fraction: of the whole job, message}
//  done       training ended              {reason: finished|stopped|replaced|diverged|error,
//                                          model, message, file?, stopped_model?}, made by the
//                                          Session, posted as is; "replaced": before a train,
//                                          reset or import reply. file: the run's model (bytes)
//                                          for the history; stopped/replaced runs keep the
//                                          previous model current (model) and hand over theirs
//                                          (stopped_model). Fine-tuning's: kind "finetune", and
//                                          once finished result {n, folds, own_before, own_after,
//                                          test_before, test_after, seconds} (own: k-fold)
//  fatal      {message}                   Pyodide failed for good: the page starts a new worker
//  crash      {message}                   (made by WorkerClient, not sent) the worker threw
//                                         outside any request, or its script did not load
//
// `model` is Session.describe(): {name: "784-128-10 (relu)", architecture, n_parameters,
// source: pretrained|saved|trained|uploaded|finetuned, source_label, settings (the form's text
// for how it was trained, or null), training: {epochs?, test_accuracy?, …}, …}.

/** A promise-per-request client for the worker, plus a listener for streamed events. */
export class WorkerClient {
  /** `trace(direction, type)`, if given, hears of every message: "sent" or "received". */
  constructor(worker, onEvent, trace = null) {
    this.worker = worker;
    this.onEvent = onEvent;
    this.trace = trace; // for tests (?debug): test_protocol.py checks the table above
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject}
    this.lastHeard = performance.now(); // for the page's watchdog
    this.closed = null; // the Error every request gets once the worker is gone
    worker.addEventListener("message", (e) => this.#receive(e.data));
    worker.addEventListener("error", (e) => {
      // An uncaught error, or a script that did not load: the worker may be in any state.
      e.preventDefault();
      onEvent({ type: "crash", message: e.message || "the worker script failed to load" });
    });
    worker.addEventListener("messageerror", () => {
      onEvent({ type: "crash", message: "a message from the worker could not be read" });
    });
  }

  /** Send a request; resolves with the reply, rejects with an Error on an "error" reply. */
  request(type, payload = {}, transfer = []) {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    this.trace?.("sent", type);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, type, ...payload }, transfer);
    });
  }

  /** The worker is gone: fail every waiting request, and every later one, with `error`. */
  close(error) {
    this.closed = error;
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
  }

  #receive(msg) {
    this.lastHeard = performance.now();
    if (this.closed) return;
    this.trace?.("received", msg.type);
    const waiter = msg.id === undefined ? undefined : this.pending.get(msg.id);
    if (!waiter) {
      this.onEvent(msg);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.type === "error") waiter.reject(new Error(msg.message));
    else waiter.resolve(msg);
  }
}
