// What the page keeps in IndexedDB so it survives a reload: the model history — the last few
// models (trained here, stopped, uploaded), each {id, bytes, info: Session.describe(), savedAt},
// and which of them is current (none: the pretrained model) — and "My digits", the digits the
// visitor labelled, each {id, label, image: Uint8Array(784), created}. Failures (private
// browsing, storage disabled) degrade to "nothing saved" rather than breaking the page.
const DB_NAME = "scribblenet";
const HISTORY = "history"; // autoincrement id -> entry
const META = "meta"; // "current" -> id or null
const DIGITS = "digits"; // autoincrement id -> {id, label, image, created} (version 3)
const LEGACY = "models"; // version 1: one model under "current"
export const HISTORY_SIZE = 8; // the oldest that is not current goes when a ninth comes

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 3);
    request.onupgradeneeded = (e) => {
      const db = request.result;
      const tx = request.transaction;
      // Each version adds to the last: a visitor's database may be any version before this one.
      if (e.oldVersion < 3) db.createObjectStore(DIGITS, { keyPath: "id", autoIncrement: true });
      if (e.oldVersion >= 2) return;
      db.createObjectStore(HISTORY, { keyPath: "id", autoIncrement: true });
      const meta = db.createObjectStore(META);
      if (!db.objectStoreNames.contains(LEGACY)) return;
      // A model saved by the page before it had a history becomes its first, current entry.
      tx.objectStore(LEGACY).get("current").onsuccess = (e) => {
        const old = e.target.result;
        if (!old) return db.deleteObjectStore(LEGACY);
        tx.objectStore(HISTORY).add({ bytes: old.bytes, info: old.info, savedAt: old.savedAt }).onsuccess =
          (added) => {
            meta.put(added.target.result, "current");
            db.deleteObjectStore(LEGACY);
          };
      };
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Run `action(stores)` in one transaction over the model stores (or `names`); resolves with
 *  its result. `stores` maps each name to its object store. */
async function transact(mode, action, names = [HISTORY, META]) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(names, mode);
      let result;
      Promise.resolve(action(Object.fromEntries(names.map((name) => [name, tx.objectStore(name)]))))
        .then((r) => (result = r), reject);
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("the transaction was aborted"));
    });
  } finally {
    db.close();
  }
}

const done = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

/** Every entry, newest first, and the current entry's id (null: the pretrained model). */
export async function listModels() {
  return transact("readonly", async ({ history, meta }) => {
    const entries = await done(history.getAll());
    const current = (await done(meta.get("current"))) ?? null;
    return { entries: entries.reverse(), current };
  });
}

/** Add a model file (ArrayBuffer) with its description; it becomes current if `current`. */
export async function addModel(bytes, info, { current = true } = {}) {
  return transact("readwrite", async ({ history, meta }) => {
    const id = await done(history.add({ bytes, info, savedAt: Date.now() }));
    if (current) meta.put(id, "current");
    const keep = (await done(meta.get("current"))) ?? null;
    const ids = await done(history.getAllKeys());
    const surplus = ids.length - HISTORY_SIZE;
    for (const old of ids.filter((k) => k !== keep && k !== id).slice(0, Math.max(0, surplus))) {
      history.delete(old);
    }
    return id;
  });
}

/** One entry, or null. */
export async function getModel(id) {
  return transact("readonly", async ({ history }) => (await done(history.get(id))) ?? null);
}

/** Make an entry (or, with null, the pretrained model) current. */
export async function setCurrent(id) {
  await transact("readwrite", ({ meta }) => meta.put(id, "current"));
}

/** Delete an entry; if it was current, the pretrained model is current again. */
export async function deleteModel(id) {
  await transact("readwrite", async ({ history, meta }) => {
    history.delete(id);
    if ((await done(meta.get("current"))) === id) meta.put(null, "current");
  });
}

/** The current entry {id, bytes, info, savedAt}, or null if it is the pretrained model or the
 *  storage cannot be read within `timeoutMs` (a blocked database must not hold up the page). */
export async function currentModel(timeoutMs = 2000) {
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), timeoutMs));
  const read = transact("readonly", async ({ history, meta }) => {
    const id = (await done(meta.get("current"))) ?? null;
    return id === null ? null : ((await done(history.get(id))) ?? null);
  }).catch((err) => {
    console.warn("scribblenet: cannot read the saved models:", err);
    return null;
  });
  return Promise.race([read, timeout]);
}

// ── My digits ─────────────────────────────────────────────────────────────────────────────────

/** Every digit kept, oldest first: [{id, label, image: Uint8Array(784), created}]. */
export async function listDigits() {
  return transact("readonly", ({ digits }) => done(digits.getAll()), [DIGITS]);
}

/** Add digits [{label, image, created}] in one go; resolves with them, ids added. */
export async function addDigits(items) {
  return transact("readwrite", async ({ digits }) => {
    const ids = await Promise.all(items.map((item) => done(digits.add(item))));
    return items.map((item, i) => ({ ...item, id: ids[i] }));
  }, [DIGITS]);
}

/** Remove one digit by id, or every digit with null. */
export async function deleteDigits(id = null) {
  await transact("readwrite", ({ digits }) => (id === null ? digits.clear() : digits.delete(id)), [DIGITS]);
}
