"""In-process change broadcast: every open session of an account hears each commit.

IMAP IDLE/NOTIFY and webmail subscribe to an account; the store publishes
:class:`~kittiwake.store.model.Change` lists right after their transaction
committed. Each subscriber has its own unbounded queue, so a slow session
never blocks delivery.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

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
