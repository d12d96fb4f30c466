"""The cyclic garbage collector of a long-running server process, made cheaper.

CPython's cyclic collector (https://docs.python.org/3/library/gc.html) walks
every object of a generation it collects. The oldest generation of a server
process holds everything loaded at start (modules, functions, the
configuration, pydantic's schemas): tens of thousands of objects that never
become garbage, walked again by each full collection. Measured on the MX
benchmark, a full collection of the server or of an SMTP worker took 25-60 ms
(every event loop callback waiting meanwhile), a few per thousand messages.

:func:`settle` runs once a process is started (listeners bound, before the
first connection): one collection, then ``gc.freeze()``, which moves every
object tracked so far into a permanent generation that no later collection
walks (https://docs.python.org/3/library/gc.html#gc.freeze). What is frozen is
the start-up state; objects made afterwards are collected as before. Objects
frozen are still freed when their reference count drops to zero; only a cycle
among them would stay, and start-up state is not garbage.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect, then freeze what is left (see the module docstring); the number of
    objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
