"""Opening kittiwake's SQLite databases with durable settings and a versioned schema.

WAL mode with ``synchronous=FULL``: a committed transaction is on disk
(DESIGN.md "Durability"). ``user_version`` numbers the schema; a new file
gets the whole DDL in one transaction, a file from a newer kittiwake is
refused with a clear message.
"""

from __future__ import annotations

import sqlite3
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
