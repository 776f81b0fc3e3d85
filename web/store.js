// The trained model, kept in IndexedDB so it survives a reload. Failures (private browsing,
// storage disabled) degrade to "nothing saved" rather than breaking the page.
const DB_NAME = "scribblenet";
const STORE = "models";
const KEY = "current";

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transact(mode, action) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Remember a model file (ArrayBuffer) and a short description of it. */
export async function saveModel(bytes, info) {
  await transact("readwrite", (store) => store.put({ bytes, info, savedAt: Date.now() }, KEY));
}

/** The saved {bytes, info, savedAt}, or null if there is none or storage is unavailable. */
export async function loadSavedModel(timeoutMs = 2000) {
  // A blocked or very slow database must not hold up the page: give up and use the pretrained.
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), timeoutMs));
  const read = transact("readonly", (store) => store.get(KEY)).then(
    (saved) => saved ?? null,
    (err) => {
      console.warn("scribblenet: cannot read the saved model:", err);
      return null;
    },
  );
  return Promise.race([read, timeout]);
}

/** Forget the saved model (after "Reset to pretrained"). */
export async function forgetModel() {
  await transact("readwrite", (store) => store.delete(KEY));
}
