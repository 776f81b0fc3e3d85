"""Browser benchmark: cold start, training speed (MLP, CNN), time to accuracy, memory.

One run, one Chromium (a persistent profile in a temporary directory, so the HTTP cache is the
on-disk cache a real visitor has) on a copy of the site served on 127.0.0.1. Each section is a
module of scripts/bench/ that says what it measures and how:

    coldstart   coldstart.py    1. page open -> can predict, first and repeat visits
    throughput  throughput.py   2. examples/s in the page's worker, SIMD kernel and plain NumPy
    native                      3. the same training natively, one thread
    tfjs                        4. the same MLP trained by TensorFlow.js's wasm backend
    train       click_train.py  5. click Train -> 97.5 % test accuracy (default preset, --form)
    memory                      6. worker heap and renderer RSS while training
    finetune    finetune_page.py 7. fine-tune on 50 digits in the page's worker
    cnn         cnn.py          8. the cnn preset's network: examples/s (kernel, NumPy, native,
                                   TF.js), a request's wait while it trains, a drawing's reading
    --profile   step_profile.py    where the page's training step spends its time (cProfile);
                                   --profile cnn: the cnn preset's step

    .venv/bin/python scripts/bench_browser.py [--json bench.json] [--repeats 3] [--dist DIR]
        [--only coldstart,throughput,tfjs,native,train,memory,finetune,cnn] [--form k=v,...]
        [--tune] [--profile [mlp|cnn]]

Click Train with the cnn preset: --only train --form preset=cnn (its target: 99.0 % in 60 s).

Every figure is a best of --repeats because the machine is shared. Not a test: the figures
depend on the machine and on its other load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
import click_train  # the sections, scripts/bench/*.py
import cnn
import coldstart
import finetune_page
import harness
import step_profile
import throughput

__all__ = ["main"]

SECTIONS = ("coldstart", "throughput", "tfjs", "native", "train", "memory", "finetune", "cnn")


def parse_form(text: str) -> dict[str, str]:
    """'hidden=128,learning_rate=0.002' -> {"hidden": "128", ...}; hidden lists use ';'."""
    form = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        form[key.strip()] = value.strip().replace(";", ",")
    return form


def parse_only(text: str) -> set[str]:
    """The comma-separated section names, checked."""
    only = set(filter(None, text.split(",")))
    if unknown := only - set(SECTIONS):
        raise argparse.ArgumentTypeError(f"unknown section(s) {', '.join(sorted(unknown))}")
    return only


def run_sections(r: harness.Run, args: argparse.Namespace) -> dict[str, Any]:
    """The chosen sections, lightest first; each one's figures under its name."""
    only, out = args.only, {}
    if "coldstart" in only:
        out["coldstart"] = harness.guarded("cold start", coldstart.run, r)
    if only & {"throughput", "native", "tfjs"}:
        out["throughput"] = throughput.run(r, only)
    if args.profile:
        out["profile"] = harness.guarded("profile", step_profile.run, r, args.profile == "cnn")
    if only & {"train", "memory"}:
        forms = args.form + (click_train.TUNE_FORMS if args.tune else [])
        out["train"] = click_train.run(r, forms if "train" in only else [])
    if "finetune" in only:
        out["finetune"] = harness.guarded("fine-tune", finetune_page.run, r)
    if "cnn" in only:
        out["cnn"] = harness.guarded("cnn", cnn.run, r)
    return out


def report(result: dict[str, Any]) -> str:
    """The figures as a plain-text table."""
    lines: list[str] = []
    add = lines.append
    add(f"scribblenet browser benchmark, {result['when']}, {result.get('chromium')}, "
        f"best of {result['repeats']}")  # fmt: skip
    add("(2 cores shared with other work: every figure is a best of N on a noisy machine)")
    for note in result["notes"]:
        add(f"note: {note}")
    add("")
    sections = [("coldstart", coldstart), ("throughput", throughput), ("profile", step_profile),
                ("train", click_train), ("finetune", finetune_page), ("cnn", cnn)]  # fmt: skip
    targets: dict[str, tuple[Any, bool | None]] = {}
    for key, module in sections:
        figures = result.get(key)
        if isinstance(figures, dict) and "error" in figures:
            add(f"{key}: ERROR {figures['error']}")
        elif figures:
            module.report(figures, add)
            if hasattr(module, "targets"):
                targets.update(module.targets(figures))
        add("")
    add("Targets")
    for name, (value, ok) in targets.items():
        add(f"   {name:<64}{harness.fmt(value):>8}  {harness.verdict(ok)}")
    result["targets"] = targets
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write --json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--repeats", type=int, default=3, help="visits / rounds per figure")
    parser.add_argument("--dist", type=Path, help="use this built site instead of building one")
    parser.add_argument("--only", type=parse_only, default=set(SECTIONS),
                        help=f"sections: {','.join(SECTIONS)} (default: all)")  # fmt: skip
    parser.add_argument("--form", action="append", type=parse_form, default=[],
                        help="settings to click Train with besides the page default, e.g. "
                        "hidden=128,learning_rate=0.003,epochs=3 (repeatable)")  # fmt: skip
    parser.add_argument("--tune", action="store_true",
                        help="also click Train with click_train.TUNE_FORMS")  # fmt: skip
    parser.add_argument("--profile", nargs="?", const="mlp", choices=("mlp", "cnn"),
                        help="also profile the page's training step (step_profile.py): the "
                        "throughput MLP's, or the cnn preset's")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=240, help="seconds per page wait")
    parser.add_argument("--headed", action="store_true", help="show the browser")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    notes: list[str] = []
    options = {**vars(args), "only": sorted(args.only)}
    result: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M"), "repeats": args.repeats,
                              "notes": notes, "args": options}  # fmt: skip
    servers = harness.Servers()
    with tempfile.TemporaryDirectory(prefix="scribblenet-bench-") as tmp:
        site = harness.stage_site(Path(tmp), args.dist, notes)
        profile = Path(tmp) / "profile"
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(profile), executable_path=harness.CHROMIUM, args=harness.CHROMIUM_ARGS,
                headless=not args.headed,
            )  # fmt: skip
            context.add_init_script(harness.PAGE_HOOKS)
            try:
                page = context.pages[0] if context.pages else context.new_page()
                cdp = context.new_cdp_session(page)
                result["chromium"] = cdp.send("Browser.getVersion").get("product", "?")
                cdp.detach()
                run = harness.Run(context, servers, site, profile, args.repeats,
                                  int(args.timeout * 1000), notes)  # fmt: skip
                result.update(run_sections(run, args))
            finally:
                context.close()
                servers.stop()
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
        harness.log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
