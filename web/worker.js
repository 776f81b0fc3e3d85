// The module worker that owns Pyodide: its entry. It starts loading the moment it is created
// (startup.js, which reports each stage) and answers the requests listed in protocol.js from
// the table below; training runs in train-loop.js, calls into Python go through
// python-bridge.js. Any request's failure is an "error" reply; a Pyodide fatal error (the
// runtime is unusable) is also a {type: "fatal"} event, so the page starts a fresh worker.
import { call, isFatal, reportFatal } from "./python-bridge.js";
import { startUp } from "./startup.js";
import * as training from "./train-loop.js";

// Test switches, only when the page was opened with ?debug (spawn.js passes its query on).
const query = new URL(import.meta.url).searchParams;
const DEBUG = query.has("debug");
const { loaded, dataLoaded, init, info } = startUp({
  snapshot: !(DEBUG && query.has("nosnapshot")),
  unzip: !(DEBUG && query.has("nounzip")),
  dynlibs: !(DEBUG && query.has("nodynlibs")),
  kernel: !(DEBUG && query.get("kernel") === "numpy"), // bit-for-bit parity tests
});

// request type -> handler(msg): the reply, or [reply, transfer list]
const handlers = {
  async init(msg) {
    init({ savedModel: msg.savedModel });
    const ready = await loaded;
    return { type: "ready", model: ready.model, warning: ready.warning, startup: info };
  },
  async configure(msg) {
    await loaded;
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
    await loaded;
    training.stop();
    return { type: "stopped" };
  },
  async predict(msg) {
    await loaded;
    return { type: "prediction", ...call("predict_ink", [new Uint8Array(msg.alpha), msg.width, msg.height]) };
  },
  async test_digit(msg) {
    await dataLoaded; // the images come with the training data
    return { type: "test_digit", ...call("test_digit", [msg.seed ?? null]) };
  },
  async reset() {
    await loaded;
    return { type: "model", ...training.replacing(call("reset_to_pretrained")) };
  },
  async export() {
    await loaded;
    const bytes = call("export_model");
    return [{ type: "exported", bytes: bytes.buffer }, [bytes.buffer]];
  },
  async import(msg) {
    await loaded;
    const source = msg.source ?? "uploaded"; // Python accepts only the sources it knows
    return { type: "model", ...training.replacing(call("load_model", [new Uint8Array(msg.bytes)], { source })) };
  },
  // Inside the network: why it read a drawing so, its first layer, its mistakes on the test set.
  async explain(msg) {
    await loaded;
    return { type: "explanation", ...call("explain_ink", [new Uint8Array(msg.alpha), msg.width, msg.height]) };
  },
  async weights() {
    await loaded;
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
    await loaded;
    return { type: "digitized", ...call("digitize", [new Uint8Array(msg.alpha), msg.width, msg.height]) };
  },
  async digits_export(msg) {
    await loaded;
    const bytes = call("export_digits", [new Uint8Array(msg.images), new Uint8Array(msg.labels)]);
    return [{ type: "digits_file", bytes: bytes.buffer }, [bytes.buffer]];
  },
  async digits_import(msg) {
    await loaded;
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
    await loaded;
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
