"""Ten 90 MiB messages at once: the server's memory stays bounded (spool once).

Before the mail path was rebuilt, ten connections each sending 99 MiB took the
server from 113 to 1,089 MiB resident, as every body was collected in memory.
Now each message goes to a spool file as it arrives (the SMTP side holds the
header section and a write buffer per connection), the store parses its MIME
structure from the file a window at a time (message.filebytes) and takes the
file by hard link, and the background indexer reads only the start of a long
text part (what the full-text index takes). The test waits until every message
is indexed and asserts the server's peak grew by less than ONE message
(measured: +65 MiB for the ten; reading whole, the summary gave +275 to +360
MiB and the indexer +288 MiB), and that every message is stored whole.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

from kittiwake.cpupool import WORKERS_ENV

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]
SIZE = 90 * 1024 * 1024
CONNECTIONS = 10
LINE = b"x" * 510 + b"\r\n"  # RFC 5321 §4.5.3.1.6: at most 1000 octets per line
BLOCK = LINE * 128  # 64 KiB of body per write


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def send(ip: str, n: int) -> bytes:
    reader, writer = await asyncio.open_connection(ip, 1025)
    await reader.readline()
    writer.write(b"EHLO client.example\r\n")
    while (await reader.readline())[3:4] == b"-":
        pass
    writer.write(b"MAIL FROM:<big@example.com>\r\nRCPT TO:<big@localhost>\r\nDATA\r\n")
    for _ in range(3):
        await reader.readline()
    writer.write(f"Subject: big {n}\r\n\r\n".encode())
    for _ in range(SIZE // len(BLOCK)):
        writer.write(BLOCK)
        await writer.drain()
    writer.write(b".\r\n")
    reply = await reader.readline()
    writer.write(b"QUIT\r\n")
    writer.close()
    return reply


async def send_all(ip: str) -> list[bytes]:
    return await asyncio.gather(*(send(ip, n) for n in range(CONNECTIONS)))


def smtp_workers(pid: int) -> list[int]:
    """The SMTP worker processes of the server ``pid`` (its children running
    ``kittiwake.server.smtpworker``; the test asks for two)."""
    deadline = time.monotonic() + 30
    while True:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        found = [int(c) for c in children
                 if b"kittiwake.server.smtpworker" in Path(f"/proc/{c}/cmdline").read_bytes()]
        if len(found) == 2:
            return found
        assert time.monotonic() < deadline, "no SMTP worker process started"
        time.sleep(0.1)


def wait_indexed(data_dir: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Until the background indexer has done every message (read-only peeks at the
    account database, which the running server owns)."""
    import sqlite3

    from kittiwake.store.store import account_dir

    db = account_dir(data_dir, "kittiwake") / "index.db"
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, "not indexed in time"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            total, pending = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE indexed = 0) FROM message").fetchone()
        if total == CONNECTIONS and pending == 0:
            return
        time.sleep(0.2)


def test_ten_concurrent_90_mib_messages_keep_memory_bounded(tmp_path: Path) -> None:
    ip = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
    log = tmp_path / "log"
    with open(log, "wb") as out:
        # No CPU worker processes: the indexer's reading happens in the measured process.
        proc = subprocess.Popen([*KITTIWAKE, "--loglevel", "warn", "localserve", "--dir",
                                 str(tmp_path / "ls"), "--ip", ip],
                                stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, WORKERS_ENV: "0",
                                     "KITTIWAKE_SMTP_PROCESSES": "2"})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                socket.create_connection((ip, 1025), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        # The server and its SMTP worker processes (kittiwake.server.smtpworkers), which
        # receive and spool the messages: each one's peak is measured.
        pids = [proc.pid, *smtp_workers(proc.pid)]
        before = {pid: peak_rss_mib(pid) for pid in pids}
        replies = asyncio.run(send_all(ip))
        wait_indexed(tmp_path / "ls" / "data", proc)
        peak = {pid: peak_rss_mib(pid) for pid in pids}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert all(r.startswith(b"250") for r in replies), replies
    # Ten bodies in memory would be 900 MiB (before the rebuild: 1,089 MiB resident).
    # Spooled, parsed and indexed through a window: not even one body is held.
    for pid in pids:
        assert peak[pid] - before[pid] < SIZE / 2 ** 20, \
            f"process {pid}: peak {peak[pid]:.0f} MiB, {before[pid]:.0f} MiB before the messages"
    from kittiwake.store import AccountStore
    from kittiwake.store.store import account_dir

    store = AccountStore("kittiwake", account_dir(tmp_path / "ls" / "data", "kittiwake"))
    try:
        sizes = [m.size for m in store.messages("Inbox")]
        first = store.read(store.messages("Inbox")[0].id)
    finally:
        store.close()
    assert len(sizes) == CONNECTIONS
    # each whole: our Received header, the client's Subject line, 90 MiB of body
    assert all(SIZE < size < SIZE + 4096 for size in sizes), sizes
    assert first.endswith(BLOCK) and first.count(LINE) == SIZE // len(LINE)
    spool = tmp_path / "ls" / "data" / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []
