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
workers="${KITTIWAKE_TEST_WORKERS:-2}"
if [ "$#" -gt 0 ]; then
    exec .venv/bin/python -m pytest -n "$workers" -p no:cacheprovider "$@"
fi
if [ "${KITTIWAKE_EVENT_LOOP:-}" = asyncio ]; then
    exec .venv/bin/python -m pytest -n "$workers" -p no:cacheprovider
fi
.venv/bin/python -m pytest -n "$workers" -p no:cacheprovider
# The suite ran on the server's default loop (uvloop). Users may choose Python's own
# loop (KITTIWAKE_EVENT_LOOP=asyncio): the protocol servers' in-process tests run on it too.
echo "== pytest, SMTP and IMAP again on asyncio's event loop"
KITTIWAKE_EVENT_LOOP=asyncio exec .venv/bin/python -m pytest -n "$workers" -p no:cacheprovider \
    tests/smtp tests/smtpserver tests/imap tests/imapserver
