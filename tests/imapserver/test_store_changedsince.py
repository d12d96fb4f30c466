"""STORE answers and CHANGEDSINCE on the wire (RFC 9051 §6.4.6, RFC 7162 §3.1.3, §3.1.4).

The store reads only the rows a command names: CHANGEDSINCE through the
mailbox's modseq index with the UID set applied afterwards, sparse UID sets
looked up one by one, and STORE's FETCH lines formatted directly. These tests
hold the answers to what a client must see.
"""

from __future__ import annotations

from types import SimpleNamespace

from tests.imapserver.conftest import IMAPServer
from tests.imapserver.test_imap_wire import Wire

from kittiwake.imap import responses as r
from kittiwake.imap.values import Atom
from kittiwake.imapserver.messages import fetch_line, flags_fetch_lines
from kittiwake.store.model import Flags, Message


async def _mailbox(server: IMAPServer, n: int) -> Wire:
    for i in range(n):
        await server.deliver(b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
    w = await Wire.open(server.port)
    await w.login()
    return w


def _modseq(answer: list[bytes]) -> int:
    line = next(x for x in answer if b"HIGHESTMODSEQ" in x)
    return int(line.split(b"HIGHESTMODSEQ ")[1].split(b"]")[0])


def _fetched(answer: list[bytes]) -> list[bytes]:
    return [x for x in answer if b" FETCH (" in x]


def _line_modseq(line: bytes) -> int:
    return int(line.split(b"MODSEQ (")[1].split(b")")[0])


async def test_changedsince_with_a_uid_set_that_leaves_out_the_changed(
        imap_server: IMAPServer) -> None:
    w = await _mailbox(imap_server, 6)
    since = _modseq(await w.cmd(b"SELECT INBOX (CONDSTORE)"))
    await w.cmd(b"UID STORE 2,5 +FLAGS.SILENT (\\Flagged)")
    none = await w.cmd(b"UID FETCH 1,3:4,6 (FLAGS) (CHANGEDSINCE %d)" % since)
    assert _fetched(none) == [] and none[-1].startswith(b"a OK"), none
    both = _fetched(await w.cmd(b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % since))
    assert [x.split(b" FETCH")[0] for x in both] == [b"* 2", b"* 5"]
    assert all(b"FLAGS (\\Flagged)" in x and b"UID " in x for x in both)
    one = _fetched(await w.cmd(b"FETCH 4:6 (FLAGS) (CHANGEDSINCE %d)" % since))
    assert one == [b"* 5 FETCH (FLAGS (\\Flagged) MODSEQ (%d))\r\n" % _line_modseq(both[1])]


async def test_changedsince_is_strictly_greater_than_the_modseq(
        imap_server: IMAPServer) -> None:
    """RFC 7162 §3.1.4.1: only messages whose mod-sequence is bigger than the value."""
    w = await _mailbox(imap_server, 4)
    await w.cmd(b"SELECT INBOX (CONDSTORE)")
    first = _fetched(await w.cmd(b"STORE 1 +FLAGS (\\Seen)"))
    second = _fetched(await w.cmd(b"STORE 3 +FLAGS (\\Seen)"))
    m1, m3 = _line_modseq(first[0]), _line_modseq(second[0])
    assert m3 > m1
    at_first = _fetched(await w.cmd(b"FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m1))
    assert [x.split(b" FETCH")[0] for x in at_first] == [b"* 3"]
    assert _fetched(await w.cmd(b"FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m3)) == []
    below = _fetched(await w.cmd(b"FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % (m1 - 1)))
    assert [x.split(b" FETCH")[0] for x in below] == [b"* 1", b"* 3"]


async def test_changedsince_after_another_session_expunged(imap_server: IMAPServer) -> None:
    """A changed message another session expunged is not reported (it is gone),
    VANISHED (EARLIER) names it (RFC 7162 §3.2.6), and the others keep the numbers
    this session knows until the expunge is told."""
    w = await _mailbox(imap_server, 5)
    await w.cmd(b"ENABLE QRESYNC")
    since = _modseq(await w.cmd(b"SELECT INBOX"))
    other = await Wire.open(imap_server.port)
    await other.login()
    await other.cmd(b"SELECT INBOX")
    await other.cmd(b"STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    await other.cmd(b"UID EXPUNGE 2")
    answer = await w.cmd(b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % since)
    assert answer[0] == b"* VANISHED (EARLIER) 2\r\n"
    # The answer (still numbered as this session knows them), then the updates.
    told = answer.index(b"* VANISHED 2\r\n")
    assert _fetched(answer[:told]) == [
        b"* 4 FETCH (UID 4 FLAGS (\\Deleted) MODSEQ (%d))\r\n" % _line_modseq(answer[1])]


async def test_sparse_uid_sets_fetch_exactly_those(imap_server: IMAPServer) -> None:
    w = await _mailbox(imap_server, 40)
    await w.cmd(b"SELECT INBOX")
    await w.cmd(b"UID STORE 20 +FLAGS.SILENT (\\Deleted)")
    await w.cmd(b"UID EXPUNGE 20")
    answer = _fetched(await w.cmd(b"UID FETCH 2,20,39 (UID)"))
    assert answer == [b"* 2 FETCH (UID 2)\r\n", b"* 38 FETCH (UID 39)\r\n"]
    answer = _fetched(await w.cmd(b"UID FETCH 1:3,37:* (UID)"))
    assert [x.split(b"(")[1] for x in answer] == [b"UID 1)\r\n", b"UID 2)\r\n", b"UID 3)\r\n",
                                                   b"UID 37)\r\n", b"UID 38)\r\n",
                                                   b"UID 39)\r\n", b"UID 40)\r\n"]


async def test_store_answers_every_message_of_the_set(imap_server: IMAPServer) -> None:
    """Messages whose flags were already so are answered with their FLAGS and their
    old MODSEQ; .SILENT under CONDSTORE gives the changed ones' MODSEQ only."""
    w = await _mailbox(imap_server, 3)
    await w.cmd(b"SELECT INBOX (CONDSTORE)")
    before = _fetched(await w.cmd(b"STORE 2 +FLAGS ($Label \\Seen)"))
    old = _line_modseq(before[0])
    answer = _fetched(await w.cmd(b"STORE 1:3 +FLAGS (\\Seen)"))
    assert len(answer) == 3
    assert answer[1] == b"* 2 FETCH (FLAGS (\\Seen $Label) MODSEQ (%d))\r\n" % old
    new = _line_modseq(answer[0])
    assert new > old and answer[0] == b"* 1 FETCH (FLAGS (\\Seen) MODSEQ (%d))\r\n" % new
    assert answer[2] == b"* 3 FETCH (FLAGS (\\Seen) MODSEQ (%d))\r\n" % new
    silent = _fetched(await w.cmd(b"UID STORE 1:3 -FLAGS.SILENT ($Label)"))
    assert len(silent) == 1 and silent[0].startswith(b"* 2 FETCH (UID 2 MODSEQ (")
    failed = await w.cmd(b"UID STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Answered)" % new)
    assert failed[-1].startswith(b"a OK [MODIFIED 2]")
    assert [x.split(b" FETCH")[0] for x in _fetched(failed)] == [b"* 1", b"* 3"]


async def test_store_lines_under_uidonly(imap_server: IMAPServer) -> None:
    w = await _mailbox(imap_server, 2)
    await w.cmd(b"ENABLE UIDONLY CONDSTORE")
    await w.cmd(b"SELECT INBOX")
    answer = await w.cmd(b"UID STORE 1:* +FLAGS (\\Flagged)")
    lines = [x for x in answer if b"UIDFETCH" in x]
    assert [x.split(b" (")[0] for x in lines] == [b"* 1 UIDFETCH", b"* 2 UIDFETCH"]
    assert lines[0].startswith(b"* 1 UIDFETCH (FLAGS (\\Flagged) MODSEQ (")


def test_flag_lines_are_the_octets_of_the_general_encoder() -> None:
    """flags_fetch_lines writes what fetch_line / responses.fetch give for the items."""
    flags = [Flags(), Flags.parse(["\\Seen", "\\Deleted"]), Flags.parse(["$Junk", "\\Draft"]),
             Flags(0, ("Grüße",))]
    messages = [Message(i, 1, 10 + i, 100 + i, f, 5, 0, 0, "", 0) for i, f in enumerate(flags)]
    todo = [(i + 1, m) for i, m in enumerate(messages)]
    for uid_only in (False, True):
        for condstore in (False, True):
            for uid in (False, True):
                for with_flags in (False, True):
                    if not with_flags and not condstore:
                        continue  # .SILENT without CONDSTORE answers nothing
                    session = SimpleNamespace(uid_only=uid_only, condstore=condstore,
                                              utf8=False)
                    conn = SimpleNamespace(session=session)
                    want = b""
                    for seq, m in todo:
                        items: list = []
                        if with_flags:
                            items.append(("FLAGS", [Atom(n) for n in m.flags.names()]))
                        if condstore:
                            items.append(("MODSEQ", [m.modseq]))
                        pieces = fetch_line(conn, seq, m.uid, items) if uid else \
                            r.fetch(seq, items)  # type: ignore[arg-type]
                        want += b"".join(pieces)  # type: ignore[arg-type]
                    got = flags_fetch_lines(conn, todo, uid=uid,  # type: ignore[arg-type]
                                            flags=with_flags)
                    assert got == want, (uid_only, condstore, uid, with_flags)


async def test_store_on_a_big_set_answers_each_message_in_order(
        imap_server: IMAPServer) -> None:
    """The FETCH lines of a STORE on many messages (sent as one piece) arrive whole."""
    w = await _mailbox(imap_server, 300)
    await w.cmd(b"SELECT INBOX")
    answer = await w.cmd(b"UID STORE 1:* +FLAGS (\\Flagged)")
    lines = _fetched(answer)
    assert [int(x.split()[1]) for x in lines] == list(range(1, 301))
    assert all(x.endswith(b"FLAGS (\\Flagged))\r\n") for x in lines)
