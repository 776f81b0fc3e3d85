// Service worker: a repeat visit starts from local copies of the big files instead of the network.
//
// Scope: the directory this file is served from (the site's sub-path, e.g. /scribblenet/).
//  - cache-first: every file manifest.json lists (with its sha256) under pyodide/, wheels/, data/,
//    models/, vendor/, startup/ and gemm/*.wasm. A copy is stored under its URL plus ?sha256=<hex>, and
//    only after its bytes are checked against that hash, so a rebuild that changes a file changes
//    its key and the old copy is never served (it is deleted when the new manifest arrives).
//  - network-first: everything else (the page, its scripts and styles, manifest.json), with the
//    last good copy as the fallback when the network fails.
// On install the immutable files are fetched once (mostly from the HTTP cache the first visit
// has just filled; of the start-up snapshots only the one this browser starts from), so the
// second visit is served entirely from here. Registered by app.js as a
// classic script, not a module: Firefox ESR 140 refuses module service workers ("threw an
// exception during script evaluation"), so nothing here may import.

/** The SHA-256 of `bytes` as lowercase hex (fetch-checked.js has the page's copy). */
async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

const ASSETS = "scribblenet-assets-v1"; // immutable files, keyed by sha256
const PAGES = "scribblenet-pages-v1"; // network-first copies, for offline use
const SCOPE = new URL("./", self.location.href);
const MANIFEST = new URL("manifest.json", SCOPE).href;
const IMMUTABLE = /^(pyodide|wheels|data|models|vendor|startup)\/|^gemm\/.*\.wasm$/;

let manifest = null; // the newest manifest seen: {files: {path: {sha256, size}}}
let manifestPending = null; // a network fetch of manifest.json in flight (asset requests wait)

const assetKey = (path, sha256) => `${new URL(path, SCOPE).href}?sha256=${sha256}`;

function immutablePaths(m) {
  return Object.entries(m?.files ?? {}).filter(([path, f]) => IMMUTABLE.test(path) && f.sha256);
}

/** Store a response under `key` if its bytes hash to `sha256`; otherwise leave the cache alone. */
async function storeVerified(cache, key, response, sha256) {
  const body = await response.arrayBuffer();
  if ((await sha256Hex(body)) !== sha256) return false; // mid-deploy mismatch: do not keep it
  const { status, statusText, headers } = response;
  await cache.put(key, new Response(body, { status, statusText, headers }));
  return true;
}

/** Delete asset copies the manifest no longer names (old builds). */
async function prune(m) {
  const keep = new Set(immutablePaths(m).map(([path, f]) => assetKey(path, f.sha256)));
  const cache = await caches.open(ASSETS);
  for (const request of await cache.keys()) {
    if (!keep.has(request.url)) await cache.delete(request);
  }
}

async function currentManifest() {
  if (manifestPending) await manifestPending;
  if (!manifest) {
    const cached = await caches.match(MANIFEST, { cacheName: PAGES });
    if (cached) manifest = await cached.json().catch(() => null);
  }
  return manifest;
}

async function cacheFirst(event, path) {
  const sha256 = (await currentManifest())?.files?.[path]?.sha256;
  if (!sha256) return fetch(event.request); // not a file this build ships: no caching
  const cache = await caches.open(ASSETS);
  const key = assetKey(path, sha256);
  const hit = await cache.match(key);
  if (hit) return hit;
  const response = await fetch(event.request);
  if (response.status === 200 && response.type === "basic") {
    event.waitUntil(storeVerified(cache, key, response.clone(), sha256).catch(() => {}));
  }
  return response;
}

async function networkFirst(event) {
  try {
    const response = await fetch(event.request);
    if (response.status === 200 && response.type === "basic") {
      const copy = response.clone();
      event.waitUntil(caches.open(PAGES).then((c) => c.put(event.request, copy)).catch(() => {}));
    }
    return response;
  } catch (err) {
    const cached = await caches.match(event.request, { cacheName: PAGES });
    if (cached) return cached;
    throw err;
  }
}

function onManifest(event) {
  let parsed; // the manifest read from a copy taken before the page reads the body
  const network = networkFirst(event).then((response) => {
    parsed = response.clone().json();
    return response;
  });
  // Set synchronously: asset requests dispatched after this one wait for the fresh hashes.
  const pending = network
    .then(() => parsed)
    .then((m) => {
      manifest = m;
      event.waitUntil(prune(m).catch(() => {}));
    })
    .catch(() => {}) // offline or not JSON: the cached manifest is used
    .finally(() => {
      if (manifestPending === pending) manifestPending = null;
    });
  manifestPending = pending;
  return network;
}

// Cross-origin isolation, for SharedArrayBuffer (the matrix kernel's threads): GitHub Pages
// cannot send COOP/COEP, so the documents and worker scripts served from here carry them
// (nothing else needs them: every subresource is same-origin). Other responses pass as they
// came: a rebuilt Response would cost Chrome the compiled code it keeps for a cached .wasm,
// and send every body through this worker's thread. A page this worker did not serve (a first
// visit) is not isolated and trains on one thread: it is never reloaded for isolation. require-corp rather than credentialless: every request is same-origin, and
// every browser knows it (Safari and Firefox < 119 lack credentialless). Not in WebKit (Safari,
// WebKitGTK): there COOP makes the next navigation after a training run load an empty page,
// and its workers get no SharedArrayBuffer anyway (WebKitGTK 2.50).
const UA = self.navigator.userAgent;
const WEBKIT = /AppleWebKit\//.test(UA) && !/Chrome\/|Chromium\//.test(UA); // as gemm/gemm.js

const ISOLATE = new Set(["document", "worker", "sharedworker"]); // request.destination

function isolated(response) {
  if (WEBKIT || response.status === 0 || response.redirected) return response; // as it came
  const headers = new Headers(response.headers);
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cross-Origin-Embedder-Policy", "require-corp");
  const { status, statusText } = response;
  const body = [204, 205, 304].includes(status) ? null : response.body;
  return new Response(body, { status, statusText, headers });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || request.headers.has("range")) return;
  const url = new URL(request.url);
  if (url.origin !== SCOPE.origin || !url.pathname.startsWith(SCOPE.pathname)) return;
  const path = decodeURIComponent(url.pathname.slice(SCOPE.pathname.length));
  const headers = ISOLATE.has(request.destination) ? isolated : (response) => response;
  if (url.href === MANIFEST) event.respondWith(onManifest(event));
  else if (!url.search && IMMUTABLE.test(path)) event.respondWith(cacheFirst(event, path).then(headers));
  else event.respondWith(networkFirst(event).then(headers));
});

async function precache() {
  const response = await fetch(MANIFEST, { cache: "no-cache" });
  if (!response.ok) return;
  const m = await response.clone().json();
  manifest = m;
  await (await caches.open(PAGES)).put(MANIFEST, response);
  const cache = await caches.open(ASSETS);
  // Of the start-up snapshots, the one the worker tries first in this browser (as worker.js
  // decides: not the one with NumPy in WebKit), and others only if this visit used them (in the
  // HTTP cache): the fallback is never downloaded for nothing. One used later is stored then.
  const snapshots = m.snapshots ?? [];
  const first = (WEBKIT ? snapshots.filter((s) => !s.link?.libs?.length) : snapshots)[0]?.file;
  const onlyIfUsed = new Set(snapshots.map((s) => s.file).filter((file) => file !== first));
  const used = { cache: "only-if-cached", mode: "same-origin" };
  await Promise.all(
    immutablePaths(m).map(async ([path, f]) => {
      const key = assetKey(path, f.sha256);
      if (await cache.match(key)) return;
      const url = new URL(path, SCOPE);
      const file = await (onlyIfUsed.has(path) ? fetch(url, used).catch(() => null) : fetch(url));
      if (file?.ok) await storeVerified(cache, key, file, f.sha256);
    }),
  );
  await prune(m);
}

self.addEventListener("install", (event) => {
  self.skipWaiting(); // a new sw.js takes over at the next navigation, not after every tab closes
  // A failed precache must not block installing: the fetch handler fills the cache as it goes.
  event.waitUntil(precache().catch(() => {}));
});

// Caches of earlier sw.js versions (other names) are dropped once this one is in charge.
async function dropOldCaches() {
  const ours = new Set([ASSETS, PAGES]);
  for (const name of await caches.keys()) {
    if (name.startsWith("scribblenet-") && !ours.has(name)) await caches.delete(name);
  }
}

self.addEventListener("activate", (event) => event.waitUntil(dropOldCaches()));
