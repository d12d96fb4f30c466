"""The junk filter's per-account database: the word counts and the sender history.

One SQLite file per account, at the path the store names for the "junk"
feature (:meth:`kittiwake.store.Store.feature_path`), WAL with
``synchronous=FULL`` like every kittiwake database. Synchronous and
thread-safe; the filter calls it from worker threads only. Writes go
through one connection under one lock, held through their COMMIT (and its
fsync); reads (the reputation tallies of every incoming message, the word
counts) go through a second, read-only connection under a lock of their
own, so that an incoming message's verdict never waits for the fsync of a
history or training write. WAL gives that reader the last committed state
(SQLite §"Write-Ahead Logging": readers do not block writers and a writer
does not block readers).

Tables:

- ``word``: per word, how many ham and junk messages of the training
  contain it; ``meta`` holds the two totals.
- ``message``: one row per message of the account the filter knows, keyed
  by the store's message id (a move keeps it): where it is (mailbox, uid),
  its flags, the verified identities it arrived with (empty for mail that
  did not come through the MX), its class as the user left it, and what
  the word counts include it as (``trained``), so that a change of class
  untrains the old and trains the new.
- ``verified``: the SPF/DKIM-verified domains of each message.
- ``sent``: addresses the account sent mail to; ``sent_ref``: Message-IDs
  its sent mail referred to (replies).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from sqlite3 import Connection

from kittiwake.junk.bayes import WordCounts
from kittiwake.junk.history import (
    ANSWERED,
    JUNK_KEYWORD,
    NOT_JUNK_KEYWORD,
    SEEN,
    Class,
    MailboxKind,
    MailboxNames,
    MessageState,
    rescued_by_move,
)
from kittiwake.junk.model import SenderIdentities
from kittiwake.sqlitedb import open_database, open_reader, transaction

SCHEMA_VERSION = 2

# Schema 2: the sender tallies read a bounded number of index entries, not every
# past message of the identity (a big provider's domain has thousands).
_IDENTITY_COLUMNS = ("ip", "net", "dmarc_domain", "address")
MIGRATIONS = {2: "".join(f"""
DROP INDEX message_{c};
CREATE INDEX message_{c} ON message ({c}, received);
CREATE INDEX message_{c}_classified ON message ({c}, received, class) WHERE class != '';"""
                         for c in _IDENTITY_COLUMNS) + """
CREATE INDEX message_classified ON message (received, class) WHERE class != '';
"""}

# Tally.total counts past messages up to this many: only whether there are any
# is used (a first-time sender), and counting all of a big domain's is not free.
TOTAL_LIMIT = 100
# An identity's reputation is the share of ham and junk among its most recent
# classified messages, at most this many (a reader of a big provider's mail has
# thousands of them; the decision needs a share, not the whole count).
CLASSIFIED_LIMIT = 200
# Verified domains (a message may have several) look among the account's most
# recent classified messages, at most this many.
VERIFIED_SCAN = 2000
# ... found from the domains' side when they have at most this many messages (most
# domains), rather than by looking up each of those recent messages' domains. Reading
# a domain's rows costs about as much as the scan at some 100-200 of them.
VERIFIED_DIRECT = 100
# Domain sets found to have more (a big provider's domain): the scan at once, without
# reading their rows first (that cost 0.6 ms of server CPU per MX message from one
# big domain). At most this many remembered.
BIG_VERIFIED_KEPT = 4096

DDL = """
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE word (
  word TEXT PRIMARY KEY,
  ham INTEGER NOT NULL DEFAULT 0,
  junk INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE message (
  id INTEGER PRIMARY KEY,
  mailbox TEXT NOT NULL DEFAULT '',
  uid INTEGER NOT NULL DEFAULT 0,
  received INTEGER NOT NULL DEFAULT 0,
  msgid TEXT NOT NULL DEFAULT '',
  flags INTEGER NOT NULL DEFAULT 0,
  keywords TEXT NOT NULL DEFAULT '',
  rescued INTEGER NOT NULL DEFAULT 0,
  replied INTEGER NOT NULL DEFAULT 0,
  ip TEXT NOT NULL DEFAULT '',
  net TEXT NOT NULL DEFAULT '',
  dmarc_domain TEXT NOT NULL DEFAULT '',
  address TEXT NOT NULL DEFAULT '',
  class TEXT NOT NULL DEFAULT '',
  trained TEXT NOT NULL DEFAULT '',
  expunged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX message_location ON message (mailbox, uid);
CREATE INDEX message_msgid ON message (msgid);
""" + "".join(f"""
CREATE INDEX message_{c} ON message ({c}, received);
CREATE INDEX message_{c}_classified ON message ({c}, received, class) WHERE class != '';"""
            for c in _IDENTITY_COLUMNS) + """
CREATE INDEX message_classified ON message (received, class) WHERE class != '';
CREATE TABLE verified (
  domain TEXT NOT NULL,
  message INTEGER NOT NULL,
  PRIMARY KEY (domain, message)
) WITHOUT ROWID;
CREATE TABLE sent (
  address TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  last INTEGER NOT NULL
);
CREATE TABLE sent_ref (
  msgid TEXT PRIMARY KEY
);
INSERT INTO meta (key, value) VALUES ('ham', 0), ('junk', 0);
"""


# A tally (JunkDatabase.tally) of each identity column, in one statement: the total
# (an index range on (column, received), up to TOTAL_LIMIT) and the ham and junk
# among the CLASSIFIED_LIMIT most recent classified messages.
_TALLY_SQL = {c: f"""SELECT
 (SELECT COUNT(*) FROM (SELECT 1 FROM message INDEXED BY message_{c}
   WHERE {c} = ? AND received >= ? LIMIT ?)),
 COALESCE(SUM(class = 'ham'), 0), COALESCE(SUM(class = 'junk'), 0)
 FROM (SELECT class FROM message INDEXED BY message_{c}_classified
   WHERE {c} = ? AND received >= ? AND class != '' ORDER BY received DESC LIMIT ?)"""
              for c in _IDENTITY_COLUMNS}


@dataclass(frozen=True)
class Tally:
    """Messages from one identity: how many in all (up to :data:`TOTAL_LIMIT`), how
    many the user called ham or junk."""

    total: int = 0
    ham: int = 0
    junk: int = 0


@dataclass(frozen=True)
class Retrain:
    """A message whose contribution to the word counts must change.

    ``detached``: take back ``old`` once, reading the words from ``message_id``
    (a copy with the same content), without touching that message's own count:
    what an expunged original leaves behind when its copy lives on.
    """

    message_id: int
    old: Class
    new: Class
    detached: bool = False


@dataclass(frozen=True)
class Stats:
    ham_messages: int
    junk_messages: int
    words: int
    known_messages: int
    delivered_messages: int
    ham_known: int
    junk_known: int
    sent_addresses: int


_CLASSES = {c.value: c for c in Class}  # a stored class text as its Class, without Class()


@lru_cache(maxsize=1024)
def _said(flags: int, keywords: str) -> tuple[int, bool, bool]:
    """What of a message's flags its class depends on (history.MessageState.user_class):
    \\Seen, \\Answered, $Junk, $NotJunk."""
    words = keywords.lower().split()
    return flags & (SEEN | ANSWERED), JUNK_KEYWORD in words, NOT_JUNK_KEYWORD in words


@lru_cache(maxsize=1024)
def _class_of(kind: MailboxKind, flags: int, keywords: str, rescued: int, replied: int
              ) -> Class:
    """history.MessageState.user_class of a row's state (most rows share a few)."""
    return MessageState(kind, flags, tuple(keywords.split()), bool(rescued),
                        bool(replied)).user_class()


def _verified_classes(db: Connection, domains: list[str], since_ms: int
                      ) -> tuple[int, int] | None:
    """The ham and junk of :meth:`JunkDatabase.tally_verified`, from the domains' own
    messages: None when they have more than :data:`VERIFIED_DIRECT` (then the scan of
    the account's recent messages is cheaper).

    The same count as the scan: the messages verified for any of ``domains`` that are
    among the :data:`VERIFIED_SCAN` first of the scan, whose order is that of the
    index ``message_classified`` backwards, (received, class, id) descending. A message
    is among them when at most VERIFIED_SCAN classified messages come before it or
    are it: all of them are when the oldest is; else those not after the
    VERIFIED_SCAN-th message of the scan.
    """
    marks = ",".join("?" * len(domains))
    rows = db.execute("SELECT m.received, m.class, m.id FROM verified v JOIN message m"
                      f" ON m.id = v.message WHERE v.domain IN ({marks}) LIMIT ?",
                      (*domains, VERIFIED_DIRECT + 1)).fetchall()
    if len(rows) > VERIFIED_DIRECT:
        return None
    # A message verified for two of the domains is one (the same row twice).
    keys = {key for key in rows if key[0] >= since_ms and key[1]}
    if not keys:
        return 0, 0
    oldest = min(keys)
    # From the oldest on (its received, within the window, bounds the index range).
    rank = db.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM message INDEXED BY message_classified"
        " WHERE received >= ? AND class != '' AND (received, class, id) >= (?, ?, ?)"
        " LIMIT ?)", (oldest[0], *oldest, VERIFIED_SCAN + 1)).fetchone()[0]
    if rank > VERIFIED_SCAN:
        last = db.execute(
            "SELECT received, class, id FROM message INDEXED BY message_classified"
            " WHERE received >= ? AND class != '' ORDER BY received DESC, class DESC,"
            " id DESC LIMIT 1 OFFSET ?", (since_ms, VERIFIED_SCAN - 1)).fetchone()
        keys = {key for key in keys if key >= tuple(last)}
    classes = [key[1] for key in keys]
    return classes.count("ham"), classes.count("junk")


def _now_ms() -> int:
    return int(time.time() * 1000)


class JunkDatabase:
    """The database of one account; every method is one transaction (or one read)."""

    def __init__(self, path: Path, names: MailboxNames = MailboxNames()) -> None:
        self.path = path
        self.names = names
        self.lock = threading.RLock()  # the writer's
        self.db: Connection = open_database(path, DDL, SCHEMA_VERSION, "junk filter database",
                                            MIGRATIONS)
        self.read_lock = threading.Lock()
        self.reader: Connection = open_reader(path)
        # Verified-domain sets with more than VERIFIED_DIRECT messages (under read_lock).
        self._big_verified: set[tuple[str, ...]] = set()

    def close(self) -> None:
        with self.read_lock:
            self.reader.close()
        with self.lock:
            self.db.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.lock, transaction(self.db) as db:
            yield db

    # --- the word counts ------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        with self.read_lock:
            db = self.reader
            rows = dict(db.execute("SELECT key, value FROM meta"))
        return rows.get("ham", 0), rows.get("junk", 0)

    def counts(self, words: Iterable[str]) -> dict[str, WordCounts]:
        wanted = list(dict.fromkeys(words))
        out: dict[str, WordCounts] = {}
        with self.read_lock:
            db = self.reader
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                marks = ",".join("?" * len(chunk))
                for word, ham, junk in db.execute(
                        f"SELECT word, ham, junk FROM word WHERE word IN ({marks})", chunk):
                    out[word] = WordCounts(ham, junk)
        return out

    @staticmethod
    def _add(db: Connection, words: list[str], cls: Class, sign: int) -> None:
        if cls is Class.UNKNOWN:
            return
        column = "ham" if cls is Class.HAM else "junk"
        if sign > 0:
            db.executemany(f"INSERT INTO word (word, {column}) VALUES (?, 1) ON CONFLICT (word)"
                           f" DO UPDATE SET {column} = {column} + 1", [(w,) for w in words])
        else:
            db.executemany(f"UPDATE word SET {column} = MAX({column} - 1, 0) WHERE word = ?",
                           [(w,) for w in words])
        db.execute(f"UPDATE meta SET value = MAX(value + ?, 0) WHERE key = '{column}'", (sign,))

    def train(self, words: list[str], cls: Class, message_id: int | None = None,
              untrain: Class = Class.UNKNOWN) -> None:
        """Count ``words`` as one ``cls`` message (after removing its ``untrain`` count)."""
        with self._write() as db:
            self._train(db, words, cls, message_id, untrain)

    def retrain_many(self, items: Iterable[tuple[list[str], Retrain]]) -> None:
        """Each retrain with its message's words, in one transaction (one fsync), as
        :meth:`train` of each in turn: a detached one takes back its old class only."""
        with self._write() as db:
            for words, r in items:
                if r.detached:
                    self._train(db, words, Class.UNKNOWN, None, r.old)
                else:
                    self._train(db, words, r.new, r.message_id, Class.UNKNOWN)

    def _train(self, db: Connection, words: list[str], cls: Class, message_id: int | None,
               untrain: Class) -> None:
        if message_id is not None:
            row = db.execute("SELECT trained FROM message WHERE id = ?",
                             (message_id,)).fetchone()
            untrain = Class(row[0]) if row else untrain
        self._add(db, words, untrain, -1)
        self._add(db, words, cls, +1)
        if message_id is not None:
            db.execute("UPDATE message SET trained = ? WHERE id = ?", (cls.value, message_id))
        if untrain is not Class.UNKNOWN:
            for i in range(0, len(words), 500):
                chunk = words[i:i + 500]
                db.execute("DELETE FROM word WHERE ham = 0 AND junk = 0 AND word IN"
                           f" ({','.join('?' * len(chunk))})", chunk)

    def train_batch(self, items: Iterable[tuple[list[str], Class, int | None]]) -> int:
        """Count many messages in one transaction (a full training); returns how many."""
        n = 0
        with self._write() as db:
            for words, cls, message_id in items:
                self._add(db, words, cls, +1)
                if message_id is not None:
                    db.execute("UPDATE message SET trained = ? WHERE id = ?",
                               (cls.value, message_id))
                n += 1
        return n

    def mark_trained(self) -> None:
        """Record that the counts were made from all of the account's mailboxes."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('trained', ?)",
                       (_now_ms(),))

    def is_trained(self) -> bool:
        with self.read_lock:
            db = self.reader
            return db.execute("SELECT 1 FROM meta WHERE key = 'trained'").fetchone() \
                is not None

    def reset_words(self) -> None:
        """Forget the word counts (before a full retraining)."""
        with self._write() as db:
            db.execute("DELETE FROM word")
            db.execute("UPDATE meta SET value = 0 WHERE key IN ('ham', 'junk')")
            db.execute("UPDATE message SET trained = ''")

    # --- the history ----------------------------------------------------------

    def _state(self, row: tuple[str, int, str, int, int]) -> MessageState:
        mailbox, flags, keywords, rescued, replied = row
        return MessageState(self.names.kind(mailbox), flags, tuple(keywords.split()),
                            bool(rescued), bool(replied))

    def _reclassify(self, db: Connection, message_id: int) -> Retrain | None:
        row = db.execute("SELECT mailbox, flags, keywords, rescued, replied, class, trained"
                         " FROM message WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            return None
        new = self._state(row[:5]).user_class()
        if new.value != row[5]:
            db.execute("UPDATE message SET class = ? WHERE id = ?", (new.value, message_id))
        trained = Class(row[6])
        return Retrain(message_id, trained, new) if trained is not new else None

    def record_delivery(self, message_id: int, mailbox: str, uid: int, msgid: str,
                        identities: SenderIdentities) -> None:
        """A message the MX delivered: remember who sent it (verified identities)."""
        self.record_deliveries([(message_id, mailbox, uid, msgid, identities)])

    def record_deliveries(self, items: list[tuple[int, str, int, str, SenderIdentities]]
                          ) -> list[Retrain]:
        """:meth:`record_delivery` of several messages in one transaction (one fsync).

        Each message is recorded where it was delivered and without flags, as the MX
        delivers (so :meth:`located` of the same message would change nothing); the
        retrains this asks for (a message delivered into Junk is junk) are returned.

        A new row (most) is one statement: its state is known (where it was delivered,
        no flags, a reply or not), so is its class, written with it, not read back. One
        statement finds the replies among the batch, one writes the verified domains of
        all. The same rows as the upsert, reply look-up and read-back of each message
        in turn (tests/junk/test_record_same.py compares them)."""
        retrains: list[Retrain] = []
        with self._write() as db:
            answered = self._answered(db, {item[3] for item in items if item[3]})
            for message_id, mailbox, uid, msgid, who in items:
                retrain = self._record_one(db, message_id, mailbox, uid, msgid, who,
                                           msgid in answered)
                if retrain is not None:
                    retrains.append(retrain)
            db.executemany("INSERT OR IGNORE INTO verified (domain, message) VALUES (?, ?)",
                           [(d.lower(), item[0]) for item in items
                            for d in item[4].verified_domains])
        return retrains

    @staticmethod
    def _answered(db: Connection, msgids: set[str]) -> set[str]:
        """Those of ``msgids`` a message the account sent referred to (``sent_ref``)."""
        found: set[str] = set()
        wanted = sorted(msgids)
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            found.update(row[0] for row in db.execute(
                f"SELECT msgid FROM sent_ref WHERE msgid IN ({','.join('?' * len(chunk))})",
                chunk))
        return found

    def _record_one(self, db: Connection, message_id: int, mailbox: str, uid: int, msgid: str,
                    identities: SenderIdentities, replied: bool) -> Retrain | None:
        """The message's row. A new one (most) is written with its class, that of its
        fresh state (where it was delivered, no flags), in one statement; a row the
        learner wrote first is updated and its class found as :meth:`_reclassify`
        does."""
        fresh = _class_of(self.names.kind(mailbox), 0, "", 0, int(replied))
        values = (message_id, mailbox, uid, _now_ms(), msgid, identities.ip,
                  identities.network, identities.dmarc_domain.lower(),
                  identities.address.lower(), int(replied))
        if db.execute(
                "INSERT INTO message (id, mailbox, uid, received, msgid, ip, net, dmarc_domain,"
                " address, replied, class) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING", (*values, fresh.value)).rowcount:
            return Retrain(message_id, Class.UNKNOWN, fresh) if fresh is not Class.UNKNOWN \
                else None
        db.execute("UPDATE message SET received = ?, msgid = ?, ip = ?, net = ?,"
                   " dmarc_domain = ?, address = ?, replied = MAX(replied, ?) WHERE id = ?",
                   (*values[3:], message_id))
        return self._reclassify(db, message_id)

    def in_rejects(self, msgid: str) -> bool:
        """Whether a message with this Message-ID is already kept in Rejects (a retry)."""
        if not msgid:
            return False
        with self.read_lock:
            db = self.reader
            return db.execute(
                "SELECT 1 FROM message WHERE msgid = ? AND mailbox = ? COLLATE NOCASE"
                " AND expunged = 0", (msgid, self.names.rejects)).fetchone() is not None

    def located(self, message_id: int, mailbox: str, uid: int, flags: int,
                keywords: tuple[str, ...], msgid: str, received: int) -> Retrain | None:
        """A message appeared in ``mailbox`` (delivered, appended, moved or copied)."""
        return self.located_many([(message_id, mailbox, uid, flags, keywords, msgid,
                                   received)])[0]

    def located_many(self, items: list[tuple[int, str, int, int, tuple[str, ...], str, int]]
                     ) -> list[Retrain | None]:
        """:meth:`located` of several messages in one transaction (one fsync)."""
        with self._write() as db:
            return [self._locate(db, *item) for item in items]

    def _locate(self, db: Connection, message_id: int, mailbox: str, uid: int, flags: int,
                keywords: tuple[str, ...], msgid: str, received: int) -> Retrain | None:
        row = db.execute("SELECT mailbox, rescued FROM message WHERE id = ?",
                         (message_id,)).fetchone()
        if row is None:
            # Not known: a copy of a known message (COPY keeps Message-ID and
            # INTERNALDATE) inherits its identities and its history.
            origin = db.execute(
                "SELECT id, mailbox, rescued FROM message WHERE msgid = ? AND msgid != ''"
                " ORDER BY expunged, id DESC LIMIT 1", (msgid,)).fetchone() if msgid else None
            db.execute("INSERT INTO message (id, mailbox, uid, received, msgid)"
                       " VALUES (?, ?, ?, ?, ?)", (message_id, mailbox, uid, received, msgid))
            if origin is not None:
                db.execute(
                    "UPDATE message SET (ip, net, dmarc_domain, address, replied) = (SELECT"
                    " ip, net, dmarc_domain, address, replied FROM message WHERE id = ?)"
                    " WHERE id = ?", (origin[0], message_id))
                db.execute("INSERT OR IGNORE INTO verified (domain, message) SELECT domain, ?"
                           " FROM verified WHERE message = ?", (message_id, origin[0]))
                row = (origin[1], origin[2])
        rescued = False
        if row is not None:
            old_kind = self.names.kind(row[0]) if row[0] != mailbox else None
            rescued = bool(row[1]) if old_kind is None else rescued_by_move(
                old_kind, self.names.kind(mailbox), bool(row[1]))
        db.execute("UPDATE message SET mailbox = ?, uid = ?, flags = ?, keywords = ?,"
                   " rescued = ?, expunged = 0 WHERE id = ?",
                   (mailbox, uid, flags, " ".join(keywords), int(rescued), message_id))
        return self._reclassify(db, message_id)

    def flags_changed(self, mailbox: str, changes: list[tuple[int, int, tuple[str, ...]]]
                      ) -> tuple[list[Retrain], list[int]]:
        """New (uid, flags, keywords) in ``mailbox``; returns retrains and unknown uids.

        One read of the rows and one statement per kind of update, however many
        messages changed (a STORE on a whole mailbox is one change), with the same
        outcome as :meth:`_reclassify` after each update. A UID may be named more
        than once (changes learnt together), in order: it ends with its last flags.
        """
        retrains: list[Retrain] = []
        unknown: list[int] = []
        with self._write() as db:
            uids = sorted({uid for uid, _flags, _keywords in changes})
            known: dict[int, tuple[int, int, str, int, int, str, str]] = {}
            for i in range(0, len(uids), 500):
                chunk = uids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                for uid, *row in db.execute(
                        "SELECT uid, id, flags, keywords, rescued, replied, class, trained"
                        f" FROM message WHERE mailbox = ? AND uid IN ({marks}) AND expunged = 0"
                        " ORDER BY id", (mailbox, *chunk)):
                    known.setdefault(uid, tuple(row))  # type: ignore[arg-type]
            trained_of = {row[0]: row[6] for row in known.values()}
            final: dict[int, Class] = {}
            flag_updates: list[tuple[int, str, int]] = []
            class_updates: list[tuple[str, int]] = []
            classes: dict[tuple[int, str, int, int], Class] = {}  # most rows share a state
            texts: dict[tuple[str, ...], str] = {}
            for uid, flags, keywords in changes:
                row = known.get(uid)
                if row is None:
                    unknown.append(uid)
                    continue
                message_id, old_flags, old_keywords, rescued, replied, cls, trained = row
                text = texts.get(keywords)
                if text is None:
                    text = texts[keywords] = " ".join(keywords)
                state = (flags, text, rescued, replied)
                new = classes.get(state)
                if new is None:
                    new = classes[state] = self._state((mailbox, *state)).user_class()
                if new.value == cls == trained and _said(flags, text) == _said(
                        old_flags, old_keywords):
                    # Nothing a class depends on changed (\Flagged, most keywords): the
                    # row is left as it is; its other flags are never read.
                    continue
                if (flags, text) != (old_flags, old_keywords):
                    flag_updates.append((flags, text, message_id))
                if new.value != cls:
                    class_updates.append((new.value, message_id))
                known[uid] = (message_id, flags, text, rescued, replied, new.value, trained)
                # A UID named again (changes merged) keeps its first place, with its
                # last class: each message is retrained once, to where it ended.
                final[message_id] = new
            for message_id, new in final.items():
                old = _CLASSES[trained_of[message_id]]
                if old is not new:
                    retrains.append(Retrain(message_id, old, new))
            db.executemany("UPDATE message SET flags = ?, keywords = ? WHERE id = ?",
                           flag_updates)
            db.executemany("UPDATE message SET class = ? WHERE id = ?", class_updates)
        return retrains, list(dict.fromkeys(unknown))

    def expunged(self, mailbox: str, uids: Iterable[int]) -> list[Retrain]:
        """Messages left ``mailbox`` for good (a move updated the row before this).

        Deleted mail keeps its place in the sender's history and the word counts,
        unless a copy of it lives on (COPY + EXPUNGE is how clients without MOVE
        move mail): then the copy alone counts, and the original's training is
        taken back with the copy's words (returned as detached retrains).
        """
        retrains: list[Retrain] = []
        with self._write() as db:
            for uid in uids:
                row = db.execute("SELECT id, msgid, trained FROM message WHERE mailbox = ?"
                                 " AND uid = ? AND expunged = 0", (mailbox, uid)).fetchone()
                if row is None:
                    continue
                copy = db.execute("SELECT id FROM message WHERE msgid = ? AND msgid != ''"
                                  " AND id != ? AND expunged = 0", (row[1], row[0])).fetchone()
                db.execute("UPDATE message SET expunged = 1 WHERE id = ?", (row[0],))
                if copy is not None:
                    db.execute("UPDATE message SET class = '', trained = '' WHERE id = ?",
                               (row[0],))
                    if row[2]:
                        retrains.append(Retrain(copy[0], Class(row[2]), Class.UNKNOWN,
                                                detached=True))
        return retrains

    def renamed(self, old: str, new: str) -> None:
        with self._write() as db:
            db.execute("UPDATE message SET mailbox = ? WHERE mailbox = ?", (new, old))

    def record_sent(self, addresses: Iterable[str], references: Iterable[str]
                    ) -> list[Retrain]:
        """Mail the account sent: to ``addresses``, in reply to ``references``."""
        retrains: list[Retrain] = []
        now = _now_ms()
        with self._write() as db:
            for address in {a.lower() for a in addresses if a}:
                db.execute("INSERT INTO sent (address, count, last) VALUES (?, 1, ?)"
                           " ON CONFLICT (address) DO UPDATE SET count = count + 1,"
                           " last = excluded.last", (address, now))
            for msgid in set(references):
                db.execute("INSERT OR IGNORE INTO sent_ref (msgid) VALUES (?)", (msgid,))
                for (message_id,) in db.execute("SELECT id FROM message WHERE msgid = ?"
                                                " AND replied = 0", (msgid,)).fetchall():
                    db.execute("UPDATE message SET replied = 1 WHERE id = ?", (message_id,))
                    retrain = self._reclassify(db, message_id)
                    if retrain is not None:
                        retrains.append(retrain)
        return retrains

    # --- reputation -----------------------------------------------------------

    def sent_to(self, address: str) -> int:
        with self.read_lock:
            db = self.reader
            row = db.execute("SELECT count FROM sent WHERE address = ?",
                             (address.lower(),)).fetchone()
        return row[0] if row else 0

    def tally(self, column: str, value: str, since_ms: int) -> Tally:
        """Messages received since ``since_ms`` whose ``column`` (an identity) is ``value``.

        Bounded work whatever the history: the total stops at :data:`TOTAL_LIMIT`
        (an index range on (column, received)); ham and junk are counted among the
        identity's :data:`CLASSIFIED_LIMIT` most recent classified messages, on the
        index of classified messages only.
        """
        if column not in _IDENTITY_COLUMNS or not value:
            return Tally()
        value = value.lower()
        with self.read_lock:
            # One statement: the ham and junk of no past message are 0 (a subset of
            # the total's), so reading them whatever the total changes no answer.
            total, ham, junk = self.reader.execute(
                _TALLY_SQL[column], (value, since_ms, TOTAL_LIMIT, value, since_ms,
                                     CLASSIFIED_LIMIT)).fetchone()
        return Tally(total, ham, junk) if total else Tally()

    def tally_verified(self, domains: Iterable[str], since_ms: int) -> Tally:
        """:meth:`tally` for messages verified (SPF/DKIM) for any of ``domains``; ham and
        junk among the account's :data:`VERIFIED_SCAN` most recent classified messages."""
        wanted = sorted({d.lower() for d in domains})
        if not wanted:
            return Tally()
        marks = ",".join("?" * len(wanted))
        with self.read_lock:
            db = self.reader
            # Per domain, newest first (the key's message ids grow with time), so the
            # window's messages come before the history older than ``since_ms``.
            total = 0
            for domain in wanted:
                total += db.execute(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM verified v JOIN message m"
                    " ON m.id = v.message WHERE v.domain = ? AND m.received >= ?"
                    " ORDER BY v.message DESC LIMIT ?)",
                    (domain, since_ms, TOTAL_LIMIT)).fetchone()[0]
                if total >= TOTAL_LIMIT:
                    total = TOTAL_LIMIT
                    break
            if not total:
                return Tally()
            key = tuple(wanted)
            counted = None if key in self._big_verified else \
                _verified_classes(db, wanted, since_ms)
            if counted is None and key not in self._big_verified:
                if len(self._big_verified) >= BIG_VERIFIED_KEPT:
                    self._big_verified.clear()
                self._big_verified.add(key)
            ham, junk = counted if counted is not None else db.execute(
                "SELECT COALESCE(SUM(c.class = 'ham'), 0), COALESCE(SUM(c.class = 'junk'), 0)"
                " FROM (SELECT id, class FROM message INDEXED BY message_classified"
                " WHERE received >= ? AND class != '' ORDER BY received DESC LIMIT ?) c"
                f" WHERE EXISTS (SELECT 1 FROM verified v WHERE v.domain IN ({marks})"
                " AND v.message = c.id)",
                (since_ms, VERIFIED_SCAN, *wanted)).fetchone()
        return Tally(total, ham, junk)

    def knows_at_least(self, n: int) -> bool:
        """Whether the history holds at least ``n`` messages (cheap: stops at the n-th)."""
        with self.read_lock:
            db = self.reader
            return db.execute("SELECT 1 FROM message LIMIT 1 OFFSET ?",
                              (max(n - 1, 0),)).fetchone() is not None

    def stats(self) -> Stats:
        ham, junk = self.totals()
        with self.read_lock:
            db = self.reader
            words = db.execute("SELECT COUNT(*) FROM word").fetchone()[0]
            known, delivered, ham_known, junk_known = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(ip != ''), 0), COALESCE(SUM(class = 'ham'), 0),"
                " COALESCE(SUM(class = 'junk'), 0) FROM message").fetchone()
            sent = db.execute("SELECT COUNT(*) FROM sent").fetchone()[0]
        return Stats(ham, junk, words, known, delivered, ham_known, junk_known, sent)

    def message_class(self, message_id: int) -> tuple[Class, Class] | None:
        """(class, trained) of a message, for tests and the CLI."""
        with self.read_lock:
            db = self.reader
            row = db.execute("SELECT class, trained FROM message WHERE id = ?",
                             (message_id,)).fetchone()
        return (Class(row[0]), Class(row[1])) if row else None


__all__ = ["JunkDatabase", "MailboxKind", "Retrain", "Stats", "Tally"]
