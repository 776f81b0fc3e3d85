"""Section 7, fine-tune: seconds for the page's worker to fine-tune on 50 digits.

The real page (``?debug``) in a fresh tab: once the dataset is in, 50 MNIST test images (the
worker's own "test_digit" answers, seeds 0..49) stand in for 50 drawings, and one "finetune"
request, sent beside the page's client exactly as the teach panel sends it, runs the whole job:
5-fold cross-validation, then the model itself. Timed from the request to its "done" event;
the worker's own figure (`result.seconds`, pauses excluded) is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import Run, fmt, log, short_error

__all__ = ["DIGITS", "report", "run", "targets"]

DIGITS = 50
# Ask the worker for DIGITS test images, then fine-tune on them; resolves with the done event.
FINETUNE = """
async (n) => {
  const worker = window.__bench.worker;
  let id = 2e9;
  const ask = (msg, until) => new Promise((resolve) => {
    const myId = ++id;
    const listen = ({ data }) => {
      if (!until(data, myId)) return;
      worker.removeEventListener("message", listen);
      resolve(data);
    };
    worker.addEventListener("message", listen);
    worker.postMessage({ ...msg, id: myId });
  });
  const images = new Uint8Array(784 * n), labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const digit = await ask({ type: "test_digit", seed: i }, (d, myId) => d.id === myId);
    images.set(digit.image, 784 * i);
    labels[i] = digit.label;
  }
  const t0 = performance.now();
  let started = null;
  const done = await ask({ type: "finetune", images: images.buffer, labels: labels.buffer },
    (d, myId) => {
      if (d.id === myId) started = d;
      return d.type === "done" && d.kind === "finetune";
    });
  const { file, model, ...rest } = done;
  return { ...rest, started_ok: started?.ok, page_seconds: (performance.now() - t0) / 1000 };
}
"""


def finetune_once(r: Run, url: str) -> dict[str, Any]:
    """Load the page, wait for the dataset, fine-tune on DIGITS test images; the done event."""
    page = r.context.new_page()
    try:
        page.goto(url + "?debug")
        page.wait_for_selector('[data-testid="train"]:not([disabled])', timeout=r.timeout_ms)
        return dict(page.evaluate(FINETUNE, DIGITS))
    except Exception as exc:
        return short_error(exc)
    finally:
        page.close()


def run(r: Run) -> dict[str, Any]:
    """Fine-tune --repeats times in fresh tabs; keep each run and the fastest."""
    url, _ = r.servers.start(r.site)
    runs = []
    for i in range(r.repeats):
        log(f"fine-tune on {DIGITS} digits, round {i + 1}")
        runs.append(finetune_once(r, url))
    good = [x for x in runs if x.get("reason") == "finished"]
    best = min(good, key=lambda x: x["page_seconds"]) if good else (runs[0] if runs else {})
    return {"runs": runs, "best": best}


def report(figures: dict[str, Any], add: Callable[[str], None]) -> None:
    """Section 7 of the table."""
    add(f"7. Fine-tune on {DIGITS} digits in the page (5-fold cross-validation, then the model)")
    for x in figures.get("runs", []):
        if x.get("reason") != "finished":
            add(f"   ERROR {x.get('error') or x.get('message')}")
            continue
        res = x.get("result", {})
        add(f"   {fmt(x['page_seconds'], '.1f', ' s')} from the request to done "
            f"(worker: {fmt(res.get('seconds'), '.1f', ' s')}); own digits "
            f"{fmt(100 * res.get('own_before', 0), '.0f', ' %')} -> "
            f"{fmt(100 * res.get('own_after', 0), '.0f', ' %')}, MNIST test "
            f"{fmt(100 * res.get('test_before', 0), '.2f', ' %')} -> "
            f"{fmt(100 * res.get('test_after', 0), '.2f', ' %')}")  # fmt: skip


def targets(figures: dict[str, Any]) -> dict[str, tuple[Any, bool | None]]:
    """Fine-tuning on 50 drawings in <= 10 s."""
    v = figures.get("best", {}).get("page_seconds")
    return {f"fine-tune on {DIGITS} drawings <= 10 s, s": (v, None if v is None else v <= 10)}
