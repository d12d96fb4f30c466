"""Free loopback addresses and ports, so parallel tests and benchmarks do not collide.

Only 127.0.0.0/8 is ever used (the machine's loopback range).
"""

from __future__ import annotations

import os
import random
import socket


def free_loopback() -> str:
    """A random 127.0.N.M that nobody listens on yet."""
    for _ in range(100):
        ip = f"127.0.{random.randint(1, 254)}.{random.randint(2, 254)}"
        with socket.socket() as sock:
            try:
                sock.bind((ip, 0))
            except OSError:
                continue
            return ip
    raise RuntimeError("no free loopback address")


# Ports handed out are taken from below the kernel's ephemeral range (by default
# 32768-60999, where bind(port 0) and every outgoing connection's source port come
# from), in a block of their own per pytest-xdist worker: a port handed to a test
# cannot be handed to a test of another worker, nor taken as a source port meanwhile.
FIRST_PORT = 10000
PORTS_PER_WORKER = 2000
_handed: set[int] = set()
_random = random.Random()  # not the global one, which tests may seed


def _worker_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0


def _bindable(ip: str, port: int, udp: bool) -> bool:
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((ip, port))
            except OSError:
                return False
    return True


def free_port(ip: str = "127.0.0.1", *, udp: bool = False) -> int:
    """A TCP port (``udp``: TCP and UDP) unused on ``ip`` now, for a server that must
    be told its port (Postfix, ``kittiwake serve``, named) and binds it later.

    Taken from this test worker's own block of ports (see :data:`FIRST_PORT`), never
    the same twice in a process while others are left, so between this call and the
    server's bind only something outside the tests could take it. A server started
    in-process binds port 0 itself instead (``asyncio.start_server(handler, ip, 0)``).
    """
    low = FIRST_PORT + (_worker_index() % 10) * PORTS_PER_WORKER
    if len(_handed) > PORTS_PER_WORKER * 3 // 4:
        _handed.clear()  # the earliest are long closed
    for _ in range(PORTS_PER_WORKER):
        port = _random.randrange(low, low + PORTS_PER_WORKER)
        if port not in _handed and _bindable(ip, port, udp):
            _handed.add(port)
            return port
    raise RuntimeError(f"no free port on {ip} in {low}-{low + PORTS_PER_WORKER - 1}")
