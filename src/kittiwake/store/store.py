"""The async face of the store: accounts opened on demand, work in threads.

    store = Store(data_dir)
    account = await store.account("alice")
    delivered = await account.deliver("Inbox", data)     # on disk when this returns
    with store.changes.subscribe("alice") as sub: ...

SQLite work and fsyncs run in worker threads (DESIGN.md principle 4), so the
event loop is never blocked by disk. Changes are published after commit.

Group commit (:mod:`kittiwake.store.groupcommit`). Deliveries into one
account (``deliver``, ``deliver_spool``, ``append``, from any number of
sessions) each do their own file work in a delivery thread: write the file
once at its final name (or take the spool by rename or hard link), read its
header fields (the part tree is left to the background step below),
and fsync the file while its directory's fsync (shared with every concurrent
caller, :class:`kittiwake.durable.DirSync`) runs beside it in the directory's own
thread; a lone caller fsyncs the directory itself after its file.
They queue for the account's committer thread, which commits everything
queued in one transaction, one COMMIT (one WAL fsync). A one-message delivery
queues before its fsyncs, so they run while its transaction commits. A lone
delivery does not wait for company: the committer starts at once when idle,
and a group is whatever queued while the previous commit ran. Invariants:

- a caller's await returns only after its rows are committed and its files
  durable (both fsynced);
- one delivery's error (over quota, mailbox gone) fails only that delivery;
- changes are published to the :class:`ChangeHub` only then, after the
  commit and the fsyncs, in commit order;
- one hand-off to a delivery thread per delivery, one wake-up of the loop per
  group;
- indexing (full-text and substring), and the part tree of the summary
  (:mod:`kittiwake.store.summary`), are never on this path: they follow in the
  background within about :data:`INDEX_DELAY` and are durable as a step (the
  rows say what is pending; the account's next open resumes it). Its text
  extraction runs in :attr:`Store.cpu` (the server's worker processes,
  :mod:`kittiwake.cpupool`); its rows are written by the indexer's thread.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from kittiwake import durable
from kittiwake.cpupool import INLINE, CpuRunner
from kittiwake.message.headers import Headers
from kittiwake.store import metrics as store_metrics
from kittiwake.store.account import AccountStore, Appended, Delivery, discard, read_credentials
from kittiwake.store.changes import ChangeHub
from kittiwake.store.messagefile import MessageFile
from kittiwake.store.model import (
    METADATA,
    SUBSCRIPTION,
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
from kittiwake.store.threads import Threads

T = TypeVar("T")

# Seconds between a delivery and the indexing of its search text (batches bursts).
INDEX_DELAY = 1.0
# Messages indexed per transaction of the background indexer.
INDEX_BATCH = 200


# Deliveries' own file work (write, header fields, rename, fsync) runs in these threads,
# many at once (kittiwake.store.threads).
FILE_THREADS = 32
_file_threads = Threads(FILE_THREADS, "kittiwake-deliver")


class _Ticket:
    """A caller waiting for its delivery: the future the committer settles (with the
    :class:`Delivery`), and whether the caller went away meanwhile."""

    __slots__ = ("abandoned", "future")

    def __init__(self, future: asyncio.Future[Delivery]) -> None:
        self.future = future
        self.abandoned = False

    def fail(self, exc: BaseException) -> None:
        """From a delivery thread: the caller's share failed."""
        def fail() -> None:
            if self.future.done():
                return
            if self.abandoned or isinstance(exc, asyncio.CancelledError):
                self.future.cancel()  # nobody will look at the exception
            else:
                self.future.set_exception(exc)
        try:
            self.future.get_loop().call_soon_threadsafe(fail)
        except RuntimeError:  # the loop is closed
            pass


# The delivery operations' metric children, looked up once (not per delivery).
_DELIVERY_OPS = ("deliver", "deliver_spool", "append", "prepare", "prepare_spool",
                 "prepare_appended")
_OP_SECONDS = {op: store_metrics.OPERATION_SECONDS.labels(op=op) for op in _DELIVERY_OPS}
_OP_OK = {op: store_metrics.OPERATIONS_TOTAL.labels(op=op, result="ok") for op in _DELIVERY_OPS}
_OP_ERROR = {op: store_metrics.OPERATIONS_TOTAL.labels(op=op, result="error")
             for op in _DELIVERY_OPS}


def account_dir(data_dir: Path, name: str) -> Path:
    if not name or "/" in name or name.startswith(".") or "\x00" in name:
        raise AccountNotFound(f"invalid account name {name!r}")
    return data_dir / "accounts" / name


class Account:
    """Async operations on one account; each runs its transaction in a thread."""

    def __init__(self, core: AccountStore, hub: ChangeHub,
                 cpu: Callable[[], CpuRunner] = lambda: INLINE) -> None:
        self.core = core
        self.name = core.name
        self.hub = hub
        self._cpu = cpu
        self._indexer: asyncio.Task[None] | None = None

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
                if not await asyncio.to_thread(self.core.index_pending, INDEX_BATCH,
                                               self._cpu()):
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
        """SUBSCRIBE/UNSUBSCRIBE; every session of the account is told (a Change of
        kind ``subscription``, e.g. for IMAP NOTIFY, RFC 5465 §5.5)."""
        await self._run(self.core.subscribe, name, subscribed)
        self._publish([Change(SUBSCRIPTION, 0, name, extra={"subscribed": subscribed})])

    async def deliver(self, mailbox: str, data: bytes, flags: Flags = Flags(),
                      received: int = 0, mailfrom: str = "", rcptto: str = "",
                      prefix: bytes = b"") -> Delivered:
        """Store a message; returns only once file and row are durably on disk.

        ``prefix`` (headers added here) is kept in the row; the message is
        ``prefix + data``. Commits in a group with concurrent deliveries.
        """
        [delivered] = await self._deliver("deliver", "prepare", self.core.stage_bytes,
                                          mailbox, data, flags, received, mailfrom, rcptto,
                                          prefix)
        return delivered

    async def deliver_spool(self, mailbox: str, spool: SpoolFile | Path, prefix: bytes = b"",
                            flags: Flags = Flags(), received: int = 0, mailfrom: str = "",
                            rcptto: str = "", keep: bool = False,
                            headers: Headers | None = None) -> Delivered:
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

        ``headers``: the file's header fields as its writer parsed them (the SMTP
        server has, from the spooled head), so that the store does not read and
        parse them again; they must be the file's own (the prefix's are parsed
        here). Without them the store reads the header section from the file.
        """
        [delivered] = await self._deliver("deliver_spool", "prepare_spool", self._stage_spool,
                                          mailbox, spool, prefix, flags, received, mailfrom,
                                          rcptto, keep, headers)
        return delivered

    def spool(self) -> SpoolFile:
        """A new spool file for a message arriving in pieces (IMAP APPEND), for
        :meth:`append` or :meth:`deliver_spool` of this account.

        Written at the final name of a message id reserved now, where the store
        then takes it as it is: the message is written once, no copy, no rename;
        its file is created only when its first octets are written out (``lazy``,
        see :class:`SpoolFile`): for a small message by the delivery thread that
        takes it, not on the event loop (its shard directory made then if it is
        the shard's first message). If no id can be had without waiting (the
        block of reserved ids is used up), it goes to ``tmp/``. A spool never
        delivered is removed by :meth:`SpoolFile.discard`, or at the next open
        after a crash (a file without a row)."""
        message_id = self.core.ready.take()  # a file made ahead, its name durable
        made = message_id is not None
        if not made:
            message_id = self.core.try_reserve_id()
        if message_id is not None:
            return SpoolFile(self.core.root, durable.message_path(self.core.root, message_id),
                             lazy=True, made=made)
        return SpoolFile(self.core.root)

    async def append(self, mailbox: str, items: list[Appended],
                     replaces: tuple[str, int] | None = None) -> list[Delivered]:
        """Add spooled messages in one transaction; durable when this returns.
        ``replaces=(mailbox, uid)`` removes that message in the same transaction.
        The files need not be fsynced: the store syncs them at their final names."""
        return await self._deliver("append", "prepare_appended", self.core.stage_appended,
                                   mailbox, items, replaces)

    def _stage_spool(self, mailbox: str, spool: SpoolFile | Path, prefix: bytes, flags: Flags,
                     received: int, mailfrom: str, rcptto: str, keep: bool,
                     headers: Headers | None) -> Delivery:
        fd: int | None = None
        size: int | None = None
        made = False
        if isinstance(spool, SpoolFile):
            if headers is None:  # from what the spool still has in memory
                headers = spool.head_fields()
            if not spool.finished:
                # Flushed (a small message's file created now, in this thread), not
                # fsynced: it is synced once it is in place, through this descriptor
                # (no second open).
                try:
                    fd = spool.take()
                except BaseException:
                    if not keep:
                        spool.discard()
                    raise
            # After take: a lazy spool's file may have gone to tmp/ then.
            path, size, made = spool.path, spool.size, spool.made
        else:
            path = Path(spool)
        try:
            return self.core.stage_spool(mailbox, path, prefix, flags, received, mailfrom,
                                         rcptto, keep, headers, fd, size, made and not keep)
        except BaseException:
            if not keep:
                path.unlink(missing_ok=True)
            raise

    async def _deliver(self, op: str, share: str, stage: Callable[..., Delivery],
                       *args: object) -> list[Delivered]:
        """Run a caller's share in the delivery threads (:meth:`_work`) and wait for
        its group commit to settle it (:mod:`kittiwake.store.groupcommit`).

        A caller that goes away meanwhile (its connection dropped) is not
        committed if its share is not done yet: its files are removed then, so no
        file without a row stays behind; once queued, it is committed but nobody is
        told, as when the connection drops after the commit (the ticket's future is
        cancelled with the caller; the committer's thread leaves a done future be).
        """
        started = time.monotonic()
        ticket = _Ticket(asyncio.get_running_loop().create_future())
        _file_threads.submit(self._work, ticket, share, stage, args)
        try:
            delivery = await ticket.future
        except asyncio.CancelledError:
            ticket.abandoned = True
            raise
        except Exception:
            _OP_ERROR[op].inc()
            raise
        finally:
            _OP_SECONDS[op].observe(time.monotonic() - started)
        if delivery.error is not None:
            _OP_ERROR[op].inc()
            raise delivery.error
        _OP_OK[op].inc()
        return delivery.delivered

    def _work(self, ticket: _Ticket, share: str, stage: Callable[..., Delivery],
              args: tuple[object, ...]) -> None:
        """A caller's share, in its delivery thread: stage the files (written or
        taken, summarized, at their final names), submit them to the group commit,
        fsync them meanwhile. A one-message delivery is submitted before its fsyncs
        (they overlap the COMMIT); others after."""
        started = time.monotonic()
        try:
            delivery = stage(*args)
        except BaseException as exc:
            _OP_ERROR[share].inc()
            _OP_SECONDS[share].observe(time.monotonic() - started)
            ticket.fail(exc)
            return
        delivery.on_done, delivery.token = self._settled, ticket
        early = len(delivery.messages) == 1 and delivery.replaces is None
        # Claimed before the answer can reach the caller (ReadyFiles.wait relies on it).
        claimed = self.core.ready.claim()
        submitted = False
        try:
            submitted = self._submit(delivery, ticket, share, started, early)
        finally:
            if claimed:  # (its caller is answered or about to be)
                self.core.ready.end_claim(fill=submitted)

    def _submit(self, delivery: Delivery, ticket: _Ticket, share: str, started: float,
                early: bool) -> bool:
        """Submit and sync; False if it failed before the commit (the caller is told
        through its ticket)."""
        try:
            if not early:
                self.core.sync_staged(delivery)
            if ticket.abandoned:
                raise asyncio.CancelledError
            self.core.committer.submit(delivery, early)
        except BaseException as exc:
            discard(delivery)
            _OP_ERROR[share].inc()
            _OP_SECONDS[share].observe(time.monotonic() - started)
            ticket.fail(exc)
            return False
        if early:
            error: Exception | None = None
            try:
                self.core.sync_staged(delivery)
            except Exception as exc:
                error = exc
            self.core.committer.synced(delivery, error)
        _OP_OK[share].inc()
        _OP_SECONDS[share].observe(time.monotonic() - started)
        return True

    def _settled(self, deliveries: list[Delivery]) -> None:
        """The committer's word that deliveries are settled (its thread): one call on
        the loop for the lot."""
        loop = cast(_Ticket, deliveries[0].token).future.get_loop()
        try:
            loop.call_soon_threadsafe(self._wake, deliveries)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _wake(self, deliveries: list[Delivery]) -> None:
        """On the loop: publish the settled deliveries' changes (committed and
        durable), then wake their callers."""
        changes = [c for d in deliveries if d.error is None for c in d.changes]
        if changes:
            self.hub.publish(self.name, changes)
        for delivery in deliveries:
            future = cast(_Ticket, delivery.token).future
            if not future.done():
                future.set_result(delivery)
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
        """Set (None: remove) metadata entries (RFC 5464), all or none; every session
        is told (a Change of kind ``metadata``; RFC 5465 §5.6, §5.7)."""
        entries = list(items)
        await self._run(self.core.set_metadata, mailbox, entries)
        self._publish([Change(METADATA, 0, mailbox or "",
                              extra={"entries": tuple(e for e, _ in entries)})])

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

    def __init__(self, data_dir: Path, cpu: CpuRunner = INLINE) -> None:
        self.data_dir = Path(data_dir)
        self.changes = ChangeHub()
        # Where the background indexer's text extraction runs (kittiwake.cpupool);
        # the server sets its worker pool here before opening accounts.
        self.cpu = cpu
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
                      default_mailboxes: Iterable[str] = (),
                      quota_messages: int | None = None) -> Account:
        """Open (and on first use create) an account's store. ``quota_messages`` (None:
        leave as it is) limits the messages of all its mailboxes (RFC 9208 §5.2)."""
        existing = self._accounts.get(name)
        if existing is not None:
            existing.core.quota_bytes = quota_bytes
            if quota_messages is not None:
                existing.core.quota_messages = quota_messages
            return existing
        async with self._lock:
            existing = self._accounts.get(name)
            if existing is not None:
                return existing
            root = account_dir(self.data_dir, name)
            core = await asyncio.to_thread(AccountStore, name, root, quota_bytes,
                                           quota_messages or 0)
            account = Account(core, self.changes, lambda: self.cpu)
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
            if account._indexer is not None:  # a batch in its thread stops at the lock
                account._indexer.cancel()
            account.core.close()  # its committer commits what is queued first
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
