"""Crash safety of enqueue: every acknowledged message survives SIGKILL.

A child process enqueues messages and acknowledges each on stdout; it is
killed with SIGKILL at a random moment. Reopening the queue must show every
acknowledged message byte-exact with all its recipients, and no message
file without its row.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from queue_crash_child import message, recipients

from kittiwake.queue import QueueStore

ROUNDS = 5


def test_sigkill_during_enqueue_loses_no_acknowledged_message(tmp_path: Path) -> None:
    rng = random.Random()
    root = tmp_path / "queue"
    acknowledged: dict[int, int] = {}
    seed = 0
    for round_ in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "queue_crash_child.py"), str(root),
             str(seed)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert child.stdout is not None
        # Wait for the first acknowledgement (start-up), then kill at a random moment.
        lines = [child.stdout.readline()]
        deadline = time.monotonic() + rng.uniform(0.05, 0.6)
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line)
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
        lines += rest.splitlines()
        assert child.returncode == -signal.SIGKILL
        lines = [line for line in lines if line.strip()]
        assert lines, f"round {round_}: the child acknowledged nothing"
        for line in lines:
            _, mid, s = line.split()
            acknowledged[int(mid)] = int(s)
            seed = max(seed, int(s) + 1)

        store = QueueStore(root)
        try:
            for mid, s in acknowledged.items():
                assert store.read(mid) == message(s), f"round {round_}: message {mid} lost"
                assert [r.address for r in store.recipients(mid)] == recipients(s)
            queued = {m.id for m, _ in store.list()}
            assert queued >= set(acknowledged)
            on_disk = {int(p.name) for p in (root / "msg").rglob("*") if p.is_file()}
            assert on_disk == queued, f"round {round_}: files without rows or rows without files"
        finally:
            store.close()
