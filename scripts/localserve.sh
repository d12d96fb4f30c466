#!/usr/bin/env bash
# Sets up the virtual environment and runs `kittiwake localserve`.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=fast bash scripts/setup-venv.sh >&2
exec .venv/bin/kittiwake localserve "$@"
