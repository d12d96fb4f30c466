"""Runs deliveries from the queue: wakes when work is due, one connection per domain.

The :class:`Scheduler` sleeps until the next recipient becomes due (or it is
kicked: after enqueue, release, kick), takes the due batches
(:meth:`QueueStore.due`: grouped by destination domain and message), and
runs a pluggable ``deliver(batch)`` callback: up to ``concurrency`` domains
in parallel, the batches of one domain one after another (so the SMTP
client can carry them over one connection). Results are recorded with
:meth:`QueueStore.record_result`; an exception in the callback counts as a
temporary failure of the whole batch.

The deliver callback is the SMTP client's job::

    async def deliver(batch: Batch) -> Sequence[DeliveryResult]: ...

Time comes from an injectable ``clock`` so tests can move it; waiting uses
real time, capped at ``max_sleep`` seconds so a clock change is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from kittiwake.log import get_logger
from kittiwake.queue.model import Batch, DeliveryError, DeliveryResult, Outcome, Recorded
from kittiwake.queue.queue import Queue

logger = get_logger("queue")

Deliver = Callable[[Batch], Awaitable[Sequence[DeliveryResult]]]
OnRecorded = Callable[[Batch, list[Recorded]], Awaitable[None]]


class Scheduler:
    """Delivers due batches of a :class:`Queue` through ``deliver``."""

    def __init__(self, queue: Queue, deliver: Deliver, *, concurrency: int = 10,
                 clock: Callable[[], datetime] | None = None, batch_limit: int = 100,
                 max_sleep: float = 60.0, on_recorded: OnRecorded | None = None) -> None:
        self.queue = queue
        self.deliver = deliver
        self.concurrency = max(1, concurrency)
        self.clock = clock or queue.clock
        self.batch_limit = batch_limit
        self.max_sleep = max_sleep
        self.on_recorded = on_recorded
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._workers: dict[str, asyncio.Task[None]] = {}
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
        try:
            for batch in batches:
                await self._deliver_one(batch)
        except Exception as exc:  # recording failed (disk?): log, the loop retries later
            from kittiwake.metrics import panic

            panic("queue", exc)
        finally:
            self._workers.pop(domain, None)
            if not self._workers:
                self._idle.set()
            self.kick()

    async def _deliver_one(self, batch: Batch) -> None:
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
