"""The retry schedule: exact steps, bounded jitter, DSN and give-up thresholds."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from kittiwake.queue.schedule import (
    DELAY_DSN_AFTER,
    MAX_ATTEMPTS,
    delay_dsn_due,
    gives_up,
    schedule,
)

EXPECTED = [timedelta(0), timedelta(minutes=7, seconds=30), timedelta(minutes=15),
            timedelta(minutes=30), timedelta(hours=1), timedelta(hours=2), timedelta(hours=4),
            timedelta(hours=8), timedelta(hours=16)]


def test_exact_steps() -> None:
    assert [schedule(n) for n in range(9)] == EXPECTED


@pytest.mark.parametrize("attempts", range(1, 9))
def test_jitter_stays_within_five_percent(attempts: int) -> None:
    rng = random.Random(attempts)
    base = EXPECTED[attempts]
    values = {schedule(attempts, rng) for _ in range(200)}
    assert all(base * 0.95 <= v <= base * 1.05 for v in values)
    assert len(values) > 100  # really random, not one fixed offset


def test_first_attempt_has_no_jitter() -> None:
    assert schedule(0, random.Random(5)) == timedelta(0)


def test_thresholds() -> None:
    assert (DELAY_DSN_AFTER, MAX_ATTEMPTS) == (5, 9)
    assert [delay_dsn_due(n) for n in (4, 5, 6)] == [False, True, True]
    assert [gives_up(n) for n in (8, 9)] == [False, True]
    with pytest.raises(ValueError):
        schedule(-1)
