"""Readiness notifications to systemd (``Type=notify``), without python-systemd.

systemd passes ``$NOTIFY_SOCKET``, a unix datagram socket (a path, or an
abstract name written with a leading "@"); the service sends newline-separated
``KEY=VALUE`` assignments to it (sd_notify(3)):

- ``READY=1`` once start-up is complete: here, after every listener is bound
  and the control socket answers;
- ``RELOADING=1`` with ``MONOTONIC_USEC=`` (CLOCK_MONOTONIC in microseconds,
  which systemd wants with every RELOADING=1 since v253) when a reload
  starts (SIGHUP, or the exec of ``kittiwake restart``), then ``READY=1``
  again when it is done;
- ``STOPPING=1`` when shutdown begins;
- ``STATUS=`` a line for ``systemctl status``.

Without ``$NOTIFY_SOCKET`` (not under systemd) :func:`notify` does nothing.
The variable is kept in the environment: the program that ``kittiwake
restart`` execs is the same service process and reports READY=1 itself.
"""

from __future__ import annotations

import os
import socket
import time

from kittiwake.log import get_logger

logger = get_logger("server")

ENV = "NOTIFY_SOCKET"


def ready(status: str = "") -> str:
    return "READY=1" + (f"\nSTATUS={status}" if status else "")


def reloading(status: str = "") -> str:
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return f"RELOADING=1\nMONOTONIC_USEC={usec}" + (f"\nSTATUS={status}" if status else "")


def stopping() -> str:
    return "STOPPING=1\nSTATUS=stopping"


def notify(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``message`` to ``$NOTIFY_SOCKET``; False when unset or it fails (logged)."""
    target = (environ if environ is not None else os.environ).get(ENV, "")
    if not target:
        return False
    address = "\0" + target[1:] if target.startswith("@") else target
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        logger.warning("cannot notify systemd", socket=target, error=str(exc))
        return False
    return True
