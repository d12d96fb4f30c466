"""The async face of the store: accounts opened on demand, work in threads.

    store = Store(data_dir)
    account = await store.account("alice")
    delivered = await account.deliver("Inbox", data)     # on disk when this returns
    with store.changes.subscribe("alice") as sub: ...

SQLite work and fsyncs run in worker threads (DESIGN.md principle 4), so the
event loop is never blocked by disk. Changes are published after commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from kittiwake.store import metrics as store_metrics
from kittiwake.store.account import AccountStore, Appended
from kittiwake.store.changes import ChangeHub
from kittiwake.store.model import (
    AccountNotFound,
    Change,
    Delivered,
    Flags,
    Mailbox,
    Message,
    StoreError,
)
from kittiwake.store.spool import SpoolFile

T = TypeVar("T")

# Seconds between a delivery and the indexing of its search text (batches bursts).
INDEX_DELAY = 1.0


def account_dir(data_dir: Path, name: str) -> Path:
    if not name or "/" in name or name.startswith(".") or "\x00" in name:
        raise AccountNotFound(f"invalid account name {name!r}")
    return data_dir / "accounts" / name


class Account:
    """Async operations on one account; each runs its transaction in a thread."""

    def __init__(self, core: AccountStore, hub: ChangeHub) -> None:
        self.core = core
        self.name = core.name
        self.hub = hub
        self._indexer: asyncio.Task[None] | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        op = getattr(fn, "__name__", "other")  # a method of AccountStore
        started = time.monotonic()
        try:
            result = await asyncio.to_thread(fn, *args)
        except BaseException:
            store_metrics.OPERATIONS_TOTAL.labels(op=op, result="error").inc()
            raise
        finally:
            store_metrics.OPERATION_SECONDS.labels(op=op).observe(time.monotonic() - started)
        store_metrics.OPERATIONS_TOTAL.labels(op=op, result="ok").inc()
        return result

    def _publish(self, changes: list[Change]) -> None:
        if changes:
            self.hub.publish(self.name, changes)
        if self.core.to_index:
            self.start_indexing()

    def start_indexing(self) -> None:
        """Run the background indexer if it is not running and there is work."""
        if self._indexer is None and self.core.to_index:
            self._indexer = asyncio.get_running_loop().create_task(self._index())

    async def _index(self) -> None:
        """Index newly delivered messages' search text in the background."""
        try:
            while True:
                await asyncio.sleep(INDEX_DELAY)  # let a burst of deliveries batch up
                if not await asyncio.to_thread(self.core.index_pending):
                    break
        except Exception as exc:  # the index is an optimisation: search decodes instead
            from kittiwake import metrics

            metrics.panic("store", exc, msg="search text indexing failed")
        finally:
            self._indexer = None

    async def mailboxes(self) -> list[Mailbox]:
        return await self._run(self.core.mailboxes)

    async def mailbox(self, name: str) -> Mailbox:
        return await self._run(self.core.mailbox, name)

    async def create_mailbox(self, name: str, special_use: str | None = None) -> Mailbox:
        mailbox, changes = await self._run(self.core.create_mailbox, name, special_use)
        self._publish(changes)
        return mailbox

    async def ensure_mailboxes(self, names: Iterable[str]) -> None:
        self._publish(await self._run(self.core.ensure_mailboxes, list(names)))

    async def rename_mailbox(self, old: str, new: str) -> None:
        self._publish(await self._run(self.core.rename_mailbox, old, new))

    async def delete_mailbox(self, name: str) -> None:
        changes, _ids = await self._run(self.core.delete_mailbox, name)
        self._publish(changes)

    async def subscribe(self, name: str, subscribed: bool = True) -> None:
        await self._run(self.core.subscribe, name, subscribed)

    async def deliver(self, mailbox: str, data: bytes, flags: Flags = Flags(),
                      received: int = 0, mailfrom: str = "", rcptto: str = "") -> Delivered:
        """Store a message; returns only once file and row are durably on disk."""
        delivered, changes = await self._run(self.core.deliver, mailbox, data, flags, received,
                                             mailfrom, rcptto)
        self._publish(changes)
        return delivered

    def spool(self) -> SpoolFile:
        """A new spool file for a message arriving in pieces (IMAP APPEND)."""
        return SpoolFile(self.core.root)

    async def append(self, mailbox: str, items: list[Appended],
                     replaces: tuple[str, int] | None = None) -> list[Delivered]:
        """Add spooled messages in one transaction; durable when this returns.
        ``replaces=(mailbox, uid)`` removes that message in the same transaction."""
        delivered, changes = await self._run(self.core.append, mailbox, items, replaces)
        self._publish(changes)
        return delivered

    async def messages(self, mailbox: str, changed_since: int = 0,
                       uids: Iterable[int] | None = None) -> list[Message]:
        return await self._run(self.core.messages, mailbox, changed_since,
                               None if uids is None else list(uids))

    async def selection(self, mailbox: str) -> tuple[Mailbox, list[int], list[str], int | None]:
        return await self._run(self.core.selection, mailbox)

    async def text_search(self, mailbox: str, needle: str, column: str | None
                          ) -> tuple[set[int], set[int]]:
        return await self._run(self.core.text_search, mailbox, needle, column)

    async def uid_ids(self, mailbox: str) -> dict[int, int]:
        return await self._run(self.core.uid_ids, mailbox)

    async def summaries(self, message_ids: Iterable[int]) -> dict[int, str]:
        return await self._run(self.core.summaries, list(message_ids))

    async def get_metadata(self, mailbox: str | None, entries: Iterable[str],
                           depth: str = "0") -> list[tuple[str, bytes]]:
        return await self._run(self.core.get_metadata, mailbox, list(entries), depth)

    async def set_metadata(self, mailbox: str | None,
                           items: Iterable[tuple[str, bytes | None]]) -> None:
        await self._run(self.core.set_metadata, mailbox, list(items))

    async def total_size(self) -> int:
        return await self._run(self.core.total_size)

    async def subscriptions(self) -> list[str]:
        return await self._run(self.core.subscriptions)

    async def read(self, message_id: int) -> bytes:
        return await self._run(self.core.read, message_id)

    async def store_flags(self, mailbox: str, uids: Iterable[int], mode: str, flags: Flags,
                          unchanged_since: int | None = None
                          ) -> tuple[list[Message], list[int]]:
        changed, failed, changes = await self._run(self.core.store_flags, mailbox, list(uids),
                                                   mode, flags, unchanged_since)
        self._publish(changes)
        return changed, failed

    async def copy(self, mailbox: str, uids: Iterable[int], target: str) -> list[tuple[int, int]]:
        pairs, changes = await self._run(self.core.copy, mailbox, list(uids), target)
        self._publish(changes)
        return pairs

    async def move(self, mailbox: str, uids: Iterable[int], target: str) -> list[tuple[int, int]]:
        pairs, changes = await self._run(self.core.move, mailbox, list(uids), target)
        self._publish(changes)
        return pairs

    async def expunge(self, mailbox: str, uids: Iterable[int] | None = None) -> list[int]:
        gone, changes = await self._run(self.core.expunge, mailbox,
                                        None if uids is None else list(uids))
        self._publish(changes)
        return gone

    async def vanished(self, mailbox: str, since_modseq: int) -> list[int]:
        return await self._run(self.core.vanished, mailbox, since_modseq)

    async def search(self, query: str, mailbox: str | None = None,
                     limit: int = 0) -> list[Message]:
        return await self._run(self.core.search, query, mailbox, limit)


class Store:
    """All accounts under ``data_dir/accounts``; opened once, shared by all sessions."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.changes = ChangeHub()
        self._accounts: dict[str, Account] = {}
        self._lock = asyncio.Lock()

    async def account(self, name: str, quota_bytes: int = 0,
                      default_mailboxes: Iterable[str] = ()) -> Account:
        """Open (and on first use create) an account's store."""
        existing = self._accounts.get(name)
        if existing is not None:
            existing.core.quota_bytes = quota_bytes
            return existing
        async with self._lock:
            existing = self._accounts.get(name)
            if existing is not None:
                return existing
            root = account_dir(self.data_dir, name)
            core = await asyncio.to_thread(AccountStore, name, root, quota_bytes)
            account = Account(core, self.changes)
            await account.ensure_mailboxes(default_mailboxes)
            self._accounts[name] = account
            # Mail stored before the substring index (or not indexed before a stop)
            # is indexed in the background; until then SEARCH decodes it.
            if await asyncio.to_thread(core.find_unindexed):
                account.start_indexing()
            return account

    def feature_path(self, account: str, feature: str) -> Path:
        """Where a feature keeps its own per-account database: ``<feature>.db`` in the
        account's directory (e.g. the junk filter's word counts). The feature owns
        the file; the store only names it, so no other package knows the layout."""
        if not feature.isascii() or not feature.isalpha() or not feature.islower():
            raise ValueError(f"feature name {feature!r}: expected lower-case letters")
        return account_dir(self.data_dir, account) / f"{feature}.db"

    def close(self) -> None:
        for account in self._accounts.values():
            account.core.close()
        self._accounts.clear()


__all__ = ["Account", "Appended", "SpoolFile", "Store", "StoreError"]
