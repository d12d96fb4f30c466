"""Early commits: a one-message delivery's COMMIT runs while its file is fsynced.

The caller is answered, and other sessions told (the change hub), only once
both are done; a failed fsync takes the committed rows back; the markers the
transaction leaves let the next open remove rows whose file did not become
durable (``AccountStore._recover_unsynced``, with the SIGKILL test in
test_store_crash.py). Deliveries of several messages and replacements are
synced before their COMMIT.
"""

from __future__ import annotations

import asyncio
import errno
import threading
from pathlib import Path

import pytest

from kittiwake import durable
from kittiwake.store import AccountStore, Appended, Store, StoreError
from kittiwake.store.account import Delivery, unsynced_rows
from kittiwake.store.check import check

MSG = b"From: a@example.org\r\nSubject: early %d\r\nMessage-ID: <e%d@example.org>\r\n\r\nbody\r\n"


def msg(n: int) -> bytes:
    return MSG % (n, n)


def rows(core: AccountStore) -> int:
    with core.lock:
        return int(core.db.execute("SELECT COUNT(*) FROM message").fetchone()[0])


def markers(core: AccountStore) -> list[int]:
    """The message ids the database lists as committed early, not known durable."""
    with core.lock:
        return sorted(i for ids in unsynced_rows(core.db)[1].values() for i in ids)


def marker_rows(core: AccountStore) -> int:
    with core.lock:
        return len(unsynced_rows(core.db)[0])


class HeldSync:
    """Holds every caller's fsyncs (``sync_staged``) until released."""

    def __init__(self, core: AccountStore, fail: bool = False) -> None:
        self.real = core.sync_staged
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = fail
        core.sync_staged = self  # type: ignore[method-assign]

    def __call__(self, delivery: Delivery) -> None:
        self.entered.set()
        self.release.wait(10)
        if self.fail:
            raise OSError(errno.EIO, "Input/output error")
        self.real(delivery)


async def _until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_answer_and_the_change_wait_for_the_fsync(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    await account.deliver("Inbox", msg(0))
    held = HeldSync(account.core)
    with store.changes.subscribe("alice") as sub:
        task = asyncio.create_task(account.deliver("Inbox", msg(1)))
        await asyncio.to_thread(held.entered.wait, 10)
        # Committed (the row is there, with its marker) while the fsync is held...
        await _until(lambda: rows(account.core) == 2, "the early COMMIT")
        assert (await account.mailbox("Inbox")).messages == 2
        assert (await account.messages("Inbox"))[-1].id in markers(account.core)
        await asyncio.sleep(0.05)
        # ...but nobody has been told.
        assert not task.done()
        assert sub.pending() == []
        held.release.set()
        delivered = await task
        assert [(c.kind, c.uids) for c in sub.pending()] == [("added", (delivered.uid,))]
    last = await account.deliver("Inbox", msg(2))  # its transaction clears the durable one's marker
    assert markers(account.core) == [last.message_id]
    assert marker_rows(account.core) == 1
    store.close()
    core = AccountStore("alice", account.core.root)  # closing cleared the rest
    try:
        assert markers(core) == []
        assert marker_rows(core) == 0
    finally:
        core.close()


async def test_a_failed_fsync_takes_the_commit_back(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    await account.deliver("Inbox", msg(0))
    before = await account.mailbox("Inbox")
    held = HeldSync(account.core, fail=True)
    with store.changes.subscribe("alice") as sub:
        task = asyncio.create_task(account.deliver("Inbox", msg(1)))
        await _until(lambda: rows(account.core) == 2, "the early COMMIT")
        held.release.set()
        with pytest.raises(StoreError, match="not durable"):
            await task
        assert sub.pending() == []  # never announced
    after = await account.mailbox("Inbox")
    assert (after.messages, after.size) == (before.messages, before.size)
    assert after.uidnext == before.uidnext + 1  # the UID a session may have seen: not reused
    assert await account.vanished("Inbox", before.highestmodseq) == [before.uidnext]
    assert markers(account.core) == []
    assert check(account.core) == []
    account.core.sync_staged = held.real  # type: ignore[method-assign]
    again = await account.deliver("Inbox", msg(2))
    assert again.uid == before.uidnext + 1
    store.close()


async def test_several_messages_are_durable_before_their_commit(tmp_path: Path) -> None:
    """MULTIAPPEND is all or nothing (RFC 3502 §3): not committed early."""
    store = Store(tmp_path)
    account = await store.account("alice")
    seen: list[tuple[bool, int]] = []
    real = account.core.commit_placed

    def commit(group: list[Delivery]) -> None:
        seen.extend((d.early, len(markers(account.core))) for d in group)
        real(group)

    account.core.commit_placed = commit  # type: ignore[method-assign]
    items = []
    for n in (1, 2):
        spool = account.spool()
        spool.write(msg(n))
        path, _ = spool.finish(sync=False)
        items.append(Appended(path))
    delivered = await account.append("Inbox", items)
    assert [d.uid for d in delivered] == [1, 2]
    assert seen == [(False, 0)]
    assert markers(account.core) == []
    store.close()


def _early_commit(core: AccountStore, datas: list[bytes]) -> Delivery:
    """Stage and commit one delivery early, its fsyncs never confirmed (a crash)."""
    news = [core.prepare(data) for data in datas]
    delivery = Delivery("Inbox", news)
    core.stage(delivery)
    delivery.early = True
    core.commit_placed([delivery])
    assert delivery.error is None
    return delivery


def test_open_after_a_crash_keeps_durable_files_and_drops_lost_ones(tmp_path: Path) -> None:
    root = tmp_path / "alice"
    core = AccountStore("alice", root)
    core.create_mailbox("Inbox")
    kept = _early_commit(core, [msg(1)])
    lost = _early_commit(core, [msg(2)])
    lost_multi = _early_commit(core, [msg(3), msg(4)])  # one file of two lost: both go
    highest = core.mailbox("Inbox").highestmodseq
    core.close()
    # The power loss: these files' data did not reach the disk.
    durable.message_path(root, lost.ids[0]).write_bytes(b"")
    durable.message_path(root, lost_multi.ids[1]).unlink()
    core = AccountStore("alice", root)
    try:
        assert [m.id for m in core.messages("Inbox")] == kept.ids
        assert core.read(kept.ids[0]) == msg(1)
        inbox = core.mailbox("Inbox")
        assert (inbox.messages, inbox.uidnext) == (1, 5)
        assert core.vanished("Inbox", highest) == [2, 3, 4]
        assert markers(core) == []
        assert check(core) == []
    finally:
        core.close()


def test_an_older_stores_per_message_markers_are_recovered_at_open(tmp_path: Path) -> None:
    """Stores before this version left one ``unsynced:<id>`` row per message (value:
    the delivery's first id); a store they left after a crash still recovers."""
    root = tmp_path / "alice"
    core = AccountStore("alice", root)
    core.create_mailbox("Inbox")
    kept = _early_commit(core, [msg(1)])
    lost = _early_commit(core, [msg(2), msg(3)])
    with core.lock:  # as the older version wrote them, instead of this one's row
        core.db.execute("BEGIN IMMEDIATE")
        core.db.execute("DELETE FROM meta WHERE key LIKE 'unsynced%'")
        core.db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                            [(f"unsynced:{i}", d.ids[0]) for d in (kept, lost) for i in d.ids])
        core.db.execute("COMMIT")
    core._unsynced = {}  # so that closing leaves the old rows as they are
    core.close()
    durable.message_path(root, lost.ids[0]).unlink()
    core = AccountStore("alice", root)
    try:
        assert [m.id for m in core.messages("Inbox")] == kept.ids
        assert core.read(kept.ids[0]) == msg(1)
        assert (core.mailbox("Inbox").messages, core.mailbox("Inbox").uidnext) == (1, 4)
        assert markers(core) == [] and marker_rows(core) == 0
        assert check(core) == []
    finally:
        core.close()


async def test_a_group_of_early_deliveries_writes_one_row_once(tmp_path: Path) -> None:
    """However many early deliveries a group holds, its transaction writes the
    store's list once (one statement), and the list is one row."""
    store = Store(tmp_path)
    account = await store.account("alice")
    await account.deliver("Inbox", msg(0))
    statements: list[str] = []
    account.core.db.set_trace_callback(statements.append)
    held = HeldSync(account.core)
    tasks = [asyncio.create_task(account.deliver("Inbox", msg(n))) for n in range(1, 9)]
    await _until(lambda: rows(account.core) == 9, "the early COMMITs")
    assert marker_rows(account.core) == 1
    assert len(markers(account.core)) == 8
    held.release.set()
    await asyncio.gather(*tasks)
    await account.deliver("Inbox", msg(9))  # drops the eight, lists itself
    account.core.db.set_trace_callback(None)
    commits = statements.count("COMMIT")
    writes = [s for s in statements if "unsynced" in s and not s.startswith("SELECT")]
    assert 0 < len(writes) <= commits, writes  # at most one per transaction
    assert not [s for s in statements if "unsynced:" in s]
    assert markers(account.core) == [(await account.messages("Inbox"))[-1].id]
    store.close()


def test_stores_sharing_an_account_keep_a_row_each(tmp_path: Path) -> None:
    """Two stores with one account open (two processes, say) list their early
    deliveries in rows of their own: neither's commit drops the other's."""
    root = tmp_path / "alice"
    first = AccountStore("alice", root)
    first.create_mailbox("Inbox")
    second = AccountStore("alice", root)  # not alone: no recovery, a row of its own
    lost_first = _early_commit(first, [msg(1)])
    lost_second = _early_commit(second, [msg(2)])
    third = _early_commit(first, [msg(3)])
    assert marker_rows(first) == 2
    assert markers(first) == sorted([*lost_first.ids, *lost_second.ids, *third.ids])
    second.close()
    first.close()
    for delivery in (lost_first, lost_second):
        durable.message_path(root, delivery.ids[0]).write_bytes(b"")
    core = AccountStore("alice", root)
    try:
        assert [m.subject for m in core.messages("Inbox")] == ["early 3"]
        assert markers(core) == [] and check(core) == []
    finally:
        core.close()
