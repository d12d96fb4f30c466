"""Crash safety (issue: "no acknowledged message is ever lost").

A child process delivers messages and acknowledges each on stdout; we kill it
with SIGKILL at a random moment, reopen the store and check that every
acknowledged message is there byte-exact, counts match, and the consistency
check finds nothing but leftovers of the interrupted (unacknowledged) write.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from kittiwake.store import AccountStore
from kittiwake.store.check import check

sys.path.insert(0, str(Path(__file__).parent))
from crash_child import message

ROUNDS = 20


def test_sigkill_during_delivery_loses_no_acknowledged_message(tmp_path: Path) -> None:
    rng = random.Random()
    acknowledged: dict[int, tuple[int, int]] = {}
    seed = 0
    for round_ in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "crash_child.py"), str(tmp_path),
             str(seed)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert child.stdout is not None
        deadline = time.monotonic() + rng.uniform(0.3, 1.2)
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line)
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
        lines += rest.splitlines()
        for line in lines:
            _, mid, size, s = line.split()
            acknowledged[int(mid)] = (int(size), int(s))
            seed = max(seed, int(s) + 1)
        assert child.returncode == -signal.SIGKILL
        assert lines, f"round {round_}: the child acknowledged nothing before it was killed"

        store = AccountStore("crash", tmp_path / "accounts" / "crash")
        try:
            for mid, (_size, s) in acknowledged.items():
                assert store.read(mid) == message(s), f"round {round_}: message {mid} lost"
            inbox = store.mailbox("Inbox")
            rows = store.messages("Inbox")
            assert inbox.messages == len(rows) >= len(acknowledged)
            assert inbox.size == sum(m.size for m in rows)
            problems = check(store)
            assert problems == [], f"round {round_}: {problems}"
        finally:
            store.close()
