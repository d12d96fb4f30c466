"""The retry schedule of the outgoing queue.

First attempt at once; after each temporary failure the next one comes after
7.5 min, 15 min, 30 min, 1 h, 2 h, 4 h, 8 h and 16 h (each with a little
jitter so that many messages to one domain do not retry in lockstep). After
the 5th failed attempt a "delayed" DSN is due (RFC 3464 §2.3.3 action
"delayed", RFC 3461 §4.1 NOTIFY=DELAY); after the 9th the recipient fails.
RFC 5321 §4.5.4.1 asks for retries of at least 30 minutes apart and giving
up after 4-5 days; the shorter first steps are what modern servers do.
"""

from __future__ import annotations

import random
from datetime import timedelta

BASE_DELAYS: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(minutes=7.5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=16),
)
MAX_ATTEMPTS = len(BASE_DELAYS)  # 9: the recipient fails after this many failed attempts
DELAY_DSN_AFTER = 5  # failed attempts after which a "delayed" DSN is due
JITTER = 0.05


def schedule(attempts: int, rng: random.Random | None = None,
             jitter: float = JITTER) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed attempts.

    Without ``rng`` the exact base value; with it, the base value times a
    random factor in [1 - jitter, 1 + jitter].
    """
    if attempts < 0:
        raise ValueError("attempts must not be negative")
    base = BASE_DELAYS[min(attempts, MAX_ATTEMPTS - 1)]
    if rng is None or not base:
        return base
    return base * (1 + rng.uniform(-jitter, jitter))


retry_delay = schedule  # the same, under a name the queue package does not shadow


def gives_up(attempts: int) -> bool:
    """True when ``attempts`` failed attempts mean permanent failure."""
    return attempts >= MAX_ATTEMPTS


def delay_dsn_due(attempts: int) -> bool:
    """True when ``attempts`` failed attempts call for a "delayed" DSN."""
    return attempts >= DELAY_DSN_AFTER
