"""A started process's start-up objects are frozen out of the cyclic collector's way."""

from __future__ import annotations

import gc

from kittiwake.server import heap


def test_settle_freezes_what_is_alive_and_later_garbage_is_still_collected() -> None:
    try:
        frozen = heap.settle()
        assert frozen == gc.get_freeze_count() > 1000  # this interpreter's modules at least

        class Node:
            def __init__(self) -> None:
                self.me = self  # a cycle: only the collector frees it

        gc.collect()
        Node()
        assert gc.collect() >= 1  # made after the freeze: collected as before
    finally:
        gc.unfreeze()

