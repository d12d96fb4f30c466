"""Scheduler: wakes on kick and due time, bounded parallelism, one connection per domain."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from queue_helpers import Clock, envelope

from kittiwake.queue import (
    Batch,
    DeliveryError,
    DeliveryResult,
    Filter,
    Outcome,
    Queue,
    Recorded,
    Scheduler,
    Status,
)


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


@pytest.fixture
async def cleanup() -> AsyncIterator[list[Scheduler]]:
    """Schedulers to close even when a test fails (no task outlives its loop)."""
    made: list[Scheduler] = []
    yield made
    for scheduler in made:
        await scheduler.close()
        scheduler.queue.close()


def ok(batch: Batch) -> list[DeliveryResult]:
    return [DeliveryResult(r.id, Outcome.OK, DeliveryError(250, "2.0.0", "ok", "mx." +
                                                           batch.domain))
            for r in batch.recipients]


async def test_bounded_concurrency_and_one_connection_per_domain(
        tmp_path: Path, cleanup: list[Scheduler]) -> None:
    clock = Clock()
    queue = Queue(tmp_path, clock=clock, rng=random.Random(1))
    active: dict[str, int] = {}
    peak = {"domains": 0, "per_domain": 0}
    seen: list[tuple[int, str]] = []
    gate = asyncio.Event()

    async def deliver(batch: Batch) -> Sequence[DeliveryResult]:
        active[batch.domain] = active.get(batch.domain, 0) + 1
        peak["domains"] = max(peak["domains"], sum(1 for v in active.values() if v))
        peak["per_domain"] = max(peak["per_domain"], active[batch.domain])
        seen.append((batch.message_id, batch.domain))
        await gate.wait()
        active[batch.domain] -= 1
        return ok(batch)

    scheduler = Scheduler(queue, deliver, concurrency=2)
    cleanup.append(scheduler)
    ids = []
    for rcpts in (["a@one.example", "b@two.example"], ["c@one.example"], ["d@three.example"],
                  ["e@four.example", "f@four.example"]):
        ids.append((await queue.enqueue(envelope(*rcpts), b"x")).id)
    scheduler.start()
    await until(lambda: len(seen) == 2)
    await asyncio.sleep(0.05)
    assert len(seen) == 2  # only two domains at a time
    assert len({d for _, d in seen}) == 2
    gate.set()
    await until(lambda: len(seen) == 5)
    await until(lambda: not scheduler.busy_domains)
    await scheduler.close()
    assert peak == {"domains": 2, "per_domain": 1}
    assert sorted(set(seen)) == sorted({(ids[0], "one.example"), (ids[0], "two.example"),
                                        (ids[1], "one.example"), (ids[2], "three.example"),
                                        (ids[3], "four.example")})
    assert await queue.list() == []
    assert {h.status for h in await queue.history()} == {Status.DELIVERED}
    queue.close()


async def test_retry_waits_for_the_schedule_and_kick_after_enqueue(
        tmp_path: Path, cleanup: list[Scheduler]) -> None:
    clock = Clock()
    queue = Queue(tmp_path, clock=clock, rng=random.Random(1))
    calls: list[tuple[int, object]] = []

    async def deliver(batch: Batch) -> Sequence[DeliveryResult]:
        calls.append((batch.recipients[0].attempts, clock()))
        if len(calls) == 1:
            return [DeliveryResult(r.id, Outcome.TEMPORARY,
                                   DeliveryError(421, "4.7.0", "busy", "mx.example.net"))
                    for r in batch.recipients]
        return ok(batch)

    scheduler = Scheduler(queue, deliver)
    cleanup.append(scheduler)
    scheduler.start()
    await asyncio.sleep(0.02)
    msg = await queue.enqueue(envelope("bob@example.net"), b"x")  # kicks the scheduler
    await until(lambda: len(calls) == 1)
    await until(lambda: not scheduler.busy_domains)
    (rcpt,) = await queue.recipients(msg.id)
    assert rcpt.attempts == 1 and rcpt.last_error is not None
    assert rcpt.last_error.host == "mx.example.net"
    assert timedelta(minutes=7) < rcpt.next_attempt - clock() < timedelta(minutes=8)
    scheduler.kick()
    await asyncio.sleep(0.05)
    assert len(calls) == 1  # not due yet
    clock.advance(timedelta(minutes=8))
    scheduler.kick()
    await until(lambda: len(calls) == 2)
    await until(lambda: not scheduler.busy_domains)
    assert calls[1][0] == 1
    assert await queue.list() == []
    await scheduler.close()
    queue.close()


async def test_callback_exception_and_missing_results_are_temporary(
        tmp_path: Path, cleanup: list[Scheduler]) -> None:
    clock = Clock()
    queue = Queue(tmp_path, clock=clock)

    async def deliver(batch: Batch) -> Sequence[DeliveryResult]:
        if batch.domain == "crash.example":
            raise RuntimeError("boom")
        return []  # forgot every recipient

    scheduler = Scheduler(queue, deliver)
    cleanup.append(scheduler)
    await queue.enqueue(envelope("a@crash.example", "b@quiet.example"), b"x")
    scheduler.start()
    await until(lambda: all(r.attempts == 1 for _, r in queue.store.list()))
    await scheduler.close()
    errors = {r.domain: r.last_error.text for _, r in await queue.list() if r.last_error}
    assert errors == {"crash.example": "internal error: boom",
                      "quiet.example": "delivery gave no result"}
    queue.close()


async def test_close_cancels_running_delivery_and_records_nothing(
        tmp_path: Path, cleanup: list[Scheduler]) -> None:
    queue = Queue(tmp_path, clock=Clock())
    started = asyncio.Event()

    async def deliver(batch: Batch) -> Sequence[DeliveryResult]:
        started.set()
        await asyncio.sleep(3600)
        return ok(batch)

    scheduler = Scheduler(queue, deliver)
    cleanup.append(scheduler)
    await queue.enqueue(envelope("a@slow.example"), b"x")
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(scheduler.close(grace=0.05), 5)
    ((_, rcpt),) = await queue.list()
    assert rcpt.attempts == 0 and rcpt.status is Status.QUEUED
    assert scheduler.busy_domains == set()
    queue.close()


async def test_on_recorded_sees_file_before_removal_and_held_mail_waits(
        tmp_path: Path, cleanup: list[Scheduler]) -> None:
    queue = Queue(tmp_path, clock=Clock())
    seen: list[tuple[bool, tuple[int, ...]]] = []

    async def deliver(batch: Batch) -> Sequence[DeliveryResult]:
        return [DeliveryResult(r.id, Outcome.PERMANENT, DeliveryError(550, "5.1.1", "unknown"))
                for r in batch.recipients]

    async def on_recorded(batch: Batch, recorded: list[Recorded]) -> None:
        seen.append((batch.path.exists(), tuple(r.address for rec in recorded
                                                for r in rec.finished)))

    scheduler = Scheduler(queue, deliver, on_recorded=on_recorded)
    cleanup.append(scheduler)
    held = await queue.enqueue(envelope("h@held.example"), b"held")
    await queue.hold(Filter(ids=(held.id,)))
    msg = await queue.enqueue(envelope("x@gone.example"), b"x")
    scheduler.start()
    await until(lambda: len(seen) == 1)
    await until(lambda: not msg.path.exists())
    assert seen == [(True, ("x@gone.example",))]
    # The held message is not tried: not due, and a dispatch now starts nothing.
    await scheduler.wait_idle()
    assert await queue.due(queue.clock()) == []
    assert await scheduler.dispatch() == 0
    await scheduler.wait_idle()
    assert len(seen) == 1
    await queue.release(Filter(ids=(held.id,)))  # release kicks
    await until(lambda: len(seen) == 2)
    await scheduler.close()
    queue.close()


async def test_wakes_by_itself_when_a_release_time_comes(
        tmp_path: Path, cleanup: list[Scheduler]) -> None:
    from datetime import UTC, datetime

    queue = Queue(tmp_path)  # real clock
    delivered: list[datetime] = []

    async def deliver(batch: Batch) -> Sequence[DeliveryResult]:
        delivered.append(datetime.now(UTC))
        return ok(batch)

    scheduler = Scheduler(queue, deliver)
    cleanup.append(scheduler)
    scheduler.start()
    release = datetime.now(UTC) + timedelta(seconds=1)
    message = await queue.enqueue(envelope("a@later.example", release_at=release), b"x")
    # Not due before its release time (RFC 4865 §3)...
    assert await queue.due(release - timedelta(milliseconds=2)) == []
    [rcpt] = await queue.recipients(message.id)
    assert abs(rcpt.next_attempt - release) < timedelta(milliseconds=1)
    # ...and tried once it is, with nobody kicking the scheduler; never earlier.
    await until(lambda: len(delivered) == 1, timeout=15)
    assert delivered[0] >= release


async def test_duplicate_and_stray_results_count_once(
        tmp_path: Path, cleanup: list[Scheduler]) -> None:
    queue = Queue(tmp_path, clock=Clock())
    calls = 0

    async def deliver(batch: Batch) -> Sequence[DeliveryResult]:
        nonlocal calls
        calls += 1
        (r,) = batch.recipients
        return [DeliveryResult(r.id, Outcome.TEMPORARY), DeliveryResult(r.id, Outcome.TEMPORARY),
                DeliveryResult(r.id + 1000, Outcome.OK)]

    scheduler = Scheduler(queue, deliver)
    cleanup.append(scheduler)
    msg = await queue.enqueue(envelope("a@dup.example"), b"x")
    scheduler.start()
    await until(lambda: calls == 1)
    await until(lambda: not scheduler.busy_domains)
    assert [r.attempts for r in await queue.recipients(msg.id)] == [1]
