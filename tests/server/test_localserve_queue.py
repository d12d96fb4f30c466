"""localserve's queue delivers submitted mail back to localserve, so failure addresses
exercise the queue and the DSNs (issue: outgoing delivery, localserve)."""

from __future__ import annotations

import random
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from kittiwake.store import AccountStore

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]


def test_submission_through_queue_and_bounce(tmp_path: Path) -> None:
    ip = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*KITTIWAKE, "localserve", "--dir", str(tmp_path / "ls"),
                                 "--ip", ip], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "kittiwake started" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        with smtplib.SMTP(ip, 1587, timeout=10) as client:
            client.login("kittiwake@localhost", "kittiwake")
            client.sendmail("kittiwake@localhost", ["friend@example.com"],
                            b"From: kittiwake@localhost\r\nSubject: arrives\r\n\r\nhi\r\n")
            client.sendmail("kittiwake@localhost", ["nobody550@example.com"],
                            b"From: kittiwake@localhost\r\nSubject: bounces\r\n\r\nhi\r\n")
        root = tmp_path / "ls" / "data" / "accounts" / "kittiwake"
        subjects: list[str] = []
        while time.monotonic() < deadline and len(subjects) < 2:
            store = AccountStore("kittiwake", root)
            subjects = sorted(m.subject for m in store.messages("Inbox"))
            bodies = [store.read(m.id) for m in store.messages("Inbox")]
            store.close()
            time.sleep(0.1)
        assert subjects == ["Undelivered Mail Returned to Sender", "arrives"], log.read_text()
        bounce = next(b for b in bodies if b"Undelivered" in b)
        assert b"550 5.0.0 error 550 requested by recipient address" in bounce
        assert b"Final-Recipient: rfc822; nobody550@example.com" in bounce
    finally:
        proc.terminate()
        proc.wait(timeout=15)
