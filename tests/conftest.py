"""Fixtures shared by all tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

import pytest

from kittiwake.dns import MockResolver
from kittiwake.server import eventloop
from kittiwake.server.privileges import ALLOW_ROOT_ENV

# CI runs the suite as root, and most tests start `kittiwake serve` with configs that
# name no `user`: they run as root on purpose. tests/integration/test_serve_root.py
# removes this to check the refusal and the drop to an unprivileged user.
os.environ.setdefault(ALLOW_ROOT_ENV, "1")


@pytest.fixture
def mock_resolver() -> MockResolver:
    """An empty in-memory resolver; add records with ``.add(TYPE, NAME, VALUE)``."""
    return MockResolver()


LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop}
try:
    import uvloop

    LOOP_FACTORIES["uvloop"] = uvloop.new_event_loop
except ImportError:
    pass


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item
                                  ) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Async tests run on the loop ``kittiwake serve`` runs on (uvloop unless
    ``KITTIWAKE_EVENT_LOOP=asyncio``); a test marked
    ``@pytest.mark.asyncio(loop_factories=[...])`` chooses its loops by name."""
    marker = item.get_closest_marker("asyncio")
    if marker is not None and "loop_factories" in marker.kwargs:
        return LOOP_FACTORIES
    name, _factory = eventloop.loop_factory()
    return {name: LOOP_FACTORIES[name]}
