"""IMAP APPEND's store path: spooled files, one transaction, durable when it returns."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kittiwake.store import Appended, Store
from kittiwake.store.model import Flags, OverQuota

MSG = b"From: a@example.org\r\nSubject: appended\r\n\r\nbody line\r\n"


async def _spooled(account, data: bytes, pieces: int = 3) -> Path:
    spool = account.spool()
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        spool.write(data[i:i + step])
    path, size = await asyncio.to_thread(spool.finish)
    assert size == len(data)
    return path


async def test_append_stores_spooled_file_and_announces(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice", default_mailboxes=["Inbox", "Drafts"])
    with store.changes.subscribe("alice") as sub:
        path = await _spooled(account, MSG)
        [d] = await account.append("Drafts", [Appended(path, Flags.parse(["\\Draft"]),
                                                        received=1_700_000_000_000)])
        assert not path.exists()  # taken by rename, not copied
        change = sub.pending()[0]
    assert (change.kind, change.mailbox, change.uids) == ("added", "Drafts", (d.uid,))
    [m] = await account.messages("Drafts")
    assert (m.uid, m.received, m.flags.names(), m.subject) == \
        (d.uid, 1_700_000_000_000, ["\\Draft"], "appended")
    assert await account.read(m.id) == MSG
    store.close()


async def test_multiappend_is_all_or_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("bob", quota_bytes=len(MSG) + 10, default_mailboxes=["Inbox"])
    paths = [await _spooled(account, MSG), await _spooled(account, MSG)]
    with pytest.raises(OverQuota):
        await account.append("Inbox", [Appended(p) for p in paths])
    assert await account.messages("Inbox") == []
    assert not any(p.exists() for p in paths)
    store.close()


async def test_discarded_spool_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("carol", default_mailboxes=["Inbox"])
    spool = account.spool()
    spool.write(b"partial")
    spool.discard()
    assert not spool.path.exists()
    store.close()


async def test_message_ids_are_never_reused_after_expunge(tmp_path: Path) -> None:
    """Ids are files' names and IMAP EMAILIDs (RFC 8474 §5.1): an expunged one stays gone."""
    store = Store(tmp_path)
    account = await store.account("dave", default_mailboxes=["Inbox", "Archive"])
    first = await account.deliver("Inbox", MSG)
    await account.store_flags("Inbox", [first.uid], "add", Flags.parse(["\\Deleted"]))
    await account.expunge("Inbox")
    second = await account.deliver("Inbox", MSG)
    assert second.message_id > first.message_id
    await account.copy("Inbox", [second.uid], "Archive")
    [copied] = await account.messages("Archive")
    assert copied.id > second.message_id
    store.close()


def test_an_old_account_database_gains_the_metadata_table(tmp_path: Path) -> None:
    """Schema 1 (before METADATA and the text index) is migrated when opened."""
    import sqlite3

    from kittiwake.store.account import AccountStore

    root = tmp_path / "old"
    AccountStore("old", root).close()
    db = sqlite3.connect(root / "index.db")
    db.execute("DROP TABLE metadata")
    db.execute("DROP TABLE textindex")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = AccountStore("old", root)
    store.set_metadata(None, [("/private/comment", b"kept")])
    assert store.get_metadata(None, ["/private/comment"]) == [("/private/comment", b"kept")]
    store.close()


async def test_delivered_mail_reaches_the_substring_index_after_the_ack(tmp_path: Path) -> None:
    """The 250/OK does not wait for the search index; it follows in the background."""
    from kittiwake.message.searchtext import fold

    store = Store(tmp_path)
    account = await store.account("erin", default_mailboxes=["Inbox"])
    delivered = await account.deliver("Inbox", b"Subject: Kittiwake\r\n\r\nCliff colony\r\n")
    for _ in range(1000):  # the indexer waits store.INDEX_DELAY, then works
        if not account.core.to_index and account._indexer is None:
            break
        await asyncio.sleep(0.01)
    indexed, hits = await account.text_search("Inbox", fold("COLONY"), "body")
    assert indexed == hits == {delivered.message_id}
    store.close()


async def test_mail_stored_before_the_index_is_indexed_when_the_account_opens(
        tmp_path: Path) -> None:
    from kittiwake.store.account import AccountStore
    from kittiwake.store.store import account_dir

    core = AccountStore("fay", account_dir(tmp_path, "fay"))
    core.ensure_mailboxes([])
    old = core.deliver("Inbox", b"Subject: old\r\n\r\nancient albatross\r\n")[0]
    core.to_index.clear()  # as if stored by a version without the index
    core.close()
    store = Store(tmp_path)
    account = await store.account("fay")
    assert account.core.to_index == [old.message_id]
    for _ in range(1000):
        if not account.core.to_index and account._indexer is None:
            break
        await asyncio.sleep(0.01)
    indexed, hits = await account.text_search("Inbox", "albatross", "body")
    assert indexed == hits == {old.message_id}
    store.close()


def _open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


async def test_append_takes_unfinished_spools(tmp_path: Path) -> None:
    """Spools handed over unfinished: flushed, summarized from the octets they hold
    (or, for a header section longer than their head, from the file) and synced in
    the store's thread; their descriptors closed on success and on failure."""
    from kittiwake.store.spool import SpoolFile

    store = Store(tmp_path)
    account = await store.account("dave", quota_bytes=200_000, default_mailboxes=["Inbox"])
    long_head = b"Subject: long\r\n" + b"X-Pad: " + b"p" * (SpoolFile.HEAD + 10) + \
        b"\r\n\r\nbody\r\n"
    account.core.ready.wait()  # (a batch of files made ahead: descriptors open meanwhile)
    before = _open_fds()
    spools = []
    for data in (MSG, long_head):
        spool = account.spool()
        spool.write(data)
        spools.append(spool)
    delivered = await account.append("Inbox", [Appended(s.path, spool=s) for s in spools])
    assert all(s.finished for s in spools)
    account.core.ready.wait()
    assert _open_fds() == before
    got = await account.messages("Inbox")
    assert [m.subject for m in got] == ["appended", "long"]
    assert [d.uid for d in delivered] == [m.uid for m in got]
    assert [await account.read(m.id) for m in got] == [MSG, long_head]
    big = account.spool()
    big.write(b"Subject: big\r\n\r\n" + b"x" * 300_000)
    with pytest.raises(OverQuota):
        await account.append("Inbox", [Appended(big.path, spool=big)])
    assert not big.path.exists()
    assert _open_fds() == before
    store.close()


def test_lazy_spool_file_is_made_when_taken(tmp_path: Path) -> None:
    """A lazy spool (Account.spool) creates its file with its first octets written:
    for a small message when it is taken, its shard directory made if need be; a name
    that cannot be made sends it to tmp/."""
    import os

    from kittiwake.store.spool import SpoolFile

    (tmp_path / "msg").mkdir()
    at = tmp_path / "msg" / "7"
    spool = SpoolFile(tmp_path, at, lazy=True)
    spool.write(MSG)
    assert not at.exists() and not spool.finished
    fd = spool.take()
    os.close(fd)
    assert spool.finished and spool.path == at and at.read_bytes() == MSG

    # The shard's first message: its directory is made then.
    first = SpoolFile(tmp_path, tmp_path / "msg" / "shard" / "8", lazy=True)
    first.write(MSG)
    path, size = first.finish(sync=False)
    assert path == tmp_path / "msg" / "shard" / "8" and path.read_bytes() == MSG
    assert size == len(MSG)
    path.unlink()
    (tmp_path / "msg" / "shard").rmdir()
    # A name that cannot be made (its parent is a file): the spool goes to tmp/.
    (tmp_path / "blocked").write_bytes(b"")
    gone = SpoolFile(tmp_path, tmp_path / "blocked" / "8", lazy=True)
    gone.write(MSG)
    path, size = gone.finish(sync=False)
    assert path.parent == tmp_path / "tmp" and path.read_bytes() == MSG and size == len(MSG)

    big = SpoolFile(tmp_path, tmp_path / "msg" / "9", lazy=True)
    big.write(b"x" * SpoolFile.BUFFER)  # a full buffer is written out: the file is made
    assert big.path.exists()
    big.discard()
    never = SpoolFile(tmp_path, tmp_path / "msg" / "10", lazy=True)
    never.write(MSG)
    never.discard()
    assert sorted(p.name for p in (tmp_path / "msg").iterdir()) == ["7"]
