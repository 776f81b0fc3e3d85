// Benchmark only (never shipped in dist/): the page's own worker, unchanged, plus one request
// of its own, {id, type: "python", code} -> {id, type: "python", result} (the value of the
// code's last expression), which runs Python in the worker's interpreter; bench/step_profile.py
// uses it to switch cProfile on and off around the page's own training.
import "../worker.js?debug";
import { pyodide } from "../python-bridge.js";

const pageRequests = self.onmessage; // set by worker.js: every request of protocol.js
self.onmessage = (event) => {
  const msg = event.data;
  if (msg?.type !== "python") return pageRequests(event);
  try {
    if (!pyodide) throw new Error("Python is not started yet");
    self.postMessage({ id: msg.id, type: "python", result: pyodide.runPython(msg.code) });
  } catch (err) {
    self.postMessage({ id: msg.id, type: "error", message: err.message ?? String(err) });
  }
};
