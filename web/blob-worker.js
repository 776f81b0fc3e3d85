// Workers are started from a blob: URL so that they inherit the page's Content-Security-Policy:
// a worker loaded from its own URL gets only its response's CSP header, and GitHub Pages sends
// none. So connect-src 'self' binds every worker (and Python inside one) too.

/** A module worker running `url`, under the creator's CSP. */
export function startBlobWorker(url) {
  const source = `import ${JSON.stringify(String(url))};\n`;
  const blob = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(blob, { type: "module" });
  URL.revokeObjectURL(blob);
  return worker;
}
