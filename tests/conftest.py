"""Fixtures shared by all tests."""

from __future__ import annotations

import pytest

from kittiwake.dns import MockResolver


@pytest.fixture
def mock_resolver() -> MockResolver:
    """An empty in-memory resolver; add records with ``.add(TYPE, NAME, VALUE)``."""
    return MockResolver()
