"""One account's mail: mailboxes and messages in SQLite, bodies in files.

:class:`AccountStore` is the synchronous core; every method is one SQLite
transaction under the account's lock and is meant to run in a worker thread
(:class:`kittiwake.store.store.Account` is the async face). Writes follow
DESIGN.md "Durability": the message file is written, fsynced and renamed into
place, its directory fsynced, and only then is the transaction committed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from kittiwake import durable
from kittiwake.log import get_logger
from kittiwake.message import searchable_text
from kittiwake.message.part import Part
from kittiwake.sqlitedb import transaction
from kittiwake.store.messagefile import MessageFile
from kittiwake.store.model import (
    Change,
    Delivered,
    FetchRow,
    Flags,
    IdRow,
    Mailbox,
    MailboxExists,
    MailboxNotFound,
    Message,
    MetadataLimit,
    OverQuota,
    StoreError,
)
from kittiwake.store.schema import (
    DELETED,
    INDEX_DONE,
    INDEX_IMPOSSIBLE,
    INDEX_PENDING,
    SEEN,
    connect,
)
from kittiwake.store.summary import MAX_INDEX_CHARS, Summary, search_text_of, summarize

logger = get_logger("store")
R = TypeVar("R", FetchRow, IdRow)

SEPARATOR = "/"
# Message ids reserved at a time for group commits (see AccountStore._reserve_ids).
ID_BLOCK = 1024
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


@dataclass
class Appended:
    """A spooled, fsynced message file for :meth:`AccountStore.append`."""

    path: Path
    flags: Flags = field(default_factory=Flags)
    received: int = 0  # INTERNALDATE in ms; 0: now


LARGE_MESSAGE = 8 * 1024 * 1024
_large_parses = threading.Semaphore(1)


@contextmanager
def _parsing(size: int) -> Iterator[None]:
    """Summarizing a spooled message reads it whole (the MIME parser works on one
    buffer); messages above :data:`LARGE_MESSAGE` take turns, process-wide, so ten
    concurrent 90 MiB deliveries hold one of them in memory at a time, not ten."""
    if size <= LARGE_MESSAGE:
        yield
        return
    with _large_parses:
        yield


class AccountStore:
    """Synchronous store of one account. Thread-safe through one lock."""

    def __init__(self, name: str, root: Path, quota_bytes: int = 0) -> None:
        self.name = name
        self.root = root
        self.quota_bytes = quota_bytes
        self.lock = threading.RLock()
        self.to_index: list[int] = []  # message ids waiting for index_pending
        self.db = connect(root / "index.db")
        self._id_lock = threading.Lock()
        self._next_id = self._id_limit = 0  # the reserved block of ids (see _reserve_ids)
        self._lock_fd = _hold_open_lock(root)
        if self._lock_fd.exclusive:
            # Nobody else (no other process, no other AccountStore here) has the
            # account open, so leftovers cannot belong to a delivery in progress.
            durable.clean_tmp(root)
            self._remove_interrupted()
        self._lock_fd.share()

    def _remove_interrupted(self) -> None:
        """Remove files of deliveries that crashed between placing a file and its commit.

        Such a file has no row; it was never acknowledged. Its id was reserved
        recently (:meth:`_reserve_ids`), so it is among the top ids: only the
        shards that hold ids from a few blocks below the highest row are read.
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
        with self.lock:
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
                modseq = db.execute("SELECT value FROM meta WHERE key = 'modseq'").fetchone()[0]
                modseq += 1
                db.execute("UPDATE meta SET value = ? WHERE key = 'modseq'", (modseq,))
                yield db, modseq
                db.execute("COMMIT")
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

    def _mailbox_by_name(self, db: sqlite3.Connection, name: str) -> Mailbox:
        name = normalize_mailbox_name(name)
        row = db.execute(f"SELECT {_MAILBOX_COLUMNS} FROM mailbox WHERE name = ?",
                         (name,)).fetchone()
        if row is None:
            known = ", ".join(r[0] for r in db.execute("SELECT name FROM mailbox ORDER BY name"))
            raise MailboxNotFound(f"mailbox {name!r} does not exist (known: {known or 'none'})")
        subscribed = db.execute("SELECT 1 FROM subscription WHERE name = ?", (name,)).fetchone()
        return _mailbox(row, {name} if subscribed else set())

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
        """Create the default mailboxes that do not exist yet (Inbox always)."""
        changes: list[Change] = []
        existing = {m.name for m in self.mailboxes()}
        for name in ["Inbox", *names]:
            name = normalize_mailbox_name(name)
            if name not in existing:
                _, created = self.create_mailbox(name)
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
            db.executemany("DELETE FROM fts WHERE rowid = ?", [(i,) for i in ids])
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

    def place(self, delivery: Delivery) -> None:
        """A caller's own stage 1 (the async face's path), in the caller's thread.

        As :meth:`place_group` for one delivery, raising its error: ids, files to
        their final names, each file fsynced; the directory fsync is shared with
        concurrent callers (``durable.fsync_dir_shared``: one fsync covers every
        entry made before it started). Callers do this concurrently, so their
        fsyncs merge into few journal commits, as plain concurrent writers' do;
        only the COMMIT is serial, one per group (:meth:`commit_placed`).
        """
        first = self._reserve_ids(len(delivery.messages))
        delivery.ids = list(range(first, first + len(delivery.messages)))
        try:
            for new, message_id in zip(delivery.messages, delivery.ids, strict=True):
                delivery.placed.append(self._place(new, message_id))
            for path in delivery.placed:
                durable.fsync_file(path)
            for directory in {path.parent for path in delivery.placed}:
                durable.fsync_dir_shared(directory)
        except BaseException:
            _discard(delivery.placed, delivery.messages)
            delivery.placed = []
            raise

    def commit_placed(self, group: list[Delivery]) -> None:
        """Stage 2 of a group commit: all rows in one transaction, one COMMIT.

        Each delivery's rows go in inside a savepoint; one that fails (over
        quota, mailbox gone) is rolled back to it, its files removed, and gets
        its ``error``; the others go on. The COMMIT (one WAL fsync) makes all
        the rest durable; if it fails, every delivery gets that error and no new
        file stays visible. Results are set on each :class:`Delivery`.
        """
        done: list[tuple[Delivery, list[int]]] = []
        try:
            with self._write() as (db, modseq):
                for delivery in group:
                    if delivery.error is not None:
                        continue
                    db.execute("SAVEPOINT delivery")
                    try:
                        delivered, changes, removed = self._insert(
                            db, modseq, delivery.mailbox, delivery.messages, delivery.replaces,
                            indexed_now=False, ids=delivery.ids)
                        db.execute("RELEASE delivery")
                    except Exception as exc:
                        db.execute("ROLLBACK TO delivery")
                        db.execute("RELEASE delivery")
                        _discard(delivery.placed, delivery.messages)
                        delivery.error = exc
                        continue
                    delivery.delivered, delivery.changes = delivered, changes
                    done.append((delivery, removed))
                if not done:
                    raise _NothingChanged(None)
        except _NothingChanged:
            return
        except BaseException as exc:
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
            for new in delivery.messages:
                if not new.keep_source:
                    new.tmp_path.unlink(missing_ok=True)  # a rename left nothing; a copy did
            pending += [d.message_id for d in delivery.delivered]
            if removed:
                durable.remove(self.root, removed)
        with self.lock:
            # The substring and full-text index follow in the background
            # (index_pending); the rows say so (indexed = 0), so a crash first
            # only delays them to the next open.
            self.to_index.extend(pending)

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
        if ids is None:
            first_id = self._take_ids(db, len(messages))
        else:
            first_id = ids[0] if ids else 0
            _note_ids(db, first_id + len(messages))
        uid = mailbox.uidnext
        saved = now_ms()
        unseen = deleted = 0
        rows = []
        delivered: list[Delivered] = []
        threads: dict[str, int] = {}  # message-id -> thread, of this batch
        for message_id, new in enumerate(messages, first_id):
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
        db.executemany(
            "INSERT INTO message (id, mailbox_id, uid, modseq, created_modseq,"
            " flags, keywords, size, received, saved, message_id, thread_id,"
            " subject, mailfrom, rcptto, summary, prefix, indexed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
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
        """Full-text and substring index rows that came with the messages (imports)."""
        pairs = list(zip(messages, delivered, strict=True))
        db.executemany("INSERT INTO fts (rowid, headers, body) VALUES (?, ?, ?)",
                       [(d.message_id, n.summary.header_text, n.summary.body_text)
                        for n, d in pairs])
        db.executemany("INSERT INTO textindex (rowid, headers, body) VALUES (?, ?, ?)",
                       [(d.message_id, n.summary.search_headers, n.summary.search_body)
                        for n, d in pairs if n.summary.search_headers is not None])

    def prepare(self, data: bytes, flags: Flags = Flags(), received: int = 0,
                mailfrom: str = "", rcptto: str = "", prefix: bytes = b"") -> NewMessage:
        """Write a message's file under tmp/ and summarize it (a caller's share of
        the work, in its own worker thread, before the group commit, which fsyncs
        the file in place)."""
        tmp, size = durable.write_temp(self.root, [data], sync=False)
        return NewMessage(tmp, len(prefix) + size, summarize(prefix + data if prefix else data,
                                                            index_text=False),
                          flags, received, mailfrom, rcptto, prefix)

    def prepare_spool(self, path: Path, prefix: bytes = b"", flags: Flags = Flags(),
                      received: int = 0, mailfrom: str = "", rcptto: str = "",
                      keep: bool = False) -> NewMessage:
        """A spooled file for the group commit (which fsyncs it in place), summarized
        as ``prefix + file``. ``keep``: hard-link it (its owner keeps and removes it)
        rather than rename it."""
        size = path.stat().st_size
        with _parsing(size):
            data = prefix + path.read_bytes() if prefix else path.read_bytes()
            summary = summarize(data, index_text=False)
            del data
        return NewMessage(path, len(prefix) + size, summary, flags, received, mailfrom, rcptto,
                          prefix, keep)

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

    def prepare_appended(self, items: list[Appended]) -> list[NewMessage]:
        try:
            return [self.prepare_spool(item.path, flags=item.flags, received=item.received)
                    for item in items]
        except BaseException:
            for item in items:
                item.path.unlink(missing_ok=True)
            raise

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
        wanted = None if uids is None else sorted(set(uids))
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            sql = f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE mailbox_id = ? AND modseq > ?"
            args: list[object] = [mailbox.id, changed_since]
            if wanted is not None:
                if not wanted:
                    return []
                sql += " AND uid BETWEEN ? AND ?"
                args += [wanted[0], wanted[-1]]
            rows = [_message(r) for r in self.db.execute(sql + " ORDER BY uid", args)]
        if wanted is not None and len(wanted) < wanted[-1] - wanted[0] + 1:
            keep = set(wanted)
            rows = [m for m in rows if m.uid in keep]
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

    def index_pending(self, limit: int = 200) -> int:
        """Put delivered messages' text into the full-text and substring indexes;
        how many are left.

        Runs after delivery (not before the 250), in a worker thread: each message
        is read and decoded here (the stored part tree saves the parse). Its row
        is marked indexed in the same transaction as its index rows, so the work
        queue is the rows themselves: a crash before this commit leaves the
        message pending, and :meth:`find_unindexed` queues it at the next open.
        A message too long for the substring index, or that cannot be read, is
        marked impossible instead. A message expunged meanwhile is skipped.
        """
        with self.lock:
            batch, self.to_index = self.to_index[:limit], self.to_index[limit:]
            rows = {}
            for i in range(0, len(batch), 500):
                chunk = batch[i:i + 500]
                marks = ",".join("?" * len(chunk))
                rows.update((r[0], r[1:]) for r in self.db.execute(
                    f"SELECT id, summary, prefix FROM message WHERE id IN ({marks})"
                    " AND indexed = ?", [*chunk, INDEX_PENDING]))
        fts_rows = []
        text_rows = []
        states = []
        for message_id in batch:
            row = rows.get(message_id)
            if row is None:
                continue  # expunged meanwhile, or indexed already
            summary, prefix = row
            state = INDEX_DONE
            try:
                path = self.path(message_id)
                with _parsing(path.stat().st_size):  # large messages take turns (memory)
                    data = MessageFile(path, prefix).read()
                    root = Part.from_dict(json.loads(summary)["part"], data)
                    header_text, body_text = searchable_text(root, data,
                                                             max_chars=MAX_INDEX_CHARS)
                    headers, body = search_text_of(root, data)
                    del data, root
            except Exception:  # unreadable: marked, not retried at every open
                logger.warning("message cannot be indexed", message=message_id, exc_info=True)
                states.append((INDEX_IMPOSSIBLE, message_id))
                continue
            fts_rows.append((message_id, header_text, body_text, message_id))
            if headers is None:
                state = INDEX_IMPOSSIBLE  # too long for the substring index: decoded at search
            else:
                text_rows.append((message_id, headers, body, message_id))
            states.append((state, message_id))
        with self.lock:
            if states:
                db = self.db
                # The index can always be rebuilt, so its commit need not wait for an
                # fsync (WAL with synchronous=NORMAL stays consistent: a lost commit
                # leaves the rows pending; the next durable commit syncs it too).
                db.execute("PRAGMA synchronous = NORMAL")
                try:
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        exists = " WHERE EXISTS (SELECT 1 FROM message WHERE id = ?)"
                        db.executemany("INSERT OR REPLACE INTO fts (rowid, headers, body)"
                                       " SELECT ?, ?, ?" + exists, fts_rows)
                        db.executemany("INSERT OR REPLACE INTO textindex (rowid, headers, body)"
                                       " SELECT ?, ?, ?" + exists, text_rows)
                        db.executemany("UPDATE message SET indexed = ? WHERE id = ?", states)
                        db.execute("COMMIT")
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                finally:
                    db.execute("PRAGMA synchronous = FULL")
            return len(self.to_index)

    def index_all_pending(self) -> None:
        """Index everything queued now (a full-text search must see every message)."""
        while self.to_index and self.index_pending(1000):
            pass

    def text_search(self, mailbox_name: str, needle: str, column: str | None
                    ) -> tuple[set[int], set[int]]:
        """IMAP SEARCH text through the substring index: (indexed ids, matching ids).

        ``needle`` is folded already (``kittiwake.message.searchtext.fold``);
        ``column`` is "headers", "body" or None for either. The trigram index
        narrows the candidates (needles of three or more characters), and each
        is confirmed on the stored folded text, so the answer is exactly the
        substring test; messages not in the index are the caller's to decode.
        """
        if column not in ("headers", "body", None):
            raise ValueError(column)
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            ids = {r[0] for r in self.db.execute(
                "SELECT id FROM message WHERE mailbox_id = ?", (mailbox.id,))}
            # The index's own list of documents (FTS5 docsize table): no text read.
            indexed = ids.intersection(
                r[0] for r in self.db.execute("SELECT id FROM textindex_docsize"))
            if len(needle) >= 3:
                phrase = '"' + needle.replace('"', '""') + '"'
                rows = [r for r in self.db.execute(
                    "SELECT rowid, headers, body FROM textindex WHERE textindex MATCH ?",
                    (f"{column} : {phrase}" if column else phrase,)) if r[0] in indexed]
            else:
                rows = [r for r in self.db.execute(
                    "SELECT rowid, headers, body FROM textindex") if r[0] in indexed]
        matching = {rowid for rowid, headers, body in rows
                    if (column != "body" and needle in headers)
                    or (column != "headers" and needle in body)}
        return indexed, matching

    def uid_ids(self, mailbox_name: str) -> dict[int, int]:
        """UID -> message id of every message of a mailbox."""
        with self.lock:
            mailbox = self._mailbox_by_name(self.db, mailbox_name)
            return dict(self.db.execute("SELECT uid, id FROM message WHERE mailbox_id = ?",
                                        (mailbox.id,)))

    def summaries(self, message_ids: Iterable[int]) -> dict[int, str]:
        """The stored summary JSON (part tree, envelope) of each message id."""
        ids = list(message_ids)
        out: dict[int, str] = {}
        with self.lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                for mid, summary in self.db.execute(
                        f"SELECT id, summary FROM message WHERE id IN ({marks})", chunk):
                    out[mid] = summary
        return out

    def message(self, message_id: int) -> Message:
        with self.lock:
            row = self.db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE id = ?",
                                  (message_id,)).fetchone()
        if row is None:
            raise StoreError(f"no message {message_id}")
        return _message(row)

    def summary_json(self, message_id: int) -> str:
        with self.lock:
            row = self.db.execute("SELECT summary FROM message WHERE id = ?",
                                  (message_id,)).fetchone()
        if row is None:
            raise StoreError(f"no message {message_id}")
        return row[0]

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
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                for mid, prefix in self.db.execute(
                        f"SELECT id, prefix FROM message WHERE id IN ({marks})", chunk):
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

    def file_name(self, message_id: int) -> str:
        """:meth:`path` as a string (cheaper, for readers of many files)."""
        return f"{self.root}/msg/{message_id // durable.SHARD_SIZE:x}/{message_id}"

    def cached(self, message_ids: Iterable[int]) -> dict[int, bytes]:
        """The reader's blob of each message id that has one (:meth:`put_cache`)."""
        ids = list(message_ids)
        out: dict[int, bytes] = {}
        with self.lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                out.update(self.db.execute(
                    f"SELECT id, data FROM message_cache WHERE id IN ({marks})", chunk))
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
        """Full-text search (FTS5) over decoded headers and text parts.

        Each word of ``query`` must occur (prefix match); quotes are not needed.
        """
        match = fts_query(query)
        if not match:
            return []
        self.index_all_pending()  # mail delivered in the last second is searchable too
        sql = (f"SELECT {_MESSAGE_COLUMNS_M} FROM fts JOIN message m ON m.id = fts.rowid"
               " WHERE fts MATCH ?")
        args: list[object] = [match]
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
        if mode not in ("add", "remove", "replace"):
            raise ValueError(mode)
        try:
            return self._store_flags(mailbox_name, set(uids), mode, flags, unchanged_since)
        except _NothingChanged as nothing:
            changed, failed = nothing.result  # type: ignore[misc]
            return changed, failed, []

    def _store_flags(self, mailbox_name: str, wanted: set[int], mode: str, flags: Flags,
                     unchanged_since: int | None
                     ) -> tuple[list[Message], list[int], list[Change]]:
        changed: list[Message] = []
        failed: list[int] = []
        with self._write() as (db, modseq):
            mailbox = self._mailbox_by_name(db, mailbox_name)
            rows = db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE mailbox_id = ?"
                              " ORDER BY uid", (mailbox.id,)).fetchall()
            d_unseen = d_deleted = 0
            for row in rows:
                message = _message(row)
                if message.uid not in wanted:
                    continue
                if unchanged_since is not None and message.modseq > unchanged_since:
                    failed.append(message.uid)
                    continue
                new = _apply(message.flags, mode, flags)
                if new == message.flags:
                    continue
                db.execute("UPDATE message SET flags = ?, keywords = ?, modseq = ? WHERE id = ?",
                           (new.system, new.keyword_text(), modseq, message.id))
                d_unseen += _bit(message.flags, SEEN) - _bit(new, SEEN)
                d_deleted += _bit(new, DELETED) - _bit(message.flags, DELETED)
                changed.append(Message(message.id, message.mailbox_id, message.uid, modseq, new,
                                       message.size, message.received, message.saved,
                                       message.message_id, message.thread_id, message.subject))
            if changed:
                db.execute("UPDATE mailbox SET unseen = unseen + ?, deleted = deleted + ?,"
                           " highestmodseq = ? WHERE id = ?",
                           (d_unseen, d_deleted, modseq, mailbox.id))
            else:
                raise _NothingChanged((changed, failed))
        change = Change("flags", mailbox.id, mailbox.name, tuple(m.uid for m in changed), modseq,
                        tuple(m.flags for m in changed))
        return changed, failed, [change]

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
                        db.execute("INSERT INTO fts (rowid, headers, body) SELECT ?, headers,"
                                   " body FROM fts WHERE rowid = ?", (new_id, message_id))
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
    _discard(delivery.placed, delivery.messages)
    delivery.placed = []


def _discard(placed: list[Path], messages: list[NewMessage]) -> None:
    """Undo a failed delivery's files: those placed, and the temporary ones it owns."""
    for path in placed:
        path.unlink(missing_ok=True)
    for new in messages:
        if not new.keep_source:
            new.tmp_path.unlink(missing_ok=True)


def _remove_rows(db: sqlite3.Connection, mailbox_id: int,
                 rows: list[tuple[int, int, int, int]], modseq: int) -> list[int]:
    """Delete messages (id, uid, flags, size) of a mailbox in the open transaction:
    rows, index, counts, and the VANISHED record (RFC 7162 §3.2.10). Returns the ids,
    whose files the caller removes after the commit."""
    ids = [r[0] for r in rows]
    db.executemany("DELETE FROM fts WHERE rowid = ?", [(i,) for i in ids])
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


def _bit(flags: Flags, bit: int) -> int:
    return 1 if flags.system & bit else 0


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


def fts_query(text: str) -> str:
    """Turn user words into an FTS5 query: every word must match, as a prefix."""
    words = [w for w in "".join(c if c.isalnum() or c in "@.-_'" else " " for c in text).split()]
    return " AND ".join('"' + w.replace('"', '""') + '"*' for w in words)


_MAILBOX_COLUMNS = ("id, name, uidvalidity, uidnext, special_use, messages, unseen, deleted,"
                    " size, highestmodseq")
_MESSAGE_COLUMNS = ("id, mailbox_id, uid, modseq, flags, keywords, size, received, saved,"
                    " message_id, thread_id, subject")
_MESSAGE_COLUMNS_M = ", ".join("m." + c.strip() for c in _MESSAGE_COLUMNS.split(","))


def _mailbox(row: tuple, subscribed: set[str]) -> Mailbox:  # type: ignore[type-arg]
    return Mailbox(*row, subscribed=row[1] in subscribed)


def _message(row: tuple) -> Message:  # type: ignore[type-arg]
    (id_, mailbox_id, uid, modseq, bits, keywords, size, received, saved, message_id,
     thread_id, subject) = row
    return Message(id_, mailbox_id, uid, modseq, Flags.from_row(bits, keywords), size, received,
                   saved, message_id, thread_id, subject)
