"""The durable outgoing queue: message files plus one SQLite database.

``data_dir/queue/index.db`` holds messages, one row per recipient (retry
state), hold rules and a short history of recipients that left the queue;
message bytes live in ``data_dir/queue/msg/<shard>/<id>``, shared by all
recipients of a message. :meth:`QueueStore.enqueue` follows DESIGN.md
"Durability": temp file written and fsynced, renamed into place, directory
fsynced, then the transaction committed; only after it returns may the SMTP
server answer 250 (RFC 5321 §4.1.1.4: the server takes responsibility).

:class:`QueueStore` is synchronous and thread-safe (one lock); each method is
one transaction, meant to run in a worker thread (:class:`kittiwake.queue.Queue`
is the async face).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kittiwake import durable
from kittiwake.dns.names import domain_key
from kittiwake.queue import schedule as sched
from kittiwake.queue.metrics import LastError, QueueSummary
from kittiwake.queue.model import (
    Batch,
    DeliveryError,
    Dropped,
    Envelope,
    Filter,
    HoldRule,
    MessageNotFound,
    NewRecipient,
    Outcome,
    QueuedMessage,
    QueueError,
    Recipient,
    Recorded,
    RecordRequest,
    Retired,
    Status,
    domain_of,
)
from kittiwake.queue.schema import connect, connect_readonly
from kittiwake.smtp.params import Notify, ORcpt, Ret

HISTORY_KEEP = 1000
HISTORY_AGE = timedelta(days=7)


def utcnow() -> datetime:
    return datetime.now(UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(t: datetime) -> int:
    """Milliseconds since the epoch, exact (no float rounding)."""
    return (t - EPOCH) // _MS


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else EPOCH + timedelta(milliseconds=ms)


def normalize_domain(domain: str) -> str:
    """A domain (or address literal) as stored: A-label form, lower case
    (:func:`kittiwake.dns.names.domain_key`, as :func:`domain_of` uses)."""
    return domain_key(domain)


_MESSAGE_COLUMNS = ("m.id, m.account, m.mail_from, m.smtputf8, m.eightbit, m.requiretls,"
                    " m.tls_required_no, m.ret, m.envid, m.size, m.created, m.release_at,"
                    " m.prefix")
_RECIPIENT_COLUMNS = ("r.id, r.message_id, r.address, r.domain, r.notify, r.orcpt_type, r.orcpt,"
                      " r.attempts, r.next_attempt, r.last_attempt, r.err_code, r.err_enhanced,"
                      " r.err_text, r.err_host, r.status, r.held, r.dsn_delayed_sent")
_N_MESSAGE = 13
_N_RECIPIENT = 17
# A recipient still queued, with its message's account, mail_from and created (Owner).
_RECORD_SQL = (f"SELECT {_RECIPIENT_COLUMNS}, m.account, m.mail_from, m.created FROM recipient r"
               " JOIN message m ON m.id = r.message_id WHERE r.id = ? AND r.status = 'queued'")
Owner = tuple[Any, ...]  # (account, mail_from, created in ms) of a recipient's message


class QueueStore:
    """Synchronous queue storage under ``root`` (normally ``data_dir/queue``)."""

    def __init__(self, root: Path, rng: random.Random | None = None,
                 history_keep: int = HISTORY_KEEP,
                 history_age: timedelta = HISTORY_AGE, readonly: bool = False) -> None:
        """Open the queue; ``readonly`` opens an existing database without writing
        anything (listing a stopped server's queue), so only the read methods work."""
        self.root = root
        self.rng = rng or random.Random()
        self.history_keep = history_keep
        self.history_age = history_age
        self._retired_count: int | None = None  # rows in ``retired`` (None: count again)
        self.lock = threading.RLock()
        if readonly:
            self.db = connect_readonly(root / "index.db")
            if self.db.execute("PRAGMA user_version").fetchone()[0] < 2:
                # A stopped server's older queue (no prefix column): read it as it is.
                self.db.execute("CREATE TEMP VIEW message AS SELECT *, NULL AS prefix"
                                " FROM main.message")
            return
        self.db = connect(root / "index.db")
        durable.clean_tmp(root)
        self._remove_orphans()

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def _remove_orphans(self) -> None:
        """Remove message files without a message row.

        They are writes interrupted between rename and commit (never
        acknowledged) or files of finished messages whose removal was cut
        short by a crash.
        """
        msg_dir = self.root / "msg"
        if not msg_dir.is_dir():
            return
        known = {r[0] for r in self.db.execute("SELECT id FROM message")}
        for shard in msg_dir.iterdir():
            if not shard.is_dir():
                continue
            for entry in shard.iterdir():
                if entry.name.isdigit() and int(entry.name) not in known:
                    entry.unlink(missing_ok=True)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                self._retired_count = None
                raise

    def path(self, message_id: int) -> Path:
        return durable.message_path(self.root, message_id)

    # --- enqueue ------------------------------------------------------------

    def write_temp(self, chunks: Iterable[bytes]) -> tuple[Path, int]:
        """Write message data to an fsynced temporary file; (path, size)."""
        return durable.write_temp(self.root, chunks, sync=True)

    def enqueue(self, envelope: Envelope, data: bytes | Iterable[bytes],
                now: datetime | None = None) -> QueuedMessage:
        """Queue a message durably; on disk and committed when this returns."""
        tmp, size = self.write_temp([data] if isinstance(data, bytes) else data)
        return self.enqueue_temp(envelope, tmp, size, now)

    def enqueue_temp(self, envelope: Envelope, tmp: Path, size: int,
                     now: datetime | None = None) -> QueuedMessage:
        """Queue a message whose fsynced temporary file (from :meth:`write_temp`) exists."""
        def place(message_id: int) -> Path:
            return durable.move_into_place(self.root, tmp, message_id, sync=True)

        try:
            return self._add(envelope, place, size, b"", now)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def add_file(self, path: Path, prefix: bytes, envelope: Envelope,
                 now: datetime | None = None, *, link: bool = False,
                 sync: bool = True) -> QueuedMessage:
        """Queue a spooled message file without copying it (DESIGN.md "spool once").

        The file becomes the queue's message file by rename (or, with ``link``,
        by hard link, so the caller may hand the same spool file to the store
        too); it must be on the queue's file system. ``prefix`` (header lines
        kittiwake added: Received, DKIM-Signature, ...) is kept in the message
        row and sent before the file. With ``sync`` the file is fsynced first
        (skip only when the spooler already did). Durable when this returns,
        as :meth:`enqueue`; on failure the spool file is left where it was.
        """
        path = Path(path)
        if sync:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        size = len(prefix) + path.stat().st_size

        def place(message_id: int) -> Path:
            final = durable.message_path(self.root, message_id)
            if not final.parent.is_dir():
                final.parent.mkdir(parents=True, exist_ok=True)
                durable.fsync_dir(final.parent.parent)
            if link:
                os.link(path, final)
            else:
                os.rename(path, final)
            durable.fsync_dir(final.parent)
            return final

        return self._add(envelope, place, size, bytes(prefix), now)

    def _add(self, envelope: Envelope, place: Callable[[int], Path], size: int,
             prefix: bytes, now: datetime | None) -> QueuedMessage:
        """Insert the rows, ``place`` the file under the new id, then commit."""
        now = now or utcnow()
        placed: Path | None = None
        try:
            rcpts = _checked_recipients(envelope)
            with self._write() as db:
                message_id = self._insert(db, envelope, rcpts, size, prefix, now,
                                          self._hold_rules(db))
                placed = place(message_id)
                message = self._message(db, message_id)
        except BaseException:
            if placed is not None:
                placed.unlink(missing_ok=True)
            raise
        return message

    def enqueue_many(self, items: Sequence[tuple[Envelope, bytes]],
                     now: datetime | None = None) -> list[QueuedMessage]:
        """Queue many messages at once, durably, with one sync of the file system and
        one commit (imports, tests of large backlogs): all of them or none."""
        now = now or utcnow()
        checked = [(envelope, _checked_recipients(envelope), data) for envelope, data in items]
        temps: list[tuple[Path, int]] = []
        placed: list[Path] = []
        try:
            for _, _, data in checked:
                temps.append(durable.write_temp(self.root, [data], sync=False))
            durable.sync_files([path for path, _ in temps])
            with self._write() as db:
                rules = self._hold_rules(db)
                ids = []
                for (envelope, rcpts, _), (tmp, size) in zip(checked, temps, strict=True):
                    message_id = self._insert(db, envelope, rcpts, size, b"", now, rules)
                    placed.append(durable.move_into_place(self.root, tmp, message_id,
                                                          sync=False))
                    ids.append(message_id)
                for directory in {path.parent for path in placed}:
                    durable.fsync_dir(directory)
                messages = [self._message(db, message_id) for message_id in ids]
        except BaseException:
            for path in placed:
                path.unlink(missing_ok=True)
            for path, _ in temps:
                path.unlink(missing_ok=True)
            raise
        return messages

    def _insert(self, db: sqlite3.Connection, envelope: Envelope,
                rcpts: list[tuple[NewRecipient, str]], size: int, prefix: bytes,
                now: datetime, rules: list[HoldRule]) -> int:
        from_domain = domain_of(envelope.mail_from)
        first = now
        if envelope.release_at is not None and envelope.release_at > now:
            first = envelope.release_at  # RFC 4865 §3: hold until the release time
        cur = db.execute(
            "INSERT INTO message (account, mail_from, from_domain, smtputf8, eightbit,"
            " requiretls, tls_required_no, ret, envid, size, created, release_at,"
            " prefix) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (envelope.account, envelope.mail_from, from_domain, int(envelope.smtputf8),
             int(envelope.eightbit),
             None if envelope.requiretls is None else int(envelope.requiretls),
             int(envelope.tls_required_no),
             None if envelope.ret is None else str(envelope.ret), envelope.envid,
             size, to_ms(now),
             None if envelope.release_at is None else to_ms(envelope.release_at),
             prefix or None))
        message_id = cur.lastrowid or 0
        for rcpt, domain in rcpts:
            held = any(rule.matches(envelope.account, from_domain, domain) for rule in rules)
            db.execute(
                "INSERT INTO recipient (message_id, address, domain, notify, orcpt_type,"
                " orcpt, next_attempt, held) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (message_id, rcpt.address, domain,
                 None if rcpt.notify is None else ",".join(sorted(rcpt.notify)),
                 rcpt.orcpt.addr_type if rcpt.orcpt else None,
                 rcpt.orcpt.address if rcpt.orcpt else None,
                 to_ms(first), int(held)))
        return message_id

    # --- reading ------------------------------------------------------------

    def message(self, message_id: int) -> QueuedMessage:
        with self.lock:
            return self._message(self.db, message_id)

    def _message(self, db: sqlite3.Connection, message_id: int) -> QueuedMessage:
        row = db.execute(f"SELECT {_MESSAGE_COLUMNS} FROM message m WHERE m.id = ?",
                         (message_id,)).fetchone()
        if row is None:
            raise MessageNotFound(f"no queued message with id {message_id}")
        return self._message_row(row)

    def _message_row(self, row: tuple[Any, ...]) -> QueuedMessage:
        return QueuedMessage(
            id=row[0], account=row[1], mail_from=row[2], smtputf8=bool(row[3]),
            eightbit=bool(row[4]), requiretls=None if row[5] is None else bool(row[5]),
            tls_required_no=bool(row[6]), ret=None if row[7] is None else Ret(row[7]),
            envid=row[8], size=row[9], created=from_ms(row[10]) or utcnow(),
            release_at=from_ms(row[11]), path=self.path(row[0]), prefix=row[12] or b"")

    def recipients(self, message_id: int) -> list[Recipient]:
        with self.lock:
            rows = self.db.execute(f"SELECT {_RECIPIENT_COLUMNS} FROM recipient r"
                                   " WHERE r.message_id = ? ORDER BY r.id", (message_id,))
            return [_recipient(r) for r in rows]

    def read(self, message_id: int) -> bytes:
        """The raw bytes of a queued message (``queue dump``)."""
        with self.lock:
            message = self._message(self.db, message_id)
            return message.prefix + self.path(message_id).read_bytes()

    def list(self, where: Filter = Filter()) -> list[tuple[QueuedMessage, Recipient]]:
        """Queued recipients with their messages, oldest message first."""
        clause, params = _where(where)
        with self.lock:
            rows = self.db.execute(
                f"SELECT {_MESSAGE_COLUMNS}, {_RECIPIENT_COLUMNS} FROM recipient r"
                f" JOIN message m ON m.id = r.message_id WHERE {clause}"
                " ORDER BY m.id, r.id", params).fetchall()
        return [(self._message_row(r[:_N_MESSAGE]), _recipient(r[_N_MESSAGE:])) for r in rows]

    def history(self, where: Filter = Filter(), limit: int = 100) -> list[Retired]:
        """Recipients that left the queue, newest first."""
        conds, params = ["1"], []
        if where.ids:
            conds.append(f"message_id IN ({','.join('?' * len(where.ids))})")
            params += list(where.ids)
        if where.account:
            conds.append("account = ?")
            params.append(where.account)
        with self.lock:
            rows = self.db.execute(
                "SELECT recipient_id, message_id, account, mail_from, address, status, attempts,"
                " last_attempt, err_code, err_enhanced, err_text, err_host, created, retired"
                f" FROM retired WHERE {' AND '.join(conds)} ORDER BY retired DESC,"
                " recipient_id DESC LIMIT ?", (*params, limit)).fetchall()
        out = []
        for r in rows:
            retired = Retired(r[0], r[1], r[2], r[3], r[4], Status(r[5]), r[6], from_ms(r[7]),
                              _error(r[8:12]), from_ms(r[12]) or utcnow(),
                              from_ms(r[13]) or utcnow())
            if where.from_domain and \
                    domain_of(retired.mail_from) != normalize_domain(where.from_domain):
                continue
            if where.to_domain and \
                    domain_of(retired.address) != normalize_domain(where.to_domain):
                continue
            out.append(retired)
        return out

    # --- picking work -------------------------------------------------------

    def due(self, now: datetime, limit: int = 100,
            exclude_domains: Iterable[str] = ()) -> list[Batch]:
        """Due, non-held recipients grouped by (destination domain, message).

        At most ``limit`` batches, the longest-due first; recipients whose
        domain is in ``exclude_domains`` (being delivered right now) are left
        out. The rows come from the ``recipient_due`` index in its order
        (next attempt, id), read only as far as needed: the cost of a pick
        grows with ``limit``, not with the size of the queue.
        """
        excluded = list(exclude_domains)
        return self._batches(_pick_sql(len(excluded)), (to_ms(now), *excluded), limit,
                             to_ms(now))

    def due_for_domain(self, domain: str, now: datetime, limit: int = 100) -> list[Batch]:
        """Like :meth:`due` for one destination domain (index ``recipient_domain_due``):
        the next messages a connection to that destination can carry."""
        return self._batches(_PICK_DOMAIN_SQL, (normalize_domain(domain), to_ms(now)), limit,
                             to_ms(now))

    def _batches(self, sql: str, params: tuple[Any, ...], limit: int, due_ms: int
                 ) -> list[Batch]:
        """Batches of the first ``limit`` (domain, message) pairs ``sql`` yields."""
        with self.lock:
            pairs: dict[tuple[str, int], None] = {}
            offset = 0
            window = max(limit, 1) * 2
            while len(pairs) < limit:
                rows = self.db.execute(sql, (*params, window, offset)).fetchall()
                for domain, message_id in rows:
                    pairs.setdefault((domain, message_id), None)
                    if len(pairs) >= limit:
                        break
                if len(rows) < window:
                    break
                offset += window  # many recipients per message: read on
            batches = []
            for domain, message_id in pairs:
                # INDEXED BY: the planner would otherwise walk the domain's rows.
                # The message's columns come along with each recipient (one statement).
                rows = self.db.execute(
                    f"SELECT {_MESSAGE_COLUMNS}, {_RECIPIENT_COLUMNS} FROM recipient r"
                    " INDEXED BY recipient_message JOIN message m ON m.id = r.message_id"
                    " WHERE r.message_id = ? AND r.domain = ? AND r.status = 'queued'"
                    " AND r.held = 0"
                    " AND r.next_attempt <= ? ORDER BY r.id",
                    (message_id, domain, due_ms)).fetchall()
                if rows:
                    batches.append(Batch(self._message_row(rows[0][:_N_MESSAGE]), domain,
                                         tuple(_recipient(row[_N_MESSAGE:])
                                               for row in rows)))
        return batches

    def pick_plan(self, exclude_domains: int = 0, domain: bool = False) -> list[str]:
        """SQLite's plan for the pick query (EXPLAIN QUERY PLAN details), for tests and
        ``queue`` diagnostics: it must walk an index, never sort the whole queue."""
        sql = _PICK_DOMAIN_SQL if domain else _pick_sql(exclude_domains)
        params: tuple[Any, ...] = ("x", 0, 1, 0) if domain else \
            (0, *(["x"] * exclude_domains), 1, 0)
        with self.lock:
            return [row[3] for row in self.db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]

    def next_due(self, exclude_domains: Iterable[str] = ()) -> datetime | None:
        """When the next non-held recipient becomes due (None: nothing queued)."""
        excluded = list(exclude_domains)
        # The index in next_attempt order, stopping at the first row not excluded
        # (MIN() with the NOT IN would look at every queued row).
        not_in = f" AND domain NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        sql = ("SELECT next_attempt FROM recipient INDEXED BY recipient_due WHERE status ="
               f" 'queued' AND held = 0{not_in} ORDER BY next_attempt LIMIT 1")
        with self.lock:
            row = self.db.execute(sql, excluded).fetchone()
        return from_ms(row[0]) if row is not None else None

    def summary(self, failing_domains: int = 10, last_errors: int = 5,
                since: datetime | None = None) -> QueueSummary:
        """Counts for the metrics and ``kittiwake status``: messages and recipients
        queued, messages on hold, the oldest ones, the domains with the most
        recipients that failed an attempt already, the last delivery errors, and
        how many recipients were delivered or failed since ``since`` (default:
        midnight UTC; counted from the history, so at most its size)."""
        with self.lock:
            db = self.db
            messages, recipients, oldest = db.execute(
                "SELECT COUNT(DISTINCT r.message_id), COUNT(*), MIN(m.created) FROM recipient r"
                " JOIN message m ON m.id = r.message_id WHERE r.status = 'queued'").fetchone()
            held, oldest_held = db.execute(
                "SELECT COUNT(DISTINCT r.message_id), MIN(m.created) FROM recipient r"
                " JOIN message m ON m.id = r.message_id"
                " WHERE r.status = 'queued' AND r.held = 1").fetchone()
            failing = db.execute(
                "SELECT domain, COUNT(*) FROM recipient WHERE status = 'queued' AND attempts > 0"
                " GROUP BY domain ORDER BY COUNT(*) DESC, domain LIMIT ?",
                (failing_domains,)).fetchall()
            errors = db.execute(
                "SELECT last_attempt, address, 'queued', attempts, err_code, err_enhanced,"
                " err_text, err_host FROM recipient WHERE status = 'queued' AND err_text"
                " IS NOT NULL UNION ALL SELECT last_attempt, address, status, attempts,"
                " err_code, err_enhanced, err_text, err_host FROM retired WHERE status ="
                " 'failed' AND err_text IS NOT NULL ORDER BY 1 DESC LIMIT ?",
                (last_errors,)).fetchall()
            since = to_ms(since or utcnow().replace(hour=0, minute=0, second=0, microsecond=0))
            done = dict(db.execute("SELECT status, COUNT(*) FROM retired WHERE retired >= ?"
                                   " GROUP BY status", (since,)).fetchall())
        return QueueSummary(
            messages=messages, recipients=recipients, held_messages=held,
            oldest=None if oldest is None else oldest / 1000,
            oldest_held=None if oldest_held is None else oldest_held / 1000,
            failing_domains=tuple((d, n) for d, n in failing),
            last_errors=tuple(
                LastError((row[0] or 0) / 1000, row[1], row[2], row[3],
                          _error(row[4:8]) or DeliveryError(text=row[6]))
                for row in errors),
            delivered_since=done.get(str(Status.DELIVERED), 0),
            failed_since=done.get(str(Status.FAILED), 0))

    # --- results ------------------------------------------------------------

    def record_result(self, recipient_ids: Iterable[int], outcome: Outcome,
                      error: DeliveryError | None = None, host: str = "",
                      now: datetime | None = None, keep_files: bool = False,
                      not_before: datetime | None = None) -> Recorded:
        """Record one attempt for recipients (all with the same outcome).

        OK: delivered. PERMANENT (5xx, RFC 5321 §4.2.1): failed at once.
        TEMPORARY: one more failed attempt; the next one is scheduled by
        :func:`kittiwake.queue.schedule.schedule`, or the recipient fails
        after the 9th. Finished recipients move to the history; a message
        with no queued recipient left is removed (its file too, unless
        ``keep_files``: then the caller calls :meth:`remove_files` after it
        built its DSNs). Unknown ids (dropped meanwhile) are ignored.
        ``not_before``: a retry is not scheduled earlier than this (the
        destination is paused until then, see the scheduler's pacing).
        """
        return self.record_results([RecordRequest(list(recipient_ids), outcome, error, host,
                                                  now, keep_files, not_before)])[0]

    def record_results(self, requests: Sequence[RecordRequest]) -> list[Recorded]:
        """Several :meth:`record_result` calls in one transaction (one commit, one
        fsync: the async :class:`~kittiwake.queue.Queue` groups concurrent ones)."""
        out = []
        with self._write() as db:
            for request in requests:
                out.append(self._record(db, request))
            self._prune_history(db, max((r.now or utcnow() for r in requests),
                                        default=utcnow()))
        for request, recorded in zip(requests, out, strict=True):
            if not request.keep_files:
                self.remove_files(recorded.removed_messages)
        return out

    def _record(self, db: sqlite3.Connection, request: RecordRequest) -> Recorded:
        now = request.now or utcnow()
        ids, outcome, error, host = request.ids, request.outcome, request.error, request.host
        not_before = request.not_before
        if error is not None and host and not error.host:
            error = DeliveryError(error.code, error.enhanced, error.text, host)
        finished: list[Recipient] = []
        delayed: list[Recipient] = []
        touched: set[int] = set()
        for rid in ids:
            # The recipient with what its history row and DSN check need of its message
            # (one statement, not one per table).
            row = db.execute(_RECORD_SQL, (rid,)).fetchone()
            if row is None:
                continue
            rcpt = _recipient(row)
            owner: Owner = row[_N_RECIPIENT:]
            touched.add(rcpt.message_id)
            attempts = rcpt.attempts + 1
            err = (error.code, error.enhanced, error.text, error.host) if error else \
                (None, None, None, host or None)
            if outcome is Outcome.OK:
                status = Status.DELIVERED
            elif outcome is Outcome.PERMANENT or sched.gives_up(attempts):
                status = Status.FAILED
            else:
                status = Status.QUEUED
            next_at = now + sched.schedule(attempts, self.rng) \
                if status is Status.QUEUED else now
            if not_before is not None and status is Status.QUEUED:
                next_at = max(next_at, not_before)
            updated = replace(rcpt, attempts=attempts, last_attempt=from_ms(to_ms(now)),
                              next_attempt=from_ms(to_ms(next_at)) or next_at,
                              last_error=_error(err), status=status)
            if status is Status.QUEUED:
                db.execute(
                    "UPDATE recipient SET attempts = ?, last_attempt = ?, next_attempt = ?,"
                    " err_code = ?, err_enhanced = ?, err_text = ?, err_host = ?, status = ?"
                    " WHERE id = ?", (attempts, to_ms(now), to_ms(next_at), *err, str(status),
                                      rid))
                if sched.delay_dsn_due(attempts) and not updated.dsn_delayed_sent and \
                        wants_delay_dsn(self._message(db, rcpt.message_id), updated):
                    delayed.append(updated)
            else:
                # Finished: its row moves to the history in this same transaction, so
                # it is not updated first (the history row gets the new values).
                finished.append(updated)
                self._retire(db, updated, now, owner)
        removed = self._remove_finished_messages(db, touched)
        return Recorded(tuple(finished), tuple(delayed), tuple(removed))

    def _retire(self, db: sqlite3.Connection, rcpt: Recipient, now: datetime,
                owner: Owner | None = None) -> None:
        """Move a finished recipient to the history. ``owner``: its message's
        (account, mail_from, created) when the caller has read them already."""
        if owner is None:
            message = self._message(db, rcpt.message_id)
            owner = (message.account, message.mail_from, to_ms(message.created))
        account, mail_from, created = owner
        err = rcpt.last_error
        db.execute(
            "INSERT OR REPLACE INTO retired (recipient_id, message_id, account, mail_from,"
            " address, status, attempts, last_attempt, err_code, err_enhanced, err_text,"
            " err_host, created, retired) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rcpt.id, rcpt.message_id, account, mail_from, rcpt.address,
             str(rcpt.status), rcpt.attempts,
             None if rcpt.last_attempt is None else to_ms(rcpt.last_attempt),
             err.code if err else None, err.enhanced if err else None,
             err.text if err else None, err.host if err else None,
             created, to_ms(now)))
        if self._retired_count is not None:
            self._retired_count += 1
        db.execute("DELETE FROM recipient WHERE id = ?", (rcpt.id,))

    def _remove_finished_messages(self, db: sqlite3.Connection, message_ids: set[int]
                                  ) -> list[int]:
        """Remove the messages of ``message_ids`` that have no queued recipient left
        (with any other rows of theirs); the ids removed."""
        removed = []
        for mid in sorted(message_ids):
            # Usually no row of the message is left: one statement (and no row that
            # still references it, for the foreign key).
            if db.execute("DELETE FROM message WHERE id = ? AND NOT EXISTS (SELECT 1 FROM"
                          " recipient WHERE message_id = ?)", (mid, mid)).rowcount:
                removed.append(mid)
                continue
            # Rows left: queued ones keep the message, any others go with it.
            if db.execute("SELECT 1 FROM recipient WHERE message_id = ? AND status = 'queued'"
                          " LIMIT 1", (mid,)).fetchone() is None:
                db.execute("DELETE FROM recipient WHERE message_id = ?", (mid,))
                db.execute("DELETE FROM message WHERE id = ?", (mid,))
                removed.append(mid)
        return removed

    def _prune_history(self, db: sqlite3.Connection, now: datetime) -> None:
        """Keep the history short: nothing older than ``history_age``, and about
        ``history_keep`` rows (up to 10% more between prunes). Both deletes walk
        the ``retired_time`` index from the old end, so a prune costs what it
        removes, not the size of the history."""
        cur = db.execute("DELETE FROM retired WHERE retired < ?",
                         (to_ms(now - self.history_age),))
        if self._retired_count is None:
            self._retired_count = db.execute("SELECT COUNT(*) FROM retired").fetchone()[0]
        elif cur.rowcount > 0:
            self._retired_count = max(self._retired_count - cur.rowcount, 0)
        if self._retired_count <= self.history_keep + self.history_keep // 10:
            return
        self._retired_count = db.execute("SELECT COUNT(*) FROM retired").fetchone()[0]
        excess = self._retired_count - self.history_keep
        if excess > 0:
            db.execute("DELETE FROM retired WHERE recipient_id IN (SELECT recipient_id FROM"
                       " retired ORDER BY retired, recipient_id LIMIT ?)", (excess,))
            self._retired_count = self.history_keep

    def remove_files(self, message_ids: Iterable[int]) -> None:
        """Remove files of messages whose rows are gone."""
        ids = list(message_ids)
        durable.remove(self.root, ids)

    def needs_delay_dsn(self) -> list[Recipient]:
        """Queued recipients due a "delayed" DSN (5+ failed attempts, none sent yet).

        Only those whose sender wants one (see :func:`wants_delay_dsn`).
        """
        with self.lock:
            rows = self.db.execute(
                f"SELECT {_MESSAGE_COLUMNS}, {_RECIPIENT_COLUMNS} FROM recipient r"
                " JOIN message m ON m.id = r.message_id WHERE r.status = 'queued'"
                " AND r.dsn_delayed_sent = 0 AND r.attempts >= ? ORDER BY r.id",
                (sched.DELAY_DSN_AFTER,)).fetchall()
        out = []
        for row in rows:
            rcpt = _recipient(row[_N_MESSAGE:])
            if wants_delay_dsn(self._message_row(row[:_N_MESSAGE]), rcpt):
                out.append(rcpt)
        return out

    def mark_delay_dsn_sent(self, recipient_ids: Iterable[int]) -> None:
        ids = list(recipient_ids)
        with self._write() as db:
            db.executemany("UPDATE recipient SET dsn_delayed_sent = 1 WHERE id = ?",
                           [(i,) for i in ids])

    # --- management ---------------------------------------------------------

    def hold(self, where: Filter) -> int:
        """Hold matching queued recipients; the number changed."""
        return self._update(where, "held = 1", "r.held = 0")

    def release(self, where: Filter) -> int:
        """Release held recipients (their retry time stays as it was)."""
        return self._update(where, "held = 0", "r.held = 1")

    def kick(self, where: Filter, now: datetime | None = None) -> int:
        """Make matching recipients due now (also before a FUTURERELEASE time)."""
        return self._update(where, "next_attempt = ?", "1", (to_ms(now or utcnow()),))

    def _update(self, where: Filter, assignment: str, extra: str,
                values: tuple[Any, ...] = ()) -> int:
        clause, params = _where(where)
        with self._write() as db:
            cur = db.execute(
                f"UPDATE recipient SET {assignment} WHERE id IN (SELECT r.id FROM recipient r"
                f" JOIN message m ON m.id = r.message_id WHERE {clause} AND {extra})",
                (*values, *params))
            return cur.rowcount

    def drop(self, where: Filter, now: datetime | None = None,
             keep_files: bool = False) -> list[Dropped]:
        """Remove matching recipients (messages without recipients go too).

        Returns what was removed, per message, so the caller can send DSNs
        (then pass ``keep_files`` and call :meth:`remove_files` afterwards).
        Dropped recipients are kept in the history as failed, "dropped".
        """
        now = now or utcnow()
        dropped: dict[int, Dropped] = {}
        with self._write() as db:
            clause, params = _where(where)
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS}, {_RECIPIENT_COLUMNS} FROM recipient r"
                f" JOIN message m ON m.id = r.message_id WHERE {clause}"
                " ORDER BY m.id, r.id", params).fetchall()
            for row in rows:
                message = self._message_row(row[:_N_MESSAGE])
                rcpt = _recipient(row[_N_MESSAGE:])
                db.execute("UPDATE recipient SET status = 'failed', err_text = ?, err_code = NULL,"
                           " err_enhanced = NULL, err_host = NULL WHERE id = ?",
                           ("dropped from the queue by the administrator", rcpt.id))
                final = _recipient(db.execute(
                    f"SELECT {_RECIPIENT_COLUMNS} FROM recipient r WHERE r.id = ?",
                    (rcpt.id,)).fetchone())
                self._retire(db, final, now,
                             (message.account, message.mail_from, to_ms(message.created)))
                dropped.setdefault(message.id, Dropped(message)).recipients.append(final)
            removed = self._remove_finished_messages(db, set(dropped))
            self._prune_history(db, now)
        if not keep_files:
            self.remove_files(removed)
        return list(dropped.values())

    # --- hold rules ---------------------------------------------------------

    def hold_rules(self) -> list[HoldRule]:
        with self.lock:
            return self._hold_rules(self.db)

    def _hold_rules(self, db: sqlite3.Connection) -> list[HoldRule]:
        rows = db.execute("SELECT id, account, from_domain, to_domain FROM holdrule ORDER BY id")
        return [HoldRule(*r) for r in rows]

    def add_hold_rule(self, account: str = "", from_domain: str = "",
                      to_domain: str = "") -> HoldRule:
        """Hold new messages of ``account`` from ``from_domain`` to ``to_domain`` (empty: any).

        Applies to messages queued from now on; use :meth:`hold` for queued ones.
        """
        from_domain, to_domain = normalize_domain(from_domain), normalize_domain(to_domain)
        with self._write() as db:
            row = db.execute("SELECT id FROM holdrule WHERE account = ? AND from_domain = ?"
                             " AND to_domain = ?", (account, from_domain, to_domain)).fetchone()
            if row is not None:
                raise QueueError(f"hold rule {row[0]} already says this")
            cur = db.execute("INSERT INTO holdrule (account, from_domain, to_domain)"
                             " VALUES (?, ?, ?)", (account, from_domain, to_domain))
            return HoldRule(cur.lastrowid or 0, account, from_domain, to_domain)

    def remove_hold_rule(self, rule_id: int) -> HoldRule:
        """Remove a rule; messages it held stay held until released."""
        with self._write() as db:
            row = db.execute("SELECT id, account, from_domain, to_domain FROM holdrule"
                             " WHERE id = ?", (rule_id,)).fetchone()
            if row is None:
                raise QueueError(f"no hold rule with id {rule_id}")
            db.execute("DELETE FROM holdrule WHERE id = ?", (rule_id,))
            return HoldRule(*row)


# The pick queries walk an index in (next_attempt, id) order and stop after
# LIMIT rows: no GROUP BY or sort over the whole queue (see pick_plan).
_PICK_DOMAIN_SQL = (
    "SELECT domain, message_id FROM recipient INDEXED BY recipient_domain_due"
    " WHERE domain = ? AND status = 'queued' AND held = 0 AND next_attempt <= ?"
    " ORDER BY next_attempt, id LIMIT ? OFFSET ?")


def _pick_sql(excluded: int) -> str:
    not_in = f" AND domain NOT IN ({','.join('?' * excluded)})" if excluded else ""
    return ("SELECT domain, message_id FROM recipient INDEXED BY recipient_due"
            f" WHERE status = 'queued' AND held = 0 AND next_attempt <= ?{not_in}"
            " ORDER BY next_attempt, id LIMIT ? OFFSET ?")


def _checked_recipients(envelope: Envelope) -> list[tuple[NewRecipient, str]]:
    """The envelope's recipients with their domains; QueueError for a bad envelope."""
    if not envelope.recipients:
        raise QueueError("a message needs at least one recipient")
    rcpts = []
    for rcpt in envelope.recipients:
        if "@" not in rcpt.address:
            raise QueueError(f"recipient {rcpt.address!r} has no domain")
        rcpts.append((rcpt, domain_of(rcpt.address)))
    return rcpts


def wants_delay_dsn(message: QueuedMessage, rcpt: Recipient) -> bool:
    """Whether a "delayed" DSN may be sent for this recipient.

    RFC 5321 §6.1 / RFC 3461 §6.2: never to the null reverse-path (no DSN
    about a DSN). RFC 3461 §4.1: with NOTIFY given, only if it has DELAY;
    without NOTIFY the MTA decides, and we send one.
    """
    if not message.mail_from:
        return False
    return rcpt.notify is None or Notify.DELAY in rcpt.notify


def _where(where: Filter) -> tuple[str, list[Any]]:
    conds = ["r.status = 'queued'"]
    params: list[Any] = []
    if where.ids:
        conds.append(f"m.id IN ({','.join('?' * len(where.ids))})")
        params += list(where.ids)
    if where.account:
        conds.append("m.account = ?")
        params.append(where.account)
    if where.from_domain:
        conds.append("m.from_domain = ?")
        params.append(normalize_domain(where.from_domain))
    if where.to_domain:
        conds.append("r.domain = ?")
        params.append(normalize_domain(where.to_domain))
    if where.held is not None:
        conds.append("r.held = ?")
        params.append(int(where.held))
    return " AND ".join(conds), params


def _error(cols: tuple[Any, ...] | list[Any]) -> DeliveryError | None:
    code, enhanced, text, host = cols
    if code is None and not enhanced and not text and not host:
        return None
    return DeliveryError(code or 0, enhanced or "", text or "", host or "")


def _recipient(row: tuple[Any, ...]) -> Recipient:
    notify = None if row[4] is None else frozenset(Notify(n) for n in row[4].split(",") if n)
    orcpt = None if row[5] is None else ORcpt(row[5], row[6] or "")
    return Recipient(
        id=row[0], message_id=row[1], address=row[2], domain=row[3], notify=notify, orcpt=orcpt,
        attempts=row[7], next_attempt=from_ms(row[8]) or utcnow(), last_attempt=from_ms(row[9]),
        last_error=_error(row[10:14]), status=Status(row[14]), held=bool(row[15]),
        dsn_delayed_sent=bool(row[16]))
