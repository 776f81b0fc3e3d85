// One site file as bytes, checked against the sha256 that manifest.json gives for it. Shared by
// the Python worker and its unzip helper, so a broken download reads the same in both. The
// service worker (sw.js), a classic script, has its own copy of sha256Hex.

/** The SHA-256 of `bytes` (an ArrayBuffer or a view) as lowercase hex. */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Fetch `url` (named `path` in errors); reject on an HTTP error or a sha256 other than `sha256`. */
export async function fetchChecked(url, path, sha256, priority = "auto") {
  const response = await fetch(url, { priority });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (sha256 && crypto.subtle && (await sha256Hex(bytes)) !== sha256) {
    throw new Error(`${path} is corrupt (its sha256 does not match the manifest)`);
  }
  return bytes;
}
