// The site's files as the Python worker sees them: where they are, manifest.json, and fetches
// checked against the manifest's sha256, so that a failed start names the file to blame.
import { fetchChecked } from "./fetch-checked.js";

export const base = new URL("./", import.meta.url);

// Started as this module loads: every download of the start-up waits for it.
export const manifestPromise = fetch(new URL("manifest.json", base)).then((r) => {
  if (!r.ok) throw new Error(`manifest.json: HTTP ${r.status}`);
  return r.json();
});

/** Fetch a site file as bytes, checked against the manifest's sha256 when it has one. */
export function fetchVerified(manifest, path, priority = "auto") {
  return fetchChecked(new URL(path, base), path, manifest.files?.[path]?.sha256, priority);
}

/** After a failed stage: which of its files is missing or corrupt? The first error, or null. */
async function diagnose(manifest, paths) {
  for (const path of paths) {
    try {
      await fetchVerified(manifest, path);
    } catch (err) {
      return err;
    }
  }
  return null;
}

/** Run `work`; if it throws, blame the first of `paths(manifest)` that fails verification. */
export async function blaming(paths, work) {
  try {
    return await work();
  } catch (err) {
    const manifest = await manifestPromise.catch(() => ({}));
    const culprit = await diagnose(manifest, paths(manifest));
    throw culprit ?? err;
  }
}
