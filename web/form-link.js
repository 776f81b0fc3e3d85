// A link that reproduces a run: the training form lives in the address's query, readably —
// ?preset=fast&hidden=256,128&epochs=5: the preset it started from, then each field that differs
// from it, named as in settings.json. train-form.js reads it once the form is built and writes it
// on every change (history.replaceState: no new history entries). Other query keys (?debug,
// subset, …) are kept exactly as they were. "Copy link" puts the address on the clipboard.
import { $ } from "./page-state.js";

let owned = new Set(["preset"]); // the query keys this module writes: "preset" and the fields

const decode = (text) => {
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    return text; // a malformed escape: not one of ours, kept as it is
  }
};

/**
 * The settings in the address: {preset: key | null, values: {field: string}} for the given
 * field names, or null when it names none of them (the form then starts as usual).
 */
export function readLink(fieldNames) {
  owned = new Set(["preset", ...fieldNames]);
  const query = new URLSearchParams(location.search);
  const values = {};
  for (const name of fieldNames) if (query.has(name)) values[name] = query.get(name);
  const preset = query.get("preset");
  return preset !== null || Object.keys(values).length ? { preset, values } : null;
}

/** Put `preset` ("" for none) and `values` {field: string} in the address, after its other keys. */
export function writeLink(preset, values) {
  // Commas stay commas (hidden=256,128); everything else is escaped as usual.
  const escape = (text) => encodeURIComponent(text).replaceAll("%2C", ",");
  const others = location.search.slice(1).split("&")
    .filter((part) => part && !owned.has(decode(part.split("=")[0])));
  const ours = Object.entries(preset ? { preset, ...values } : values)
    .map(([name, value]) => `${escape(name)}=${escape(value)}`);
  const url = new URL(location.href);
  url.search = [...others, ...ours].join("&");
  if (url.href === location.href) return;
  history.replaceState(history.state, "", url.href);
  $("link-note").textContent = ""; // "Link copied" was about the old address
  $("link-field").hidden = true;
}

$("copy-link").addEventListener("click", async () => {
  const field = $("link-field");
  const url = location.href;
  try {
    await navigator.clipboard.writeText(url);
    field.hidden = true;
    $("link-note").textContent = "Link copied";
  } catch {
    // No clipboard here (an old browser, an insecure context, permission refused): the link
    // itself, selected, for the visitor to copy.
    field.value = url;
    field.hidden = false;
    field.focus();
    field.select();
    $("link-note").textContent = "Copy this link:";
  }
});
