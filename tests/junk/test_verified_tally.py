"""The verified-domain tally read from the domains' side equals the scan it replaced.

:meth:`JunkDatabase.tally_verified` counts ham and junk among the account's most
recent classified messages verified for the sender's domains. Found from the
domains' own messages (most domains have few), it must count exactly the messages
the scan of the recent messages counts, ties in ``received`` and all: checked on
random histories against the scan, with the scan's window and the direct read's
limit made small so that every branch is taken.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.junk.test_decide_same import old_tally_verified
from tests.junk.test_tally_bounded import steps

from kittiwake.junk import database
from kittiwake.junk.database import JunkDatabase

DOMAINS = ["a.example", "b.example", "c.example", "d.example"]

histories = st.lists(st.tuples(
    st.integers(0, 12),  # received: few values, so many ties
    st.sampled_from(["", "", "ham", "junk"]),
    st.sets(st.sampled_from(DOMAINS), max_size=3)), max_size=60)


def fill(db: JunkDatabase, rows: list[tuple[int, str, set[str]]]) -> None:
    db._big_verified.clear()  # a new history: no domain is known to be big in it
    with db.lock:
        db.db.execute("DELETE FROM message")
        db.db.execute("DELETE FROM verified")
        db.db.executemany("INSERT INTO message (id, received, class) VALUES (?, ?, ?)",
                          [(i, received, cls) for i, (received, cls, _d) in enumerate(rows, 1)])
        db.db.executemany("INSERT INTO verified (domain, message) VALUES (?, ?)",
                          [(d, i) for i, (_r, _c, domains) in enumerate(rows, 1)
                           for d in domains])


@pytest.fixture(scope="module")
def db() -> JunkDatabase:
    with tempfile.TemporaryDirectory() as tmp:
        db = JunkDatabase(Path(tmp) / "junk.db")
        yield db  # type: ignore[misc]
        db.close()


@settings(max_examples=300, deadline=None)
@given(rows=histories, wanted=st.sets(st.sampled_from(DOMAINS), min_size=1, max_size=2),
       since=st.integers(0, 8), scan=st.integers(1, 12), direct=st.integers(0, 20))
def test_the_domains_side_counts_as_the_scan(
        db: JunkDatabase, rows: list[tuple[int, str, set[str]]], wanted: set[str], since: int,
        scan: int, direct: int) -> None:
    fill(db, rows)
    old_scan, old_direct = database.VERIFIED_SCAN, database.VERIFIED_DIRECT
    database.VERIFIED_SCAN, database.VERIFIED_DIRECT = scan, direct
    try:
        assert db.tally_verified(wanted, since) == old_tally_verified(
            db, frozenset(wanted), since)
    finally:
        database.VERIFIED_SCAN, database.VERIFIED_DIRECT = old_scan, old_direct


def tally_steps(db: JunkDatabase, domains: set[str]) -> tuple[int, object]:
    """SQLite's steps (in hundreds) for one tally_verified, and its answer."""
    found: list[object] = []
    return steps(db, lambda: found.append(db.tally_verified(domains, 0))), found[0]


def test_a_new_correspondent_costs_less_than_the_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A domain whose few messages came lately, in a long history: its own messages
    are read, not each of the account's recent messages looked up (SQLite steps)."""
    db = JunkDatabase(tmp_path / "junk.db")
    fill(db, [(n, "ham" if n % 3 else "junk",
               {"a.example"} if n > 2800 and n % 7 == 0 else {"b.example"})
              for n in range(3000)])

    direct, tally = tally_steps(db, {"a.example"})
    monkeypatch.setattr(database, "VERIFIED_DIRECT", 0)  # the scan, as before
    scanned, scanned_tally = tally_steps(db, {"a.example"})
    db.close()
    assert tally == scanned_tally
    assert direct * 3 < scanned, (direct, scanned)


def test_a_big_domain_goes_to_the_scan_without_reading_its_rows_again(
        tmp_path: Path) -> None:
    """A domain with more than VERIFIED_DIRECT messages (a big provider's) is found out
    once; after that its tally is the scan alone (SQLite steps), with the same answer."""
    db = JunkDatabase(tmp_path / "junk.db")
    fill(db, [(n, "ham" if n % 3 else "junk", {"big.example"}) for n in range(3000)])

    first, tally = tally_steps(db, {"big.example"})
    again, tally_again = tally_steps(db, {"big.example"})
    old = old_tally_verified(db, frozenset({"big.example"}), 0)
    db.close()
    assert tally == tally_again == old
    assert ("big.example",) in db._big_verified
    assert again < first, (again, first)
