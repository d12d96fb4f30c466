#!/usr/bin/env bash
# Creates .venv (Python >= 3.11) and installs kittiwake (uvloop included) with its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.13 python3.12 python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c "import sys; sys.exit(sys.version_info < (3, 11))" 2>/dev/null; then
      PY=$c; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: need Python 3.11 or newer (apt-get install python3)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "setup: $PY cannot make a virtual environment; installing python3-venv" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y -q python3-venv; else sudo apt-get install -y -q python3-venv; fi
    "$PY" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${EXTRAS:-test}]"
loop=$(.venv/bin/python -c 'from kittiwake.server.eventloop import loop_factory; print(loop_factory()[0])')
echo "setup: .venv ready ($(.venv/bin/python --version), event loop: $loop)"
