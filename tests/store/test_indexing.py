"""The background indexer as a durable step: its work queue is the rows' index state."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from kittiwake.cpupool import INLINE
from kittiwake.store import Store, summary
from kittiwake.store.account import AccountStore
from kittiwake.store.schema import INDEX_DONE, INDEX_IMPOSSIBLE, INDEX_PENDING
from kittiwake.store.store import account_dir


def states(core: AccountStore) -> dict[int, int]:
    return dict(core.db.execute("SELECT id, indexed FROM message"))


async def settled(account) -> None:  # type: ignore[no-untyped-def]
    for _ in range(1000):  # the indexer starts after store.INDEX_DELAY
        if not account.core.to_index and account._indexer is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the indexer did not finish")


async def test_a_message_too_long_to_index_is_marked_not_requeued(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary, "MAX_INDEX_CHARS", 200)
    monkeypatch.setattr("kittiwake.store.account.MAX_INDEX_CHARS", 200)
    store = Store(tmp_path)
    account = await store.account("alice")
    short = await account.deliver("Inbox", b"Subject: short\r\n\r\npuffin\r\n")
    long = await account.deliver("Inbox", b"Subject: long\r\n\r\n" + b"gannet " * 100 + b"\r\n")
    assert states(account.core) == {short.message_id: INDEX_PENDING,
                                    long.message_id: INDEX_PENDING}
    await settled(account)
    assert states(account.core) == {short.message_id: INDEX_DONE,
                                    long.message_id: INDEX_IMPOSSIBLE}
    # Not in the substring index: IMAP SEARCH decodes it instead (the caller's part).
    indexed, hits = await account.text_search("Inbox", "gannet", "body")
    assert (indexed, hits) == ({short.message_id}, set())
    store.close()
    store = Store(tmp_path)
    account = await store.account("alice")
    assert account.core.to_index == []  # neither is queued again at the next open
    store.close()


async def test_an_unreadable_message_is_marked_not_retried(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    lost = await account.deliver("Inbox", b"Subject: lost\r\n\r\nskua\r\n")
    account.core.db.execute("UPDATE message SET summary = 'not json' WHERE id = ?",
                            (lost.message_id,))
    await settled(account)
    assert states(account.core) == {lost.message_id: INDEX_IMPOSSIBLE}
    store.close()


async def test_a_copy_of_a_message_not_yet_indexed_is_indexed(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice", default_mailboxes=["Archive"])
    await account.deliver("Inbox", b"Subject: copied\r\n\r\nshearwater\r\n")
    [(_, new_uid)] = await account.copy("Inbox", [1], "Archive")
    await settled(account)
    assert set(states(account.core).values()) == {INDEX_DONE}
    ids = await account.uid_ids("Archive")
    indexed, hits = await account.text_search("Archive", "shearwater", "body")
    assert indexed == hits == {ids[new_uid]}
    store.close()


# The search indexes of schema 6 (before version 7 made one without positions).
_OLD_INDEXES = """
DROP TABLE textindex;
CREATE VIRTUAL TABLE textindex USING fts5 (headers, body, tokenize = 'trigram');
CREATE VIRTUAL TABLE fts USING fts5 (
  headers, body, tokenize = 'unicode61 remove_diacritics 2', detail = column
);
"""


def _as_old_schema(root: Path, version: int, indexed: list[int]) -> None:
    """Turn an account database back into one of schema ``version`` (3 or 6) with the
    old word and substring indexes, holding the messages ``indexed``."""
    db = sqlite3.connect(root / "index.db")
    db.executescript(_OLD_INDEXES)
    for message_id in indexed:
        db.execute("INSERT INTO textindex (rowid, headers, body) VALUES (?, 'subject: a', 'old')",
                   (message_id,))
        db.execute("INSERT INTO fts (rowid, headers, body) VALUES (?, 'Subject: a', 'old')",
                   (message_id,))
    if version < 4:
        db.execute("DROP INDEX message_unindexed")
        db.execute("ALTER TABLE message DROP COLUMN indexed")
        db.execute("ALTER TABLE message DROP COLUMN prefix")
    else:
        db.execute("UPDATE message SET indexed = ?", (INDEX_PENDING,))
        db.executemany("UPDATE message SET indexed = ? WHERE id = ?",
                       [(INDEX_DONE, i) for i in indexed])
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


@pytest.mark.parametrize("version", [3, 6])
def test_an_old_database_gets_one_index_without_positions_and_its_messages_again(
        tmp_path: Path, version: int) -> None:
    """Migration 7: the word index is dropped, the substring index made anew without
    positions, and every message that was in the old one is queued for it again;
    SEARCH finds them once the indexer has run (and decodes them until then)."""
    root = account_dir(tmp_path, "old")
    core = AccountStore("old", root)
    core.ensure_mailboxes([])
    done, _ = core.deliver("Inbox", b"Subject: a\r\n\r\nold puffin\r\n")
    todo, _ = core.deliver("Inbox", b"Subject: b\r\n\r\nolder puffin\r\n")
    core.close()
    _as_old_schema(root, version, indexed=[done.message_id])
    core = AccountStore("old", root)
    try:
        tables = {r[0]: r[1] for r in core.db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'")}
        assert "fts" not in tables
        assert "detail = none" in tables["textindex"]
        assert core.db.execute("SELECT count(*) FROM textindex").fetchone()[0] == 0
        assert states(core) == {done.message_id: INDEX_PENDING, todo.message_id: INDEX_PENDING}
        assert core.find_unindexed() == 2
        core.index_all_pending()
        assert set(states(core).values()) == {INDEX_DONE}
        indexed, hits = core.text_search("Inbox", "puffin", "body")
        assert indexed == hits == {done.message_id, todo.message_id}
        assert core.read(done.message_id) == b"Subject: a\r\n\r\nold puffin\r\n"
    finally:
        core.close()


async def test_text_is_extracted_in_a_worker_process_and_survives_its_death(
        tmp_path: Path) -> None:
    """The server's pool (kittiwake.cpupool) decodes; the indexer thread writes the rows."""
    import os
    import signal

    from kittiwake import metrics
    from kittiwake.cpupool import CpuPool

    def in_workers() -> float:
        return metrics.REGISTRY.get_sample_value("kittiwake_cpu_jobs_total",
                                                 {"where": "worker"}) or 0.0

    pool = CpuPool(1, preload=["kittiwake.message.searchtext"])
    pool.start()
    store = Store(tmp_path, cpu=pool)
    try:
        account = await store.account("alice")
        first = await account.deliver("Inbox", b"Subject: fulmar\r\n\r\nkittiwake colony\r\n")
        before = in_workers()
        await settled(account)
        assert in_workers() > before
        assert await account.text_search("Inbox", "colony", "body") == (
            {first.message_id}, {first.message_id})
        [worker] = pool.worker_pids()
        os.kill(worker, signal.SIGKILL)
        second = await account.deliver("Inbox", b"Subject: gull\r\n\r\nrazorbill ledge\r\n")
        await settled(account)  # the job meant for the dead worker ran in this process
        assert states(account.core) == {first.message_id: INDEX_DONE,
                                        second.message_id: INDEX_DONE}
        assert await account.text_search("Inbox", "razorbill", "body") == (
            {first.message_id, second.message_id}, {second.message_id})
    finally:
        store.close()
        pool.close()


def test_an_import_leaves_the_index_to_index_pending(tmp_path: Path) -> None:
    """`kittiwake import`: messages committed first (pending), then indexed."""
    from kittiwake.store.importer import import_path, index_pending

    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(b"".join(
        b"From a@example.org Mon Jan  1 00:00:00 2024\n"
        b"Subject: m%d\nFrom: a@example.org\n\nstorm petrel %d\n\n" % (i, i) for i in range(5)))
    core = AccountStore("imp", account_dir(tmp_path, "imp"))
    try:
        result = import_path(core, "Inbox", mbox, workers=1)
        assert result.imported == 5
        assert set(states(core).values()) == {INDEX_PENDING}
        seen: list[tuple[int, int]] = []
        assert index_pending(core, progress=lambda done, total: seen.append((done, total))) == 5
        assert seen[-1] == (5, 5)
        assert set(states(core).values()) == {INDEX_DONE}
        indexed, hits = core.text_search("Inbox", "petrel 3", "body")
        assert len(indexed) == 5 and len(hits) == 1
    finally:
        core.close()


async def test_closing_the_store_while_a_batch_is_extracted_loses_nothing(
        tmp_path: Path) -> None:
    """A stop while the indexer's text extraction runs: its write finds the account
    closed and leaves the rows pending (no error on a closed database); the next
    open indexes them."""
    store = Store(tmp_path)
    account = await store.account("alice")
    for i in range(3):
        await account.deliver("Inbox", b"Subject: s%d\r\n\r\npuffin %d\r\n" % (i, i))
    core = account.core
    jobs = core._take_index_jobs(10)  # the batch on its way (extraction running)
    assert len(jobs) == 3
    store.close()
    assert core._write_index(core._extract_index_text(jobs, INLINE)) == 0
    assert core._take_index_jobs(10) == []
    again = Store(tmp_path)
    try:
        reopened = await again.account("alice")
        await settled(reopened)
        assert set(states(reopened.core).values()) == {INDEX_DONE}
    finally:
        again.close()


async def test_a_message_expunged_while_its_text_is_read_is_not_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Expunged between the indexer taking it and reading its file: nothing to index,
    so no warning that it "cannot be indexed" (a message whose file is missing while its
    row remains still gets one)."""
    from kittiwake.store import account as account_module

    warned: list[int] = []
    real = account_module.logger

    class Recorder:
        def warning(self, msg: str, **fields: object) -> None:
            warned.append(fields.get("message"))  # type: ignore[arg-type]

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    monkeypatch.setattr(account_module, "logger", Recorder())
    store = Store(tmp_path)
    account = await store.account("alice")
    gone = await account.deliver("Inbox", b"Subject: gone\r\n\r\npuffin\r\n")
    kept = await account.deliver("Inbox", b"Subject: kept\r\n\r\nskua\r\n")
    core = account.core
    jobs = core._take_index_jobs(10)
    assert len(jobs) == 2
    core.db.execute("DELETE FROM message WHERE id = ?", (gone.message_id,))
    core.path(gone.message_id).unlink()
    core.path(kept.message_id).unlink()  # lost with its row still there: reported
    core._write_index(core._extract_index_text(jobs, INLINE))
    assert warned == [kept.message_id]
    store.close()


def _index_while_a_delivery_arrives(tmp_path: Path) -> tuple[list[int], int, AccountStore]:
    """20 messages indexed in one call; a delivery starts during the first one's
    insert (the indexer holding the lock). Returns the trace positions of the
    substring-index inserts, that of the late delivery's row, and the store."""
    import threading
    import time

    core = AccountStore("alice", tmp_path)
    core.ensure_mailboxes(["Inbox"])
    for n in range(20):
        core.deliver("Inbox", b"Subject: queued %d\r\n\r\nfulmar kittiwake shag\r\n" % n)
    trace: list[str] = []
    arrived = threading.Event()
    delivery = threading.Thread(
        target=lambda: core.deliver("Inbox", b"Subject: late\r\n\r\npetrel\r\n"))
    insert = "INSERT OR REPLACE INTO textindex"

    def traced(sql: str) -> None:
        trace.append(sql)
        if sql.startswith(insert) and not arrived.is_set():
            arrived.set()  # the indexer holds the lock, inside its transaction
            delivery.start()
            for _ in range(1000):  # until the delivery waits for the lock
                if core.lock.wanted:
                    break
                time.sleep(0.005)
            assert core.lock.wanted

    core.db.set_trace_callback(traced)
    core.index_pending(runner=INLINE)
    delivery.join()
    core.db.set_trace_callback(None)
    inserts = [i for i, sql in enumerate(trace) if sql.startswith(insert)]
    # The late delivery's row: the only one written while the trace was on.
    late_row = next(i for i, sql in enumerate(trace) if sql.startswith("INSERT INTO message"))
    assert len(inserts) == 20
    assert set(states(core).values()) == {INDEX_DONE, INDEX_PENDING}  # the late one: pending
    assert sum(1 for v in states(core).values() if v == INDEX_DONE) == 20
    return inserts, late_row, core


def test_a_delivery_waits_for_a_slice_of_indexing_not_a_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The indexer ends its transaction when a commit waits for the account's lock
    (:class:`kittiwake.store.accountlock.AccountLock`) and the transaction has run
    for INDEX_SLICE: with a slice shorter than one message's insert, the delivery
    that arrives during the first message's insert is committed before the second's."""
    monkeypatch.setattr("kittiwake.store.account.INDEX_SLICE", 0.0)
    inserts, late_row, core = _index_while_a_delivery_arrives(tmp_path)
    assert inserts[0] < late_row < inserts[1]
    core.close()


def test_the_indexer_goes_on_for_its_slice_when_a_delivery_waits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within INDEX_SLICE the transaction goes on (each ends a segment of the search
    index): with a slice longer than the whole batch, the waiting delivery is
    committed after all 20 messages' inserts."""
    monkeypatch.setattr("kittiwake.store.account.INDEX_SLICE", 600.0)
    inserts, late_row, core = _index_while_a_delivery_arrives(tmp_path)
    assert late_row > inserts[-1]
    core.close()
