"""The async face of the store: accounts opened on demand, work in threads.

    store = Store(data_dir)
    account = await store.account("alice")
    delivered = await account.deliver("Inbox", data)     # on disk when this returns
    with store.changes.subscribe("alice") as sub: ...

SQLite work and fsyncs run in worker threads (DESIGN.md principle 4), so the
event loop is never blocked by disk. Changes are published after commit.

Group commit. Deliveries into one account (``deliver``, ``deliver_spool``,
``append``, from any number of sessions) each do their own file work in
their own worker thread: write (or take the spool), parse, rename or link to
the final name, fsync the file, and fsync the directory, that last shared
with every concurrent caller (one fsync covers all entries made before it
started). Concurrent callers' fsyncs merge into few journal commits. Then
they queue for the account's committer, which commits everything queued in
one transaction, one COMMIT (one WAL fsync), then wakes every caller. A lone
delivery does not wait for company: the committer starts at once when idle,
and a group is whatever queued while the previous commit ran. Invariants:

- a caller's await returns only after its rows are committed (durable);
- one delivery's error (over quota, mailbox gone) fails only that delivery;
- changes are published to the :class:`ChangeHub` only after the commit;
- indexing (full-text and substring) is never on this path: it follows in the
  background within about :data:`INDEX_DELAY` and is durable as a step (the
  rows say what is pending; the account's next open resumes it).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from kittiwake.store import metrics as store_metrics
from kittiwake.store.account import AccountStore, Appended, Delivery, discard, read_credentials
from kittiwake.store.changes import ChangeHub
from kittiwake.store.messagefile import MessageFile
from kittiwake.store.model import (
    AccountNotFound,
    Change,
    Delivered,
    Flags,
    FlagsStored,
    Mailbox,
    Message,
    StoreError,
)
from kittiwake.store.spool import SpoolFile

T = TypeVar("T")

# Seconds between a delivery and the indexing of its search text (batches bursts).
INDEX_DELAY = 1.0


# Deliveries' own file work (write, parse, rename, fsync) runs in these threads,
# many at once: concurrent fsyncs merge into few journal commits, so more in
# flight means fewer, fuller commits (the loop's default executor has few threads).
FILE_THREADS = 32
_file_pool: ThreadPoolExecutor | None = None


def _file_threads() -> ThreadPoolExecutor:
    global _file_pool
    if _file_pool is None:
        _file_pool = ThreadPoolExecutor(FILE_THREADS, thread_name_prefix="kittiwake-deliver")
    return _file_pool


def _discard_placed(task: asyncio.Future[Delivery]) -> None:
    if not task.cancelled() and task.exception() is None:
        discard(task.result())


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
        self._queued: list[tuple[Delivery, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None
        # The committer runs in a thread of its own, not behind the callers' work
        # in the loop's default executor.
        self._commit_threads = ThreadPoolExecutor(1, thread_name_prefix="kittiwake-commit")

    async def _run(self, fn: Callable[..., T], *args: Any, op: str | None = None,
                   executor: ThreadPoolExecutor | None = None) -> T:
        op = op or getattr(fn, "__name__", "other")  # a method of AccountStore
        started = time.monotonic()
        try:
            if executor is None:
                result = await asyncio.to_thread(fn, *args)
            else:
                result = await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
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
                      received: int = 0, mailfrom: str = "", rcptto: str = "",
                      prefix: bytes = b"") -> Delivered:
        """Store a message; returns only once file and row are durably on disk.

        ``prefix`` (headers added here) is kept in the row; the message is
        ``prefix + data``. Commits in a group with concurrent deliveries.
        """
        started = time.monotonic()
        delivery = await self._placed(self._prepare_bytes, mailbox, data, flags, received,
                                      mailfrom, rcptto, prefix, op="prepare")
        [delivered] = await self._commit("deliver", started, delivery)
        return delivered

    async def deliver_spool(self, mailbox: str, spool: SpoolFile | Path, prefix: bytes = b"",
                            flags: Flags = Flags(), received: int = 0, mailfrom: str = "",
                            rcptto: str = "", keep: bool = False) -> Delivered:
        """Deliver a spooled message without copying it; durable when this returns.

        ``spool`` is a :class:`SpoolFile` (finished here if it is not) or the path
        of a file on the store's file system (the account's or the data
        directory's ``tmp/``, see :meth:`Store.spool`). The message is ``prefix +
        file``: ``prefix`` holds the headers added at delivery (Received,
        Authentication-Results, DKIM-Signature) and is kept in the row. The file
        is renamed into place, or with ``keep`` hard-linked (its owner keeps it
        for further recipients and removes it after the last). Without ``keep``
        the store owns the file from this call on: it is gone when this returns
        or raises.
        """
        started = time.monotonic()
        if isinstance(spool, SpoolFile):
            # Flushed, not fsynced: the group commit fsyncs it once it is in place.
            path = spool.path if spool.finished else \
                (await self._run(partial(spool.finish, sync=False)))[0]
        else:
            path = Path(spool)
        try:
            delivery = await self._placed(self._prepare_spool, mailbox, path, prefix, flags,
                                          received, mailfrom, rcptto, keep, op="prepare_spool")
        except BaseException:
            if not keep:
                path.unlink(missing_ok=True)
            raise
        [delivered] = await self._commit("deliver_spool", started, delivery)
        return delivered

    def spool(self) -> SpoolFile:
        """A new spool file for a message arriving in pieces (IMAP APPEND)."""
        return SpoolFile(self.core.root)

    async def append(self, mailbox: str, items: list[Appended],
                     replaces: tuple[str, int] | None = None) -> list[Delivered]:
        """Add spooled messages in one transaction; durable when this returns.
        ``replaces=(mailbox, uid)`` removes that message in the same transaction."""
        started = time.monotonic()
        delivery = await self._placed(self._prepare_appended, mailbox, items, replaces,
                                      op="prepare_appended")
        return await self._commit("append", started, delivery)

    async def _placed(self, fn: Callable[..., Delivery], *args: Any, op: str) -> Delivery:
        """Run a caller's file work in the delivery threads. A caller that goes away
        meanwhile (its connection dropped) is not acknowledged: the files it placed
        are removed when the work ends, so no file without a row stays behind."""
        task = asyncio.ensure_future(self._run(fn, *args, op=op, executor=_file_threads()))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_discard_placed)
            raise

    # A caller's own share, in its worker thread: write (or take) the file, parse it,
    # place it under its final name and fsync it. Then it queues for the COMMIT.

    def _prepare_bytes(self, mailbox: str, data: bytes, flags: Flags, received: int,
                       mailfrom: str, rcptto: str, prefix: bytes) -> Delivery:
        new = self.core.prepare(data, flags, received, mailfrom, rcptto, prefix)
        return self.core.prepared(mailbox, [new])

    def _prepare_spool(self, mailbox: str, path: Path, prefix: bytes, flags: Flags,
                       received: int, mailfrom: str, rcptto: str, keep: bool) -> Delivery:
        new = self.core.prepare_spool(path, prefix, flags, received, mailfrom, rcptto, keep)
        return self.core.prepared(mailbox, [new])

    def _prepare_appended(self, mailbox: str, items: list[Appended],
                          replaces: tuple[str, int] | None) -> Delivery:
        return self.core.prepared(mailbox, self.core.prepare_appended(items), replaces)

    async def _commit(self, op: str, started: float, delivery: Delivery) -> list[Delivered]:
        """Queue a placed delivery for the group commit and wait for its outcome."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((delivery, future))
        if self._committer is None:
            self._committer = asyncio.get_running_loop().create_task(self._commit_queued())
        # Shielded: a caller that goes away (connection dropped) does not undo a
        # commit in progress; its files belong to the group until the group ends.
        await asyncio.shield(future)
        store_metrics.OPERATION_SECONDS.labels(op=op).observe(time.monotonic() - started)
        if delivery.error is not None:
            store_metrics.OPERATIONS_TOTAL.labels(op=op, result="error").inc()
            raise delivery.error
        store_metrics.OPERATIONS_TOTAL.labels(op=op, result="ok").inc()
        return delivery.delivered

    async def _commit_queued(self) -> None:
        """The account's committer: one transaction for everything queued, until
        nothing is. A group is whatever queued while the previous COMMIT ran."""
        try:
            while self._queued:
                group, self._queued = self._queued, []
                await self._commit_placed(group, time.monotonic())
        finally:
            self._committer = None
            for delivery, future in self._queued:  # only if the loop is going away
                delivery.error = StoreError("the store is closing")
                if not future.done():
                    future.set_result(None)

    async def _commit_placed(self, group: list[tuple[Delivery, asyncio.Future[None]]],
                             started: float) -> None:
        """A group's COMMIT; then its changes go to the hub and its callers wake."""
        deliveries = [d for d, _ in group]
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._commit_threads, self.core.commit_placed, deliveries)
        except BaseException as exc:  # not an Exception: the process is stopping
            for delivery in deliveries:
                if delivery.error is None and not delivery.delivered:
                    delivery.error = StoreError(f"delivery interrupted: {exc!r}")
            raise
        finally:
            store_metrics.GROUP_COMMIT_SECONDS.observe(time.monotonic() - started)
            store_metrics.GROUP_COMMIT_SIZE.observe(len(deliveries))
            changes = [c for d in deliveries if d.error is None for c in d.changes]
            if changes:
                self.hub.publish(self.name, changes)
            for _, future in group:
                if not future.done():
                    future.set_result(None)
        if self.core.to_index:
            self.start_indexing()

    async def messages(self, mailbox: str, changed_since: int = 0,
                       uids: Iterable[int] | None = None) -> list[Message]:
        return await self._run(self.core.messages, mailbox, changed_since,
                               None if uids is None else list(uids))

    async def selection(self, mailbox: str) -> tuple[Mailbox, list[int], list[str], int | None]:
        return await self._run(self.core.selection, mailbox)

    async def text_search(self, mailbox: str, needle: str, column: str | None
                          ) -> tuple[set[int], set[int]]:
        return await self._run(self.core.text_search, mailbox, needle, column)

    async def text_matches(self, mailbox: str, needle: str, column: str | None,
                           then: Callable[[list[Message], list[Message]], T]) -> T:
        """:meth:`AccountStore.text_matches`, handed in the same worker thread to
        ``then`` (which may read message files: a header key checks its field)."""
        def work() -> T:
            return then(*self.core.text_matches(mailbox, needle, column))

        return await self._run(work, op="text_matches")

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
        """The whole message: prefix and file."""
        return await self._run(self.core.read, message_id)

    async def message_files(self, message_ids: Iterable[int]) -> dict[int, MessageFile]:
        """Where each message's octets are (prefix, file), for readers that stream."""
        return await self._run(self.core.message_files, list(message_ids))

    async def store_flags(self, mailbox: str, uids: Iterable[int], mode: str, flags: Flags,
                          unchanged_since: int | None = None
                          ) -> tuple[list[Message], list[int]]:
        changed, failed, changes = await self._run(self.core.store_flags, mailbox, list(uids),
                                                   mode, flags, unchanged_since)
        self._publish(changes)
        return changed, failed

    async def update_flags(self, mailbox: str, uids: Iterable[int], mode: str, flags: Flags,
                           unchanged_since: int | None = None) -> FlagsStored:
        """:meth:`store_flags` that also gives the flags of the messages left as they were."""
        stored, changes = await self._run(self.core.update_flags, mailbox, list(uids), mode,
                                          flags, unchanged_since, op="store_flags")
        self._publish(changes)
        return stored

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
        self._spool_lock = _hold_spool_lock(self.data_dir)

    def spool(self) -> SpoolFile:
        """A new spool file in the data directory's ``tmp/`` (same file system as
        every account), for a message whose accounts are not known yet (SMTP);
        hand it to :meth:`Account.deliver_spool` (``keep=True`` for all but the
        last recipient account, or for all and discard it after)."""
        return SpoolFile(self.data_dir)

    def credentials(self, name: str) -> str | None:
        """Account ``name``'s stored credentials (JSON of SCRAM/CRAM keys), or None.

        Blocking (a read-only SQLite query, no side effects on the account): for
        the SASL servers' worker threads."""
        return read_credentials(account_dir(self.data_dir, name))

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
            account._commit_threads.shutdown(wait=True)
            account.core.close()
        self._accounts.clear()
        if self._spool_lock >= 0:
            os.close(self._spool_lock)
            self._spool_lock = -1


def _hold_spool_lock(data_dir: Path) -> int:
    """Lock ``data_dir/tmp/lock`` shared; first clean ``tmp/`` if no other process
    holds it (leftover spools of a crash were never acknowledged)."""
    tmp = data_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    fd = os.open(tmp / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass
    else:
        for entry in tmp.iterdir():
            if entry.name != "lock" and entry.is_file():
                entry.unlink(missing_ok=True)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


__all__ = ["Account", "Appended", "SpoolFile", "Store", "StoreError"]
