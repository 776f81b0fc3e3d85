// Bench worker for TF.js (see tfjs_core.js). Benchmark-only, never shipped in dist/.
//  request {id, ...tfjsBench options}  ->  reply {id, ok, result} | {id, ok: false, error}
importScripts("vendor/tfjs/tf.min.js", "vendor/tfjs/tf-backend-wasm.min.js", "tfjs_core.js");

self.onmessage = async ({ data: msg }) => {
  try {
    self.postMessage({ id: msg.id, ok: true, result: await tfjsBench(msg) });
  } catch (err) {
    self.postMessage({ id: msg.id, ok: false, error: String(err?.message ?? err) });
  }
};
