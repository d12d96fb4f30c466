"""The write-ahead log is checkpointed by a thread of its own, off the commit path."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from kittiwake.sqlitedb import Checkpointer, open_database
from kittiwake.store import AccountStore

DDL = "CREATE TABLE t (x INTEGER);"


def test_checkpoints_every_so_many_commits_in_its_own_thread(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    conn = open_database(path, DDL, 1, "test database")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    seen: list[str] = []
    checkpointer = Checkpointer(path, commits=5)
    original = checkpointer._run

    def run() -> None:
        seen.append(threading.current_thread().name)
        original()

    checkpointer._run = run  # type: ignore[method-assign]
    try:
        for i in range(4):
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            checkpointer.committed()
        assert checkpointer.runs == 0 and not seen  # not due yet: no thread
        conn.execute("INSERT INTO t VALUES (5)")
        checkpointer.committed()
        deadline = time.monotonic() + 5
        while checkpointer.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.runs == 1
        assert seen and seen[0].startswith("kittiwake-checkpoint")
        assert seen[0] != threading.current_thread().name
        # Everything committed before it was copied into the database.
        conn2 = sqlite3.connect(path)
        assert conn2.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 5
        conn2.close()
    finally:
        checkpointer.close()
        conn.close()


def test_account_store_commits_do_not_checkpoint(tmp_path: Path) -> None:
    store = AccountStore("alice", tmp_path / "alice")
    try:
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        store.ensure_mailboxes(["INBOX"])
        store.checkpointer.commits = 3
        for i in range(6):
            store.deliver("INBOX", f"Subject: {i}\r\n\r\nbody\r\n".encode())
        deadline = time.monotonic() + 5
        while store.checkpointer.runs < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.checkpointer.runs >= 1
    finally:
        store.close()
    # The last connection to close checkpointed the whole log (and removed it).
    assert not (tmp_path / "alice" / "index.db-wal").exists()


def test_drain_checkpoints_now_and_waits_for_it(tmp_path: Path) -> None:
    """A bulk writer (the importer) asks for a checkpoint after each large commit and
    waits for the last: the log is copied into the database and emptied by the next
    writer (a PASSIVE checkpoint leaves the file, which SQLite then reuses)."""
    path = tmp_path / "x.db"
    conn = open_database(path, DDL, 1, "test database")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    checkpointer = Checkpointer(path, commits=1000)
    try:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(20_000)])
        conn.execute("COMMIT")
        checkpointer.committed()
        assert checkpointer.runs == 0  # 1 of 1000 commits: not due
        checkpointer.request()  # due now, whatever the count
        checkpointer.drain()
        assert checkpointer.runs >= 1
        # The rows are in the database file itself, not only in its log: a copy of
        # the file alone (no -wal beside it) holds them.
        alone = tmp_path / "alone.db"
        alone.write_bytes(path.read_bytes())
        conn2 = sqlite3.connect(alone)
        assert conn2.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 20_000
        conn2.close()
        before = checkpointer.runs
        checkpointer.drain()  # nothing new committed: still one checkpoint, waited for
        assert checkpointer.runs == before + 1
    finally:
        checkpointer.close()
        conn.close()
    checkpointer.drain()  # closed: returns at once
