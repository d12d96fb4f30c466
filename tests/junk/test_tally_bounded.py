"""The sender tallies: exact ham/junk counts, bounded work however long the history."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from kittiwake.junk import database
from kittiwake.junk.database import TOTAL_LIMIT, JunkDatabase, Tally
from kittiwake.junk.model import SenderIdentities


def fill(db: JunkDatabase, count: int, first_id: int = 1, seed: int = 7) -> None:
    """``count`` deliveries from one sender; about one in ten classified by the user."""
    rng = random.Random(seed)
    who = SenderIdentities(ip="192.0.2.7", dmarc_domain="example.com",
                           verified_domains=frozenset({"example.com", "mail.example.com"}),
                           address="news@example.com")
    items = [(i, "Inbox", i, f"<{i}@example.com>", who)
             for i in range(first_id, first_id + count)]
    db.record_deliveries(items)
    with db.lock:
        db.db.executemany("UPDATE message SET class = ? WHERE id = ?",
                          [(rng.choice(["ham", "junk"]), i) for i, *_ in items
                           if rng.random() < 0.1])


def steps(db: JunkDatabase, call) -> int:  # type: ignore[no-untyped-def]
    """SQLite virtual-machine steps (in units of 100) that ``call`` makes."""
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    db.reader.set_progress_handler(tick, 100)
    try:
        call()
    finally:
        db.reader.set_progress_handler(None, 0)
    return counted[0]


def brute(db: JunkDatabase, column: str, value: str) -> tuple[int, int, int]:
    rows = db.db.execute(f"SELECT class FROM message WHERE {column} = ?", (value,)).fetchall()
    classes = [r[0] for r in rows]
    return len(classes), classes.count("ham"), classes.count("junk")


def test_tallies_are_exact_for_ham_and_junk_and_capped_in_total(tmp_path: Path) -> None:
    db = JunkDatabase(tmp_path / "junk.db")
    fill(db, 400)
    for column, value in (("address", "news@example.com"), ("dmarc_domain", "example.com"),
                          ("ip", "192.0.2.7"), ("net", "192.0.2.0/24")):
        total, ham, junk = brute(db, column, value)
        assert db.tally(column, value, 0) == Tally(min(total, TOTAL_LIMIT), ham, junk)
    _, ham, junk = brute(db, "address", "news@example.com")
    assert db.tally_verified({"example.com", "Mail.Example.com"}, 0) == \
        Tally(TOTAL_LIMIT, ham, junk)  # each message counted once for ham/junk
    assert db.tally("address", "someone@else.example", 0) == Tally()
    assert db.tally_verified({"else.example"}, 0) == Tally()
    db.close()


def test_a_tally_does_not_grow_with_the_senders_history(tmp_path: Path) -> None:
    """A big provider's domain has thousands of past messages, many of them read (ham):
    every incoming message's tallies read a bounded number of index entries, not all
    of them (the server's share of the MX path grew with the history before)."""
    db = JunkDatabase(tmp_path / "junk.db")

    def classify_all() -> None:
        with db.lock:
            db.db.execute("UPDATE message SET class = CASE id % 5 WHEN 0 THEN 'junk'"
                          " ELSE 'ham' END")

    def all_tallies() -> None:
        for column, value in (("address", "news@example.com"),
                              ("dmarc_domain", "example.com"), ("ip", "192.0.2.7")):
            db.tally(column, value, 0)
        db.tally_verified({"example.com", "mail.example.com"}, 0)

    fill(db, 3000)
    classify_all()
    small = steps(db, all_tallies)
    fill(db, 10000, first_id=3001, seed=8)
    classify_all()
    large = steps(db, all_tallies)
    assert large <= small * 1.2 + 5, (small, large)
    tally = db.tally("address", "news@example.com", 0)  # the most recent ones decide
    assert tally.ham + tally.junk == database.CLASSIFIED_LIMIT
    db.close()


def test_a_schema_1_database_gets_the_new_indexes(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    db = JunkDatabase(path)
    fill(db, 50)
    expected = db.tally("address", "news@example.com", 0)
    db.close()
    old = sqlite3.connect(path)  # back to schema 1: its single-column indexes
    for column in ("ip", "net", "dmarc_domain", "address"):
        old.execute(f"DROP INDEX message_{column}_classified")
        old.execute(f"DROP INDEX message_{column}")
        old.execute(f"CREATE INDEX message_{column} ON message ({column})")
    old.execute("DROP INDEX message_classified")
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    db = JunkDatabase(path)
    names = {r[0] for r in db.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"message_address_classified", "message_classified"} <= names
    assert db.db.execute("PRAGMA user_version").fetchone()[0] == database.SCHEMA_VERSION
    assert db.tally("address", "news@example.com", 0) == expected
    db.close()
