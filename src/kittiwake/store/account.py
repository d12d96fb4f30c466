"""One account's mail: mailboxes and messages in SQLite, bodies in files.

:class:`AccountStore` is the synchronous core; every method is one SQLite
transaction under the account's lock and is meant to run in a worker thread
(:class:`kittiwake.store.store.Account` is the async face). Writes follow
DESIGN.md "Durability": the message file is written, fsynced and renamed into
place, its directory fsynced, and only then is the transaction committed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from kittiwake import durable
from kittiwake.cpupool import INLINE, CpuRunner
from kittiwake.log import get_logger
from kittiwake.message.filebytes import FileBytes
from kittiwake.message.headers import Headers
from kittiwake.message.searchtext import (
    LARGE_MESSAGE,
    IndexJob,
    IndexText,
    fold,
    index_texts,
)
from kittiwake.sqlitedb import Checkpointer, transaction
from kittiwake.store.accountlock import AccountLock
from kittiwake.store.groupcommit import GroupCommitter
from kittiwake.store.messagefile import MessageFile
from kittiwake.store.model import (
    Change,
    Delivered,
    FetchRow,
    FileRow,
    FlagRow,
    Flags,
    FlagsStored,
    IdRow,
    Mailbox,
    MailboxExists,
    MailboxNotFound,
    Message,
    MetadataLimit,
    OverQuota,
    StoreError,
)
from kittiwake.store.readyfiles import ReadyFiles
from kittiwake.store.schema import (
    DELETED,
    INDEX_DONE,
    INDEX_IMPOSSIBLE,
    INDEX_PENDING,
    SEEN,
    connect,
)
from kittiwake.store.spool import SpoolFile
from kittiwake.store.summary import (
    MAX_INDEX_CHARS,
    PENDING,
    Summary,
    file_header_fields,
    header_fields,
    summarize,
    summarize_head,
)

logger = get_logger("store")
R = TypeVar("R", FetchRow, IdRow, FlagRow, FileRow)
N = TypeVar("N", IdRow, FlagRow, FileRow)
# The columns of each narrow row (AccountStore.fetch_narrow): its fields, in order.
_NARROW_COLUMNS: dict[type, str] = {t: ", ".join(t._fields) for t in (IdRow, FlagRow, FileRow)}

SEPARATOR = "/"
# The ``meta`` keys listing early-committed deliveries start so (_recover_unsynced).
UNSYNCED = "unsynced"
# Message ids reserved at a time for group commits (see AccountStore._reserve_ids).
ID_BLOCK = 1024
# Summaries computed on demand kept in memory until their row gets its own.
RECENT_SUMMARIES = 64
# How long the background indexer's transaction may go on once a commit waits for
# the account's lock: each transaction costs the search index a segment of its
# own (about half of a message's indexing when there is one per message), so it
# takes a few messages more; a waiting delivery's answer is that much later.
INDEX_SLICE = 0.005
# RFC 6154 §2: special-use attributes of the default mailboxes, by name.
SPECIAL_USE = {
    "sent": "\\Sent", "drafts": "\\Drafts", "trash": "\\Trash", "archive": "\\Archive",
    "junk": "\\Junk",
}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class NewMessage:
    """A message to add: a file already written (and fsynced for delivery).

    ``size`` counts the whole message, ``prefix`` (kept in the row) included.
    With ``keep_source`` the file is hard-linked into place and stays its
    owner's (a spool shared by several recipients); else it is renamed.
    """

    tmp_path: Path
    size: int
    summary: Summary
    flags: Flags = field(default_factory=Flags)
    received: int = 0
    mailfrom: str = ""
    rcptto: str = ""
    prefix: bytes = b""
    keep_source: bool = False


@dataclass
class Delivery:
    """One caller's share of a group commit: messages for one mailbox, all or none.

    :meth:`AccountStore.commit_group` sets ``delivered`` and ``changes``, or
    ``error`` when this delivery failed (the others of the group are not affected).
    """

    mailbox: str
    messages: list[NewMessage]
    replaces: tuple[str, int] | None = None
    delivered: list[Delivered] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    error: Exception | None = None
    ids: list[int] = field(default_factory=list)  # message ids, given by place_group
    placed: list[Path] = field(default_factory=list)  # the files at their final names
    # Committed while its files are still being fsynced (see GroupCommitter): its
    # transaction lists its ids in the store's row for the open-time recovery.
    early: bool = False
    committed: bool = False  # its rows are in a committed transaction
    synced: bool = True  # its files are durable (an early one: once its caller says so)
    sync_error: Exception | None = None
    # Called (by the committer's thread, must not block) once the delivery is settled:
    # committed and durable, or failed. The submitter's own handle rides in ``token``.
    on_done: Callable[[list[Delivery]], None] | None = None
    token: object = None
    # Descriptors of placed files still open from their writing (stage_bytes), so
    # their fsync needs no second open; sync_staged or discard closes them.
    fds: dict[Path, int] = field(default_factory=dict)
    # Placed files written into files made ahead (readyfiles.ReadyFiles): their
    # names are durable already, so sync_staged fsyncs no directory for them.
    made: set[Path] = field(default_factory=set)


@dataclass
class Appended:
    """A spooled message file for :meth:`AccountStore.append` (fsynced by the store).

    ``spool``: the :class:`SpoolFile` written at ``path``, not finished: the
    delivery thread flushes it, summarizes its header from the octets it still
    holds and fsyncs it through its descriptor (no reading back, no second open).
    The store owns it from the call on, as it owns the file."""

    path: Path
    flags: Flags = field(default_factory=Flags)
    received: int = 0  # INTERNALDATE in ms; 0: now
    spool: SpoolFile | None = None


_large_parses = threading.Semaphore(1)


@contextmanager
def _parsing(size: int) -> Iterator[None]:
    """Indexing messages above :data:`LARGE_MESSAGE` take turns, process-wide. Each
    is read through a window (message.searchtext.index_text), but may still decode
    a text part of a few MiB, so ten such messages hold one of those at a time."""
    if size <= LARGE_MESSAGE:
        yield
        return
    with _large_parses:
        yield


class AccountStore:
    """Synchronous store of one account. Thread-safe through one lock."""

    def __init__(self, name: str, root: Path, quota_bytes: int = 0,
                 quota_messages: int = 0) -> None:
        self.name = name
        self.root = root
        self.quota_bytes = quota_bytes
        # At most this many messages in all mailboxes (RFC 9208 §5.2 MESSAGE); 0: none.
        self.quota_messages = quota_messages
        self.lock = AccountLock()
        self.to_index: list[int] = []  # message ids waiting for index_pending
        self.db = connect(root / "index.db")
        # The log is checkpointed by a thread of its own, not by the commit that
        # fills it (a group commit whose callers wait): see sqlitedb.Checkpointer.
        self.db.execute("PRAGMA wal_autocheckpoint = 0")
        self.checkpointer = Checkpointer(root / "index.db")
        self._id_lock = threading.Lock()
        self._next_id = self._id_limit = 0  # the reserved block of ids (see _reserve_ids)
        self._lock_fd = _hold_open_lock(root)
        # Empty message files whose names are durable, for deliveries to write into.
        self.ready = ReadyFiles(root, self._reserve_ids)
        # Early-committed deliveries not known durable (first id -> ids), as this
        # store's row in ``meta`` says (see _recover_unsynced; changed under the
        # account's lock, in the transactions that write the row); the first ids
        # of those durable since, dropped from the row by the next transaction
        # (commit_placed); and the committer thread (started on use).
        self._unsynced_key = f"{UNSYNCED}@{secrets.token_hex(8)}"
        self._unsynced: dict[int, tuple[int, ...]] = {}
        self._synced_markers: list[int] = []
        self._markers_lock = threading.Lock()
        self._committer: GroupCommitter | None = None
        self._closed = False
        # Summaries computed on demand for rows still PENDING (see _summary_now).
        self._summary_lock = threading.Lock()
        self._recent_summaries: dict[int, str] = {}
        if self._lock_fd.exclusive:
            # Nobody else (no other process, no other AccountStore here) has the
            # account open, so leftovers cannot belong to a delivery in progress.
            durable.clean_tmp(root)
            self._recover_unsynced()
            self._remove_interrupted()
        self._lock_fd.share()

    @property
    def opened_alone(self) -> bool:
        """Whether nobody else had the account open when this store opened it (then
        files without a row are leftovers of a crash, and were removed)."""
        return self._lock_fd.exclusive

    @property
    def committer(self) -> GroupCommitter:
        """The account's group committer (a thread of its own, started on first use)."""
        committer = self._committer
        if committer is None:
            with self._markers_lock:
                if self._closed:
                    raise StoreError(f"account {self.name} is closed")
                if self._committer is None:
                    self._committer = GroupCommitter(self)
                committer = self._committer
        return committer

    def _recover_unsynced(self) -> None:
        """Remove committed rows whose file did not become durable (a crash, power loss).

        A delivery may be committed while its file's fsync still runs
        (:class:`GroupCommitter`); it is acknowledged only once both are done.
        Each store that commits so keeps one row in ``meta`` (key
        ``unsynced@<random>``, its own: processes sharing the account do not
        overwrite each other's) whose value lists the deliveries it committed
        early and does not know durable yet (:func:`unsynced_rows`); every group
        transaction rewrites it, adding the group's and dropping those durable
        since, so a group costs one statement, whatever its size. Stores of
        older versions left one ``unsynced:<id>`` row per message instead
        (value: the delivery's first id); both are read here.

        Here, with the account to ourselves, each listed message's file is
        checked: missing, or shorter than its row says (on Linux file systems
        the size on disk never runs ahead of the data written: ext4 ordered
        mode, XFS and btrfs update it only once the data is written), and the
        delivery was never acknowledged: all its rows go, as an expunge (a
        tombstone, counts updated, the UIDs not used again), in case a session
        saw them before the crash. A listed delivery that is durable (its
        row's rewrite had not come yet) is kept: checking one more costs a stat.
        """
        db = self.db
        keys, deliveries = unsynced_rows(db)
        if not keys:
            return
        bad: list[int] = []
        for ids in deliveries.values():
            for message_id in ids:
                row = db.execute("SELECT size - length(prefix) FROM message WHERE id = ?",
                                 (message_id,)).fetchone()
                if row is None:
                    continue  # expunged meanwhile
                try:
                    on_disk = os.stat(durable.message_path(self.root, message_id)).st_size
                except FileNotFoundError:
                    on_disk = -1
                if on_disk != row[0]:
                    bad += ids
                    break
        with self._write() as (db, modseq):
            if bad:
                self._remove_ids(db, bad, modseq)
            db.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in keys])
        if bad:
            durable.remove(self.root, bad)
            logger.warning("removed messages whose files were not durable at a crash"
                           " (never acknowledged)", messages=len(bad))

    def _write_unsynced(self, db: sqlite3.Connection,
                        unsynced: dict[int, tuple[int, ...]]) -> None:
        """This store's row of early-committed deliveries (see :meth:`_recover_unsynced`)
        as ``unsynced`` says, in the open transaction: one statement."""
        if unsynced:
            # An upsert updates the row in place (REPLACE deletes and inserts it, which
            # rewrites a page of the key's index too: one WAL frame more per group).
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       (self._unsynced_key, _unsynced_text(unsynced)))
        else:
            db.execute("DELETE FROM meta WHERE key = ?", (self._unsynced_key,))

    def _remove_ids(self, db: sqlite3.Connection, ids: list[int], modseq: int) -> None:
        """Remove the rows of these message ids as an expunge, in the open transaction."""
        rows: dict[int, list[tuple[int, int, int, int]]] = {}
        for mailbox_id, *row in _select_in(
                db, "SELECT mailbox_id, id, uid, flags, size FROM message WHERE id IN ({})", ids):
            rows.setdefault(mailbox_id, []).append(tuple(row))  # type: ignore[arg-type]
        for mailbox_id, mailbox_rows in rows.items():
            _remove_rows(db, mailbox_id, mailbox_rows, modseq)

    def _remove_interrupted(self) -> None:
        """Remove files of deliveries that crashed between placing a file and its commit.

        Such a file has no row; it was never acknowledged. Its id was reserved
        recently (:meth:`_reserve_ids`), so it is among the top ids: only the
        shards that hold ids from a few blocks below the highest row are read.
        Empty files made ahead for deliveries (:mod:`kittiwake.store.readyfiles`)
        and left by a crash go the same way.
        """
        top = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM message").fetchone()[0]
        lowest = max(0, top - 4 * ID_BLOCK)
        msg_dir = self.root / "msg"
        if not msg_dir.is_dir():
            return
        rows = {r[0] for r in self.db.execute("SELECT id FROM message WHERE id >= ?",
                                              (lowest,))}
        for shard in msg_dir.iterdir():
            try:
                if int(shard.name, 16) < lowest // durable.SHARD_SIZE:
                    continue
            except ValueError:
                continue
            for entry in shard.iterdir():
                if entry.name.isdigit() and int(entry.name) >= lowest \
                        and int(entry.name) not in rows:
                    entry.unlink(missing_ok=True)

    def close(self) -> None:
        self.ready.close()
        with self._markers_lock:
            self._closed = True
            committer, self._committer = self._committer, None
        if committer is not None:
            committer.close()  # what is queued is committed first
        self.checkpointer.close()  # (the last connection to close checkpoints the log)
        with self.lock:
            if self._synced_markers and self._unsynced:
                with contextlib.suppress(sqlite3.Error):
                    self._clear_markers()
            self.db.close()
            self._lock_fd.release()

    # --- message ids --------------------------------------------------------

    def _reserve_ids(self, n: int) -> int:
        """The first of ``n`` new message ids, never used before in this account
        (for :meth:`place_group`, outside any transaction).

        Ids name message files and are the IMAP EMAILID (RFC 8474 §5.1: never
        reused), so an expunged message's id is not handed out again. A group's
        files get their ids before its transaction, so ids come from a block
        reserved in the database (``meta.next_message_id`` is set past it, so
        another process opening the account allocates above it); a new block
        is reserved when this one runs out. Ids of a block left unused at a stop
        are skipped, never reused.
        """
        with self._id_lock:
            if self._next_id + n <= self._id_limit:
                first = self._next_id
                self._next_id += n
                return first
        # A new block, in a transaction of its own. Lock order: the account's lock,
        # then the id lock (as in _take_ids, which runs inside a transaction).
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                with self._id_lock:
                    if self._next_id + n > self._id_limit:
                        self._next_id = max(self._next_id, _first_free_id(self.db))
                        self._id_limit = self._next_id + max(n, ID_BLOCK)
                        _note_ids(self.db, self._id_limit)
                    first = self._next_id
                    self._next_id += n
                self.db.execute("COMMIT")
                self.checkpointer.committed()
            except BaseException:
                self.db.execute("ROLLBACK")
                with self._id_lock:
                    self._id_limit = 0  # not recorded: the next reservation starts a block
                raise
            return first

    def _take_ids(self, db: sqlite3.Connection, n: int) -> int:
        """The first of ``n`` new ids, inside an open write transaction (copy, import):
        above the database's counter and this store's block, recorded in it."""
        with self._id_lock:
            first = max(self._next_id, _first_free_id(db))
            self._next_id = first + n
            self._id_limit = max(self._id_limit, self._next_id)
            _note_ids(db, self._id_limit)
            return first

    # --- transactions -------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[tuple[sqlite3.Connection, int]]:
        """A write transaction with the next modseq; COMMIT (fsync of the WAL) on exit."""
        with self.lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                modseq = db.execute("UPDATE meta SET value = value + 1 WHERE key = 'modseq'"
                                    " RETURNING value").fetchone()[0]
                yield db, modseq
                db.execute("COMMIT")
                self.checkpointer.committed()
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # --- mailboxes ----------------------------------------------------------

    def mailboxes(self) -> list[Mailbox]:
        with self.lock:
            subscribed = {r[0] for r in self.db.execute("SELECT name FROM subscription")}
            rows = self.db.execute(f"SELECT {_MAILBOX_COLUMNS} FROM mailbox ORDER BY name")
            return [_mailbox(r, subscribed) for r in rows]

    def subscriptions(self) -> list[str]:
        with self.lock:
            return [r[0] for r in self.db.execute("SELECT name FROM subscription ORDER BY name")]

    def mailbox(self, name: str) -> Mailbox:
        with self.lock:
            return self._mailbox_by_name(self.db, name)

    def _mailbox_by_name(self, db: sqlite3.Connection, name: str,
                         subscribed: bool = True) -> Mailbox:
        """The mailbox; with ``subscribed=False`` its subscription is not looked up
        (reported as not subscribed: for the write path, which does not need it)."""
        name = normalize_mailbox_name(name)
        row = db.execute(f"SELECT {_MAILBOX_COLUMNS} FROM mailbox WHERE name = ?",
                         (name,)).fetchone()
        if row is None:
            known = ", ".join(r[0] for r in db.execute("SELECT name FROM mailbox ORDER BY name"))
            raise MailboxNotFound(f"mailbox {name!r} does not exist (known: {known or 'none'})")
        if not subscribed:
            return _mailbox(row, set())
        listed = db.execute("SELECT 1 FROM subscription WHERE name = ?", (name,)).fetchone()
        return _mailbox(row, {name} if listed else set())

    def create_mailbox(self, name: str, special_use: str | None = None,
                       subscribe: bool = True) -> tuple[Mailbox, list[Change]]:
        """Create a mailbox (and missing parents, RFC 9051 §6.3.4)."""
        name = normalize_mailbox_name(name)
        changes: list[Change] = []
        with self._write() as (db, modseq):
            if db.execute("SELECT 1 FROM mailbox WHERE name = ?", (name,)).fetchone():
                raise MailboxExists(f"mailbox {name!r} already exists")
            parts = name.split(SEPARATOR)
            for depth in range(1, len(parts) + 1):
                path = SEPARATOR.join(parts[:depth])
                if db.execute("SELECT 1 FROM mailbox WHERE name = ?", (path,)).fetchone():
                    continue
                use = special_use if path == name and special_use is not None else \
                    SPECIAL_USE.get(path.lower(), "") if depth == 1 else ""
                uidvalidity = db.execute(
                    "UPDATE meta SET value = value + 1 WHERE key = 'uidvalidity' RETURNING value"
                ).fetchone()[0]
                cur = db.execute(
                    "INSERT INTO mailbox (name, uidvalidity, special_use, highestmodseq,"
                    " created_modseq) VALUES (?, ?, ?, ?, ?)",
                    (path, uidvalidity, use, modseq, modseq))
                if subscribe:
                    db.execute("INSERT OR IGNORE INTO subscription (name) VALUES (?)", (path,))
                changes.append(Change("mailbox-added", cur.lastrowid or 0, path, modseq=modseq))
            mailbox = self._mailbox_by_name(db, name)
        return mailbox, changes

    def ensure_mailboxes(self, names: Iterable[str]) -> list[Change]:
        """Create the default mailboxes that do not exist yet (Inbox always).

        Safe to call concurrently: a mailbox another caller created meanwhile (two
        deliveries meeting the same missing mailbox) counts as there."""
        changes: list[Change] = []
        existing = {m.name for m in self.mailboxes()}
        for name in ["Inbox", *names]:
            name = normalize_mailbox_name(name)
            if name not in existing:
                try:
                    _, created = self.create_mailbox(name)
                except MailboxExists:
                    created = []
                changes += created
                existing.add(name)
        return changes

    def rename_mailbox(self, old: str, new: str) -> list[Change]:
        """Rename with children (RFC 9051 §6.3.6). Renaming Inbox moves its messages."""
        old, new = normalize_mailbox_name(old), normalize_mailbox_name(new)
        if old == "Inbox":
            return self._rename_inbox(new)
        changes: list[Change] = []
        with self._write() as (db, modseq):
            source = self._mailbox_by_name(db, old)
            if db.execute("SELECT 1 FROM mailbox WHERE name = ?", (new,)).fetchone():
                raise MailboxExists(f"mailbox {new!r} already exists")
            if new.startswith(old + SEPARATOR):
                raise StoreError(f"cannot rename {old!r} into itself")
            rows = db.execute("SELECT id, name FROM mailbox WHERE name = ? OR name LIKE ?"
                              " ESCAPE '\\'", (old, _like_prefix(old))).fetchall()
            for mailbox_id, name in rows:
                renamed = new + name[len(old):]
                db.execute("UPDATE mailbox SET name = ?, highestmodseq = ? WHERE id = ?",
                           (renamed, modseq, mailbox_id))
                if db.execute("DELETE FROM subscription WHERE name = ?", (name,)).rowcount:
                    db.execute("INSERT OR IGNORE INTO subscription (name) VALUES (?)",
                               (renamed,))
                changes.append(Change("mailbox-renamed", mailbox_id, renamed, old_name=name,
                                      modseq=modseq))
            # Missing parents of the new name are created.
            parts = new.split(SEPARATOR)
            for depth in range(1, len(parts)):
                path = SEPARATOR.join(parts[:depth])
                if not db.execute("SELECT 1 FROM mailbox WHERE name = ?", (path,)).fetchone():
                    uidvalidity = db.execute(
                        "UPDATE meta SET value = value + 1 WHERE key = 'uidvalidity'"
                        " RETURNING value").fetchone()[0]
                    db.execute("INSERT INTO mailbox (name, uidvalidity, highestmodseq,"
                               " created_modseq) VALUES (?, ?, ?, ?)",
                               (path, uidvalidity, modseq, modseq))
            del source
        return changes

    def _rename_inbox(self, new: str) -> list[Change]:
        target, changes = self.create_mailbox(new)
        inbox = self.mailbox("Inbox")
        uids = [m.uid for m in self.messages("Inbox")]
        if uids:
            _, moved = self.move("Inbox", uids, new)
            changes += moved
        del target, inbox
        return changes

    def delete_mailbox(self, name: str) -> tuple[list[Change], list[int]]:
        """Delete a mailbox and its messages (RFC 9051 §6.3.5); not Inbox, not with children."""
        name = normalize_mailbox_name(name)
        if name == "Inbox":
            raise StoreError("Inbox cannot be deleted")
        with self._write() as (db, modseq):
            mailbox = self._mailbox_by_name(db, name)
            if db.execute("SELECT 1 FROM mailbox WHERE name LIKE ? ESCAPE '\\'",
                          (_like_prefix(name),)).fetchone():
                raise StoreError(f"mailbox {name!r} has child mailboxes; delete those first")
            ids = [r[0] for r in db.execute("SELECT id FROM message WHERE mailbox_id = ?",
                                            (mailbox.id,))]
            db.executemany("DELETE FROM textindex WHERE rowid = ?", [(i,) for i in ids])
            db.executemany("DELETE FROM message_cache WHERE id = ?", [(i,) for i in ids])
            db.execute("DELETE FROM message WHERE mailbox_id = ?", (mailbox.id,))
            db.execute("DELETE FROM expunged WHERE mailbox_id = ?", (mailbox.id,))
            db.execute("DELETE FROM metadata WHERE mailbox_id = ?", (mailbox.id,))
            db.execute("DELETE FROM mailbox WHERE id = ?", (mailbox.id,))
        durable.remove(self.root, ids)
        return [Change("mailbox-removed", mailbox.id, name, modseq=modseq)], ids

    def subscribe(self, name: str, subscribed: bool = True) -> None:
        """IMAP SUBSCRIBE/UNSUBSCRIBE; a name need not exist (RFC 9051 §6.3.7)."""
        name = normalize_mailbox_name(name)
        with self.lock:
            if subscribed:
                self.db.execute("INSERT OR IGNORE INTO subscription (name) VALUES (?)", (name,))
            else:
                self.db.execute("DELETE FROM subscription WHERE name = ?", (name,))

    # --- adding messages ----------------------------------------------------

    def total_size(self) -> int:
        with self.lock:
            return self.db.execute("SELECT COALESCE(SUM(size), 0) FROM mailbox").fetchone()[0]

    def add(self, mailbox_name: str, messages: list[NewMessage],
            sync: bool | str = True, replaces: tuple[str, int] | None = None
            ) -> tuple[list[Delivered], list[Change]]:
        """Add messages whose temporary files exist; one transaction for all.

        ``sync=True`` (delivery, APPEND): each file is already fsynced; this is a
        group commit of one (:meth:`commit_group`). ``sync="batch"`` (import):
        the files were written without fsync; after they are renamed into place
        one ``durable.sync_files`` (syncfs) makes their data and names durable,
        and their summaries carry their search text (indexed in the same
        transaction). Either way that happens before the commit. On any failure
        nothing is committed and no new file stays visible.

        ``replaces=(mailbox, uid)`` removes that message in the same transaction
        (IMAP REPLACE, RFC 8508 §3: the new message and the old one's removal are
        one atomic step); a missing message raises StoreError and adds nothing.
        """
        if sync is True:
            delivery = Delivery(mailbox_name, messages, replaces)
            self.commit_group([delivery])
            if delivery.error is not None:
                raise delivery.error
            return delivery.delivered, delivery.changes
        placed: list[Path] = []
        try:
            with self._write() as (db, modseq):
                delivered, changes, removed = self._insert(db, modseq, mailbox_name, messages,
                                                           replaces, indexed_now=True)
                moves = [(new.tmp_path, d.message_id) for new, d in zip(messages, delivered,
                                                                         strict=True)]
                # The batch's files are renamed and synced (system calls, no GIL) in a
                # thread while SQLite (which releases the GIL too) indexes the text.
                placer = _Placer(self.root, moves, placed)
                try:
                    self._insert_text(db, messages, delivered)
                finally:
                    placer.join()  # files in place and durable (or its error raised)
        except BaseException:
            for path in placed:
                path.unlink(missing_ok=True)
            for new in messages:
                new.tmp_path.unlink(missing_ok=True)
            raise
        if removed:
            durable.remove(self.root, removed)
        return delivered, changes

    def commit_group(self, group: list[Delivery]) -> None:
        """Commit deliveries of several callers together: :meth:`place_group`, then
        :meth:`commit_placed` (the async face runs the two as a pipeline)."""
        self.place_group(group)
        self.commit_placed(group)

    def place_group(self, group: list[Delivery]) -> None:
        """Stage 1 of a group commit: the files of every delivery, made durable.

        Every message file was written by its caller (not yet fsynced). Each
        delivery gets its message ids (from a counter that never goes back, see
        :meth:`_take_ids`) and its files are moved to their final names (rename,
        or hard link for a kept spool); then every placed file and each
        directory that got one are fsynced, concurrently (one journal commit
        for all). No database work: this runs while the previous group's
        COMMIT does. A file is at its final name before it is durable and
        before its row exists, but no row names it until the COMMIT, and an
        unreferenced file is removed at the next open (:meth:`_remove_interrupted`).

        A delivery whose file cannot be placed (its spool is gone) gets its
        ``error``; if an fsync fails, every delivery of the group does.
        """
        placed_all: list[Path] = []
        for delivery in group:
            if delivery.error is not None:
                continue
            first = self._reserve_ids(len(delivery.messages))
            delivery.ids = list(range(first, first + len(delivery.messages)))
            try:
                for new, message_id in zip(delivery.messages, delivery.ids, strict=True):
                    delivery.placed.append(self._place(new, message_id))
            except Exception as exc:
                _discard(delivery.placed, delivery.messages)
                delivery.placed = []
                delivery.error = exc
                continue
            placed_all += delivery.placed
        try:
            durable.fsync_placed(placed_all)
        except Exception as exc:
            for delivery in group:
                if delivery.error is None:
                    _discard(delivery.placed, delivery.messages)
                    delivery.placed = []
                    delivery.error = exc

    def stage(self, delivery: Delivery) -> None:
        """A caller's own stage 1, in its thread: ids, and the files at their final
        names (rename, or hard link for a kept spool), not yet fsynced
        (:meth:`sync_staged`). No row names them until the COMMIT, and an
        unreferenced file is removed at the next open (:meth:`_remove_interrupted`).
        On an error the delivery's files are removed and the error raised."""
        # A spool written at a final name already (Account.spool) stays where it is.
        in_place = [None if new.keep_source else self._own_id(new.tmp_path)
                    for new in delivery.messages]
        wanted = in_place.count(None)
        first = self._reserve_ids(wanted) if wanted else 0
        fresh = iter(range(first, first + wanted))
        delivery.ids = [next(fresh) if i is None else i for i in in_place]
        try:
            for new, message_id, own in zip(delivery.messages, delivery.ids, in_place,
                                            strict=True):
                delivery.placed.append(new.tmp_path if own is not None
                                       else self._place(new, message_id))
        except BaseException:
            _discard(delivery.placed, delivery.messages)
            delivery.placed = []
            raise

    def try_reserve_id(self) -> int | None:
        """A new message id from the reserved block, without waiting (for the event
        loop: :meth:`kittiwake.store.store.Account.spool`); None when the block is used
        up or another thread is reserving."""
        if not self._id_lock.acquire(blocking=False):
            return None
        try:
            if self._next_id >= self._id_limit:
                return None
            self._next_id += 1
            return self._next_id - 1
        finally:
            self._id_lock.release()

    def _own_id(self, path: Path) -> int | None:
        """The message id whose final name ``path`` is (a spool written in place)."""
        name = path.name
        if not name.isdigit() or durable.message_path(self.root, int(name)) != path:
            return None
        return int(name)

    def sync_staged(self, delivery: Delivery) -> None:
        """Make a staged delivery's files durable: each directory's fsync asked for
        first (``durable.DirSync``: run in the background, shared with concurrent
        callers, one covers every entry made before it started), then each file
        fsynced here meanwhile, then the directories' awaited. File and directory
        wait for the same journal commit (their entries and inodes were made
        together), where a directory fsync after the file's would cost a commit
        of its own; callers do this concurrently, so their fsyncs merge into few
        journal commits, as plain concurrent writers' do. A one-file delivery whose
        directory no other fsync covers now (a lone delivery) does both here, one
        after the other: no hand-off to the directory's thread
        and back (strace -f: futex calls per delivery, 1 writer, 36 -> 17)."""
        placed = delivery.placed
        # Files written into files made ahead (readyfiles) have durable names: only
        # their octets are to sync, no directory.
        named = [path for path in placed if path not in delivery.made]
        alone: durable.DirSync | None = None  # a lone delivery's directory, synced after
        rounds: list[durable.DirSyncRound] = []
        if len(named) == 1:  # most deliveries: no set of one directory
            sync = durable.dir_sync(named[0].parent)
            if sync.busy:
                rounds = [sync.ask()]
            else:  # alone: the file's fsync, then the directory's, here
                alone = sync
        elif named:
            rounds = [durable.dir_sync(d).ask() for d in {path.parent for path in named}]
        fds, delivery.fds = delivery.fds, {}
        try:
            for path in placed:
                fd = fds.pop(path, None)
                if fd is None:
                    durable.fsync_file(path)
                else:
                    durable.fsync_close(fd)
        finally:
            for fd in fds.values():
                os.close(fd)
            for round_ in rounds:
                round_.wait()
        # (durable.DirSync.sync_here; a shared round if company came meanwhile)
        if alone is not None and not alone.sync_here():
            alone.ask().wait()

    def place(self, delivery: Delivery) -> None:
        """:meth:`stage` and :meth:`sync_staged`: the files placed and durable, ready
        for a COMMIT (:meth:`commit_placed`); on an error none stays."""
        self.stage(delivery)
        try:
            self.sync_staged(delivery)
        except BaseException:
            _discard(delivery.placed, delivery.messages)
            delivery.placed = []
            raise

    def commit_placed(self, group: list[Delivery]) -> None:
        """Stage 2 of a group commit: all rows in one transaction, one COMMIT.

        Each delivery is checked before anything of it is written (its mailbox
        exists, the quota holds, a message it replaces exists); one that fails
        gets its ``error`` and its files are removed; the others go on. The rows
        of the rest go in together: one lookup and one counter update per
        mailbox, one INSERT statement for all. A delivery that replaces a message
        (IMAP REPLACE) has a savepoint of its own. ``early`` deliveries (their
        files not yet durable, see :class:`GroupCommitter`) are added to this
        store's row for the open-time recovery (:meth:`_recover_unsynced`), and
        those durable since dropped from it: one statement. The COMMIT (one WAL
        fsync) makes it all durable; if it fails, every delivery gets that error
        and no new file stays visible. Results are set on each :class:`Delivery`.
        """
        todo = [d for d in group if d.error is None]
        done: list[tuple[Delivery, list[int]]] = []
        with self._markers_lock:
            clearing, self._synced_markers = self._synced_markers, []
        # The account's lock all along: the transaction and this store's list of
        # early deliveries, which it wrote, change together.
        with self.lock:
            try:
                with self._write() as (db, modseq):
                    for delivery in todo:
                        if delivery.replaces is None:
                            continue
                        db.execute("SAVEPOINT delivery")
                        try:
                            delivered, changes, removed = self._insert(
                                db, modseq, delivery.mailbox, delivery.messages,
                                delivery.replaces, indexed_now=False, ids=delivery.ids)
                            db.execute("RELEASE delivery")
                        except Exception as exc:
                            db.execute("ROLLBACK TO delivery")
                            db.execute("RELEASE delivery")
                            _discard(delivery.placed, delivery.messages)
                            delivery.error = exc
                            continue
                        delivery.delivered, delivery.changes = delivered, changes
                        done.append((delivery, removed))
                    batch = [d for d in todo if d.replaces is None]
                    done += [(d, []) for d in self._insert_group(db, modseq, batch)]
                    unsynced = self._unsynced
                    cleared = {k for k in clearing if k in unsynced}
                    early = [d for d, _ in done if d.early]
                    if cleared or early:
                        unsynced = {k: v for k, v in unsynced.items() if k not in cleared}
                        for delivery in early:
                            unsynced[delivery.ids[0]] = tuple(delivery.ids)
                        self._write_unsynced(db, unsynced)
                    elif not done:
                        raise _NothingChanged(None)
                self._unsynced = unsynced  # committed
            except _NothingChanged:
                return
            except BaseException as exc:
                with self._markers_lock:
                    self._synced_markers += clearing  # not removed: the next commit tries again
                for delivery, _ in done:
                    _discard(delivery.placed, delivery.messages)
                    delivery.delivered, delivery.changes = [], []
                    delivery.error = exc if isinstance(exc, Exception) else \
                        StoreError(f"delivery interrupted: {exc!r}")
                if not isinstance(exc, Exception):
                    raise
                return
        pending: list[int] = []
        for delivery, removed in done:
            delivery.committed = True
            for new in delivery.messages:
                if not new.keep_source and new.tmp_path not in delivery.placed:
                    new.tmp_path.unlink(missing_ok=True)  # a rename left nothing; a copy did
            pending += [d.message_id for d in delivery.delivered]
            if removed:
                durable.remove(self.root, removed)
        with self.lock:
            # The substring and full-text index follow in the background
            # (index_pending); the rows say so (indexed = 0), so a crash first
            # only delays them to the next open.
            self.to_index.extend(pending)

    def _message_quota_error(self, count: int, adding: int) -> OverQuota | None:
        """RFC 9208 §5.2: over the MESSAGE limit with ``adding`` more than ``count``?"""
        if self.quota_messages and count + adding > self.quota_messages:
            return OverQuota(f"account {self.name} would hold {count + adding} messages, more"
                             f" than its quota of {self.quota_messages}")
        return None

    def _insert_group(self, db: sqlite3.Connection, modseq: int,
                      group: list[Delivery]) -> list[Delivery]:
        """The rows of deliveries (none replacing a message) in the open transaction;
        those that cannot go in get their ``error`` (and lose their files) before
        anything of theirs is written. Returns those that went in."""
        boxes: dict[str, _BoxTally | StoreError] = {}
        used = db.execute("SELECT COALESCE(SUM(size), 0) FROM mailbox").fetchone()[0] \
            if self.quota_bytes else 0
        count = db.execute("SELECT COALESCE(SUM(messages), 0) FROM mailbox").fetchone()[0] \
            if self.quota_messages else 0
        saved = now_ms()
        rows: list[tuple[object, ...]] = []
        threads: dict[str, int] = {}  # message-id -> thread, of this group
        done: list[Delivery] = []
        for delivery in group:
            tally = boxes.get(delivery.mailbox)
            if tally is None:
                try:
                    tally = _BoxTally(self._mailbox_by_name(db, delivery.mailbox,
                                                            subscribed=False))
                except StoreError as exc:
                    tally = exc
                boxes[delivery.mailbox] = tally
            added_size = sum(m.size for m in delivery.messages)
            error: Exception | None = tally if isinstance(tally, StoreError) else None
            if error is None and self.quota_bytes and used + added_size > self.quota_bytes:
                error = OverQuota(f"account {self.name} is over its quota"
                                  f" ({used + added_size} > {self.quota_bytes} bytes)")
            if error is None:
                error = self._message_quota_error(count, len(delivery.messages))
            if error is not None or isinstance(tally, StoreError):
                _discard(delivery.placed, delivery.messages)
                delivery.placed = []
                delivery.error = error
                continue
            used += added_size
            count += len(delivery.messages)
            mailbox = tally.mailbox
            delivered: list[Delivered] = []
            for message_id, new in zip(delivery.ids, delivery.messages, strict=True):
                s = new.summary
                thread_id = _thread_id(db, s, message_id, threads) \
                    if s.in_reply_to or s.references else message_id
                if s.message_id:
                    threads.setdefault(s.message_id, thread_id)
                uid = tally.uidnext
                tally.uidnext += 1
                rows.append((message_id, mailbox.id, uid, modseq, modseq, new.flags.system,
                             new.flags.keyword_text(), new.size, new.received or saved,
                             saved, s.message_id, thread_id, s.subject, new.mailfrom,
                             new.rcptto, s.json, new.prefix, INDEX_PENDING))
                tally.count(new)
                delivered.append(Delivered(message_id, mailbox.name, uid, mailbox.uidvalidity,
                                           new.size))
            delivery.delivered = delivered
            delivery.changes = [Change("added", mailbox.id, mailbox.name,
                                       tuple(d.uid for d in delivered), modseq,
                                       tuple(m.flags for m in delivery.messages))]
            done.append(delivery)
        if len(rows) == 1:  # a lone delivery's group: no executemany set-up
            db.execute(_INSERT_MESSAGE, rows[0])
        elif rows:
            db.executemany(_INSERT_MESSAGE, rows)
        for tally in boxes.values():
            if isinstance(tally, _BoxTally) and tally.messages:
                db.execute(
                    "UPDATE mailbox SET uidnext = ?, messages = messages + ?,"
                    " unseen = unseen + ?, deleted = deleted + ?, size = size + ?,"
                    " highestmodseq = ? WHERE id = ?",
                    (tally.uidnext, tally.messages, tally.unseen, tally.deleted, tally.size,
                     modseq, tally.mailbox.id))
        return done

    def undo_committed(self, group: list[Delivery]) -> None:
        """Take back committed deliveries whose files could not be made durable (an
        fsync failed after an early COMMIT): their rows go as an expunge (sessions
        were not told of them, but one may have looked), their files too, and each
        gets an error; none was acknowledged."""
        ids = [d.message_id for delivery in group for d in delivery.delivered]
        firsts = {delivery.ids[0] for delivery in group if delivery.ids}
        try:
            with self.lock:
                with self._write() as (db, modseq):
                    self._remove_ids(db, ids, modseq)
                    unsynced = {k: v for k, v in self._unsynced.items() if k not in firsts}
                    self._write_unsynced(db, unsynced)
                self._unsynced = unsynced  # committed
        except sqlite3.Error:  # listed still: the next open removes the rows
            logger.error("could not take back deliveries whose files are not durable",
                         messages=len(ids), exc_info=True)
        for delivery in group:
            _discard(delivery.placed, delivery.messages)
            delivery.placed = []
            delivery.error = StoreError(f"message file not durable: {delivery.sync_error}")
            delivery.delivered, delivery.changes, delivery.committed = [], [], False

    def markers_synced(self, firsts: Iterable[int]) -> None:
        """The early-committed deliveries with these first ids are durable now: they
        leave this store's row at the next transaction (or at close)."""
        with self._markers_lock:
            self._synced_markers.extend(firsts)

    def _clear_markers(self) -> None:
        with self.lock:
            with self._markers_lock:
                clearing, self._synced_markers = set(self._synced_markers), []
            unsynced = {k: v for k, v in self._unsynced.items() if k not in clearing}
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self._write_unsynced(self.db, unsynced)
                self.db.execute("COMMIT")
                self.checkpointer.committed()
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self._unsynced = unsynced

    def _place(self, new: NewMessage, message_id: int) -> Path:
        """Give a message file its final name: rename, or hard link for a kept spool."""
        try:
            if new.keep_source:
                return durable.link_into_place(self.root, new.tmp_path, message_id, sync=False)
            return durable.move_into_place(self.root, new.tmp_path, message_id, sync=False)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        # A spool on another file system: one copy, fsynced (the spool should live
        # beside the store to avoid this).
        logger.warning("spool on another file system; copying", spool=str(new.tmp_path))
        with open(new.tmp_path, "rb") as f:
            tmp, _size = durable.write_temp(self.root, iter(lambda: f.read(1 << 20), b""))
        return durable.move_into_place(self.root, tmp, message_id, sync=False)

    def _insert(self, db: sqlite3.Connection, modseq: int, mailbox_name: str,
                messages: list[NewMessage], replaces: tuple[str, int] | None,
                indexed_now: bool, ids: list[int] | None = None
                ) -> tuple[list[Delivered], list[Change], list[int]]:
        """Rows of new messages in the open transaction: (delivered, changes, ids of
        replaced messages whose files go after the commit). ``ids``: taken already
        (:meth:`place_group`); else taken here."""
        removed: list[int] = []
        replaced_change: Change | None = None
        if replaces is not None:
            old_box = self._mailbox_by_name(db, replaces[0])
            row = db.execute("SELECT id, uid, flags, size FROM message"
                             " WHERE mailbox_id = ? AND uid = ?",
                             (old_box.id, replaces[1])).fetchone()
            if row is None:
                raise StoreError(f"no message with UID {replaces[1]} to replace")
            removed = _remove_rows(db, old_box.id, [row], modseq)
            replaced_change = Change("expunged", old_box.id, old_box.name,
                                     (replaces[1],), modseq)
        mailbox = self._mailbox_by_name(db, mailbox_name)
        added_size = sum(m.size for m in messages)
        if self.quota_bytes:
            used = db.execute("SELECT COALESCE(SUM(size), 0) FROM mailbox").fetchone()[0]
            if used + added_size > self.quota_bytes:
                raise OverQuota(f"account {self.name} is over its quota"
                                f" ({used + added_size} > {self.quota_bytes} bytes)")
        if self.quota_messages:
            count = db.execute("SELECT COALESCE(SUM(messages), 0) FROM mailbox").fetchone()[0]
            # (a replaced message's row is gone already: _remove_rows fixed the counts)
            error = self._message_quota_error(count, len(messages))
            if error is not None:
                raise error
        if ids is None:
            first_id = self._take_ids(db, len(messages))
            ids = list(range(first_id, first_id + len(messages)))
        elif ids:
            _note_ids(db, max(ids) + 1)
        uid = mailbox.uidnext
        saved = now_ms()
        unseen = deleted = 0
        rows = []
        delivered: list[Delivered] = []
        threads: dict[str, int] = {}  # message-id -> thread, of this batch
        for message_id, new in zip(ids, messages, strict=True):
            s = new.summary
            thread_id = _thread_id(db, s, message_id, threads)
            if s.message_id:
                threads.setdefault(s.message_id, thread_id)
            state = INDEX_PENDING
            if indexed_now:
                state = INDEX_DONE if s.search_headers is not None else INDEX_IMPOSSIBLE
            rows.append((message_id, mailbox.id, uid, modseq, modseq, new.flags.system,
                         new.flags.keyword_text(), new.size, new.received or saved,
                         saved, s.message_id, thread_id, s.subject, new.mailfrom,
                         new.rcptto, s.json, new.prefix, state))
            if not new.flags.system & SEEN:
                unseen += 1
            if new.flags.system & DELETED:
                deleted += 1
            delivered.append(Delivered(message_id, mailbox.name, uid, mailbox.uidvalidity,
                                       new.size))
            uid += 1
        db.executemany(_INSERT_MESSAGE, rows)
        db.execute(
            "UPDATE mailbox SET uidnext = ?, messages = messages + ?,"
            " unseen = unseen + ?, deleted = deleted + ?, size = size + ?,"
            " highestmodseq = ? WHERE id = ?",
            (uid, len(messages), unseen, deleted, added_size, modseq, mailbox.id))
        change = Change("added", mailbox.id, mailbox.name,
                        tuple(d.uid for d in delivered), modseq,
                        tuple(m.flags for m in messages))
        return delivered, [change] if replaced_change is None else [change, replaced_change], \
            removed

    @staticmethod
    def _insert_text(db: sqlite3.Connection, messages: list[NewMessage],
                     delivered: list[Delivered]) -> None:
        """Substring index rows that came with the messages."""
        pairs = list(zip(messages, delivered, strict=True))
        db.executemany("INSERT INTO textindex (rowid, headers, body) VALUES (?, ?, ?)",
                       [(d.message_id, n.summary.search_headers, n.summary.search_body)
                        for n, d in pairs if n.summary.search_headers is not None])

    def prepare(self, data: bytes, flags: Flags = Flags(), received: int = 0,
                mailfrom: str = "", rcptto: str = "", prefix: bytes = b"") -> NewMessage:
        """Write a message's file under tmp/ and summarize its header (a caller's share of
        the work, in its own worker thread, before the group commit, which fsyncs
        the file in place)."""
        tmp, size = durable.write_temp(self.root, [data], sync=False)
        return NewMessage(tmp, len(prefix) + size, _head_summary(prefix, header_fields(data)),
                          flags, received, mailfrom, rcptto, prefix)

    def prepare_spool(self, path: Path, prefix: bytes = b"", flags: Flags = Flags(),
                      received: int = 0, mailfrom: str = "", rcptto: str = "",
                      keep: bool = False, headers: Headers | None = None,
                      size: int | None = None) -> NewMessage:
        """A spooled file for the group commit (which fsyncs it in place), summarized
        as ``prefix + file`` from the header fields (the part tree follows in the
        background, see :mod:`kittiwake.store.summary`): ``headers``, the file's own
        as its writer parsed them, or read here. ``keep``: hard-link it (its owner
        keeps and removes it) rather than rename it. ``size``: the file's, when its
        writer knows it (no stat)."""
        if size is None:
            size = os.stat(path).st_size
        if headers is None:
            headers = file_header_fields(path, size)
        return NewMessage(path, len(prefix) + size, _head_summary(prefix, headers), flags,
                          received, mailfrom, rcptto, prefix, keep)

    def stage_bytes(self, mailbox_name: str, data: bytes, flags: Flags = Flags(),
                    received: int = 0, mailfrom: str = "", rcptto: str = "",
                    prefix: bytes = b"") -> Delivery:
        """A caller's share of delivering bytes, in its own worker thread: the file
        written once, straight at its final name (no temporary file, no rename; not
        fsynced, see :meth:`sync_staged`), and the message's header fields summarized
        (``prefix``'s, then ``data``'s; the part tree follows in the background).
        The staged delivery goes to the group commit next."""
        path, fd, made = self._write_message(data)
        try:
            summary = _head_summary(prefix, header_fields(data))
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        new = NewMessage(path, len(prefix) + len(data), summary, flags, received, mailfrom,
                         rcptto, prefix)
        return Delivery(mailbox_name, [new], ids=[int(path.name)], placed=[path],
                        fds={path: fd}, made={path} if made else set())

    def _write_message(self, data: bytes) -> tuple[Path, int, bool]:
        """Write a new message file at its final name, not fsynced: (path, its open
        descriptor, whether it is a file made ahead, its name durable already)."""
        message_id = self.ready.take()
        if message_id is not None:
            path = durable.message_path(self.root, message_id)
            fd = durable.open_made(path)
            if fd is not None:
                try:
                    durable.write_all(fd, data)
                except BaseException:
                    os.close(fd)
                    path.unlink(missing_ok=True)
                    raise
                return path, fd, True
        else:
            message_id = self._reserve_ids(1)
        path, fd = durable.write_new(self.root, message_id, data, keep_open=True)
        return path, fd, False

    def stage_spool(self, mailbox_name: str, path: Path, prefix: bytes = b"",
                    flags: Flags = Flags(), received: int = 0, mailfrom: str = "",
                    rcptto: str = "", keep: bool = False,
                    headers: Headers | None = None, fd: int | None = None,
                    size: int | None = None, made: bool = False) -> Delivery:
        """A caller's share of delivering a spooled file: summarized, then renamed
        (or with ``keep`` hard-linked) to its final name (:meth:`stage`). ``fd``: the
        file's descriptor, still open from its writing (closed here on an error;
        else by :meth:`sync_staged`, which fsyncs through it). ``size``: the file's,
        when its writer knows it. ``made``: the file is one made ahead (a spool of
        :meth:`kittiwake.store.store.Account.spool`), at its final name, its name
        durable already."""
        try:
            delivery = Delivery(mailbox_name, [self.prepare_spool(path, prefix, flags,
                                                                  received, mailfrom, rcptto,
                                                                  keep, headers, size)])
            self.stage(delivery)
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        if fd is not None:
            delivery.fds[delivery.placed[0]] = fd
        if made and delivery.placed[0] == path:
            delivery.made.add(path)
        return delivery

    def stage_appended(self, mailbox_name: str, items: list[Appended],
                       replaces: tuple[str, int] | None = None) -> Delivery:
        """A caller's share of IMAP APPEND: the spooled files summarized and moved to
        their final names (:meth:`stage`); they were written once, there is no copy."""
        fds: list[int | None] = []
        made: set[Path] = set()
        try:
            delivery = Delivery(mailbox_name, self.prepare_appended(items, fds, made),
                                replaces)
            self.stage(delivery)
        except BaseException:
            for fd in fds:
                if fd is not None:
                    os.close(fd)
            raise
        for path, fd in zip(delivery.placed, fds, strict=True):
            if fd is not None:  # synced through it by sync_staged (no second open)
                delivery.fds[path] = fd
        delivery.made = made & set(delivery.placed)  # files made ahead, left in place
        return delivery

    def prepared(self, mailbox_name: str, news: list[NewMessage],
                 replaces: tuple[str, int] | None = None) -> Delivery:
        """A delivery of prepared messages, placed and durable, ready for the group
        commit (:meth:`place`)."""
        delivery = Delivery(mailbox_name, news, replaces)
        self.place(delivery)
        return delivery

    def deliver(self, mailbox_name: str, data: bytes, flags: Flags = Flags(),
                received: int = 0, mailfrom: str = "", rcptto: str = "",
                prefix: bytes = b"") -> tuple[Delivered, list[Change]]:
        """Store one message durably: write+fsync file, rename, fsync dir, commit."""
        new = self.prepare(data, flags, received, mailfrom, rcptto, prefix)
        delivered, changes = self.add(mailbox_name, [new], sync=True)
        return delivered[0], changes

    def append(self, mailbox_name: str, items: list[Appended],
               replaces: tuple[str, int] | None = None
               ) -> tuple[list[Delivered], list[Change]]:
        """IMAP APPEND and MULTIAPPEND (RFC 9051 §6.3.12, RFC 3502): spooled files.

        Each file was fsynced by :meth:`SpoolFile.finish`; all messages go in
        one transaction (MULTIAPPEND is all or nothing, RFC 3502 §3) through
        :meth:`add`, so APPEND gets every durability guarantee of delivery.
        """
        news = self.prepare_appended(items)
        return self.add(mailbox_name, news, sync=True, replaces=replaces)

    def prepare_appended(self, items: list[Appended],
                         fds: list[int | None] | None = None,
                         made: set[Path] | None = None) -> list[NewMessage]:
        """The items summarized; an item's unfinished spool is flushed here and, with
        ``fds``, its descriptor kept open there (one entry per item, None for a file
        given by path), else closed; with ``made``, the paths of spools written into
        files made ahead (readyfiles) go there. On an error every item's file is
        removed."""
        news = []
        try:
            for item in items:
                headers = size = None
                spool = item.spool
                if spool is not None and not spool.finished:
                    headers = spool.head_fields()
                    size = spool.size
                    fd = spool.take()
                    item.path = spool.path  # a lazy spool's file may be in tmp/
                    if made is not None and spool.made:
                        made.add(spool.path)
                    if fds is None:
                        os.close(fd)
                    else:
                        fds.append(fd)
                elif fds is not None:
                    fds.append(None)
                news.append(self.prepare_spool(item.path, flags=item.flags,
                                               received=item.received, headers=headers,
                                               size=size))
        except BaseException:
            for item in items:
                if item.spool is not None and not item.spool.finished:
                    item.spool.discard()
                item.path.unlink(missing_ok=True)
            raise
        return news

    # --- metadata (IMAP METADATA, RFC 5464) ----------------------------------

    MAX_METADATA_SIZE = 32 * 1024  # octets of one value (below the 64 KiB literal limit)
    MAX_METADATA_ENTRIES = 200  # per mailbox, and for the server

    def _metadata_owner(self, db: sqlite3.Connection, mailbox_name: str | None) -> int:
        return 0 if mailbox_name is None else self._mailbox_by_name(db, mailbox_name).id

    def get_metadata(self, mailbox_name: str | None, entries: Iterable[str],
                     depth: str = "0") -> list[tuple[str, bytes]]:
        """Values of ``entries`` (lower case) and, with depth "1" or "infinity", of
        the entries below them (RFC 5464 §4.2.2); the server's when mailbox is None."""
        with self.lock:
            owner = self._metadata_owner(self.db, mailbox_name)
            rows = list(self.db.execute(
                "SELECT entry, value FROM metadata WHERE mailbox_id = ? ORDER BY entry",
                (owner,)))
        wanted = [e.lower() for e in entries]
        out = []
        for entry, value in rows:
            for w in wanted:
                if entry == w or (depth != "0" and entry.startswith(w + "/") and (
                        depth == "infinity" or "/" not in entry[len(w) + 1:])):
                    out.append((entry, bytes(value)))
                    break
        return out

    def set_metadata(self, mailbox_name: str | None,
                     items: Iterable[tuple[str, bytes | None]]) -> None:
        """Set (or with None remove) entries, all or none (RFC 5464 §4.3)."""
        with self._write() as (db, _modseq):
            owner = self._metadata_owner(db, mailbox_name)
            for entry, value in items:
                if value is None:
                    db.execute("DELETE FROM metadata WHERE mailbox_id = ? AND entry = ?",
                               (owner, entry.lower()))
                    continue
                if len(value) > self.MAX_METADATA_SIZE:
                    raise MetadataLimit(f"metadata value of {entry} is too large",
                                        False, self.MAX_METADATA_SIZE)
                db.execute("INSERT INTO metadata (mailbox_id, entry, value) VALUES (?, ?, ?)"
                           " ON CONFLICT (mailbox_id, entry) DO UPDATE SET value = excluded.value",
                           (owner, entry.lower(), value))
            count = db.execute("SELECT COUNT(*) FROM metadata WHERE mailbox_id = ?",
                               (owner,)).fetchone()[0]
            if count > self.MAX_METADATA_ENTRIES:
                raise MetadataLimit("too many metadata entries", True, self.MAX_METADATA_SIZE)

    # --- reading ------------------------------------------------------------

    def messages(self, mailbox_name: str, changed_since: int = 0,
                 uids: Iterable[int] | None = None) -> list[Message]:
        """Messages of a mailbox in UID order; only those with modseq > changed_since
        and, when ``uids`` is given, only those UIDs."""
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            rows = self._message_rows(mailbox.id, changed_since, uids)
        return [_message(r) for r in rows]

    def _message_rows(self, mailbox_id: int, changed_since: int,
                      uids: Iterable[int] | None) -> list[tuple]:  # type: ignore[type-arg]
        """The rows (:data:`_MESSAGE_COLUMNS`) for :meth:`messages`, in UID order.

        Each shape of request takes the index that finds its rows without
        reading the others: CHANGEDSINCE (RFC 7162 §3.1.4) the (mailbox, modseq)
        index, whose few rows are then matched against the UID set here (a
        client's ``1:*`` names every message; passing those to SQL would read
        them all); a sparse UID set (SEARCH hits) looks each UID up; a dense one
        reads its UID range. Rows are filtered as tuples, before any object is made.
        """
        db = self.db
        keep: set[int] | frozenset[int] | None = None
        if uids is not None:
            keep = uids if isinstance(uids, set | frozenset) else set(uids)
            if not keep:
                return []
        if changed_since > 0:
            # No ORDER BY: it would make SQLite walk the UID index instead.
            rows = db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM message"
                              " WHERE mailbox_id = ? AND modseq > ?",
                              (mailbox_id, changed_since)).fetchall()
            if keep is not None:
                rows = [r for r in rows if r[2] in keep]
            rows.sort(key=_uid_of_row)
            return rows
        if keep is None:
            return db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE mailbox_id = ?"
                              " ORDER BY uid", (mailbox_id,)).fetchall()
        low, high = min(keep), max(keep)
        if len(keep) * _SPARSE_FACTOR < high - low + 1:
            return list(_select_in(db, f"SELECT {_MESSAGE_COLUMNS} FROM message"
                                   " WHERE mailbox_id = ? AND uid IN ({}) ORDER BY uid",
                                   sorted(keep), before=(mailbox_id,)))
        rows = db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE mailbox_id = ?"
                          " AND uid BETWEEN ? AND ? ORDER BY uid",
                          (mailbox_id, low, high)).fetchall()
        if len(keep) < high - low + 1:
            rows = [r for r in rows if r[2] in keep]
        return rows

    def selection(self, mailbox_name: str) -> tuple[Mailbox, list[int], list[str], int | None]:
        """What IMAP SELECT needs, cheaply (RFC 9051 §6.3.2): the mailbox, its UIDs in
        order, the keywords in use, and the first unseen message's UID."""
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            uids = [r[0] for r in self.db.execute(
                "SELECT uid FROM message WHERE mailbox_id = ? ORDER BY uid", (mailbox.id,))]
            words: dict[str, str] = {}
            for (text,) in self.db.execute(
                    "SELECT DISTINCT keywords FROM message WHERE mailbox_id = ? AND keywords != ''",
                    (mailbox.id,)):
                for k in text.split():
                    words.setdefault(k.lower(), k)
            row = self.db.execute(
                "SELECT uid FROM message WHERE mailbox_id = ? AND flags & ? = 0"
                " ORDER BY uid LIMIT 1", (mailbox.id, SEEN)).fetchone()
        return mailbox, uids, sorted(words.values(), key=str.lower), row[0] if row else None

    def find_unindexed(self) -> int:
        """Queue every message the background indexer has not done (delivered just
        before a stop or crash, or stored before the index existed); how many.

        Messages it could not index carry a marker (``indexed = 2``) and are not
        queued again.
        """
        with self.lock:
            # The literal 0 (INDEX_PENDING) lets SQLite use the partial index.
            missing = [r[0] for r in self.db.execute(
                "SELECT id FROM message WHERE indexed = 0 ORDER BY id DESC")]  # newest first
            queued = set(self.to_index)
            self.to_index.extend(i for i in missing if i not in queued)
            return len(missing)

    def index_pending(self, limit: int = 200, runner: CpuRunner = INLINE) -> int:
        """Put delivered messages' text into the full-text and substring indexes;
        how many are left.

        Runs after delivery (not before the 250), in a worker thread. Each
        message is read and decoded by ``runner`` (:mod:`kittiwake.cpupool`: in
        the server, a worker process, so that this pure-Python work does not
        hold the server's GIL; the stored part tree saves the parse), in
        chunks; the rows are inserted here, so the account keeps one writer. A
        message's row is marked indexed in the same transaction as its index
        rows, so the work queue is the rows themselves: a crash before this
        commit leaves the message pending, and :meth:`find_unindexed` queues
        it at the next open. A message too long for the substring index, or
        that cannot be read, is marked impossible instead. A message expunged
        meanwhile is skipped.
        """
        return self._write_index(self._extract_index_text(self._take_index_jobs(limit), runner))

    def _take_index_jobs(self, limit: int) -> list[tuple[IndexJob, int]]:
        """The next ``limit`` queued messages still pending, as jobs (with their sizes)."""
        with self.lock:
            if self._closed:  # the store closed while the indexer was on its way
                return []
            batch, self.to_index = self.to_index[:limit], self.to_index[limit:]
            rows: dict[int, tuple[str, bytes | None, int]] = {}
            rows.update((r[0], r[1:]) for r in _select_in(
                self.db, "SELECT id, summary, prefix, size FROM message WHERE id IN ({})"
                " AND indexed = ?", batch, INDEX_PENDING))
        # Expunged meanwhile, or indexed already: no row, no job.
        return [(IndexJob(message_id, str(self.path(message_id)), bytes(row[1] or b""),
                          row[0], MAX_INDEX_CHARS), row[2])
                for message_id in batch if (row := rows.get(message_id)) is not None]

    @staticmethod
    def _extract_index_text(jobs: list[tuple[IndexJob, int]], runner: CpuRunner
                            ) -> list[IndexText]:
        """The jobs' text, by ``runner``, in chunks; no lock held (no database work)."""
        chunks = list(_index_chunks(jobs))
        texts: list[IndexText] = [text for part in runner.map(
            index_texts, [c for c, largest in chunks if largest <= LARGE_MESSAGE])
            for text in part]
        for chunk, largest in chunks:
            if largest > LARGE_MESSAGE:
                with _parsing(largest):  # large messages take turns (memory)
                    texts += runner.call(index_texts, chunk)
        return texts

    def _expunged(self, message_id: int) -> bool:
        """Whether the message's row is gone (expunged since it was queued)."""
        with self.lock:
            if self._closed:
                return False
            return self.db.execute("SELECT 1 FROM message WHERE id = ?",
                                   (message_id,)).fetchone() is None

    def _write_index(self, texts: list[IndexText]) -> int:
        """The index rows of ``texts`` and their rows' states; how many messages
        are still queued."""
        todo: list[_IndexRows] = []
        failed: list[int] = []  # ids the step could not read
        for text in texts:
            message_id = text.message_id
            rows = _IndexRows(message_id)
            if text.summary is not None:  # the part tree computed by the step
                rows.summary = text.summary
            if text.error:  # unreadable: marked, not retried at every open
                if text.error.startswith("FileNotFoundError") and self._expunged(message_id):
                    continue  # expunged while its text was read: nothing to index
                logger.warning("message cannot be indexed", message=message_id,
                               error=text.error)
                rows.state = INDEX_IMPOSSIBLE
                if text.summary is None:
                    failed.append(message_id)
                todo.append(rows)
                continue
            if text.search_headers is None:
                # too long for the substring index: decoded at search
                rows.state = INDEX_IMPOSSIBLE
            else:
                rows.text = (message_id, text.search_headers, text.search_body, message_id)
                rows.state = INDEX_DONE
            todo.append(rows)
        if failed:  # their summaries as a reader would get them (summarize never fails)
            computed = self.summaries(failed)
            for rows in todo:
                if rows.message_id in computed:
                    rows.summary = computed[rows.message_id]
        while todo:
            done = self._write_index_rows(todo)
            if done < 0:
                return 0
            del todo[:done]
            if todo:  # ended early for a waiting thread: its turn first
                self.lock.let_waiters_in()
        with self.lock:
            return len(self.to_index)

    def _write_index_rows(self, todo: list[_IndexRows]) -> int:
        """Index rows of the first messages of ``todo`` in one transaction; how
        many were written (-1: the store closed meanwhile, the rows stay pending).

        The transaction ends early when another thread waits for the account's
        lock (:attr:`AccountLock.wanted`) and it has run for :data:`INDEX_SLICE`:
        a delivery's commit then waits a few milliseconds, not for a batch of
        hundreds of milliseconds of trigram inserts (which held every
        acknowledgement back on the MX path).
        """
        written = 0
        with self.lock:
            began = time.monotonic()
            if self._closed:
                return -1
            db = self.db
            # The index can always be rebuilt, so its commit need not wait for an
            # fsync (WAL with synchronous=NORMAL stays consistent: a lost commit
            # leaves the rows pending; the next durable commit syncs it too).
            db.execute("PRAGMA synchronous = NORMAL")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    exists = " WHERE EXISTS (SELECT 1 FROM message WHERE id = ?)"
                    for rows in todo:
                        if rows.text is not None:
                            db.execute("INSERT OR REPLACE INTO textindex (rowid, headers, body)"
                                       " SELECT ?, ?, ?" + exists, rows.text)
                        db.execute("UPDATE message SET indexed = ? WHERE id = ?",
                                   (rows.state, rows.message_id))
                        if rows.summary is not None:
                            # (only a row still without one: '' is summary.PENDING)
                            db.execute("UPDATE message SET summary = ? WHERE id = ?"
                                       " AND summary = ''", (rows.summary, rows.message_id))
                        written += 1
                        if self.lock.wanted and time.monotonic() - began >= INDEX_SLICE:
                            break
                    db.execute("COMMIT")
                    self.checkpointer.committed()
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.execute("PRAGMA synchronous = FULL")
            with self._summary_lock:
                for rows in todo[:written]:
                    if rows.summary is not None:
                        self._recent_summaries.pop(rows.message_id, None)
        return written

    def index_all_pending(self, runner: CpuRunner = INLINE,
                          progress: Callable[[int], None] | None = None,
                          batch: int = 1000) -> None:
        """Index everything queued now (a full-text search must see every message).

        A pipeline: while one batch's rows are written (SQLite, which releases
        the GIL), the next batch's text is extracted in a helper thread (by
        ``runner``: worker processes, or that thread). ``progress`` gets the
        number of messages done so far after each batch.
        """
        if not self.to_index:
            return
        done = 0
        with ThreadPoolExecutor(1, thread_name_prefix="kittiwake-index") as extractor:
            following: Future[list[IndexText]] | None = extractor.submit(
                self._extract_index_text, self._take_index_jobs(batch), runner)
            while following is not None:
                texts = following.result()
                following = None
                if self.to_index:
                    following = extractor.submit(self._extract_index_text,
                                                 self._take_index_jobs(batch), runner)
                self._write_index(texts)
                done += len(texts)
                if progress is not None:
                    progress(done)
    def text_search(self, mailbox_name: str, needle: str, column: str | None
                    ) -> tuple[set[int], set[int]]:
        """IMAP SEARCH text through the substring index: (indexed ids, matching ids).

        ``needle`` is folded already (``kittiwake.message.searchtext.fold``);
        ``column`` is "headers", "body" or None for either. The trigram index
        narrows the candidates (needles of three or more characters), and each
        is confirmed on the stored folded text, so the answer is exactly the
        substring test; messages not in the index are the caller's to decode.
        """
        _check_column(column)
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            # The index's own list of documents (FTS5 docsize table): no text read.
            indexed = {r[0] for r in self.db.execute(
                "SELECT id FROM message WHERE mailbox_id = ?"
                " AND id IN (SELECT id FROM textindex_docsize)", (mailbox.id,))}
            rows = self._text_hits(mailbox.id, needle, column)
        return indexed, {r[0] for r in rows}

    def text_matches(self, mailbox_name: str, needle: str, column: str | None
                     ) -> tuple[list[Message], list[Message]]:
        """IMAP SEARCH text of one mailbox through the substring index, in one
        transaction: (messages whose indexed text holds ``needle``, messages not
        in the index), both in UID order.

        As :meth:`text_search` (``needle`` folded, ``column`` "headers", "body" or
        None, the substring test exact on the indexed text), but only the hits'
        rows and the unindexed ones are read, not every message of the mailbox.
        """
        _check_column(column)
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            hits = self._text_hits(mailbox.id, needle, column)
            unindexed = self.db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE mailbox_id = ?"
                " AND id NOT IN (SELECT id FROM textindex_docsize) ORDER BY uid",
                (mailbox.id,)).fetchall()
        return [_message(r) for r in hits], [_message(r) for r in unindexed]

    def _text_hits(self, mailbox_id: int, needle: str, column: str | None
                   ) -> list[tuple]:  # type: ignore[type-arg]
        """Rows (:data:`_MESSAGE_COLUMNS`) of the mailbox's indexed messages whose
        folded text holds ``needle``, in UID order (under the lock).

        The trigram index finds the documents of the whole account that hold
        the needle's trigrams (:func:`trigram_query`: a superset, as the index
        keeps no positions and no columns, and its tokenizer folds case its own
        way); they are cut to the mailbox by row id and confirmed by ``instr`` on
        the stored text, which is the exact substring test (code points of valid
        UTF-8), in SQLite: the text is not copied out.
        """
        db = self.db
        test = {"headers": "instr(t.headers, ?1) > 0", "body": "instr(t.body, ?1) > 0"}.get(
            column or "", "(instr(t.headers, ?1) > 0 OR instr(t.body, ?1) > 0)")
        select = (f"SELECT {_MESSAGE_COLUMNS_M} FROM message m"
                  f" JOIN textindex t ON t.rowid = m.id WHERE {test} AND")
        if len(needle) < 3:  # too short for trigrams: every indexed message of the mailbox
            return db.execute(f"{select} m.mailbox_id = ?2 ORDER BY m.uid",
                              (needle, mailbox_id)).fetchall()
        found = [r[0] for r in db.execute(
            "SELECT rowid FROM textindex WHERE textindex MATCH ?", (trigram_query(needle),))]
        rows = []
        for i in range(0, len(found), _CHUNK):
            chunk = found[i:i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            # "+m.mailbox_id": the ids are looked up by key, not the mailbox's rows read.
            rows += db.execute(f"{select} +m.mailbox_id = ?2 AND m.id IN ({marks})",
                               (needle, mailbox_id, *chunk))
        rows.sort(key=_uid_of_row)
        return rows

    def uid_ids(self, mailbox_name: str) -> dict[int, int]:
        """UID -> message id of every message of a mailbox."""
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            return dict(self.db.execute("SELECT uid, id FROM message WHERE mailbox_id = ?",
                                        (mailbox.id,)))

    def summaries(self, message_ids: Iterable[int]) -> dict[int, str]:
        """The summary JSON (part tree, envelope) of each message id: as stored, or
        computed now for a message whose background step has not filled it yet."""
        ids = list(message_ids)
        out: dict[int, str] = {}
        pending: dict[int, bytes] = {}
        with self.lock:
            for message_id, summary, prefix in _select_in(
                    self.db, "SELECT id, summary, CASE summary WHEN '' THEN prefix END"
                    " FROM message WHERE id IN ({})", ids):
                out[message_id] = summary
                if summary == PENDING:
                    pending[message_id] = bytes(prefix)
        for message_id, prefix in pending.items():
            out[message_id] = self._summary_now(message_id, prefix)
        return out

    def message(self, message_id: int) -> Message:
        with self.lock:
            row = self.db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE id = ?",
                                  (message_id,)).fetchone()
        if row is None:
            raise StoreError(f"no message {message_id}")
        return _message(row)

    def summary_json(self, message_id: int) -> str:
        """The summary JSON of one message (see :meth:`summaries`)."""
        with self.lock:
            row = self.db.execute("SELECT summary, CASE summary WHEN '' THEN prefix END"
                                  " FROM message WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise StoreError(f"no message {message_id}")
        if row[0] == PENDING:
            return self._summary_now(message_id, bytes(row[1]))
        return str(row[0])

    def _summary_now(self, message_id: int, prefix: bytes) -> str:
        """The summary JSON of a message whose row has none yet (its background step
        is still to come), from its file; kept a while, as a client that hears of a
        new message usually fetches it at once, and more than once."""
        with self._summary_lock:
            known = self._recent_summaries.get(message_id)
        if known is not None:
            return known
        path = self.path(message_id)
        try:
            if os.path.getsize(path) + len(prefix) > LARGE_MESSAGE:
                with FileBytes(path, prefix) as view:
                    summary = summarize(view).json
            else:
                summary = summarize(prefix + path.read_bytes()).json
        except OSError:  # expunged meanwhile
            return "{}"
        with self._summary_lock:
            self._recent_summaries[message_id] = summary
            while len(self._recent_summaries) > RECENT_SUMMARIES:
                del self._recent_summaries[next(iter(self._recent_summaries))]
        return summary

    def path(self, message_id: int) -> Path:
        """The file of a message: its octets after the prefix (see :meth:`message_file`)."""
        return durable.message_path(self.root, message_id)

    def message_file(self, message_id: int) -> MessageFile:
        """Where a message's octets are: its row's prefix, then its file."""
        return self.message_files([message_id])[message_id]

    def message_files(self, message_ids: Iterable[int]) -> dict[int, MessageFile]:
        """:class:`MessageFile` of each message id (one query per 500 ids). An id
        without a row (expunged meanwhile) gets its bare path, which may be gone."""
        ids = list(message_ids)
        out: dict[int, MessageFile] = {i: MessageFile(self.path(i)) for i in ids}
        with self.lock:
            for mid, prefix in _select_in(
                    self.db, "SELECT id, prefix FROM message WHERE id IN ({})", ids):
                out[mid] = MessageFile(self.path(mid), bytes(prefix))
        return out

    def fetch_rows(self, mailbox_name: str, uids: Sequence[int], changed_since: int = 0,
                   limit: int = -1) -> list[FetchRow]:
        """The rows of ``uids`` (ascending) of a mailbox with modseq > ``changed_since``,
        in UID order: what a reader of many messages (IMAP FETCH) needs, in one query,
        as plain tuples. UIDs without a row (expunged) are simply not there.
        ``limit``: at most that many rows of the UID range (-1: all), the rest of the
        range after the last one given left for another call."""
        if not uids:
            return []
        # With changed_since (RFC 7162 CHANGEDSINCE) the rows come from the modseq
        # index ("+uid" keeps the planner off the UID one): few rows changed, usually.
        where = "+uid BETWEEN ? AND ? AND modseq > ?" if changed_since else \
            "uid BETWEEN ? AND ? AND modseq > ?"
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            rows = self.db.execute(
                "SELECT id, uid, modseq, flags, keywords, size, received, saved, thread_id,"
                f" prefix FROM message WHERE mailbox_id = ? AND {where} ORDER BY uid LIMIT ?",
                (mailbox.id, uids[0], uids[-1], changed_since, limit)).fetchall()
        make = tuple.__new__  # FetchRow._make without its Python-level checks
        return _only(uids, [make(FetchRow, r) for r in rows])

    def fetch_ids(self, mailbox_name: str, uids: Sequence[int]) -> list[IdRow]:
        """:meth:`fetch_rows` for a reader that needs only the row ids (from the UID
        index alone, several times cheaper)."""
        if not uids:
            return []
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            rows = self.db.execute(
                "SELECT id, uid FROM message WHERE mailbox_id = ? AND uid BETWEEN ? AND ?"
                " ORDER BY uid", (mailbox.id, uids[0], uids[-1])).fetchall()
        make = tuple.__new__
        return _only(uids, [make(IdRow, r) for r in rows])

    def fetch_narrow(self, mailbox_name: str, uids: Sequence[int], row: type[N]) -> list[N]:
        """:meth:`fetch_rows` for a reader that needs only the columns of ``row``
        (:class:`IdRow`, :class:`FlagRow` or :class:`FileRow`, whose fields are
        columns of a :class:`FetchRow`): fewer values made per message."""
        if not uids:
            return []
        columns = _NARROW_COLUMNS[row]
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            rows = self.db.execute(
                f"SELECT {columns} FROM message WHERE mailbox_id = ? AND uid BETWEEN ? AND ?"
                " ORDER BY uid", (mailbox.id, uids[0], uids[-1])).fetchall()
        make = tuple.__new__
        return _only(uids, [make(row, r) for r in rows])

    def file_name(self, message_id: int) -> str:
        """:meth:`path` as a string (cheaper, for readers of many files)."""
        return f"{self.root}/msg/{message_id // durable.SHARD_SIZE:x}/{message_id}"

    def cached(self, message_ids: Iterable[int]) -> dict[int, bytes]:
        """The reader's blob of each message id that has one (:meth:`put_cache`)."""
        ids = list(message_ids)
        out: dict[int, bytes] = {}
        with self.lock:
            out.update(_select_in(self.db, "SELECT id, data FROM message_cache WHERE id IN ({})",
                                  ids))
        return out

    def put_cache(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Keep a reader's blob for each (message id, data); see ``message_cache`` in
        :mod:`kittiwake.store.schema`. Best effort: a blob is derived data, so the
        commit is not fsynced (a crash may lose it, never anything else), a message
        expunged meanwhile gets none, and a failure is logged, not raised."""
        rows = [(mid, data, mid) for mid, data in items]
        if not rows:
            return
        with self.lock:
            db = self.db
            try:
                # Not worth waiting for another process's write (an import, say).
                timeout = db.execute("PRAGMA busy_timeout").fetchone()[0]
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute("PRAGMA busy_timeout = 100")
                try:
                    with transaction(db):
                        db.executemany(
                            "INSERT OR REPLACE INTO message_cache (id, data) SELECT ?, ?"
                            " WHERE EXISTS (SELECT 1 FROM message WHERE id = ?)", rows)
                    self.checkpointer.committed()
                finally:
                    db.execute("PRAGMA synchronous = FULL")
                    db.execute(f"PRAGMA busy_timeout = {int(timeout)}")
            except sqlite3.Error as exc:
                logger.info("message cache not written", error=str(exc), count=len(rows))

    def read(self, message_id: int) -> bytes:
        """The whole message as delivered: prefix and file."""
        with self.lock:
            row = self.db.execute("SELECT prefix FROM message WHERE id = ?",
                                  (message_id,)).fetchone()
        prefix = bytes(row[0]) if row else b""
        return prefix + self.path(message_id).read_bytes()

    def vanished(self, mailbox_name: str, since_modseq: int) -> list[int]:
        """UIDs expunged after ``since_modseq`` (RFC 7162 §3.2.10 VANISHED)."""
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            return [r[0] for r in self.db.execute(
                "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                (mailbox.id, since_modseq))]

    def search(self, query: str, mailbox_name: str | None = None,
               limit: int = 0) -> list[Message]:
        """The messages whose decoded, folded headers or text hold every word of
        ``query`` (a substring test per word, as IMAP SEARCH TEXT), newest first,
        through the substring index; messages not in it (too long) are not found.
        """
        words = list(dict.fromkeys(fold(query).split()))
        if not words:
            return []
        self.index_all_pending()  # mail delivered in the last second is searchable too
        sql = (f"SELECT {_MESSAGE_COLUMNS_M} FROM message m JOIN textindex t"
               " ON t.rowid = m.id WHERE 1")
        args: list[object] = []
        # The index narrows by (some of) the trigrams of the longer words, in one
        # query of at most MAX_QUERY_TRIGRAMS terms; each word is then confirmed.
        long_words = [w for w in words if len(w) >= 3][:MAX_QUERY_TRIGRAMS]
        if long_words:
            most = max(1, MAX_QUERY_TRIGRAMS // len(long_words))
            sql += " AND m.id IN (SELECT rowid FROM textindex WHERE textindex MATCH ?)"
            args.append(" AND ".join(f"({trigram_query(w, most)})" for w in long_words))
        for word in words:
            sql += " AND (instr(t.headers, ?) > 0 OR instr(t.body, ?) > 0)"
            args += [word, word]
        with self.lock:
            if mailbox_name is not None:
                sql += " AND m.mailbox_id = ?"
                args.append(self._mailbox_by_name(self.db, mailbox_name).id)
            sql += " ORDER BY m.received DESC"
            if limit:
                sql += f" LIMIT {int(limit)}"
            return [_message(r) for r in self.db.execute(sql, args)]

    # --- changing messages --------------------------------------------------

    def store_flags(self, mailbox_name: str, uids: Iterable[int], mode: str, flags: Flags,
                    unchanged_since: int | None = None
                    ) -> tuple[list[Message], list[int], list[Change]]:
        """Add, remove or replace flags (RFC 9051 §6.4.6) with UNCHANGEDSINCE (RFC 7162 §3.1.3).

        Returns (changed messages, uids that failed the UNCHANGEDSINCE test, changes).
        Messages whose flags end up the same are not changed (no new modseq).
        """
        stored, changes = self.update_flags(mailbox_name, uids, mode, flags, unchanged_since)
        return stored.changed, stored.failed, changes

    def update_flags(self, mailbox_name: str, uids: Iterable[int], mode: str, flags: Flags,
                     unchanged_since: int | None = None) -> tuple[FlagsStored, list[Change]]:
        """As :meth:`store_flags`, also giving the flags of the messages it left as
        they were (IMAP STORE answers with every message's FLAGS)."""
        if mode not in ("add", "remove", "replace"):
            raise ValueError(mode)
        try:
            return self._store_flags(mailbox_name, uids, mode, flags, unchanged_since)
        except _NothingChanged as nothing:
            stored = nothing.result
            assert isinstance(stored, FlagsStored)
            return stored, []

    def _store_flags(self, mailbox_name: str, uids: Iterable[int], mode: str, flags: Flags,
                     unchanged_since: int | None) -> tuple[FlagsStored, list[Change]]:
        """One transaction: the rows of the set read as tuples, the new flags worked
        out once per distinct old value, and one statement for all the updates."""
        messages: list[Message] = []
        changed: list[Message] = []
        failed: list[int] = []
        new_flags = _FlagChange(mode, flags)
        with self._write() as (db, modseq):
            mailbox = self._mailbox_by_name(db, mailbox_name)
            updates = []
            d_unseen = d_deleted = 0
            for row in self._message_rows(mailbox.id, 0, uids):
                uid, old_modseq, bits, keywords = row[2], row[3], row[4], row[5]
                if unchanged_since is not None and old_modseq > unchanged_since:
                    failed.append(uid)
                    continue
                new = new_flags(bits, keywords)
                if new is None:
                    messages.append(new_flags.message(row, old_modseq, bits, keywords))
                    continue
                new_bits, new_keywords = new
                updates.append((new_bits, new_keywords, modseq, row[0]))
                d_unseen += (1 if bits & SEEN else 0) - (1 if new_bits & SEEN else 0)
                d_deleted += (1 if new_bits & DELETED else 0) - (1 if bits & DELETED else 0)
                message = new_flags.message(row, modseq, new_bits, new_keywords)
                messages.append(message)
                changed.append(message)
            stored = FlagsStored(messages, changed, failed)
            if not updates:
                raise _NothingChanged(stored)
            db.executemany("UPDATE message SET flags = ?, keywords = ?, modseq = ? WHERE id = ?",
                           updates)
            db.execute("UPDATE mailbox SET unseen = unseen + ?, deleted = deleted + ?,"
                       " highestmodseq = ? WHERE id = ?",
                       (d_unseen, d_deleted, modseq, mailbox.id))
        change = Change("flags", mailbox.id, mailbox.name, tuple(m.uid for m in changed), modseq,
                        tuple(m.flags for m in changed))
        return stored, [change]

    def copy(self, mailbox_name: str, uids: Iterable[int], target_name: str
             ) -> tuple[list[tuple[int, int]], list[Change]]:
        """Copy messages (RFC 9051 §6.4.7); returns (source uid, new uid) pairs (UIDPLUS)."""
        return self._copy_or_move(mailbox_name, uids, target_name, move=False)

    def move(self, mailbox_name: str, uids: Iterable[int], target_name: str
             ) -> tuple[list[tuple[int, int]], list[Change]]:
        """Move messages atomically (RFC 6851): new UIDs in the target, tombstones here."""
        return self._copy_or_move(mailbox_name, uids, target_name, move=True)

    def _copy_or_move(self, mailbox_name: str, uids: Iterable[int], target_name: str,
                      move: bool) -> tuple[list[tuple[int, int]], list[Change]]:
        wanted = sorted(set(uids))
        pairs: list[tuple[int, int]] = []
        linked: list[int] = []
        try:
            with self._write() as (db, modseq):
                source = self._mailbox_by_name(db, mailbox_name)
                target = self._mailbox_by_name(db, target_name)
                if move and source.id == target.id:
                    raise StoreError("source and target mailbox are the same")
                rows = [r for r in db.execute(
                    "SELECT id, uid, flags, size FROM message WHERE mailbox_id = ? ORDER BY uid",
                    (source.id,)) if r[1] in set(wanted)]
                uid = target.uidnext
                size = unseen = deleted = 0
                for message_id, old_uid, bits, msize in rows:
                    if move:
                        db.execute("UPDATE message SET mailbox_id = ?, uid = ?, modseq = ?,"
                                   " created_modseq = ? WHERE id = ?",
                                   (target.id, uid, modseq, modseq, message_id))
                        db.execute("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
                                   " VALUES (?, ?, ?)", (source.id, old_uid, modseq))
                    else:
                        new_id = self._take_ids(db, 1)
                        db.execute(
                            "INSERT INTO message (id, mailbox_id, uid, modseq, created_modseq,"
                            " flags, keywords, size, received, saved, message_id, thread_id,"
                            " subject, mailfrom, rcptto, summary, prefix, indexed) SELECT ?, ?,"
                            " ?, ?, ?, flags, keywords, size, received, ?, message_id,"
                            " thread_id, subject, mailfrom, rcptto, summary, prefix, indexed"
                            " FROM message WHERE id = ?",
                            (new_id, target.id, uid, modseq, modseq, now_ms(), message_id))
                        db.execute("INSERT INTO textindex (rowid, headers, body) SELECT ?,"
                                   " headers, body FROM textindex WHERE rowid = ?",
                                   (new_id, message_id))
                        db.execute("INSERT INTO message_cache (id, data) SELECT ?, data"
                                   " FROM message_cache WHERE id = ?", (new_id, message_id))
                        durable.link_copy(self.root, message_id, new_id, sync=False)
                        linked.append(new_id)
                    pairs.append((old_uid, uid))
                    uid += 1
                    size += msize
                    unseen += 0 if bits & SEEN else 1
                    deleted += 1 if bits & DELETED else 0
                n = len(pairs)
                db.execute("UPDATE mailbox SET uidnext = ?, messages = messages + ?,"
                           " unseen = unseen + ?, deleted = deleted + ?, size = size + ?,"
                           " highestmodseq = ? WHERE id = ?",
                           (uid, n, unseen, deleted, size, modseq, target.id))
                if move and n:
                    db.execute("UPDATE mailbox SET messages = messages - ?, unseen = unseen - ?,"
                               " deleted = deleted - ?, size = size - ?, highestmodseq = ?"
                               " WHERE id = ?", (n, unseen, deleted, size, modseq, source.id))
                if linked:
                    for directory in {durable.message_path(self.root, i).parent for i in linked}:
                        durable.fsync_dir(directory)
        except BaseException:
            durable.remove(self.root, linked)
            raise
        if linked:
            with self.lock:  # copies of messages not indexed yet (skipped if they are)
                self.to_index.extend(linked)
        changes = [Change("added", target.id, target.name, tuple(p[1] for p in pairs), modseq)]
        if move:
            changes.append(Change("expunged", source.id, source.name,
                                  tuple(p[0] for p in pairs), modseq))
        return pairs, changes

    def expunge(self, mailbox_name: str, uids: Iterable[int] | None = None
                ) -> tuple[list[int], list[Change]]:
        """Remove messages flagged \\Deleted (only among ``uids`` if given, UID EXPUNGE)."""
        try:
            return self._expunge(mailbox_name, set(uids) if uids is not None else None)
        except _NothingChanged:
            return [], []

    def _expunge(self, mailbox_name: str, limit: set[int] | None
                 ) -> tuple[list[int], list[Change]]:
        with self._write() as (db, modseq):
            mailbox = self._mailbox_by_name(db, mailbox_name)
            rows = [r for r in db.execute(
                "SELECT id, uid, flags, size FROM message WHERE mailbox_id = ? AND flags & ?"
                " ORDER BY uid", (mailbox.id, DELETED)) if limit is None or r[1] in limit]
            if not rows:
                raise _NothingChanged(([], []))
            ids = _remove_rows(db, mailbox.id, rows, modseq)
        durable.remove(self.root, ids)
        uids_gone = [r[1] for r in rows]
        return uids_gone, [Change("expunged", mailbox.id, mailbox.name, tuple(uids_gone), modseq)]

    # --- credentials --------------------------------------------------------

    def set_credentials(self, data: str) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO credentials (id, data) VALUES (1, ?)",
                            (data,))

    def credentials(self) -> str | None:
        with self.lock:
            row = self.db.execute("SELECT data FROM credentials WHERE id = 1").fetchone()
        return row[0] if row else None


# Index text extraction is sent to the CPU workers in chunks of at most this many
# messages or bytes (fewer round trips; a large message goes alone).
INDEX_CHUNK_MESSAGES = 32
INDEX_CHUNK_BYTES = 4 << 20


def _index_chunks(jobs: list[tuple[IndexJob, int]]) -> Iterator[tuple[list[IndexJob], int]]:
    """Jobs (with their sizes) grouped for the workers: (chunk, largest size in it)."""
    chunk: list[IndexJob] = []
    size = largest = 0
    for job, job_size in jobs:
        if chunk and (len(chunk) >= INDEX_CHUNK_MESSAGES or size + job_size > INDEX_CHUNK_BYTES):
            yield chunk, largest
            chunk, size, largest = [], 0, 0
        chunk.append(job)
        size += job_size
        largest = max(largest, job_size)
    if chunk:
        yield chunk, largest


class _Placer(threading.Thread):
    """Renames a batch's files into place, then syncs them all (``durable.sync_files``)."""

    def __init__(self, root: Path, moves: list[tuple[Path, int]], placed: list[Path]) -> None:
        super().__init__(name="kittiwake-place", daemon=True)
        self.root = root
        self.moves = moves
        self.placed = placed
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            for tmp, message_id in self.moves:
                self.placed.append(durable.move_into_place(self.root, tmp, message_id,
                                                         sync=False))
            durable.sync_files(self.placed)
        except BaseException as exc:  # handed to the transaction's thread
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


class _BoxTally:
    """A mailbox's next UID and what a group adds to its counts (one UPDATE per group)."""

    __slots__ = ("deleted", "mailbox", "messages", "size", "uidnext", "unseen")

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.uidnext = mailbox.uidnext
        self.messages = self.unseen = self.deleted = self.size = 0

    def count(self, new: NewMessage) -> None:
        self.messages += 1
        self.size += new.size
        if not new.flags.system & SEEN:
            self.unseen += 1
        if new.flags.system & DELETED:
            self.deleted += 1


_INSERT_MESSAGE = (
    "INSERT INTO message (id, mailbox_id, uid, modseq, created_modseq,"
    " flags, keywords, size, received, saved, message_id, thread_id,"
    " subject, mailfrom, rcptto, summary, prefix, indexed)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class _OpenLock:
    """A flock on ``root/lock``: exclusive at open when we are alone, then shared."""

    def __init__(self, fd: int, exclusive: bool) -> None:
        self.fd = fd
        self.exclusive = exclusive

    def share(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _hold_open_lock(root: Path) -> _OpenLock:
    fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return _OpenLock(fd, False)
    return _OpenLock(fd, True)


def read_credentials(root: Path) -> str | None:
    """An account's stored credentials, read without opening the store (no side effects)."""
    path = root / "index.db"
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT data FROM credentials WHERE id = 1").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return row[0] if row else None


class _NothingChanged(Exception):
    """Raised inside a write transaction to roll it back (no modseq used)."""

    def __init__(self, result: object) -> None:
        self.result = result


def discard(delivery: Delivery) -> None:
    """Remove the files of a placed delivery that will not be committed."""
    fds, delivery.fds = delivery.fds, {}
    for fd in fds.values():
        os.close(fd)
    _discard(delivery.placed, delivery.messages)
    delivery.placed = []


def _discard(placed: list[Path], messages: list[NewMessage]) -> None:
    """Undo a failed delivery's files: those placed, and the temporary ones it owns."""
    for path in placed:
        path.unlink(missing_ok=True)
    for new in messages:
        if not new.keep_source:
            new.tmp_path.unlink(missing_ok=True)


def _unsynced_text(unsynced: dict[int, tuple[int, ...]]) -> str:
    """A store's row of early-committed deliveries: each delivery's ids joined by
    commas, the deliveries by spaces ("12 13 14,15")."""
    return " ".join(",".join(map(str, ids)) for ids in unsynced.values())


def unsynced_rows(db: sqlite3.Connection) -> tuple[list[str], dict[int, list[int]]]:
    """The ``meta`` rows listing early-committed deliveries (this version's, one per
    store, and the older one-per-message ``unsynced:<id>``): their keys, and the
    deliveries they list (first id -> ids)."""
    keys: list[str] = []
    deliveries: dict[int, list[int]] = {}
    for key, value in db.execute("SELECT key, value FROM meta WHERE key LIKE ?",
                                 (UNSYNCED + "%",)):
        keys.append(key)
        if key.startswith(UNSYNCED + ":"):  # an older store's: one row per message
            deliveries.setdefault(int(value), []).append(int(key.partition(":")[2]))
            continue
        for part in str(value).split():
            ids = [int(i) for i in part.split(",")]
            deliveries[ids[0]] = ids
    return keys, deliveries


def _remove_rows(db: sqlite3.Connection, mailbox_id: int,
                 rows: list[tuple[int, int, int, int]], modseq: int) -> list[int]:
    """Delete messages (id, uid, flags, size) of a mailbox in the open transaction:
    rows, index, counts, and the VANISHED record (RFC 7162 §3.2.10). Returns the ids,
    whose files the caller removes after the commit."""
    ids = [r[0] for r in rows]
    db.executemany("DELETE FROM textindex WHERE rowid = ?", [(i,) for i in ids])
    db.executemany("DELETE FROM message_cache WHERE id = ?", [(i,) for i in ids])
    db.executemany("DELETE FROM message WHERE id = ?", [(i,) for i in ids])
    db.executemany("INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
                   " VALUES (?, ?, ?)", [(mailbox_id, r[1], modseq) for r in rows])
    unseen = sum(1 for r in rows if not r[2] & SEEN)
    deleted = sum(1 for r in rows if r[2] & DELETED)
    db.execute("UPDATE mailbox SET messages = messages - ?, unseen = unseen - ?,"
               " deleted = deleted - ?, size = size - ?, highestmodseq = ? WHERE id = ?",
               (len(rows), unseen, deleted, sum(r[3] for r in rows), modseq, mailbox_id))
    return ids


@dataclass
class _IndexRows:
    """What the background indexer writes for one message."""

    message_id: int
    state: int = 0  # INDEX_DONE or INDEX_IMPOSSIBLE
    text: tuple[int, str, str, int] | None = None  # substring index row
    summary: str | None = None  # the part tree, for a row still without one


def _select_in(db: sqlite3.Connection, sql: str, ids: Sequence[int], *extra: object,
               before: Sequence[object] = ()) -> Iterator[tuple]:  # type: ignore[type-arg]
    """The rows of ``sql`` (whose ``IN ({})`` is filled with placeholders) for ``ids``,
    queried :data:`_CHUNK` at a time; ``before``/``extra``: the parameters before and
    after the ids."""
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        yield from db.execute(sql.format(",".join("?" * len(chunk))),
                              [*before, *chunk, *extra])


def _only(uids: Sequence[int], rows: list[R]) -> list[R]:
    """The rows (in UID order, of the range of ``uids``) whose UID is in ``uids``."""
    if len(uids) < uids[-1] - uids[0] + 1:
        keep = set(uids)
        return [r for r in rows if r[1] in keep]
    return rows


def _first_free_id(db: sqlite3.Connection) -> int:
    """The lowest message id never used in this account (see AccountStore._take_ids)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'next_message_id'").fetchone()
    largest = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM message").fetchone()[0]
    return int(max(row[0] if row else 0, largest))


def _note_ids(db: sqlite3.Connection, next_id: int) -> None:
    """Record in the open transaction that ids below ``next_id`` are used."""
    db.execute("INSERT INTO meta (key, value) VALUES ('next_message_id', ?)"
               " ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
               (next_id,))


def normalize_mailbox_name(name: str) -> str:
    """Inbox is case-insensitive (RFC 9051 §5.1); no empty hierarchy levels."""
    name = name.strip(SEPARATOR)
    if not name:
        raise StoreError("empty mailbox name")
    if any(not part for part in name.split(SEPARATOR)):
        raise StoreError(f"mailbox name {name!r} has an empty hierarchy level")
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        raise StoreError(f"mailbox name {name!r} contains control characters")
    first, _, rest = name.partition(SEPARATOR)
    if first.lower() == "inbox":
        return "Inbox" + (SEPARATOR + rest if rest else "")
    return name


def _like_prefix(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + SEPARATOR + "%"


def _apply(current: Flags, mode: str, change: Flags) -> Flags:
    if mode == "replace":
        return change
    lower = {k.lower(): k for k in current.keywords}
    if mode == "add":
        for k in change.keywords:
            lower.setdefault(k.lower(), k)
        return Flags(current.system | change.system, tuple(sorted(lower.values(), key=str.lower)))
    for k in change.keywords:
        lower.pop(k.lower(), None)
    return Flags(current.system & ~change.system, tuple(sorted(lower.values(), key=str.lower)))


class _FlagChange:
    """A STORE's change applied to stored (bits, keyword text) values.

    Most messages of a mailbox share a few flag values, so each distinct old
    value is worked out once (:func:`_apply`).
    """

    def __init__(self, mode: str, change: Flags) -> None:
        self.mode = mode
        self.change = change
        self._results: dict[tuple[int, str], tuple[int, str] | None] = {}

    def __call__(self, bits: int, keywords: str) -> tuple[int, str] | None:
        """The new (bits, keyword text), or None when the flags stay as they are."""
        key = (bits, keywords)
        if key in self._results:
            return self._results[key]
        old = self.flags(bits, keywords)
        new = _apply(old, self.mode, self.change)
        got = None if new == old else (new.system, new.keyword_text())
        self._results[key] = got
        return got

    def flags(self, bits: int, keywords: str) -> Flags:
        return _flags(bits, keywords)

    def message(self, row: tuple, modseq: int, bits: int,  # type: ignore[type-arg]
                keywords: str) -> Message:
        """The row (:data:`_MESSAGE_COLUMNS`) as a Message with these flags and modseq."""
        return Message(row[0], row[1], row[2], modseq, self.flags(bits, keywords), row[6],
                       row[7], row[8], row[9], row[10], row[11])


def _thread_id(db: sqlite3.Connection, summary: Summary, own_id: int,
               batch: dict[str, int] | None = None) -> int:
    """Thread of the newest referenced message found in the account, else a new thread.

    ``batch`` maps Message-IDs of messages being added in the same transaction
    (not yet in the table) to their threads.
    """
    for ref in [*summary.in_reply_to, *reversed(summary.references)]:
        row = db.execute("SELECT thread_id FROM message WHERE message_id = ? LIMIT 1",
                         (ref,)).fetchone()
        if row:
            return row[0]
        if batch and ref in batch:
            return batch[ref]
    return own_id


# Trigrams a query asks the index for, at most: any of a needle's trigrams give a
# superset of its documents (confirmed on the text); FTS5 bounds a query's depth.
MAX_QUERY_TRIGRAMS = 32


def trigram_query(needle: str, most: int = MAX_QUERY_TRIGRAMS) -> str:
    """The FTS5 query for documents holding every trigram of ``needle`` (three or
    more characters): each a single-token phrase, as the trigram index has no
    positions for a phrase of more (``detail=none``). A long needle is asked by
    ``most`` of its trigrams, spread over it."""
    grams = list(dict.fromkeys(needle[i:i + 3] for i in range(len(needle) - 2)))
    if len(grams) > most:
        step = (len(grams) - 1) / max(most - 1, 1)
        grams = list(dict.fromkeys(grams[round(k * step)] for k in range(most)))
    return " AND ".join('"' + g.replace('"', '""') + '"' for g in grams)


_MAILBOX_COLUMNS = ("id, name, uidvalidity, uidnext, special_use, messages, unseen, deleted,"
                    " size, highestmodseq")
_MESSAGE_COLUMNS = ("id, mailbox_id, uid, modseq, flags, keywords, size, received, saved,"
                    " message_id, thread_id, subject")
# UIDs looked up one by one when the set names fewer than 1 in this many of its range.
_SPARSE_FACTOR = 8
_CHUNK = 500  # bound parameters per query (SQLite allows 999 on old builds)
_MESSAGE_COLUMNS_M = ", ".join("m." + c.strip() for c in _MESSAGE_COLUMNS.split(","))


def _check_column(column: str | None) -> None:
    if column not in ("headers", "body", None):
        raise ValueError(column)


def _uid_of_row(row: tuple) -> int:  # type: ignore[type-arg]
    return int(row[2])


def _mailbox(row: tuple, subscribed: set[str]) -> Mailbox:  # type: ignore[type-arg]
    return Mailbox(*row, subscribed=row[1] in subscribed)


@lru_cache(maxsize=4096)
def _flags(bits: int, keywords: str) -> Flags:
    """Stored flags as a value; a mailbox has few distinct ones (Flags is immutable)."""
    return Flags.from_row(bits, keywords)


def _message(row: tuple) -> Message:  # type: ignore[type-arg]
    (id_, mailbox_id, uid, modseq, bits, keywords, size, received, saved, message_id,
     thread_id, subject) = row
    return Message(id_, mailbox_id, uid, modseq, _flags(bits, keywords), size, received,
                   saved, message_id, thread_id, subject)


def _head_summary(prefix: bytes, headers: Headers) -> Summary:
    """A delivery's summary from its header fields: the prefix's, then the message's."""
    if prefix:
        return summarize_head(header_fields(prefix), headers)
    return summarize_head(headers)
