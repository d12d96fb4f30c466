#!/usr/bin/env bash
# Sets up everything on a fresh Debian machine and runs the whole test suite:
# the Debian packages of the real peers, the virtual environment, ruff, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh
bash scripts/setup-venv.sh
echo "== ruff"
.venv/bin/ruff check src tests bench
echo "== pytest"
# Two workers: CI machines have two cores.
exec .venv/bin/python -m pytest -n "${KITTIWAKE_TEST_WORKERS:-2}" -p no:cacheprovider "$@"
