"""Spool hand-over: a spooled body moves into place (rename or hard link), the
headers added at delivery are a prefix kept in the row, and every reader sees
prefix + file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kittiwake import durable
from kittiwake.store import SpoolFile, Store, StoreError
from kittiwake.store.check import check
from kittiwake.store.exporter import export

BODY = (b"From: carol@example.net\r\nTo: alice@example.org\r\nSubject: cliffs\r\n"
        b"Message-ID: <s1@example.net>\r\n\r\nKittiwakes nest on cliffs.\r\n")
PREFIX = (b"Received: from mx.example.net by mail.example.org; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
          b"Authentication-Results: mail.example.org; spf=pass smtp.mailfrom=fulmarcheck\r\n")


async def test_spool_file_is_renamed_into_place_with_its_prefix(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    spool = store.spool()  # in the data directory's tmp/: renamed into the account
    spool.write(BODY[:20])
    spool.write(BODY[20:])
    inode = os.stat(spool.path).st_ino
    delivered = await account.deliver_spool("Inbox", spool, PREFIX)
    assert not spool.path.exists()
    assert delivered.size == len(PREFIX) + len(BODY)
    path = account.core.path(delivered.message_id)
    assert os.stat(path).st_ino == inode  # the same file: renamed, not copied
    assert path.read_bytes() == BODY  # the prefix is in the row, not the file
    assert await account.read(delivered.message_id) == PREFIX + BODY
    [row] = await account.messages("Inbox")
    assert row.size == len(PREFIX) + len(BODY)
    assert row.subject == "cliffs"
    assert (await account.mailbox("Inbox")).size == row.size
    # The prefix is part of the message for search as well (IMAP SEARCH HEADER).
    assert [m.uid for m in await account.search("kittiwakes")] == [row.uid]
    indexed, hits = await account.text_search("Inbox", "fulmarcheck", "headers")
    assert indexed == hits == {delivered.message_id}
    assert check(account.core) == []
    store.close()


async def test_an_account_spool_is_made_at_its_final_name_when_taken(tmp_path: Path) -> None:
    """An account's spool is written where the message stays; a small one's file is
    created only when the store takes it (in its delivery thread, not on the loop),
    a large one's when its buffer first fills."""
    store = Store(tmp_path)
    account = await store.account("alice")
    await account.deliver("Inbox", BODY)  # (a block of ids reserved: spools get one)
    # Without files made ahead (store.readyfiles, tested there): a spool that gets one
    # has its (empty) file on disk already, and whether the first batch is made by now
    # is a race.
    account.core.ready.close()
    spool = account.spool()
    spool.write(BODY)
    assert spool.path.parent.parent == account.core.root / "msg"
    assert not spool.path.exists()  # nothing on disk yet
    delivered = await account.deliver_spool("Inbox", spool, PREFIX)
    assert account.core.path(delivered.message_id) == spool.path  # no rename, no copy
    assert spool.path.read_bytes() == BODY
    big = account.spool()
    big.write(b"Subject: big\r\n\r\n" + b"x" * SpoolFile.BUFFER)
    assert big.path.exists()  # the buffer filled: the file is there
    delivered = await account.deliver_spool("Inbox", big)
    assert account.core.path(delivered.message_id) == big.path
    never = account.spool()
    never.write(BODY)
    never.discard()  # never created: nothing to remove, nothing left
    assert not never.path.exists()
    assert check(account.core) == []
    store.close()


async def test_a_kept_spool_is_hard_linked_into_several_accounts(tmp_path: Path) -> None:
    """The SMTP server's spool (data dir tmp/) serves several recipients' accounts."""
    store = Store(tmp_path)
    spool = store.spool()
    spool.write(BODY)
    path, _size = spool.finish()
    delivered = {}
    for name in ("alice", "bob"):
        account = await store.account(name)
        delivered[name] = await account.deliver_spool("Inbox", path, PREFIX + b"X-For: %s\r\n"
                                                      % name.encode(), keep=True)
    assert os.stat(path).st_nlink == 3  # the spool and one link per account
    os.unlink(path)  # the owner removes its spool after the last recipient
    for name, d in delivered.items():
        account = await store.account(name)
        assert await account.read(d.message_id) == \
            PREFIX + b"X-For: %s\r\n" % name.encode() + BODY
        assert check(account.core) == []
    store.close()


async def test_a_missing_spool_fails_and_commits_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    with pytest.raises(FileNotFoundError):
        await account.deliver_spool("Inbox", tmp_path / "tmp" / "gone", PREFIX)
    assert (await account.mailbox("Inbox")).messages == 0
    spool = account.spool()
    spool.write(BODY)
    with pytest.raises(StoreError):
        await account.deliver_spool("Nowhere", spool, PREFIX)
    assert not spool.path.exists()  # the store owned it: removed on failure too
    assert list((account.core.root / "tmp").glob("*")) == []
    store.close()


async def test_deliver_with_a_prefix_and_export_show_the_whole_message(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    delivered = await account.deliver("Inbox", BODY, prefix=PREFIX)
    assert durable.message_path(account.core.root, delivered.message_id).read_bytes() == BODY
    assert await account.read(delivered.message_id) == PREFIX + BODY
    export(account.core, "mbox", tmp_path / "out")
    exported = (tmp_path / "out" / "Inbox.mbox").read_bytes()
    assert PREFIX.replace(b"\r\n", b"\n") + BODY.replace(b"\r\n", b"\n") in exported
    store.close()


async def test_the_data_dir_spool_is_cleaned_when_the_store_opens_alone(tmp_path: Path) -> None:
    first = Store(tmp_path)
    leftover = first.spool()
    leftover.write(b"never acknowledged")
    leftover.finish()
    second = Store(tmp_path)  # another process has the data dir open: hands off
    assert leftover.path.exists()
    second.close()
    first.close()
    Store(tmp_path).close()
    assert not leftover.path.exists()
