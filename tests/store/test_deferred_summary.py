"""A delivery's part tree is left to the background step; readers never see a difference.

The acknowledgement path stores what the row needs (threading, subject) from
the header fields; the summary JSON (MIME structure, envelope) is filled in
by the indexer, and until then ``summaries``/``summary_json`` compute it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.store.test_indexing import settled

from kittiwake.message.headers import parse_header_section
from kittiwake.store import Store
from kittiwake.store.account import AccountStore
from kittiwake.store.summary import PENDING, summarize

MIXED = (b"From: Ann <ann@example.org>\r\nTo: bob@example.net\r\n"
         b"Subject: =?utf-8?q?caf=C3=A9?= plans\r\nMessage-ID: <m1@example.org>\r\n"
         b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
         b"--b\r\nContent-Type: text/plain\r\n\r\npuffin\r\n"
         b"--b\r\nContent-Type: application/pdf\r\n\r\nJVBERi0=\r\n--b--\r\n")
REPLY = (b"From: Bob <bob@example.net>\r\nSubject: Re: plans\r\n"
         b"Message-ID: <m2@example.net>\r\nIn-Reply-To: <m1@example.org>\r\n\r\nyes\r\n")
PREFIX = b"Received: from mx.example.net; Tue, 1 Dec 2026 10:00:00 +0000\r\n"


def stored(core: AccountStore, message_id: int) -> str:
    return str(core.db.execute("SELECT summary FROM message WHERE id = ?",
                               (message_id,)).fetchone()[0])


async def test_readers_get_the_full_summary_before_and_after_the_background_step(
        tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    first = await account.deliver("Inbox", MIXED, prefix=PREFIX)
    spool = account.spool()
    spool.write(REPLY)
    reply = await account.deliver_spool("Inbox", spool, PREFIX)
    core = account.core
    expected = {first.message_id: summarize(PREFIX + MIXED).json,
                reply.message_id: summarize(PREFIX + REPLY).json}
    # Not parsed on the acknowledgement path ...
    assert stored(core, first.message_id) == PENDING
    # ... yet every reader gets the summary a parse at delivery gave.
    assert await account.summaries(expected) == expected
    assert core.summary_json(first.message_id) == expected[first.message_id]
    tree = json.loads(core.summary_json(first.message_id))["part"]
    assert [p["t"] for p in tree["parts"]] == [["text", "plain"], ["application", "pdf"]]
    # The row's own columns came from the header: subject decoded, reply threaded.
    [m1, m2] = await account.messages("Inbox")
    assert m1.subject == "café plans" and m1.message_id == "m1@example.org"
    assert m2.thread_id == m1.thread_id
    await settled(account)
    assert {i: stored(core, i) for i in expected} == expected
    assert await account.summaries(expected) == expected
    store.close()


async def test_summaries_left_pending_by_a_stop_are_filled_at_the_next_open(
        tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    delivered = await account.deliver("Inbox", MIXED)
    store.close()  # before the indexer's delay: as after a crash, the step is pending
    core = AccountStore("alice", tmp_path / "accounts" / "alice")
    assert stored(core, delivered.message_id) == PENDING
    core.close()
    store = Store(tmp_path)
    account = await store.account("alice")
    await settled(account)
    assert stored(account.core, delivered.message_id) == summarize(MIXED).json
    store.close()


async def test_headers_given_by_the_writer_are_not_read_again(tmp_path: Path) -> None:
    """The SMTP server parsed the head already: the store takes its fields as they are."""
    store = Store(tmp_path)
    account = await store.account("alice")
    path = tmp_path / "tmp" / "spooled"
    path.write_bytes(REPLY)
    headers, _ = parse_header_section(b"Subject: as parsed\r\nMessage-ID: <given@x>\r\n\r\n")
    delivered = await account.deliver_spool("Inbox", path, PREFIX, headers=headers)
    [message] = await account.messages("Inbox")
    assert (message.subject, message.message_id) == ("as parsed", "given@x")
    assert await account.read(delivered.message_id) == PREFIX + REPLY
    store.close()


async def test_a_header_beyond_the_first_read_is_read_from_the_file(tmp_path: Path) -> None:
    long_header = b"X-Long: " + b"a" * 100_000 + b"\r\n"
    data = long_header + b"Subject: far down\r\n\r\nbody\r\n"
    store = Store(tmp_path)
    account = await store.account("alice")
    path = tmp_path / "tmp" / "big"
    path.write_bytes(data)
    await account.deliver_spool("Inbox", path)
    spool = account.spool()
    spool.write(data)
    await account.deliver_spool("Inbox", spool)
    assert [m.subject for m in await account.messages("Inbox")] == ["far down", "far down"]
    store.close()


async def test_a_copy_before_the_background_step_gets_its_summary_too(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    await account.create_mailbox("Archive")
    delivered = await account.deliver("Inbox", MIXED)
    [(_, uid)] = await account.copy("Inbox", [delivered.uid], "Archive")
    ids = await account.uid_ids("Archive")
    await settled(account)
    want = summarize(MIXED).json
    assert stored(account.core, ids[uid]) == want
    assert stored(account.core, delivered.message_id) == want
    store.close()
