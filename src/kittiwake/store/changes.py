"""In-process change broadcast: every open session of an account hears each commit.

IMAP IDLE/NOTIFY and webmail subscribe to an account; the store publishes
:class:`~kittiwake.store.model.Change` lists right after their transaction
committed. Each subscriber has its own unbounded queue, so a slow session
never blocks delivery.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from kittiwake.store.model import Change


class Subscription:
    """Changes for one subscriber; iterate or ``await get()``."""

    def __init__(self, hub: ChangeHub, account: str) -> None:
        self.hub = hub
        self.account = account
        self.queue: asyncio.Queue[Change] = asyncio.Queue()

    async def get(self) -> Change:
        return await self.queue.get()

    def pending(self) -> list[Change]:
        """Everything queued now, without waiting."""
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

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

    def subscribe(self, account: str) -> Subscription:
        sub = Subscription(self, account)
        self._subscribers[account].add(sub)
        return sub

    def publish(self, account: str, changes: list[Change]) -> None:
        """Called on the event loop after a commit."""
        for sub in list(self._subscribers.get(account, ())):
            for change in changes:
                sub.queue.put_nowait(change)


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

