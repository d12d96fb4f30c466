"""Store behaviour as IMAP and delivery see it: UIDs, counts, modseq, flags, moves."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kittiwake.store import (
    Flags,
    MailboxExists,
    MailboxNotFound,
    OverQuota,
    Store,
    StoreError,
)
from kittiwake.store.check import check

MSG = b"From: a@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nHello\r\n"


def msg(subject: str = "hi", mid: str = "1") -> bytes:
    return MSG % (subject.encode(), mid.encode())


@pytest.fixture
async def account(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = Store(tmp_path)
    acc = await store.account("alice", default_mailboxes=["Sent", "Drafts", "Trash", "Archive",
                                                          "Junk"])
    yield acc
    store.close()


async def test_default_mailboxes_have_special_use(account) -> None:  # type: ignore[no-untyped-def]
    boxes = {m.name: m for m in await account.mailboxes()}
    assert set(boxes) == {"Inbox", "Sent", "Drafts", "Trash", "Archive", "Junk"}
    assert boxes["Sent"].special_use == "\\Sent" and boxes["Junk"].special_use == "\\Junk"
    assert len({m.uidvalidity for m in boxes.values()}) == 6


async def test_delivery_assigns_uids_and_counts(account, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = await account.deliver("INBOX", msg("one", "1"))
    second = await account.deliver("Inbox", msg("two", "2"), flags=Flags.parse(["\\Seen"]))
    assert (first.uid, second.uid) == (1, 2)
    assert (tmp_path / "accounts/alice/msg/0/1").read_bytes() == msg("one", "1")
    inbox = await account.mailbox("Inbox")
    assert (inbox.messages, inbox.unseen, inbox.uidnext) == (2, 1, 3)
    assert inbox.size == len(msg("one", "1")) + len(msg("two", "2"))
    assert await account.read(second.message_id) == msg("two", "2")


async def test_every_change_bumps_modseq(account) -> None:  # type: ignore[no-untyped-def]
    d = await account.deliver("Inbox", msg())
    m0 = (await account.messages("Inbox"))[0]
    changed, failed = await account.store_flags("Inbox", [d.uid], "add", Flags.parse(["\\Flagged"]))
    assert failed == [] and changed[0].modseq > m0.modseq
    assert (await account.mailbox("Inbox")).highestmodseq == changed[0].modseq
    # Setting a flag that is already set changes nothing and uses no modseq.
    same, _ = await account.store_flags("Inbox", [d.uid], "add", Flags.parse(["\\Flagged"]))
    assert same == []
    assert await account.messages("Inbox", changed_since=changed[0].modseq) == []


async def test_unchangedsince_reports_modified(account) -> None:  # type: ignore[no-untyped-def]
    d = await account.deliver("Inbox", msg())
    before = (await account.messages("Inbox"))[0].modseq
    await account.store_flags("Inbox", [d.uid], "add", Flags.parse(["$Important"]))
    changed, failed = await account.store_flags("Inbox", [d.uid], "add",
                                                Flags.parse(["\\Seen"]), unchanged_since=before)
    assert changed == [] and failed == [d.uid]


async def test_update_flags_gives_every_message_and_keeps_counts(account) -> None:  # type: ignore[no-untyped-def]
    """A STORE on a set: the messages it left alone come back with their old flags
    and modseq, the changed ones with the new modseq; unseen/deleted stay right."""
    for i in range(6):
        await account.deliver("Inbox", msg(str(i), str(i)),
                              flags=Flags.parse(["\\Seen"] if i % 2 else []))
    old = {m.uid: m for m in await account.messages("Inbox")}
    stored = await account.update_flags("Inbox", [1, 2, 3, 4, 9], "add",
                                        Flags.parse(["\\Seen", "\\Deleted"]))
    assert [m.uid for m in stored.messages] == [1, 2, 3, 4] and stored.failed == []
    assert [m.uid for m in stored.changed] == [1, 2, 3, 4]  # \Deleted is new to all
    modseq = stored.changed[0].modseq
    assert all(m.modseq == modseq and m.flags.names() == ["\\Seen", "\\Deleted"]
               for m in stored.changed)
    again = await account.update_flags("Inbox", [2, 4, 5], "remove",
                                       Flags.parse(["\\Deleted", "$Nothing"]),
                                       unchanged_since=modseq)
    assert [m.uid for m in again.changed] == [2, 4] and again.failed == []
    assert [(m.uid, m.modseq) for m in again.messages if m.uid == 5] == [(5, old[5].modseq)]
    stale = await account.update_flags("Inbox", [1, 2], "replace", Flags.parse(["$A"]),
                                       unchanged_since=modseq)
    assert stale.failed == [2] and [m.uid for m in stale.messages] == [1]
    rows = await account.messages("Inbox")
    inbox = await account.mailbox("Inbox")
    assert inbox.unseen == sum(1 for m in rows if "\\Seen" not in m.flags.names()) == 2
    assert inbox.deleted == sum(1 for m in rows if "\\Deleted" in m.flags.names()) == 1
    assert inbox.highestmodseq == max(m.modseq for m in rows)


async def test_keywords_case_insensitive(account) -> None:  # type: ignore[no-untyped-def]
    d = await account.deliver("Inbox", msg(), flags=Flags.parse(["$Junk"]))
    changed, _ = await account.store_flags("Inbox", [d.uid], "remove", Flags.parse(["$junk"]))
    assert changed[0].flags.keywords == ()


async def test_expunge_leaves_tombstones_and_removes_files(account, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = await account.deliver("Inbox", msg("a", "a"))
    b = await account.deliver("Inbox", msg("b", "b"))
    await account.store_flags("Inbox", [a.uid, b.uid], "add", Flags.parse(["\\Deleted"]))
    assert (await account.mailbox("Inbox")).deleted == 2
    modseq = (await account.mailbox("Inbox")).highestmodseq
    assert await account.expunge("Inbox", uids=[a.uid]) == [a.uid]   # UID EXPUNGE
    assert await account.vanished("Inbox", modseq) == [a.uid]
    assert not (tmp_path / f"accounts/alice/msg/0/{a.message_id}").exists()
    inbox = await account.mailbox("Inbox")
    assert (inbox.messages, inbox.deleted, inbox.unseen) == (1, 1, 1)


async def test_copy_and_move(account) -> None:  # type: ignore[no-untyped-def]
    d = await account.deliver("Inbox", msg(), flags=Flags.parse(["\\Seen", "$Label1"]))
    pairs = await account.copy("Inbox", [d.uid], "Archive")
    assert pairs == [(1, 1)]
    [copied] = await account.messages("Archive")
    assert copied.flags.names() == ["\\Seen", "$Label1"]
    assert await account.read(copied.id) == msg()
    moved = await account.move("Inbox", [d.uid], "Trash")
    assert moved == [(1, 1)]
    assert await account.messages("Inbox") == []
    inbox, trash = await account.mailbox("Inbox"), await account.mailbox("Trash")
    assert (inbox.messages, inbox.size, trash.messages) == (0, 0, 1)
    assert await account.vanished("Inbox", 0) == [1]
    assert (await account.search("Hello", "Trash"))[0].uid == 1


async def test_rename_with_children_and_delete(account) -> None:  # type: ignore[no-untyped-def]
    await account.create_mailbox("Projects/2026/Q4")
    names = {m.name for m in await account.mailboxes()}
    assert {"Projects", "Projects/2026", "Projects/2026/Q4"} <= names
    await account.rename_mailbox("Projects", "Work/Projects")
    names = {m.name for m in await account.mailboxes()}
    assert {"Work", "Work/Projects", "Work/Projects/2026", "Work/Projects/2026/Q4"} <= names
    assert not any(n.startswith("Projects") for n in names)
    with pytest.raises(StoreError, match="child mailboxes"):
        await account.delete_mailbox("Work/Projects")
    await account.delete_mailbox("Work/Projects/2026/Q4")
    with pytest.raises(MailboxExists):
        await account.create_mailbox("Work")
    with pytest.raises(MailboxNotFound, match=r"known: .*Inbox"):
        await account.mailbox("Inobx")


async def test_rename_inbox_moves_messages(account) -> None:  # type: ignore[no-untyped-def]
    await account.deliver("Inbox", msg())
    await account.rename_mailbox("Inbox", "Old mail")
    assert (await account.mailbox("Inbox")).messages == 0
    assert (await account.mailbox("Old mail")).messages == 1


async def test_quota(tmp_path: Path) -> None:
    store = Store(tmp_path)
    acc = await store.account("bob", quota_bytes=100)
    await acc.deliver("Inbox", b"x" * 60)
    with pytest.raises(OverQuota, match="over its quota"):
        await acc.deliver("Inbox", b"y" * 60)
    assert (await acc.mailbox("Inbox")).messages == 1
    assert list((tmp_path / "accounts/bob/tmp").glob("*")) == []
    assert check(acc.core) == []  # the refused message left no file
    store.close()


async def test_threading_and_search(account) -> None:  # type: ignore[no-untyped-def]
    root = await account.deliver("Inbox", msg("Quarterly numbers", "root"))
    reply = await account.deliver(
        "Inbox", b"Subject: Re: Quarterly numbers\r\nIn-Reply-To: <root@example.org>\r\n\r\nok\r\n")
    msgs = {m.uid: m for m in await account.messages("Inbox")}
    assert msgs[reply.uid].thread_id == msgs[root.uid].thread_id
    assert {m.uid for m in await account.search("quarterly")} == {root.uid, reply.uid}
    assert await account.search("nonexistentword") == []


async def test_search_finds_every_word_as_a_substring_of_the_decoded_text(
        account) -> None:  # type: ignore[no-untyped-def]
    """Account.search over the substring index (no positions: the trigrams narrow,
    the stored text decides): each word of the query must occur, in headers or text,
    whatever its case or encoding; trigrams in the wrong order do not match."""
    encoded = await account.deliver(
        "Inbox", b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_Kiel?=\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\n"
                 + base64.b64encode(b"The FULMAR colony counted 1,204 birds.") + b"\r\n")
    scrambled = await account.deliver(
        "Inbox", b"Subject: scrambled\r\n\r\nulmar fulm\r\n")  # every trigram of fulmar
    quoted = await account.deliver("Inbox", b'Subject: a "quoted" word\r\n\r\nx\r\n')
    long = ("a sentence long enough to have more trigrams than one query asks the index"
            " for, " * 3)
    longer = await account.deliver("Inbox", f"Subject: long\r\n\r\n{long}\r\n".encode())
    await account.deliver(  # all but one of the long query's words
        "Inbox", f"Subject: near\r\n\r\n{long.replace('index for', 'index far')}\r\n"
        .encode())

    async def found(query: str) -> set[int]:
        return {m.uid for m in await account.search(query)}

    assert await found("fulmar") == {encoded.uid}
    assert await found("FULMAR colony") == {encoded.uid}
    assert await found("colony fulmar") == {encoded.uid}  # words in any order
    assert await found("fulmar scrambled") == set()  # every word must occur
    assert await found("GRÜSSE") == {encoded.uid}  # the decoded, folded subject
    assert await found("ul") == {encoded.uid, scrambled.uid}  # shorter than a trigram
    assert await found('"quoted"') == {quoted.uid}
    assert await found(long.strip()) == {longer.uid}  # more trigrams than asked for
    assert await found("index for,") == {longer.uid}


async def test_change_broadcast(account, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store_changes = account.hub
    with store_changes.subscribe("alice") as sub:
        d = await account.deliver("Inbox", msg())
        await account.store_flags("Inbox", [d.uid], "add", Flags.parse(["\\Seen"]))
        kinds = [(c.kind, c.mailbox, c.uids) for c in sub.pending()]
    assert kinds == [("added", "Inbox", (1,)), ("flags", "Inbox", (1,))]


async def test_unparseable_message_is_stored_byte_exact(account) -> None:  # type: ignore[no-untyped-def]
    junk = bytes(range(256)) * 10
    d = await account.deliver("Inbox", junk)
    assert await account.read(d.message_id) == junk


def test_second_opener_leaves_in_flight_files_alone(tmp_path: Path) -> None:
    """Opening an account that is already open (CLI while the server runs) must not
    clean up a delivery in progress; opening it alone cleans leftovers."""
    from kittiwake import durable as files
    from kittiwake.store import AccountStore

    root = tmp_path / "acc"
    first = AccountStore("a", root)
    in_flight, _ = files.write_temp(root, [b"Subject: x\r\n\r\nx\r\n"])
    second = AccountStore("a", root)
    assert in_flight.exists()
    second.close()
    first.close()
    AccountStore("a", root).close()  # alone now: the leftover goes
    assert not in_flight.exists()


@pytest.mark.parametrize("where", ["write", "rename"])
async def test_disk_full_fails_cleanly(account, tmp_path: Path, monkeypatch,  # type: ignore[no-untyped-def]
                                       where: str) -> None:
    """ENOSPC while writing the file (deliver) or placing it (a spool's rename): the
    delivery fails with the OS error, nothing is committed, no file or row is left,
    and the next delivery works."""
    import errno
    import os
    from types import SimpleNamespace

    from kittiwake import durable as files
    from kittiwake.store import SpoolFile

    await account.deliver("Inbox", msg("before", "b"))
    before = await account.mailbox("Inbox")

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    shim = SimpleNamespace(**{n: getattr(os, n) for n in dir(os) if not n.startswith("__")})
    setattr(shim, "write" if where == "write" else "replace", full)
    monkeypatch.setattr(files, "os", shim)
    with pytest.raises(OSError, match="No space left"):
        if where == "write":
            await account.deliver("Inbox", msg("lost", "l"))
        else:
            spool = SpoolFile(account.core.root)  # in tmp/: renamed into place
            spool.write(msg("lost", "l"))
            await account.deliver_spool("Inbox", spool)
    monkeypatch.undo()
    after = await account.mailbox("Inbox")
    assert (after.messages, after.uidnext, after.size) == \
        (before.messages, before.uidnext, before.size)
    root = tmp_path / "accounts" / "alice"
    assert list((root / "tmp").glob("*")) == []
    account.core.ready.wait()
    assert sorted(p.name for p in (root / "msg" / "0").iterdir()
                  if int(p.name) not in account.core.ready) == ["1"]
    again = await account.deliver("Inbox", msg("after", "a"))
    assert again.uid == before.uidnext
    from kittiwake.store.check import check

    assert check(account.core) == []


async def test_check_beside_a_running_server_leaves_an_append_in_progress(tmp_path: Path
                                                                          ) -> None:
    """An APPEND's spool is written at its final name; ``account check --repair`` run
    while the server has the account open must not take it for a leftover."""
    from kittiwake.store import AccountStore, Appended
    from kittiwake.store.spool import SpoolFile

    store = Store(tmp_path)
    account = await store.account("alice")
    await account.deliver("Inbox", msg("first", "f"))
    spool = account.spool()  # the literal is still arriving
    # Larger than the spool's buffer, so that its file is there (a lazy spool's file
    # is made with its first octets written).
    data = msg("appended", "a") + b"x" * SpoolFile.BUFFER + b"\r\n"
    spool.write(data)
    assert spool.path.exists()
    assert spool.path.parent.parent == account.core.root / "msg"  # at its final name
    cli = AccountStore("alice", account.core.root)
    try:
        assert not cli.opened_alone
        assert check(cli, repair=True) == []
    finally:
        cli.close()
    assert spool.path.exists()
    path, _ = spool.finish(sync=False)
    [appended] = await account.append("Inbox", [Appended(path)])
    assert await account.read(appended.message_id) == data
    store.close()
