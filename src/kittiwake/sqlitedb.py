"""Opening kittiwake's SQLite databases with durable settings and a versioned schema.

WAL mode with ``synchronous=FULL``: a committed transaction is on disk
(DESIGN.md "Durability"). ``user_version`` numbers the schema; a new file
gets the whole DDL in one transaction, a file from a newer kittiwake is
refused with a clear message.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# A schema step: DDL statements, or a function run in the migration's transaction
# (for steps that depend on what is there, e.g. a column that may exist already).
Migration = str | Callable[[sqlite3.Connection], None]


def statements(script: str) -> list[str]:
    """Split a DDL script into complete statements (semicolons inside are respected)."""
    out, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        if sqlite3.complete_statement("\n".join(current)):
            out.append("\n".join(current))
            current = []
    return out


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception (the connection
    is opened in autocommit mode, ``isolation_level=None``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def open_database(path: Path, ddl: str, version: int, what: str,
                  migrations: dict[int, Migration] | None = None) -> sqlite3.Connection:
    """Open (creating if needed) a database; ``what`` names it in errors.

    A database of an older schema is brought up to ``version`` with
    ``migrations[v]`` for each newer ``v``, in one transaction.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current == 0:
        with transaction(conn):
            for statement in statements(ddl):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
    elif current < version:
        with transaction(conn):
            for v in range(current + 1, version + 1):
                step = (migrations or {}).get(v, "")
                if callable(step):
                    step(conn)
                    continue
                for statement in statements(step):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
    elif current > version:
        conn.close()
        raise RuntimeError(f"{path}: {what} schema {current} is newer than this kittiwake"
                           f" ({version}); upgrade kittiwake")
    return conn


def open_reader(path: Path) -> sqlite3.Connection:
    """A second connection to a database :func:`open_database` opened, for reads only
    (``PRAGMA query_only``): in WAL mode it reads the last committed state while the
    writer's connection is inside a transaction or its COMMIT's fsync."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA query_only = 1")
    return conn


class Checkpointer:
    """Copies a database's write-ahead log into it in a thread of its own, off the
    path of the commits.

    SQLite's automatic checkpoint runs inside the COMMIT that takes the log past
    1000 pages: that commit (a group of deliveries, whose callers wait for it)
    then also syncs the log, writes the pages to the database and syncs the
    database. Here the connection that commits has it turned off
    (``PRAGMA wal_autocheckpoint = 0``), tells this object of each commit
    (:meth:`committed`, a counter), and every :attr:`commits` commits a second
    connection, in this thread, runs a PASSIVE checkpoint (it never waits for,
    nor blocks, a writer or a reader; https://www.sqlite.org/c3ref/wal_checkpoint_v2.html).
    Durability is unchanged: a commit is durable once its log frames are synced
    (``synchronous=FULL``), whoever checkpoints them later, and the checkpoint
    itself syncs the log before and the database after copying
    (https://www.sqlite.org/pragma.html#pragma_synchronous).

    The thread ends after :data:`IDLE_SECONDS` without a checkpoint to run (the
    next one due starts another); :meth:`close` stops it, leaving the last pages
    to the closing connection (the last to close checkpoints the whole log).
    """

    COMMITS = 128
    IDLE_SECONDS = 10.0

    def __init__(self, path: Path, commits: int = COMMITS) -> None:
        self.path = path
        self.commits = commits
        self.runs = 0  # checkpoints run (for tests)
        self._cond = threading.Condition()
        self._count = 0  # commits since the last checkpoint started
        self._thread: threading.Thread | None = None
        self._running = False  # a checkpoint runs now
        self._closing = False

    def committed(self) -> None:
        """A transaction of the database's own connection committed (never raises: it
        is called right after a COMMIT)."""
        with self._cond:
            self._count += 1
            self._due()

    def request(self) -> None:
        """A checkpoint soon, whatever the count: after a large transaction (an import's
        batch of hundreds of messages) that put many pages in the log at once."""
        with self._cond:
            self._count = max(self._count, self.commits)
            self._due()

    def drain(self, timeout: float = 60.0) -> None:
        """Checkpoint now and wait until that checkpoint ran (at most ``timeout``
        seconds): a bulk writer's last step, leaving no large log behind."""
        with self._cond:
            if self._closing:
                return
            # One that runs now may have started before the last commit: the next one.
            target = self.runs + (2 if self._running else 1)
            self._count = max(self._count, self.commits)
            self._due()
            if self._thread is not None:
                self._cond.wait_for(lambda: self.runs >= target or self._closing, timeout)

    def _due(self) -> None:
        """(Under the lock.) Start or wake the thread if a checkpoint is due."""
        if self._count < self.commits or self._closing:
            return
        if self._thread is None:
            thread = threading.Thread(target=self._run, daemon=True,
                                      name=f"kittiwake-checkpoint-{self.path.parent.name}")
            try:
                thread.start()
            except RuntimeError:  # no thread to be had: a later commit tries again
                return
            self._thread = thread
        else:
            self._cond.notify()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                with self._cond:
                    while self._count < self.commits and not self._closing:
                        if not self._cond.wait(self.IDLE_SECONDS) \
                                and self._count < self.commits:
                            self._thread = None  # the next checkpoint due starts another
                            return
                    if self._closing:
                        return
                    self._count = 0
                    self._running = True
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, isolation_level=None,
                                               check_same_thread=False, timeout=30)
                        conn.execute("PRAGMA synchronous = FULL")
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    pass  # busy (another process checkpoints) or failing: the next one
                with self._cond:
                    self.runs += 1
                    self._running = False
                    self._cond.notify_all()  # drain() waits for this
        finally:
            if conn is not None:
                conn.close()

    def close(self) -> None:
        """Stop the thread (waiting for a checkpoint that runs)."""
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify()
        if thread is not None:
            thread.join()
