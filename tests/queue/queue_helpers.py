"""Helpers of the queue tests: a movable clock and small envelopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kittiwake.queue import Envelope, NewRecipient

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock that only moves when told to."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def envelope(*rcpts: str, mail_from: str = "alice@example.org", **kw: object) -> Envelope:
    return Envelope(mail_from=mail_from, recipients=tuple(NewRecipient(r) for r in rcpts),
                    **kw)  # type: ignore[arg-type]


def message_bytes(n: int = 0) -> bytes:
    return b"From: alice@example.org\r\nSubject: test %d\r\n\r\nbody %d\r\n" % (n, n)
