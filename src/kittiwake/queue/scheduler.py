"""Runs deliveries from the queue: wakes when work is due, one connection per domain.

The :class:`Scheduler` sleeps until the next recipient becomes due (or it is
kicked: after enqueue, release, kick), takes the due batches
(:meth:`QueueStore.due`: grouped by destination domain and message), and
runs a pluggable ``deliver(batch)`` callback: up to ``concurrency`` domains
in parallel, the batches of one domain one after another (so the SMTP
client carries them over one connection). A domain's worker goes on with
that domain's next due messages (:meth:`QueueStore.due_for_domain`) for up
to ``turn_limit`` batches before it makes room for other domains. Results
are recorded with :meth:`QueueStore.record_result`; an exception in the
callback counts as a temporary failure of the whole batch.

Concurrency: at most one delivery per destination domain at a time (the
per-destination limit: one connection, reused), at most ``concurrency``
domains at once. The default, :data:`DEFAULT_CONCURRENCY` (10, as the
``[queue] concurrency`` setting), comes from ``bench/queue_throughput.py``
relaying to smtp-sink on loopback (2 shared cores, 20 domains): 5 parallel
domains were clearly slower than 10; 20 and more gave no gain (10,000
messages: 378 msg/s at 10, 381 at 20), because delivery is then bound by the
process's CPU, not by waiting for replies. More sessions would only add
memory and load on the remote side.

Pacing (RFC 5321 §4.5.4.1: "the sender MUST delay retrying a particular
destination after one attempt has failed"; RFC 1123 §5.3.1.1: keep "a list
of hosts it cannot reach and corresponding timeouts, rather than just
retrying queued mail items"): when a
delivery fails for the destination as a whole (no MX host or relay
reachable, DNS, TLS, greeting refused: :attr:`DeliveryResult.destination`),
the domain is paused with backoff (the retry schedule, by consecutive
failures). Its other due recipients are then deferred without a
connection: recorded as a temporary failure with the destination's error
(so they age and expire as if tried, like Postfix's "delivery temporarily
suspended") and not retried before the pause ends. After a restart with a
large backlog this costs one connection attempt per failing domain, not one
per message. The first success ends the pause.

The deliver callback is the SMTP client's job::

    async def deliver(batch: Batch) -> Sequence[DeliveryResult]: ...

Time comes from an injectable ``clock`` so tests can move it; waiting uses
real time, capped at ``max_sleep`` seconds so a clock change is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kittiwake.log import get_logger
from kittiwake.queue.metrics import DESTINATION_PAUSES, PACED_DEFERRALS
from kittiwake.queue.model import (
    Batch,
    DeliveryError,
    DeliveryResult,
    Outcome,
    Recipient,
    Recorded,
)
from kittiwake.queue.queue import Queue
from kittiwake.queue.schedule import JITTER, MAX_ATTEMPTS, retry_delay

logger = get_logger("queue")

DEFAULT_CONCURRENCY = 10  # domains delivered in parallel (see the module docstring)
TURN_LIMIT = 100  # batches a domain's worker delivers before making room for others
DEFER_CHUNK = 500  # batches deferred per database transaction while paused
PAUSE_MEMORY = timedelta(days=1)  # an ended pause still counts for the backoff this long


@dataclass(frozen=True)
class Pause:
    """A destination that failed: no attempt before ``until``."""

    until: datetime
    failures: int  # consecutive destination failures
    error: DeliveryError

Deliver = Callable[[Batch], Awaitable[Sequence[DeliveryResult]]]
OnRecorded = Callable[[Batch, list[Recorded]], Awaitable[None]]


class Scheduler:
    """Delivers due batches of a :class:`Queue` through ``deliver``."""

    def __init__(self, queue: Queue, deliver: Deliver, *,
                 concurrency: int = DEFAULT_CONCURRENCY,
                 clock: Callable[[], datetime] | None = None, batch_limit: int = 100,
                 max_sleep: float = 60.0, on_recorded: OnRecorded | None = None,
                 turn_limit: int = TURN_LIMIT) -> None:
        self.queue = queue
        self.deliver = deliver
        self.concurrency = max(1, concurrency)
        self.turn_limit = max(1, turn_limit)
        self.paused: dict[str, Pause] = {}
        self.clock = clock or queue.clock
        self.batch_limit = batch_limit
        self.max_sleep = max_sleep
        self.on_recorded = on_recorded
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._recording: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        queue.listeners.append(self.kick)

    @property
    def busy_domains(self) -> set[str]:
        """Domains with a delivery running now."""
        return set(self._workers)

    def kick(self) -> None:
        """Look for due work now (after enqueue, release, kick)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="queue-scheduler")

    async def close(self, grace: float = 0.0) -> None:
        """Stop picking work; give running deliveries ``grace`` seconds, then cancel them.

        A cancelled delivery records nothing: its recipients stay due and
        are tried again after the restart.
        """
        self._closing = True
        with contextlib.suppress(ValueError):
            self.queue.listeners.remove(self.kick)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        workers = list(self._workers.values())
        if workers and grace > 0:
            await asyncio.wait(workers, timeout=grace)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self._recording:  # results of finished deliveries still being committed
            await asyncio.gather(*self._recording, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait until no delivery is running (tests)."""
        await self._idle.wait()

    async def _loop(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                started = await self.dispatch()
                timeout = await self._sleep_time()
                if not started and timeout == 0:
                    timeout = 0.01  # due but not startable: never spin
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                from kittiwake.metrics import panic

                panic("queue", exc)
                timeout = self.max_sleep
            if timeout is None or timeout > 0:
                await self._wait_for_kick(timeout)

    async def _wait_for_kick(self, timeout: float | None) -> None:
        # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that arrives just as the event is set.
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            waiter.cancel()

    async def _sleep_time(self) -> float | None:
        """Seconds until the next due recipient; None: wait for a kick."""
        if len(self._workers) >= self.concurrency:
            return self.max_sleep  # a finishing worker kicks us
        next_due = await self.queue.next_due(self._workers)
        if next_due is None:
            return self.max_sleep
        seconds = (next_due - self.clock()).total_seconds()
        return min(max(seconds, 0.0), self.max_sleep)

    async def dispatch(self) -> int:
        """Start workers for due domains (as many as free slots); how many started."""
        free = self.concurrency - len(self._workers)
        if free <= 0 or self._closing:
            return 0
        now = self.clock()
        for domain in [d for d, p in self.paused.items() if p.until < now - PAUSE_MEMORY]:
            del self.paused[domain]  # long over and not needed again: forget it
        batches = await self.queue.due(self.clock(), self.batch_limit, self._workers)
        by_domain: dict[str, list[Batch]] = {}
        for batch in batches:
            if batch.domain in self._workers:
                continue
            by_domain.setdefault(batch.domain, []).append(batch)
        started = 0
        for domain, domain_batches in by_domain.items():
            if started >= free:
                break
            self._idle.clear()
            self._workers[domain] = asyncio.create_task(
                self._work(domain, domain_batches), name=f"queue-deliver-{domain}")
            started += 1
        return started

    async def _work(self, domain: str, batches: list[Batch]) -> None:
        # The results of one batch are committed while the next batch is sent (the
        # commit's fsync overlaps the SMTP round trips); before picking more work
        # the worker waits for its commits, so a pick never sees a stale row.
        pending: list[asyncio.Task[None]] = []
        try:
            done = 0
            while batches and not self._closing:
                for batch in batches:
                    pause = self.paused.get(domain)
                    if pause is not None and self.clock() < pause.until:
                        await self._settle(pending)
                        await self._defer_paused(domain, pause)
                        return
                    by_id = await self._attempt(batch)
                    task = asyncio.create_task(self._record_safely(batch, by_id))
                    self._recording.add(task)
                    task.add_done_callback(self._recording.discard)
                    pending.append(task)
                    done += 1
                await self._settle(pending)
                if done >= self.turn_limit:
                    break
                batches = await self.queue.due_for_domain(domain, self.clock(),
                                                          min(self.batch_limit,
                                                              self.turn_limit - done))
        except Exception as exc:  # recording failed (disk?): log, the loop retries later
            from kittiwake.metrics import panic

            panic("queue", exc)
        finally:
            if pending and not self._closing:
                await asyncio.gather(*pending, return_exceptions=True)
            self._workers.pop(domain, None)
            if not self._workers:
                self._idle.set()
            self.kick()

    @staticmethod
    async def _settle(pending: list[asyncio.Task[None]]) -> None:
        if pending:
            await asyncio.gather(*pending)
            pending.clear()

    async def _record_safely(self, batch: Batch, by_id: dict[int, DeliveryResult]) -> None:
        try:
            await self._record(batch, by_id)
        except Exception as exc:  # recording failed (disk?): log; the recipients stay due
            from kittiwake.metrics import panic

            panic("queue", exc)

    async def _deliver_one(self, batch: Batch) -> None:
        """Deliver one batch and record its results (tests and simple callers)."""
        await self._record(batch, await self._attempt(batch))

    async def _attempt(self, batch: Batch) -> dict[int, DeliveryResult]:
        """Run the deliver callback for ``batch``: one result per recipient, paced."""
        wanted = {r.id for r in batch.recipients}
        try:
            results = list(await self.deliver(batch))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from kittiwake.metrics import panic

            panic("queue", exc)
            results = [DeliveryResult(rid, Outcome.TEMPORARY,
                                      DeliveryError(text=f"internal error: {exc}"))
                       for rid in sorted(wanted)]
        by_id: dict[int, DeliveryResult] = {}
        for result in results:  # the first result per recipient counts; strangers are ignored
            if result.recipient_id in wanted:
                by_id.setdefault(result.recipient_id, result)
        for rid in sorted(wanted - set(by_id)):
            by_id[rid] = DeliveryResult(rid, Outcome.TEMPORARY,
                                        DeliveryError(text="delivery gave no result"))
        self._pace(batch.domain, list(by_id.values()))
        return by_id

    def _pace(self, domain: str, results: list[DeliveryResult]) -> None:
        """Pause ``domain`` when the destination failed as a whole; a success resumes it."""
        if results and all(r.destination and r.outcome is Outcome.TEMPORARY for r in results):
            before = self.paused.get(domain)
            failures = before.failures + 1 if before is not None else 1
            now = self.clock()
            # Just before the failed batch's own retry (its jitter is at most -JITTER),
            # so that retry is the next probe of the destination.
            until = now + retry_delay(min(failures, MAX_ATTEMPTS - 1)) * (1 - JITTER)
            error = results[0].error or DeliveryError(text="destination failed")
            self.paused[domain] = Pause(until, failures, error)
            DESTINATION_PAUSES.inc()
            logger.info("destination paused", domain=domain, failures=failures,
                        until=until.isoformat(timespec="seconds"), error=error.short(80))
        elif domain in self.paused:
            del self.paused[domain]
            logger.info("destination resumed", domain=domain)

    async def _defer_paused(self, domain: str, pause: Pause) -> None:
        """Record every due recipient of a paused ``domain`` as not tried this time:
        a temporary failure with the destination's error, retried after the pause."""
        reason = pause.error
        error = DeliveryError.ours(
            reason.enhanced or "4.4.1",
            f"not tried: delivery to {domain} is paused until"
            f" {pause.until.isoformat(timespec='seconds')} after {pause.failures} failed"
            f" attempt(s): {reason.short(200)}", reason.host)
        while not self._closing:
            batches = await self.queue.due_for_domain(domain, self.clock(), DEFER_CHUNK)
            if not batches:
                return
            ids = [r.id for b in batches for r in b.recipients]
            recorded = await self.queue.record_result(
                ids, Outcome.TEMPORARY, error, error.host, self.clock(),
                self.on_recorded is not None, not_before=pause.until)
            PACED_DEFERRALS.inc(len(ids))
            logger.info("deferred while destination paused", domain=domain,
                        recipients=len(ids))
            if self.on_recorded is not None:
                await self._notify_each(batches, recorded)

    async def _notify_each(self, batches: list[Batch], recorded: Recorded) -> None:
        """``on_recorded`` per message for what one multi-message record changed."""
        assert self.on_recorded is not None
        finished: dict[int, list[Recipient]] = {}
        delayed: dict[int, list[Recipient]] = {}
        for r in recorded.finished:
            finished.setdefault(r.message_id, []).append(r)
        for r in recorded.needs_delay_dsn:
            delayed.setdefault(r.message_id, []).append(r)
        removed = set(recorded.removed_messages)
        by_message: dict[int, Batch] = {b.message_id: b for b in batches}
        for message_id, batch in by_message.items():
            part = Recorded(tuple(finished.get(message_id, ())),
                            tuple(delayed.get(message_id, ())),
                            (message_id,) if message_id in removed else ())
            if not (part.finished or part.needs_delay_dsn or part.removed_messages):
                continue
            try:
                await self.on_recorded(batch, [part])
            except Exception as exc:
                from kittiwake.metrics import panic

                panic("queue", exc)
            finally:
                if part.removed_messages:
                    await self.queue.remove_files(part.removed_messages)

    async def _record(self, batch: Batch, by_id: dict[int, DeliveryResult]) -> None:
        groups: dict[tuple[Outcome, DeliveryError | None], list[int]] = {}
        for rid, result in sorted(by_id.items()):
            groups.setdefault((result.outcome, result.error), []).append(rid)
        keep = self.on_recorded is not None
        recorded = []
        for (outcome, error), ids in groups.items():
            recorded.append(await self.queue.record_result(
                ids, outcome, error, error.host if error else "", self.clock(), keep))
            logger.info("delivery attempt", message=batch.message_id, domain=batch.domain,
                        recipients=len(ids), outcome=outcome,
                        **({"error": error.short(80)} if error else {}))
        if self.on_recorded is not None:
            try:
                await self.on_recorded(batch, recorded)
            except Exception as exc:
                from kittiwake.metrics import panic

                panic("queue", exc)
            finally:
                removed = [mid for r in recorded for mid in r.removed_messages]
                if removed:
                    await self.queue.remove_files(removed)
