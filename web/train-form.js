// The training form, built from settings.json: the hyperparameter schema that the scribblenet
// package writes at build time (scribblenet.hyperparams.settings_schema), so that no field,
// choice or preset is spelled out here. Each control's id and name is its field's name; values
// are checked by the worker's "configure" request, whose messages show next to each field.
// The form is also mirrored in the address (form-link.js), so a link reproduces a run.
import { readLink, writeLink } from "./form-link.js";
import { $, shortError, state, updateButtons } from "./page-state.js";
import { request } from "./worker-life.js";

const form = $("train-form");
const preset = $("preset");
// Fetched as the page's first module runs (index.html preloads it): the form is up long
// before Python is.
const settingsPromise = fetch(new URL("./settings.json", import.meta.url)).then((r) => {
  if (!r.ok) throw new Error(`settings.json: HTTP ${r.status}`);
  return r.json();
});
let fields = []; // the schema's fields, in display order
const presets = {}; // key -> {label, values: {field: string}}
let blank = ""; // the preset without values: what the menu shows once a field is edited
let defaults = {}; // field -> the schema's default
let base = ""; // the preset the values started from: the link names it, then what differs
let linkHolds = false; // opened with settings in the link: a restored model's do not replace them
let linkProblem = ""; // what was wrong with the link itself (an unknown preset), until an edit

const make = (tag, attributes = {}, text = "") => {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  el.textContent = text;
  return el;
};

/** One field: label, control, datalist (suggestions), hint (help) and error slot. */
function fieldElement(f) {
  const div = make("div", { class: "field" });
  div.append(make("label", { for: f.name }, f.label));
  const described = [f.help ? `${f.name}-hint` : "", `${f.name}-error`].filter(Boolean).join(" ");
  let control;
  if (f.kind === "choice") {
    control = make("select", { id: f.name, name: f.name, "aria-describedby": described });
    for (const choice of f.choices) control.add(new Option(choice.label, choice.value));
  } else {
    control = make("input", { id: f.name, name: f.name, autocomplete: "off", spellcheck: "false" });
    control.setAttribute("aria-describedby", described);
    if (f.input_mode && f.input_mode !== "text") control.inputMode = f.input_mode;
  }
  control.value = f.default;
  div.append(control);
  if (f.suggestions?.length) {
    // Its id: the field's name in kebab case and plural, as the page's one datalist always was.
    const list = make("datalist", { id: `${f.name.replaceAll("_", "-")}s` });
    for (const value of f.suggestions) list.append(new Option("", value));
    control.setAttribute("list", list.id);
    div.append(list);
  }
  if (f.help) div.append(make("small", { id: `${f.name}-hint`, class: "hint" }, f.help));
  div.append(make("small", { id: `${f.name}-error`, class: "error", "data-error-for": f.name, "aria-live": "polite" }));
  return div;
}

/** Build the fields and the preset menu, then apply the initial preset. */
export async function buildForm() {
  let settings;
  try {
    settings = await settingsPromise;
  } catch (err) {
    showErrors({ _: `The training form could not be loaded (${shortError(err)}). Reload the page to retry.` });
    return;
  }
  fields = settings.fields;
  const errorSlot = $("form-error");
  for (const f of fields) form.insertBefore(fieldElement(f), errorSlot);
  for (const p of settings.presets) {
    presets[p.key] = p;
    preset.add(new Option(p.label, p.key));
    if (!Object.keys(p.values).length) blank = p.key;
  }
  defaults = Object.fromEntries(fields.map((f) => [f.name, f.default]));
  state.formReady = true;
  updateButtons();
  const link = readLink(fields.map((f) => f.name));
  if (link) applyLink(link);
  else applyPreset(settings.initial_preset, false); // the address stays as it was opened
}

function applyPreset(key, mirrored = true) {
  for (const [name, value] of Object.entries(presets[key]?.values ?? {})) setValue(name, value);
  preset.value = key;
  if (key !== blank) base = key;
  validate(mirrored);
}

/**
 * Opened with a link (form-link.js): the defaults, then its preset's values, then its own. The
 * usual check runs, so a bad value gets the usual message; nothing starts until Train.
 */
function applyLink(link) {
  const named = link.preset !== null && Object.hasOwn(presets, link.preset);
  if (link.preset !== null && !named) {
    linkProblem = `The link's preset “${link.preset}” is not one of these; its other settings are filled in.`;
  }
  const known = named && link.preset !== blank ? link.preset : "";
  const values = { ...defaults, ...(presets[known]?.values ?? {}), ...link.values };
  for (const f of fields) setValue(f.name, values[f.name]);
  base = known;
  linkHolds = true;
  preset.value = matchingPreset() ?? blank;
  validate();
}

/** Set a field; a choice this menu lacks (from a link) is added, so the check can name it. */
function setValue(name, value) {
  const control = form.elements[name];
  if (control.tagName === "SELECT" && ![...control.options].some((o) => o.value === value)) {
    const option = new Option(value, value);
    option.dataset.stray = "";
    control.add(option);
  }
  control.value = value;
}

/**
 * The preset whose values are the form's (null: none). Numbers compare by value: a trained
 * model's settings come back from Python as "0.0" or "1e-05" where a preset says "0" or "0.00001".
 */
function matchingPreset() {
  const current = readForm();
  const number = (text) => (text?.trim() ? Number(text) : NaN);
  const equal = (a, b) => a === b || (Number.isFinite(number(a)) && number(a) === number(b));
  const same = (p) => Object.keys(p.values).length && fields.every((f) => equal(p.values[f.name], current[f.name]));
  return Object.values(presets).find(same)?.key ?? null;
}

/** Write the form into the address: the preset it started from and the fields that differ. */
function mirror() {
  const current = readForm();
  const start = { ...defaults, ...(presets[base]?.values ?? {}) };
  const changed = fields.filter((f) => current[f.name] !== start[f.name]).map((f) => [f.name, current[f.name]]);
  writeLink(base, Object.fromEntries(changed));
}

let cautioned = null; // the preset whose caution was shown: a second Train goes ahead
let estimate = ""; // "needs about N MB", from the last valid check

/** Under the menu: what the chosen preset takes and reaches here, and the memory estimate. */
function showPresetNote() {
  const note = presets[preset.value]?.note ?? "";
  $("preset-note").textContent = [note, estimate].filter(Boolean).join(" · ");
  $("preset-note").removeAttribute("role");
  if (cautioned !== preset.value) $("train").textContent = "Train";
}

/**
 * A slow or weak preset says so before it starts: the first Train shows its caution (and asks
 * for a second click); true when training may start now.
 */
export function cautionCleared() {
  const caution = presets[preset.value]?.caution;
  if (cautioned === preset.value) {
    cautioned = null; // said once: this run goes ahead
    showPresetNote();
    $("train").textContent = "Train";
    return true;
  }
  if (!caution) return true;
  cautioned = preset.value;
  $("preset-note").textContent = `${caution} Press Train again to start it.`;
  $("preset-note").setAttribute("role", "alert");
  $("train").textContent = "Train anyway";
  return false;
}
preset.addEventListener("change", (e) => applyPreset(e.target.value));

/** Fill the form with a model's settings ({field: string}); the menu names their preset, if any. */
export function showSettings(values) {
  // A link's settings win over those of the model restored from this browser as the page opens.
  if (!state.formReady || (linkHolds && state.model?.source === "saved")) return;
  for (const f of fields) if (values[f.name] !== undefined) setValue(f.name, values[f.name]);
  const match = matchingPreset();
  preset.value = match ?? blank;
  if (match) base = match;
  validate();
}

/** The form's values, {field: string}, as "configure" and "train" take them. */
export function readForm() {
  return Object.fromEntries(fields.map((f) => [f.name, form.elements[f.name].value]));
}

/** Show {field: message} next to each field ("_": the whole form); clear the others. */
export function showErrors(errors = {}) {
  for (const el of form.querySelectorAll("[data-error-for]")) {
    const message = errors[el.dataset.errorFor] ?? "";
    el.textContent = message;
    form.elements[el.dataset.errorFor]?.setAttribute("aria-invalid", String(Boolean(message)));
  }
}

/** Put the cursor in the first field with an error, if any. */
export function focusFirstError(errors = {}) {
  const first = fields.find((f) => errors[f.name]);
  if (first) form.elements[first.name].focus();
}

let validateTimer = 0;
let validateSeq = 0;
async function validate(mirrored = true) {
  const seq = ++validateSeq;
  if (mirrored) mirror();
  const reply = await request("configure", { config: readForm() })
    .catch((err) => ({ ok: false, errors: { _: shortError(err) } }));
  if (seq !== validateSeq) return; // only the latest answer counts
  showErrors(linkProblem ? { _: linkProblem, ...reply.errors } : reply.errors);
  estimate = reply.ok && reply.memory_mb ? `needs about ${Math.max(1, Math.round(reply.memory_mb))} MB` : "";
  showPresetNote();
}

/** A run is starting: a pending check of the old values is not needed. */
export const cancelValidation = () => clearTimeout(validateTimer);

form.addEventListener("input", (e) => {
  if (e.target !== preset) preset.value = blank;
  linkProblem = "";
  // A choice a link added and the visitor has now replaced goes from the menu.
  for (const option of form.querySelectorAll("option[data-stray]")) if (!option.selected) option.remove();
  cautioned = null;
  showPresetNote();
  mirror(); // at once: a Copy link right after typing copies what was typed
  clearTimeout(validateTimer);
  validateTimer = setTimeout(validate, 250);
});
