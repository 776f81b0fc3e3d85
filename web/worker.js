// The module worker that owns Pyodide: its entry. It starts loading the moment it is created
// (startup.js, which reports each stage) and answers the requests listed in protocol.js from
// the table below; training runs in train-loop.js, calls into Python go through
// python-bridge.js. Any request's failure is an "error" reply; a Pyodide fatal error (the
// runtime is unusable) is also a {type: "fatal"} event, so the page starts a fresh worker.

// Every module of the start-up, named here so that the browser fetches them all at once, not
// level by level as each arrives (four round trips, through the service worker on a repeat
// visit). site.js first: evaluating it starts the manifest's download.
import "./site.js";
import "./fetch-checked.js";
import "./runtime.js";
import "./dynlibs.js";
import "./unpacker.js";
import "./blob-worker.js";
import "./unzip.js";
import "./gemm/gemm.js";
import "./gemm/threads.js";
import { call, isFatal, reportFatal } from "./python-bridge.js";
import { startUp } from "./startup.js";
import * as training from "./train-loop.js";

// Test switches, only when the page was opened with ?debug (spawn.js passes its query on).
const query = new URL(import.meta.url).searchParams;
const DEBUG = query.has("debug");
// WebKit's dynamic linker lays out the function table otherwise (three more slots in WebKitGTK
// 2.50), so the snapshot with NumPy is refused there every time, after downloading and restoring
// it (~2 s): WebKit (Safari assumed alike) goes straight to the standard-library one; any other
// browser that refuses it falls back all the same (?debug&numpysnapshot tries it in WebKit).
const UA = self.navigator.userAgent;
const WEBKIT = /AppleWebKit\//.test(UA) && !/Chrome\/|Chromium\//.test(UA); // as sw.js, gemm/gemm.js
const noNumpySnapshot =
  DEBUG && query.has("stdlibsnapshot")
    ? "" // a test's: no note
    : WEBKIT && !(DEBUG && query.has("numpysnapshot"))
      ? "the snapshot with NumPy is not tried in WebKit (its linker lays out the function table otherwise)"
      : null;
const { loaded, ready, untilInstalled, dataLoaded, init, info } = startUp({
  snapshot: !(DEBUG && query.has("nosnapshot")),
  numpy: noNumpySnapshot ?? true, // true, or why only the standard-library snapshot is tried
  refuse: DEBUG && query.has("refusesnapshot"), // the first snapshot's check fails: the fallback
  unzip: !(DEBUG && query.has("nounzip")),
  dynlibs: !(DEBUG && query.has("nodynlibs")),
  kernel: !(DEBUG && query.get("kernel") === "numpy"), // bit-for-bit parity tests
});

// request type -> handler(msg): the reply, or [reply, transfer list]
const handlers = {
  async init(msg) {
    init({ savedModel: msg.savedModel });
    const started = await loaded; // the rest of the start-up (installing the packages) goes on
    return { type: "ready", model: started.model, warning: started.warning, startup: info };
  },
  async configure(msg) {
    await ready;
    return { type: "configured", ...call("configure", [msg.config]) };
  },
  async train(msg) {
    await dataLoaded;
    const subset = DEBUG ? (msg.subset ?? null) : null; // a quick run on fewer images, for tests
    return { type: "started", ...training.train(msg.config, subset) };
  },
  pause() {
    training.pause();
    return { type: "paused" };
  },
  resume() {
    training.resume();
    return { type: "resumed" };
  },
  async stop() {
    await ready;
    training.stop();
    return { type: "stopped" };
  },
  async predict(msg) {
    // As soon as the model is in: the snapshot with NumPy holds every import a prediction needs.
    const alpha = new Uint8Array(msg.alpha);
    return { type: "prediction", ...(await untilInstalled(() => call("predict_ink", [alpha, msg.width, msg.height]))) };
  },
  async test_digit(msg) {
    await dataLoaded; // the images come with the training data
    return { type: "test_digit", ...call("test_digit", [msg.seed ?? null]) };
  },
  async reset() {
    await ready;
    return { type: "model", ...training.replacing(call("reset_to_pretrained")) };
  },
  async export() {
    await ready;
    const bytes = call("export_model");
    return [{ type: "exported", bytes: bytes.buffer }, [bytes.buffer]];
  },
  async import(msg) {
    await ready;
    const source = msg.source ?? "uploaded"; // Python accepts only the sources it knows
    return { type: "model", ...training.replacing(call("load_model", [new Uint8Array(msg.bytes)], { source })) };
  },
  // Inside the network: why it read a drawing so, its first layer, its mistakes on the test set.
  async explain(msg) {
    await ready;
    return { type: "explanation", ...call("explain_ink", [new Uint8Array(msg.alpha), msg.width, msg.height]) };
  },
  async weights() {
    await ready;
    const reply = call("weight_tiles");
    return [{ type: "weights", ...reply }, reply.tiles ? [reply.tiles.buffer] : []];
  },
  async confusion() {
    await dataLoaded;
    return { type: "confusion", ...call("confusion") };
  },
  async mistakes(msg) {
    await dataLoaded;
    return { type: "mistakes", ...call("mistakes", [msg.true, msg.pred]) };
  },
  // My digits: a drawing as the network sees it, the .npz file of them both ways, fine-tuning.
  async digitize(msg) {
    await ready;
    return { type: "digitized", ...call("digitize", [new Uint8Array(msg.alpha), msg.width, msg.height]) };
  },
  async digits_export(msg) {
    await ready;
    const bytes = call("export_digits", [new Uint8Array(msg.images), new Uint8Array(msg.labels)]);
    return [{ type: "digits_file", bytes: bytes.buffer }, [bytes.buffer]];
  },
  async digits_import(msg) {
    await ready;
    const reply = call("import_digits", [new Uint8Array(msg.bytes)]);
    if (!reply.ok) return { type: "digits", ...reply };
    const [images, labels] = [reply.images.buffer, reply.labels.buffer];
    return [{ type: "digits", ...reply, images, labels }, [images, labels]];
  },
  async finetune(msg) {
    await dataLoaded; // it rehearses MNIST as it goes
    return { type: "started", ...training.finetune(new Uint8Array(msg.images), new Uint8Array(msg.labels)) };
  },
  ping() {
    return { type: "pong" };
  },
};

if (DEBUG) {
  handlers.debug = async (msg) => {
    await ready;
    const { debugRequest } = await import("./debug.js"); // never loaded for visitors
    return debugRequest(msg);
  };
}

self.onmessage = async ({ data: msg }) => {
  try {
    const handler = handlers[msg.type];
    if (!handler) throw new Error(`unknown request type ${JSON.stringify(msg.type)}`);
    const reply = await handler(msg);
    const [body, transfer] = Array.isArray(reply) ? reply : [reply, []];
    self.postMessage({ id: msg.id, ...body }, transfer);
  } catch (err) {
    self.postMessage({ id: msg.id, type: "error", message: err.message ?? String(err) });
    if (isFatal(err)) reportFatal(err);
  }
};
