#!/usr/bin/env bash
# Build the site and serve it at http://127.0.0.1:8000/scribblenet/ (as on GitHub Pages).
#
#   bash scripts/serve.sh [--port 8000] [--base /scribblenet/]
#
# On a fresh machine this first creates .venv (pip install -e '.[dev]') and runs `npm ci`;
# later runs reuse them. Extra arguments go to scripts/serve.py.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! command -v npm >/dev/null 2>&1; then
  echo "serve.sh: installing Node.js and npm with apt" >&2
  sudo=""
  if [[ "$(id -u)" != "0" ]]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q nodejs npm </dev/null
fi
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q -e '.[dev]'
fi
# npm ci wipes node_modules, so only run it when the lock file changed since the last install.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --omit=dev --no-audit --no-fund --loglevel=error  # TF.js is for the benchmark only
fi

.venv/bin/python scripts/build_site.py
exec .venv/bin/python scripts/serve.py "$@"
