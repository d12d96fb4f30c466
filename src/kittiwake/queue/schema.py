"""The queue database ``queue/index.db``: tables and durable connection settings.

WAL mode with ``synchronous=FULL``: a committed transaction is on disk
(DESIGN.md "Durability"). Times are integer milliseconds since the epoch, UTC.
``AUTOINCREMENT`` keeps ids of removed messages from being reused, so a
message file name and a history row always mean one message.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kittiwake.sqlitedb import open_database

SCHEMA_VERSION = 2

DDL = """
CREATE TABLE message (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  account TEXT,
  mail_from TEXT NOT NULL,
  from_domain TEXT NOT NULL,
  smtputf8 INTEGER NOT NULL,
  eightbit INTEGER NOT NULL,
  requiretls INTEGER,
  tls_required_no INTEGER NOT NULL,
  ret TEXT,
  envid TEXT,
  size INTEGER NOT NULL,
  created INTEGER NOT NULL,
  release_at INTEGER,
  prefix BLOB
);
CREATE TABLE recipient (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id INTEGER NOT NULL REFERENCES message(id),
  address TEXT NOT NULL,
  domain TEXT NOT NULL,
  notify TEXT,
  orcpt_type TEXT,
  orcpt TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt INTEGER NOT NULL,
  last_attempt INTEGER,
  err_code INTEGER,
  err_enhanced TEXT,
  err_text TEXT,
  err_host TEXT,
  status TEXT NOT NULL DEFAULT 'queued',
  held INTEGER NOT NULL DEFAULT 0,
  dsn_delayed_sent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recipient_due ON recipient (status, held, next_attempt);
CREATE INDEX recipient_message ON recipient (message_id);
CREATE INDEX recipient_domain_due ON recipient (domain, status, held, next_attempt);
CREATE TABLE holdrule (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  account TEXT NOT NULL,
  from_domain TEXT NOT NULL,
  to_domain TEXT NOT NULL,
  UNIQUE (account, from_domain, to_domain)
);
CREATE TABLE retired (
  recipient_id INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL,
  account TEXT,
  mail_from TEXT NOT NULL,
  address TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  last_attempt INTEGER,
  err_code INTEGER,
  err_enhanced TEXT,
  err_text TEXT,
  err_host TEXT,
  created INTEGER NOT NULL,
  retired INTEGER NOT NULL
);
CREATE INDEX retired_time ON retired (retired);
"""


# Version 2: a message may have a prefix (headers added when a spool file is
# handed over, QueueStore.add_file); picking a destination's next due
# recipients uses an index (the scheduler keeps a connection busy with them).
MIGRATIONS = {
    2: """
ALTER TABLE message ADD COLUMN prefix BLOB;
CREATE INDEX recipient_domain_due ON recipient (domain, status, held, next_attempt);
""",
}


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the queue database with durable settings."""
    return open_database(path, DDL, SCHEMA_VERSION, "queue database", MIGRATIONS)


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing queue database for reading only (``mode=ro``: never written).

    For looking at the queue of a stopped server; FileNotFoundError when there
    is no database (no mail was ever queued), RuntimeError for a newer schema.
    """
    if not path.is_file():
        raise FileNotFoundError(str(path))
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                           isolation_level=None, check_same_thread=False, timeout=30)
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        conn.close()
        raise RuntimeError(f"{path}: queue database schema {current} is newer than this"
                           f" kittiwake ({SCHEMA_VERSION}); upgrade kittiwake")
    return conn
