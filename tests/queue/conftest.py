"""Fixtures of the queue tests: a store on a temp dir and a movable clock."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from queue_helpers import Clock

from kittiwake.queue import QueueStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[QueueStore]:
    s = QueueStore(tmp_path / "queue", rng=random.Random(1))
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()
