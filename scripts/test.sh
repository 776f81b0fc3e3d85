#!/usr/bin/env bash
# Run every check and test on a fresh machine, installing what is missing first.
#
#   bash scripts/test.sh
#
# Steps: system packages (apt: chromium, clang, lld, node/npm, firefox-esr, webkit2gtk-driver,
# xvfb if absent) -> .venv with `pip install -e '.[dev]'` -> `npm ci` -> wasm kernel check (if
# scripts/build_gemm.sh exists) -> build dist/ -> ruff check + ruff format --check -> mypy
# (strict on py/scribblenet) -> native pytest (everything but e2e, slow tests included) -> the
# unit tests inside Pyodide under Node -> Playwright e2e tests -> cross-browser smoke tests
# (Firefox ESR over Marionette, WebKitGTK over WebKitWebDriver, under xvfb-run).
# Non-interactive (CI=true, no stdin); stops at the first failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONUNBUFFERED=1  # keep step output in order when logged to a file
start_all=$SECONDS

step() {
  printf '\n==> [%ss] %s\n' "$((SECONDS - start_all))" "$*"
}

# --- 1. system packages --------------------------------------------------------------------
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v wasm-ld >/dev/null 2>&1 || missing+=(lld)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The cross-browser smoke tests (tests/browsers): Debian's Firefox ESR, WebKitGTK's WebDriver
# (its MiniBrowser comes with libwebkit2gtk) and a virtual display for WebKitGTK.
command -v firefox-esr >/dev/null 2>&1 || missing+=(firefox-esr)
command -v WebKitWebDriver >/dev/null 2>&1 || missing+=(webkit2gtk-driver)
command -v xvfb-run >/dev/null 2>&1 || missing+=(xvfb)
command -v xauth >/dev/null 2>&1 || missing+=(xauth)  # xvfb-run needs it
if ((${#missing[@]})); then
  step "apt-get install ${missing[*]}"
  sudo=""
  if [[ "$(id -u)" != "0" ]]; then sudo="sudo"; fi
  $sudo apt-get update -q
  $sudo apt-get install -y -q "${missing[@]}" </dev/null
else
  step "system packages present (chromium, clang, wasm-ld, node, npm, firefox-esr, WebKitWebDriver, xvfb-run)"
fi

# --- 2. Python environment -----------------------------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
  step "create .venv"
  python3 -m venv .venv
fi
step "pip install -e '.[dev]'"
.venv/bin/python -m pip install -q -e '.[dev]' </dev/null
py=.venv/bin/python

# --- 3. Node packages (Pyodide, uPlot) -----------------------------------------------------
step "npm ci"
npm ci --omit=dev --no-audit --no-fund --loglevel=error </dev/null  # TF.js (benchmark only) not needed

# --- 4. the wasm kernel matches its source (committed .wasm rebuilt and compared) ----------
if [[ -f scripts/build_gemm.sh ]]; then
  step "scripts/build_gemm.sh --check"
  bash scripts/build_gemm.sh --check
fi

# --- 5. build the site ---------------------------------------------------------------------
step "build dist/"
"$py" scripts/build_site.py

# --- 6. lint, format and types -------------------------------------------------------------
step "ruff check"
.venv/bin/ruff check .
step "ruff format --check"
.venv/bin/ruff format --check .
step "mypy (strict on py/scribblenet, see pyproject.toml)"
.venv/bin/mypy

# --- 7. native tests (everything but e2e; slow ones included) ------------------------------
step "pytest -m 'not e2e' (native CPython)"
"$py" -m pytest -m "not e2e" -p no:cacheprovider

# --- 8. the same unit tests inside Pyodide -------------------------------------------------
step "unit tests inside Pyodide (node scripts/run_pyodide_tests.mjs)"
node scripts/run_pyodide_tests.mjs

# --- 9. end-to-end tests in headless Chromium ----------------------------------------------
if compgen -G "tests/e2e/test_*.py" >/dev/null; then
  step "pytest -m e2e tests/e2e (Playwright, /usr/bin/chromium)"
  # Reuse the dist/ built above rather than building a second copy.
  SCRIBBLENET_DIST="$root/dist" "$py" -m pytest -m e2e tests/e2e -p no:cacheprovider
else
  step "no tests/e2e/test_*.py yet: e2e step skipped"
fi

# --- 10. cross-browser smoke tests: Firefox ESR and WebKitGTK (twice: LANG=C.UTF-8 too) -----
step "pytest -m browsers tests/browsers (firefox-esr, WebKitWebDriver; xvfb-run)"
# A test skips only if its browser's binary is absent; WebKitGTK needs the virtual display.
SCRIBBLENET_DIST="$root/dist" xvfb-run -a -s "-screen 0 1920x1080x24" \
  "$py" -m pytest -m browsers tests/browsers -p no:cacheprovider

step "all checks passed"
