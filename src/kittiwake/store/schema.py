"""The per-account SQLite database: tables, pragmas, migrations.

One database per account (``accounts/<name>/index.db``), WAL mode with
``synchronous=FULL`` so that a committed transaction is on disk (DESIGN.md
"Durability"). ``user_version`` numbers the schema for migrations.

Search text has one index: the folded text IMAP SEARCH matches, under a
trigram index that keeps which documents hold a trigram and nothing more
(``detail=none``: no positions, no columns). A query asks for the documents
holding all of a needle's trigrams, a superset, and confirms each on the stored
text; positions would narrow the superset a little at about twice the cost of
every message's indexing (the MX path's largest single share of CPU).

Modification sequences (RFC 7162 §3.1.1) are account-wide: every write
transaction takes the next value from ``meta.modseq`` and stamps every row it
changes; a mailbox's HIGHESTMODSEQ is the largest stamp of its rows and
tombstones. Expunged messages leave a tombstone in ``expunged`` so that
QRESYNC can answer VANISHED (RFC 7162 §3.2.10).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kittiwake.sqlitedb import Migration, open_database

SCHEMA_VERSION = 7

# System flags as bits (RFC 9051 §2.3.2); keywords are stored as text.
SEEN, ANSWERED, FLAGGED, DELETED, DRAFT = 1, 2, 4, 8, 16
SYSTEM_FLAGS = {
    "\\seen": SEEN,
    "\\answered": ANSWERED,
    "\\flagged": FLAGGED,
    "\\deleted": DELETED,
    "\\draft": DRAFT,
}
FLAG_NAMES = {SEEN: "\\Seen", ANSWERED: "\\Answered", FLAGGED: "\\Flagged",
              DELETED: "\\Deleted", DRAFT: "\\Draft"}

# IMAP METADATA entries (RFC 5464); mailbox_id 0 holds the server entries.
_METADATA = """
CREATE TABLE IF NOT EXISTS metadata (
  mailbox_id INTEGER NOT NULL,
  entry TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (mailbox_id, entry)
);
"""

# The folded text IMAP SEARCH matches, under a trigram index (substring queries of
# three or more characters); messages not in it are searched by decoding them.
_TEXTINDEX = """
CREATE VIRTUAL TABLE IF NOT EXISTS textindex USING fts5 (
  headers, body, tokenize = 'trigram', detail = none
);
"""

# What a protocol layer derives from a message (IMAP: its header octets and serialised
# ENVELOPE/BODYSTRUCTURE), kept so a later read needs no file and no parse. The
# store never interprets ``data``: it is filled by its reader (best effort, may be
# absent) and dropped with the message; messages never change, so neither does it.
_MESSAGE_CACHE = """
CREATE TABLE IF NOT EXISTS message_cache (
  id INTEGER PRIMARY KEY,
  data BLOB NOT NULL
);
"""

# Tombstones by modseq: QRESYNC's VANISHED (RFC 7162 §3.2.10) asks for those of a
# mailbox newer than a client's modseq; the primary key (mailbox, uid) would read
# every tombstone the mailbox ever had to find the few recent ones.
_EXPUNGED_MODSEQ = """
CREATE INDEX IF NOT EXISTS expunged_mailbox_modseq ON expunged (mailbox_id, modseq);
"""

DDL = """
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE mailbox (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  uidvalidity INTEGER NOT NULL,
  uidnext INTEGER NOT NULL DEFAULT 1,
  special_use TEXT NOT NULL DEFAULT '',
  messages INTEGER NOT NULL DEFAULT 0,
  unseen INTEGER NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL DEFAULT 0,
  highestmodseq INTEGER NOT NULL DEFAULT 1,
  created_modseq INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE subscription (
  name TEXT PRIMARY KEY
);
CREATE TABLE message (
  id INTEGER PRIMARY KEY,
  mailbox_id INTEGER NOT NULL REFERENCES mailbox(id),
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL,
  created_modseq INTEGER NOT NULL,
  flags INTEGER NOT NULL DEFAULT 0,
  keywords TEXT NOT NULL DEFAULT '',
  size INTEGER NOT NULL,
  received INTEGER NOT NULL,
  saved INTEGER NOT NULL,
  message_id TEXT NOT NULL DEFAULT '',
  thread_id INTEGER NOT NULL DEFAULT 0,
  subject TEXT NOT NULL DEFAULT '',
  mailfrom TEXT NOT NULL DEFAULT '',
  rcptto TEXT NOT NULL DEFAULT '',
  summary TEXT NOT NULL DEFAULT '{}',
  prefix BLOB NOT NULL DEFAULT x'',
  indexed INTEGER NOT NULL DEFAULT 0,
  UNIQUE (mailbox_id, uid)
);
CREATE INDEX message_unindexed ON message (id) WHERE indexed = 0;
CREATE INDEX message_mailbox_modseq ON message (mailbox_id, modseq);
CREATE INDEX message_message_id ON message (message_id);
CREATE TABLE expunged (
  mailbox_id INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  modseq INTEGER NOT NULL,
  PRIMARY KEY (mailbox_id, uid)
);
CREATE TABLE credentials (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  data TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('modseq', 1), ('uidvalidity', 0);
""" + _METADATA + _TEXTINDEX + _MESSAGE_CACHE + _EXPUNGED_MODSEQ

# The prefix: headers added at delivery (Received, Authentication-Results,
# DKIM-Signature), kept here so the spooled body is moved into place, not copied;
# the message is prefix + file (kittiwake.store.messagefile). ``indexed``: whether
# the background indexer has done the message (the queue of its work, durable
# with the delivery's own commit).
def _add_prefix_and_indexed(db: sqlite3.Connection) -> None:
    columns = {r[1] for r in db.execute("PRAGMA table_info(message)")}
    if "prefix" not in columns:
        db.execute("ALTER TABLE message ADD COLUMN prefix BLOB NOT NULL DEFAULT x''")
    if "indexed" not in columns:
        db.execute("ALTER TABLE message ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0")
        in_word_index = " AND id IN (SELECT rowid FROM fts)" if db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'fts'").fetchone() else ""
        db.execute("UPDATE message SET indexed = 1 WHERE id IN"
                   " (SELECT id FROM textindex_docsize)" + in_word_index)
    db.execute("CREATE INDEX IF NOT EXISTS message_unindexed ON message (id)"
               " WHERE indexed = 0")


# Index states of a message (message.indexed).
INDEX_PENDING, INDEX_DONE, INDEX_IMPOSSIBLE = 0, 1, 2


# Version 7: one search index. The word index (``fts``) is dropped (nothing read it
# but a store API now answered by the substring index), and the substring index is
# made again without positions; its messages are indexed again in the background
# (until then SEARCH decodes them: slower, as exact).
def _one_index_without_positions(db: sqlite3.Connection) -> None:
    db.execute("DROP TABLE IF EXISTS fts")
    db.execute("DROP TABLE IF EXISTS textindex")
    db.execute(_TEXTINDEX)
    db.execute(f"UPDATE message SET indexed = {INDEX_PENDING} WHERE indexed = {INDEX_DONE}")


# Schema changes for databases made by older versions: version -> DDL.
# 2: IMAP METADATA entries (RFC 5464); mailbox_id 0 holds the server entries.
# 3: the substring index of SEARCH text (existing messages are not in it).
# 4: the delivery prefix and the index state of each message.
# 5: the opaque per-message cache of a reader (empty: filled as messages are read).
# 6: tombstones indexed by modseq (VANISHED). The summary of a message may also be
#    summary.PENDING ('') from this version on (filled by the background step), which
#    an older kittiwake would not understand: the version keeps it from opening it.
# 7: one search index, without positions (see _one_index_without_positions).
MIGRATIONS: dict[int, Migration] = {2: _METADATA, 3: _TEXTINDEX, 4: _add_prefix_and_indexed,
                                    5: _MESSAGE_CACHE, 6: _EXPUNGED_MODSEQ,
                                    7: _one_index_without_positions}


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) an account database with durable settings."""
    return open_database(path, DDL, SCHEMA_VERSION, "account database", MIGRATIONS)
