"""Per-connection log fields: the connection id on every line of a session.

Fields bound with :func:`bind` live in a :mod:`contextvars` variable, so they
follow the code that runs in one asyncio task (a task copies the context it
was created in) and are added to every log line that code writes, also by
plain stdlib loggers.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import itertools
import secrets
import threading
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_fields: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "kittiwake_log_fields", default=_EMPTY
)

# A random start per process, then a counter: ids are unique within a process
# (2**40 of them) and unlikely to repeat across restarts.
_counter = itertools.count(secrets.randbits(40))
_counter_lock = threading.Lock()


def new_connection_id() -> str:
    """A short unique id for a connection (or any unit of work): 8 base32 characters."""
    with _counter_lock:
        n = next(_counter) & ((1 << 40) - 1)
    return base64.b32encode(n.to_bytes(5, "big")).decode("ascii").lower()


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[Mapping[str, Any]]:
    """Add fields (e.g. ``cid=new_connection_id()``) to every log line in this block.

    Nested binds add to (and may override) the outer fields; leaving the block
    restores them. In asyncio, bind inside the task that handles a connection.
    """
    merged = {**_fields.get(), **fields}
    token = _fields.set(MappingProxyType(merged))
    try:
        yield token.var.get()
    finally:
        _fields.reset(token)


def bind_fields(**fields: Any) -> None:
    """Add fields for the rest of the current context (e.g. an asyncio task's life).

    Unlike :func:`bind` nothing is undone; use it at the top of a task whose
    context dies with it.
    """
    _fields.set(MappingProxyType({**_fields.get(), **fields}))


def context_fields() -> Mapping[str, Any]:
    """The fields currently bound (read-only)."""
    return _fields.get()
