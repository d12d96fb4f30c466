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
