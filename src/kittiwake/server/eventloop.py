"""The event loop the server runs on: uvloop when installed, else asyncio's own.

DESIGN.md principle 4: uvloop (libuv) makes socket I/O and callbacks
cheaper. It is a dependency of kittiwake and so normally installed;
``KITTIWAKE_EVENT_LOOP=asyncio`` chooses asyncio's loop instead (to compare,
or to rule the loop out when chasing a bug). ``kittiwake serve`` logs which
loop runs in its "kittiwake started" line.

What differs between the loops and how kittiwake stays correct on both:

- ``start_tls`` on a stream loses what the stream already read (uvloop
  issue 707, CPython gh-142352): uvloop starts reading when the connection
  is made, so an implicit-TLS client's ClientHello was always lost and its
  handshake hung. Implicit TLS therefore hands the bare socket to the loop
  with its context, and STARTTLS refuses a client that sent anything after
  the command (:mod:`kittiwake.listener`). (This was first taken for an
  SNI-callback problem: switching the connection's ``SSLContext`` in the SNI
  callback, as :class:`kittiwake.server.tls.ServerTLS` does, works on both.)
- ``transport.get_extra_info("socket")`` is a socket-like object under
  uvloop with ``setsockopt``/``getsockname`` but no I/O: only options are
  set through it.
- Signal handlers (``loop.add_signal_handler``), ``sock_accept``,
  ``add_reader`` with ``MSG_PEEK`` (the HTTPS listener) and listening
  sockets passed across ``exec`` (``kittiwake restart``) behave the same.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV_VAR = "KITTIWAKE_EVENT_LOOP"
CHOICES = ("uvloop", "asyncio")


def loop_factory() -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """The loop's name and factory (None: asyncio's default).

    uvloop unless ``KITTIWAKE_EVENT_LOOP=asyncio`` or uvloop is not importable
    (not installed, or a platform it does not support).
    """
    if os.environ.get(ENV_VAR, "").strip().lower() == "asyncio":
        return "asyncio", None
    try:
        import uvloop
    except ImportError:
        return "asyncio", None
    return "uvloop", uvloop.new_event_loop


def check_choice() -> str | None:
    """A one-line problem with ``KITTIWAKE_EVENT_LOOP``, or None when it is usable."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value and value not in CHOICES:
        return f"{ENV_VAR}={value!r}: expected one of {', '.join(CHOICES)} (or unset)"
    return None


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on the chosen loop (as :func:`asyncio.run`)."""
    name, factory = loop_factory()
    if name == "asyncio" and os.environ.get(ENV_VAR, "").strip().lower() != "asyncio":
        from kittiwake.log import get_logger

        get_logger("server").warning("uvloop is not installed: running on asyncio's loop",
                                     fix="install kittiwake's dependencies (uvloop)")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
