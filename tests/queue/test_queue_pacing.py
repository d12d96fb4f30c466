"""Pacing: a failing destination costs one connection per backoff step, not one per message.

A backlog as after a restart: 5,800 due messages, 5,000 of them for a
destination whose server refuses every session (421 greeting on loopback),
800 for one that works. The clock is a test clock; the attempts are counted
at the failing server (TCP sessions it accepted).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from queue_helpers import T0, Clock, envelope
from tests.smtpclient.sink import SinkServer

from kittiwake.dns import MockResolver
from kittiwake.queue import Filter, Queue, Scheduler, Status
from kittiwake.queue import metrics as queue_metrics
from kittiwake.queue.deliver import Deliverer, Relay
from kittiwake.queue.model import Batch
from kittiwake.smtpclient import TLSMode

FAILING, WORKING = "down.test", "up.test"


def counter(metric: object) -> float:
    return metric._value.get()  # type: ignore[attr-defined]


async def run_until_nothing_due(queue: Queue, scheduler: Scheduler, clock: Clock) -> int:
    """Dispatch until no due work is left at the clock's time; how many rounds it took."""
    rounds = 0
    while await queue.due(clock(), 1):
        rounds += 1
        assert rounds < 200, "the scheduler keeps finding the same work: spinning"
        await scheduler.dispatch()
        await scheduler.wait_idle()
    return rounds


async def test_failing_destination_is_paced(tmp_path: Path) -> None:
    down = await SinkServer(greeting="421 4.3.2 down for maintenance").start()
    up = await SinkServer().start()
    clock = Clock()
    queue = Queue(tmp_path / "q", clock=clock, history_keep=10)
    relays = {FAILING: Relay("127.0.0.1", down.port, TLSMode.NONE),
              WORKING: Relay("127.0.0.1", up.port, TLSMode.NONE)}

    def select(batch: Batch) -> Relay:
        return relays[batch.domain]

    deliverer = Deliverer(resolver=MockResolver(), hostname="kw.test", select=select)
    store = queue.store
    store.enqueue_many([(envelope(f"u{i}@{FAILING if i % 29 else WORKING}"),  # 5,600 + 200
                         b"Subject: %d\r\n\r\nhi\r\n" % i) for i in range(5800)], now=T0)
    failing = len(store.list(Filter(to_domain=FAILING)))
    working = 5800 - failing
    scheduler = Scheduler(queue, deliverer, clock=clock)
    pauses, deferrals = counter(queue_metrics.DESTINATION_PAUSES), \
        counter(queue_metrics.PACED_DEFERRALS)
    try:
        await run_until_nothing_due(queue, scheduler, clock)
        # One session attempt for the failing destination; the rest were deferred with it.
        assert down.connections == 1
        assert len(up.messages) == working
        queued = store.list(Filter(to_domain=FAILING))
        assert len(queued) == failing
        assert all(r.status is Status.QUEUED and r.attempts == 1 for _, r in queued)
        pause = scheduler.paused[FAILING]
        assert all(r.next_attempt >= pause.until for _, r in queued)
        errors = [r.last_error for _, r in queued]
        # The probe has the server's reply; the others say they were not tried, and why.
        assert [e.code for e in errors if e is not None and e.is_reply] == [421]
        assert sum(1 for e in errors if e is not None and not e.is_reply
                   and e.text.startswith(f"not tried: delivery to {FAILING} is paused")
                   and "down for maintenance" in e.text) == failing - 1
        assert counter(queue_metrics.DESTINATION_PAUSES) == pauses + 1
        assert counter(queue_metrics.PACED_DEFERRALS) == deferrals + failing - 1

        # Before the pause ends nothing is tried, however often the scheduler looks.
        clock.advance(timedelta(minutes=5))
        assert await run_until_nothing_due(queue, scheduler, clock) == 0
        assert down.connections == 1

        # After it: one probe, which fails again; the backoff grows.
        clock.now = max(r.next_attempt for _, r in store.list(Filter(to_domain=FAILING)))
        await run_until_nothing_due(queue, scheduler, clock)
        assert down.connections == 2
        second = scheduler.paused[FAILING]
        assert second.failures == 2 and second.until - clock() > pause.until - T0
        assert all(r.attempts == 2 for _, r in store.list(Filter(to_domain=FAILING)))

        # The destination comes back: the next probe succeeds, the pause ends and the
        # worker carries on with the domain's due messages (one turn of them here).
        relays[FAILING] = Relay("127.0.0.1", up.port, TLSMode.NONE)
        clock.now = max(r.next_attempt for _, r in store.list(Filter(to_domain=FAILING)))
        delivered = len(up.messages)
        await scheduler.dispatch()
        await scheduler.wait_idle()
        assert FAILING not in scheduler.paused
        assert len(up.messages) - delivered == scheduler.turn_limit
        assert down.connections == 2
    finally:
        await scheduler.close()
        await deliverer.close()
        queue.close()
        await down.close()
        await up.close()
