"""Section 1, cold start: from opening the page until it can predict, on first and repeat visits.

Each visit opens the page in a new tab and times, from navigation start: the status line turning
ready (``data-ready=true``), a "1" drawn at that moment being classified, and the training data
being loaded; with the bytes and requests the server answered and the worker's own stage times.

- first visits: each on a fresh origin (an empty HTTP cache, no service worker);
- repeat visits: on an origin whose first visit has finished and whose service worker (which
  the page registers itself) is active, as a returning visitor finds it, once with GitHub Pages'
  ``Cache-Control: max-age=600`` and once with ``no-cache`` (the visitor comes back after ten
  minutes: every file the service worker does not hold is revalidated).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from harness import Run, Traffic, fmt, guarded, log, short_error

__all__ = ["report", "run", "targets"]

REPEAT_SETTINGS = [
    ("repeat visits, max-age=600 (GitHub Pages)", "max-age=600"),
    ("repeat visits, no-cache (all revalidated)", "no-cache"),
]


def first_prediction(page: Any, timeout_ms: int) -> float:
    """Draw a "1" on the ready page; seconds from lifting the pen to the prediction shown."""
    box = page.locator("[data-testid=draw-canvas]").bounding_box()
    x = box["x"] + 0.5 * box["width"]
    page.mouse.move(x, box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(x, box["y"] + 0.8 * box["height"], steps=12)
    page.mouse.up()
    t0 = time.perf_counter()
    shown = "[data-testid=prediction][aria-busy=false]:not(:empty)"
    page.locator(shown).wait_for(timeout=timeout_ms)
    return time.perf_counter() - t0


def visit(
    context: Any, url: str, traffic: Traffic, timeout_ms: int, settle: bool = False
) -> dict[str, Any]:
    """Open the page in a new tab; time it until it can predict and until the data is loaded.

    settle: also wait until the page's service worker is active, as it is by the time a
    visitor comes back.
    """
    traffic.reset()
    page = context.new_page()
    sources: Counter[str] = Counter()
    page.on("response", lambda r: sources.update(["sw" if r.from_service_worker else "net"]))
    result: dict[str, Any] = {}
    try:
        page.goto(url, wait_until="commit")
        page.wait_for_function(
            "() => window.__bench && window.__bench.readyAt !== null", timeout=timeout_ms
        )
        result["bytes_until_ready"] = traffic.snapshot()["bytes"]
        result["ready_s"] = page.evaluate("window.__bench.readyAt") / 1000
        result["first_prediction_s"] = first_prediction(page, timeout_ms)
        result["predicted_s"] = result["ready_s"] + result["first_prediction_s"]
        page.wait_for_function(
            "() => window.__bench.events.some((e) => e.type === 'dataset'"
            " || (e.type === 'stage' && e.state === 'error'))",
            timeout=timeout_ms,
        )
        events = page.evaluate("window.__bench.events")
        dataset = [e for e in events if e["type"] == "dataset"]
        result["data_ready_s"] = dataset[0]["t"] / 1000 if dataset else None
        result["backend"] = dataset[0].get("backend") if dataset else None
        ready = [e for e in events if e["type"] == "ready"]
        result["startup"] = ready[0].get("startup") if ready else None
        stages = [e for e in events if e["type"] == "stage"]
        result["stages_ms"] = {e["stage"]: e.get("ms") for e in stages if e["state"] == "done"}
        errors = [e for e in stages if e["state"] == "error"]
        if errors:
            result["error"] = f"stage {errors[0]['stage']}: {errors[0].get('detail')}"
        result["sw_controlled"] = page.evaluate("Boolean(navigator.serviceWorker?.controller)")
        if settle:
            # The service worker installs (precaching, from the HTTP cache) after load.
            result["sw_active"] = page.evaluate(
                "() => Promise.race([navigator.serviceWorker.ready.then(() => true),"
                " new Promise((resolve) => setTimeout(() => resolve(false), 60000))])"
            )
        time.sleep(0.3)  # stray requests finish before the tally is read
        result.update(traffic.snapshot())
        result["responses_from_sw"] = sources["sw"]
        result["responses_other"] = sources["net"]
    except Exception as exc:  # record and go on: the other visits still say something
        result.update(short_error(exc))
    finally:
        page.close()
    return result


def run(r: Run) -> dict[str, Any]:
    """First visits on fresh origins, then repeat visits under each caching setting."""
    out: dict[str, Any] = {"first_visits": [], "repeats": {}}
    for i in range(r.repeats):
        log(f"cold start: first visit {i + 1}/{r.repeats}")
        url, traffic = r.servers.start(r.site)
        out["first_visits"].append(visit(r.context, url, traffic, r.timeout_ms))
    for name, cache_control in REPEAT_SETTINGS:
        log(f"cold start: {name}")
        url, traffic = r.servers.start(r.site, cache_control)
        first = guarded(name, visit, r.context, url, traffic, r.timeout_ms, settle=True)
        visits = [visit(r.context, url, traffic, r.timeout_ms) for _ in range(r.repeats)]
        out["repeats"][name] = {"first": first, "repeats": visits}
    return out


def _caches(v: dict[str, Any]) -> str:
    """Which start-up caches the worker used: "snapshot+pyc+so", "pyc", ... or "none"."""
    s = v.get("startup") or {}
    names = (("snapshot", "snapshot"), ("bytecode", "pyc"), ("dynlibs", "so"))
    used = [name for key, name in names if s.get(key)]
    return "+".join(used) or "none"


def report(cs: dict[str, Any], add: Callable[[str], None]) -> None:
    """Section 1 of the table."""
    add("1. Cold start: navigation -> can predict (status ready), -> a drawn 1 predicted (ready +")
    add("   the first prediction's latency), and -> training data loaded")
    add(f"   {'setting':<42}{'visit':<8}{'ready s':>8}{'pred s':>8}{'data s':>8}{'MB sent':>9}"
        f"{'reqs':>6}{'304s':>6}{'SW':>5}  caches          worker stages ms")  # fmt: skip

    def row(name: str, label: str, v: dict[str, Any]) -> None:
        if "ready_s" not in v:
            add(f"   {name:<42}{label:<8}ERROR {v.get('error')}")
            return
        stages = " ".join(f"{k} {ms}" for k, ms in (v.get("stages_ms") or {}).items())
        add(f"   {name:<42}{label:<8}{fmt(v['ready_s']):>8}{fmt(v.get('predicted_s')):>8}"
            f"{fmt(v.get('data_ready_s')):>8}"
            f"{v.get('bytes', 0) / 1e6:>9.2f}{v.get('requests', 0):>6}{v.get('not_modified', 0):>6}"
            f"{v.get('responses_from_sw', 0):>5}  {_caches(v):<16}{stages}")  # fmt: skip

    for i, v in enumerate(cs.get("first_visits", [])):
        row("first visits, fresh origin (empty cache)" if i == 0 else "", "first", v)
    for name, s in cs.get("repeats", {}).items():
        row(name, "first", s["first"])
        for v in s["repeats"]:
            row("", "repeat", v)
    ok = [v for v in cs.get("first_visits", []) if "bytes_until_ready" in v]
    if ok:
        until, total = ok[0]["bytes_until_ready"] / 1e6, ok[0].get("bytes", 0) / 1e6
        add(f"   bytes needed before the page can predict: {until:.1f} MB (all: {total:.1f} MB)")
    notes = {n for v in ok for n in ((v.get("startup") or {}).get("notes") or [])}
    for note in sorted(notes):
        add(f"   worker note: {note}")


def targets(cs: dict[str, Any]) -> dict[str, tuple[Any, bool | None]]:
    """The cold-start targets: (best measured value, met?)."""
    firsts = [v["predicted_s"] for v in cs.get("first_visits", []) if "predicted_s" in v]
    s = [x["predicted_s"] for v in cs.get("repeats", {}).values() for x in v["repeats"]
         if "predicted_s" in x]  # fmt: skip
    first, repeat = min(firsts, default=None), min(s, default=None)
    return {
        "page open -> predicting, first visit <= 3 s (best)": (
            first, None if first is None else first <= 3),
        "page open -> predicting, repeat visit <= 1.5 s (best)": (
            repeat, None if repeat is None else repeat <= 1.5),
    }  # fmt: skip
