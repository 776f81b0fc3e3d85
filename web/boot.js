// Loads the page's modules (app.js and everything it imports) and, if any of them fails to
// arrive or throws while it is evaluated, says so with a Retry instead of "Loading…" forever.
//
// index.html's policy allows no inline script, so this is the tiny entry it loads (app.js is
// preloaded beside it). A static import of app.js here would fail this module too, with nothing
// left to report it: the dynamic import() turns any such failure into a rejection handled below.
// It imports nothing itself, so it has nothing that could fail before it runs.

// ?debug (tests): uncaught errors and unhandled rejections, kept where a WebDriver client that
// cannot read the console (tests/browsers/) finds them.
if (new URLSearchParams(location.search).has("debug")) {
  const errors = (window.scribblenetErrors = []);
  addEventListener("error", (e) => errors.push(String(e.error?.stack ?? e.message)));
  addEventListener("unhandledrejection", (e) => errors.push(`unhandled rejection: ${e.reason?.stack ?? e.reason}`));
}

import("./app.js").catch((err) => {
  console.error("scribblenet: the page's scripts could not be loaded:", err);
  const status = document.getElementById("status");
  const retry = document.getElementById("retry");
  const reason = String(err?.message ?? err).trim().split("\n").pop();
  status.textContent = `The page could not start: its scripts did not load (${reason}). ` +
    "Check the connection and retry.";
  status.dataset.ready = "false";
  status.dataset.failed = "scripts";
  // app.js never ran, so its Retry (a worker restart) is not wired: reload the page instead.
  retry.addEventListener("click", () => location.reload());
  retry.hidden = false;
});
