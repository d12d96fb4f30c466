"""The event loop the server runs on: asyncio's own, or uvloop on request.

DESIGN.md principle 4 asks for uvloop when installed (libuv makes socket I/O
and callbacks cheaper). It is NOT the default yet, on purpose: with uvloop
0.23 on Python 3.11, ``StreamWriter.start_tls`` (implicit TLS on 465/993, and
STARTTLS) hangs some handshakes when the context's SNI callback switches the
connection to another ``SSLContext`` (what :class:`kittiwake.server.tls.ServerTLS`
does to serve ECDSA and RSA certificates and to reload them): the client's
handshake times out. Reproduced outside kittiwake with a plain
``asyncio.start_server`` + ``start_tls`` and such a callback; asyncio's own loop
never does it. ``KITTIWAKE_EVENT_LOOP=uvloop`` chooses uvloop (benchmarks,
plain-text SMTP); the default is asyncio's loop until this is resolved.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV_VAR = "KITTIWAKE_EVENT_LOOP"


def loop_factory() -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """The loop's name and factory (None: asyncio's default)."""
    if os.environ.get(ENV_VAR, "").strip().lower() != "uvloop":
        return "asyncio", None
    try:
        import uvloop
    except ImportError:
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on the chosen loop (as :func:`asyncio.run`)."""
    _name, factory = loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
