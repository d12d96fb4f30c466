"""The async face of the outgoing queue: :class:`QueueStore` work in worker threads.

    queue = Queue(data_dir)
    message = await queue.enqueue(envelope, data)   # durable when this returns: answer 250

Listeners (the :class:`~kittiwake.queue.scheduler.Scheduler` registers
itself) are told when work may have become due: after enqueue, release and
kick. SQLite work and fsyncs run in threads (DESIGN.md principle 4).

Results are group-committed: :meth:`Queue.record_result` calls that arrive
while a commit is running wait for the next one and share it (one
transaction, one fsync for all the deliveries that finished meanwhile), so
parallel deliveries do not queue behind each other's fsyncs. Each caller
still returns only after its own result is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from kittiwake.queue.config import QueueConfig
from kittiwake.queue.metrics import QueueSummary
from kittiwake.queue.model import (
    Batch,
    DeliveryError,
    Dropped,
    Envelope,
    Filter,
    HoldRule,
    Outcome,
    QueuedMessage,
    Recipient,
    Recorded,
    RecordRequest,
    Retired,
)
from kittiwake.queue.store import QueueStore, utcnow

T = TypeVar("T")


class Queue:
    """The server's outgoing queue in ``data_dir/queue``."""

    def __init__(self, data_dir: Path | None = None, store: QueueStore | None = None,
                 clock: Callable[[], datetime] | None = None, **store_args: Any) -> None:
        if store is None:
            if data_dir is None:
                raise ValueError("Queue needs data_dir or store")
            store = QueueStore(data_dir / "queue", **store_args)
        self.store = store
        self.clock: Callable[[], datetime] = clock or utcnow
        self.listeners: list[Callable[[], None]] = []
        self._records: list[tuple[RecordRequest, asyncio.Future[Recorded]]] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, data_dir: Path, config: QueueConfig,
                    clock: Callable[[], datetime] | None = None) -> Queue:
        """The queue of ``data_dir`` with the history limits of ``config``."""
        return cls(data_dir, clock=clock, history_keep=config.history_keep,
                   history_age=timedelta(days=config.history_days))

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()

    def close(self) -> None:
        self.store.close()

    async def enqueue(self, envelope: Envelope, data: bytes | Iterable[bytes],
                      now: datetime | None = None) -> QueuedMessage:
        message = await self._run(self.store.enqueue, envelope, data, now or self.clock())
        self._notify()
        return message

    async def write_temp(self, chunks: Iterable[bytes]) -> tuple[Path, int]:
        """Write message data to an fsynced temporary file for :meth:`enqueue_temp`."""
        return await self._run(self.store.write_temp, list(chunks))

    async def enqueue_temp(self, envelope: Envelope, tmp: Path, size: int,
                           now: datetime | None = None) -> QueuedMessage:
        message = await self._run(self.store.enqueue_temp, envelope, tmp, size, now or self.clock())
        self._notify()
        return message

    async def message(self, message_id: int) -> QueuedMessage:
        return await self._run(self.store.message, message_id)

    async def recipients(self, message_id: int) -> list[Recipient]:
        return await self._run(self.store.recipients, message_id)

    async def read(self, message_id: int) -> bytes:
        return await self._run(self.store.read, message_id)

    async def list(self, where: Filter = Filter()) -> list[tuple[QueuedMessage, Recipient]]:
        return await self._run(self.store.list, where)

    async def history(self, where: Filter = Filter(), limit: int = 100) -> list[Retired]:
        return await self._run(self.store.history, where, limit)

    async def due(self, now: datetime, limit: int = 100,
                  exclude_domains: Iterable[str] = ()) -> list[Batch]:
        return await self._run(self.store.due, now, limit, list(exclude_domains))

    async def due_for_domain(self, domain: str, now: datetime, limit: int = 100) -> list[Batch]:
        return await self._run(self.store.due_for_domain, domain, now, limit)

    async def add_file(self, path: Path, prefix: bytes, envelope: Envelope,
                       now: datetime | None = None, *, link: bool = False,
                       sync: bool = True) -> QueuedMessage:
        """Take a spooled file by rename or hard link (see :meth:`QueueStore.add_file`)."""
        message = await self._run(self.store.add_file, path, prefix, envelope,
                                  now or self.clock(), link=link, sync=sync)
        self._notify()
        return message

    async def next_due(self, exclude_domains: Iterable[str] = ()) -> datetime | None:
        return await self._run(self.store.next_due, list(exclude_domains))

    async def record_result(self, recipient_ids: Iterable[int], outcome: Outcome,
                            error: DeliveryError | None = None, host: str = "",
                            now: datetime | None = None, keep_files: bool = False,
                            not_before: datetime | None = None) -> Recorded:
        request = RecordRequest(list(recipient_ids), outcome, error, host, now or self.clock(),
                                keep_files, not_before)
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._records.append((request, future))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_records(),
                                                  name="queue-record-commit")
        # shield: a cancelled caller (scheduler closing) does not cancel the others' commit.
        return await asyncio.shield(future)

    async def _commit_records(self) -> None:
        try:
            while self._records:
                group, self._records = self._records, []
                try:
                    recorded = await self._run(self.store.record_results,
                                               [request for request, _ in group])
                except Exception:
                    # One bad request must not fail the others: record them one by one.
                    for request, future in group:
                        try:
                            one = await self._run(self.store.record_results, [request])
                        except Exception as exc:
                            if not future.done():
                                future.set_exception(exc)
                        else:
                            if not future.done():
                                future.set_result(one[0])
                    continue
                for (_, future), result in zip(group, recorded, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._committer = None

    async def remove_files(self, message_ids: Iterable[int]) -> None:
        await self._run(self.store.remove_files, list(message_ids))

    async def needs_delay_dsn(self) -> list[Recipient]:
        return await self._run(self.store.needs_delay_dsn)

    async def mark_delay_dsn_sent(self, recipient_ids: Iterable[int]) -> None:
        await self._run(self.store.mark_delay_dsn_sent, list(recipient_ids))

    async def summary(self) -> QueueSummary:
        """See :meth:`QueueStore.summary`."""
        return await self._run(self.store.summary)

    async def hold(self, where: Filter) -> int:
        return await self._run(self.store.hold, where)

    async def release(self, where: Filter) -> int:
        count = await self._run(self.store.release, where)
        self._notify()
        return count

    async def kick(self, where: Filter = Filter(), now: datetime | None = None) -> int:
        count = await self._run(self.store.kick, where, now or self.clock())
        self._notify()
        return count

    async def drop(self, where: Filter, now: datetime | None = None,
                   keep_files: bool = False) -> list[Dropped]:
        return await self._run(self.store.drop, where, now or self.clock(), keep_files)

    async def hold_rules(self) -> list[HoldRule]:
        return await self._run(self.store.hold_rules)

    async def add_hold_rule(self, account: str = "", from_domain: str = "",
                            to_domain: str = "") -> HoldRule:
        return await self._run(self.store.add_hold_rule, account, from_domain, to_domain)

    async def remove_hold_rule(self, rule_id: int) -> HoldRule:
        return await self._run(self.store.remove_hold_rule, rule_id)
