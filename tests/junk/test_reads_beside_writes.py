"""An incoming message's verdict does not wait for the junk database's writes.

The reputation reads go through their own connection: while a history write
holds the writer's lock (as it does through its COMMIT and that COMMIT's
fsync), a tally still answers, with the last committed state.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from kittiwake.junk.database import JunkDatabase
from kittiwake.junk.model import SenderIdentities

SENDER = SenderIdentities(ip="192.0.2.7", dmarc_domain="example.com",
                          verified_domains=frozenset({"example.com"}),
                          address="news@example.com")


def test_a_tally_answers_while_a_write_holds_the_writer(tmp_path: Path) -> None:
    db = JunkDatabase(tmp_path / "junk.db")
    db.record_deliveries([(1, "Inbox", 1, "<1@example.com>", SENDER)])
    inside = threading.Event()
    release = threading.Event()

    def slow_write() -> None:
        with db._write() as conn:  # a history write, still inside its transaction
            conn.execute("UPDATE message SET uid = 2 WHERE id = 1")
            inside.set()
            release.wait(10)

    writer = threading.Thread(target=slow_write)
    writer.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        tally = db.tally("address", SENDER.address, 0)
        verified = db.tally_verified(SENDER.verified_domains, 0)
        assert time.monotonic() - started < 1.0  # not behind the writer
        assert (tally.total, verified.total) == (1, 1)
        assert db.sent_to(SENDER.address) == 0 and db.knows_at_least(1)
        # The write is not committed yet: the reader sees the state before it.
        assert db.reader.execute("SELECT uid FROM message WHERE id = 1").fetchone() == (1,)
    finally:
        release.set()
        writer.join(10)
    assert db.reader.execute("SELECT uid FROM message WHERE id = 1").fetchone() == (2,)
    db.close()


def test_the_reader_cannot_write(tmp_path: Path) -> None:
    db = JunkDatabase(tmp_path / "junk.db")
    with pytest.raises(sqlite3.OperationalError):
        db.reader.execute("DELETE FROM message")
    db.close()
