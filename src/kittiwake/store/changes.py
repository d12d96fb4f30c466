"""In-process change broadcast: every open session of an account hears each commit.

IMAP IDLE/NOTIFY and webmail subscribe to an account; the store publishes
:class:`~kittiwake.store.model.Change` lists right after their transaction
committed. Each subscriber has its own queue, so a slow session never blocks
delivery. A subscriber may bound it: a session that has not read its queue for
``stale_after`` seconds while more than ``limit`` changes wait (a client that
stopped reading, its writes stuck) is told once through ``on_overflow`` and
hears nothing more; it must end (an IMAP session says BYE, and the client
resynchronises when it reconnects). A burst (one STORE on a huge mailbox) to a
session that keeps reading is never an overflow.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from kittiwake.store.model import Change


class Subscription:
    """Changes for one subscriber; iterate or ``await get()``."""

    def __init__(self, hub: ChangeHub, account: str, limit: int = 0,
                 stale_after: float = 120.0,
                 on_overflow: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.hub = hub
        self.account = account
        self.queue: asyncio.Queue[Change] = asyncio.Queue()
        self.limit = limit  # 0: unbounded
        self.stale_after = stale_after
        self.on_overflow = on_overflow
        self.clock = clock
        self.last_read = clock()
        self.overflowed = False

    async def get(self) -> Change:
        change = await self.queue.get()
        self.last_read = self.clock()
        return change

    def pending(self) -> list[Change]:
        """Everything queued now, without waiting."""
        self.last_read = self.clock()
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    def _put(self, changes: list[Change]) -> None:
        if self.overflowed:
            return
        if self.limit and self.queue.qsize() + len(changes) > self.limit \
                and self.clock() - self.last_read > self.stale_after:
            self.overflowed = True
            while not self.queue.empty():  # free what the reader will never get
                self.queue.get_nowait()
            if self.on_overflow is not None:
                self.on_overflow()
            return
        for change in changes:
            self.queue.put_nowait(change)

    def close(self) -> None:
        self.hub._subscribers[self.account].discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChangeHub:
    """Subscribers per account."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, account: str, limit: int = 0, stale_after: float = 120.0,
                  on_overflow: Callable[[], None] | None = None) -> Subscription:
        """A new subscription; ``limit`` > 0 bounds what waits unread (module docstring)."""
        sub = Subscription(self, account, limit, stale_after, on_overflow)
        self._subscribers[account].add(sub)
        return sub

    def publish(self, account: str, changes: list[Change]) -> None:
        """Called on the event loop after a commit."""
        for sub in list(self._subscribers.get(account, ())):
            sub._put(changes)


class AccountFollowers:
    """One task per followed account, reading that account's :class:`Subscription`.

    For the parts that learn from every account's changes (the junk filter, the
    report collectors): :meth:`follow_only` starts following the accounts wanted
    now and stops the others (after a domains.conf reload, too).
    """

    def __init__(self, hub: ChangeHub,
                 follow: Callable[[str, Subscription], Awaitable[None]]) -> None:
        self.hub = hub
        self.follow = follow
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._subscriptions: dict[str, Subscription] = {}

    def __contains__(self, account: object) -> bool:
        return account in self._tasks

    def follow_only(self, accounts: Iterable[str]) -> None:
        wanted = set(accounts)
        for name in list(self._tasks):
            if name not in wanted:
                self._tasks.pop(name).cancel()
                self._subscriptions.pop(name).close()
        loop = asyncio.get_running_loop()
        for name in wanted - set(self._tasks):
            sub = self.hub.subscribe(name)
            self._subscriptions[name] = sub
            self._tasks[name] = loop.create_task(self.follow(name, sub))

    def queued(self) -> bool:
        """Whether a change is still waiting to be read."""
        return any(not s.queue.empty() for s in self._subscriptions.values())

    async def close(self) -> None:
        """Stop every follower and wait for it; close the subscriptions."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        for sub in self._subscriptions.values():
            sub.close()
        self._subscriptions.clear()

