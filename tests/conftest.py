"""Fixtures shared by all tests."""

from __future__ import annotations

import os

import pytest

from kittiwake.dns import MockResolver
from kittiwake.server.privileges import ALLOW_ROOT_ENV

# CI runs the suite as root, and most tests start `kittiwake serve` with configs that
# name no `user`: they run as root on purpose. tests/integration/test_serve_root.py
# removes this to check the refusal and the drop to an unprivileged user.
os.environ.setdefault(ALLOW_ROOT_ENV, "1")


@pytest.fixture
def mock_resolver() -> MockResolver:
    """An empty in-memory resolver; add records with ``.add(TYPE, NAME, VALUE)``."""
    return MockResolver()
