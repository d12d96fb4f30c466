"""Free loopback addresses and ports, so parallel tests and benchmarks do not collide.

Only 127.0.0.0/8 is ever used (the machine's loopback range).
"""

from __future__ import annotations

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


def free_port(ip: str) -> int:
    """A TCP port unused on ``ip`` now, for a server that must be told its port
    (Postfix, ``kittiwake serve``) and binds it later.

    The port can be taken in between: a server started in-process binds port 0
    itself instead (``asyncio.start_server(handler, ip, 0)``), and a process
    that fails to listen is restarted with another port. On a private
    :func:`free_loopback` address only this test's processes bind at all.
    """
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])
