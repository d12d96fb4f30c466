"""The event loop the server runs on: uvloop when installed, else asyncio's own.

DESIGN.md principle 4. uvloop (libuv) makes socket I/O and callbacks several
times cheaper, which matters most for many small SMTP and IMAP exchanges;
the README's set-up installs it (extra ``fast``). ``KITTIWAKE_EVENT_LOOP=asyncio``
chooses the standard loop (to compare, or to rule uvloop out when debugging).
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
    if os.environ.get(ENV_VAR, "").strip().lower() == "asyncio":
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
