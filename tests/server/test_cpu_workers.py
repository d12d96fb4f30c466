"""The server's CPU worker pool (kittiwake.cpupool): started with the server, handed to
the store's indexer and the junk filter, stopped with it, holding no listening socket."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path


def _listening_inodes() -> set[str]:
    """Socket inodes in LISTEN state (TCP over IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


async def test_serve_starts_cpu_workers_that_hold_no_listener_and_stops_them() -> None:
    from startup_helpers import remove_created, write_config

    from kittiwake.config import load
    from kittiwake.server.app import Server

    conf = write_config("""
hostname = "mail.example.org"
data_dir = "../data"
[listeners.public]
ips = ["127.0.0.1"]
smtp = { enabled = true, port = 0 }
""")
    # As `serve` run as root (bound before dropping privileges) or after a restart
    # (sockets passed on), a listening socket exists before the workers start.
    held = socket.create_server(("127.0.0.1", 0))
    server = Server(load(conf), cpu_workers=1)
    try:
        for service in server.services_from_config():
            server.add_service(service)
        await server.start()
        [worker] = server.cpu.worker_pids()
        assert worker != os.getpid()
        assert server.store.cpu is server.cpu and server.junk.cpu is server.cpu
        listening = _listening_inodes() & _socket_inodes(os.getpid())
        assert len(listening) >= 2, "the held socket and the SMTP listener"
        assert not _listening_inodes() & _socket_inodes(worker)
    finally:
        await server.close(0)
        held.close()
        remove_created()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        with open(f"/proc/{worker}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    assert not Path(f"/proc/{worker}").exists() or "Z" in Path(
        f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_pool_does_not_outlive_a_killed_server(tmp_path: Path) -> None:
    """SIGKILL (or the OOM killer) gives the server no chance to stop its pool: the
    workers notice their owner is gone and exit, and with them the fork server and
    the resource tracker; nothing is left running."""
    import signal
    import subprocess
    import sys

    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kittiwake.cli.main", "localserve", "--dir",
             str(tmp_path / "ls"), "--ip", "127.0.0.93"],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "KITTIWAKE_CPU_WORKERS": "1"})
    try:
        deadline = time.monotonic() + 60
        pool: set[int] = set()
        while time.monotonic() < deadline and "cpu workers started" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        direct = _children(proc.pid)
        pool = direct | {g for c in direct for g in _children(c)}
        assert len(pool) >= 3, (pool, log.read_text())  # fork server, tracker, a worker
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in pool):
        time.sleep(0.2)
    assert not [p for p in pool if _alive(p)], "pool processes outlived the server"
