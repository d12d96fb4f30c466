"""UIDONLY (RFC 9586): after ENABLE UIDONLY no message number goes either way."""

from __future__ import annotations

import pytest
from tests.imapserver.conftest import IMAPServer
from tests.imapserver.test_imap_wire import Wire

MSGS = [b"Subject: %d\r\nMessage-ID: <%d@x>\r\n\r\nbody %d\r\n" % (i, i, i) for i in range(1, 5)]


async def uidonly(server: IMAPServer, *, enable: bytes = b"UIDONLY", select: bytes = b"INBOX"
                  ) -> Wire:
    w = await Wire.open(server.port)
    await w.login()
    answer = await w.cmd(b"ENABLE " + enable)
    assert answer[0].upper() == b"* ENABLED " + enable.upper() + b"\r\n", answer
    assert (await w.cmd(b"SELECT " + select))[-1].startswith(b"a OK")
    return w


async def test_capability_and_enable(imap_server: IMAPServer) -> None:
    w = await Wire.open(imap_server.port)
    await w.login()
    assert b"UIDONLY" in (await w.cmd(b"CAPABILITY"))[0].split()


@pytest.mark.parametrize("command", [
    b"FETCH 1 (FLAGS)", b"STORE 1 +FLAGS (\\Seen)", b"SEARCH ALL", b"COPY 1 Archive",
    b"MOVE 1 Archive", b"SORT (DATE) UTF-8 ALL", b"THREAD REFERENCES UTF-8 ALL",
    b"UID SEARCH 1:2", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)",  # the last is allowed
])
async def test_message_numbers_refused(imap_server: IMAPServer, command: bytes) -> None:
    for data in MSGS:
        await imap_server.deliver(data)
    w = await uidonly(imap_server)
    answer = await w.cmd(command)
    if command.startswith(b"UID FETCH"):
        assert answer[-1].startswith(b"a OK"), answer
        return
    assert answer[-1].startswith(b"a BAD [UIDREQUIRED] "), answer
    assert len(answer) == 1


async def test_uidfetch_responses(imap_server: IMAPServer) -> None:
    for data in MSGS:
        await imap_server.deliver(data)
    w = await uidonly(imap_server)
    answer = await w.cmd(b"UID FETCH 2:3 (FLAGS RFC822.SIZE)")
    assert answer[:2] == [b"* 2 UIDFETCH (FLAGS () RFC822.SIZE %d)\r\n" % len(MSGS[1]),
                          b"* 3 UIDFETCH (FLAGS () RFC822.SIZE %d)\r\n" % len(MSGS[2])], answer
    answer = await w.cmd(b"UID FETCH 4 (UID FLAGS)")  # asked for: there
    assert answer[0] == b"* 4 UIDFETCH (UID 4 FLAGS ())\r\n", answer
    answer = await w.cmd(b"UID STORE 1 +FLAGS (\\Seen)")
    assert answer[0] == b"* 1 UIDFETCH (FLAGS (\\Seen))\r\n", answer
    answer = await w.cmd(b"UID SEARCH UID 2:* UNSEEN")
    assert answer[0] == b"* SEARCH 2 3 4\r\n", answer


async def test_other_sessions_changes_as_uidfetch_and_vanished(imap_server: IMAPServer) -> None:
    for data in MSGS:
        await imap_server.deliver(data)
    w = await uidonly(imap_server)
    other = await Wire.open(imap_server.port)
    await other.login()
    await other.cmd(b"SELECT INBOX")
    await other.cmd(b"STORE 3 +FLAGS.SILENT (\\Flagged)")
    await other.cmd(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
    await other.cmd(b"EXPUNGE")
    await imap_server.deliver(b"Subject: new\r\n\r\nnew\r\n")
    answer = await w.cmd(b"NOOP")
    assert answer[:-1] == [b"* VANISHED 2\r\n", b"* 4 EXISTS\r\n",
                           b"* 3 UIDFETCH (FLAGS (\\Flagged))\r\n"], answer
    # Its own expunges too: VANISHED, not EXPUNGE (RFC 9586 §3).
    await w.cmd(b"UID STORE 1,4 +FLAGS.SILENT (\\Deleted)")
    answer = await w.cmd(b"UID EXPUNGE 1:*")
    assert answer[:-1] == [b"* VANISHED 1,4\r\n"], answer
    answer = await w.cmd(b"UID MOVE 3 Archive")
    assert answer[1:-1] == [b"* VANISHED 3\r\n"], answer


async def test_select_has_no_unseen_number(imap_server: IMAPServer) -> None:
    for data in MSGS:
        await imap_server.deliver(data)
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"ENABLE UIDONLY")
    answer = await w.cmd(b"SELECT INBOX")
    assert not any(b"[UNSEEN " in line for line in answer), answer
    plain = await Wire.open(imap_server.port)
    await plain.login()
    assert any(b"[UNSEEN 1]" in line for line in await plain.cmd(b"SELECT INBOX"))


async def test_qresync_with_sequence_match_refused(imap_server: IMAPServer) -> None:
    await imap_server.deliver(MSGS[0])
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"ENABLE UIDONLY QRESYNC")
    answer = await w.cmd(b"SELECT INBOX (QRESYNC (1 1 1:2 (1 1)))")
    assert answer[-1].startswith(b"a BAD [UIDREQUIRED] "), answer
    uv = next(ln for ln in await w.cmd(b"SELECT INBOX") if b"UIDVALIDITY" in ln)
    value = uv.split(b"UIDVALIDITY ")[1].split(b"]")[0]
    await w.cmd(b"UID STORE 1 +FLAGS (\\Seen)")
    answer = await w.cmd(b"SELECT INBOX (QRESYNC (" + value + b" 1))")
    assert b"* 1 UIDFETCH (FLAGS (\\Seen) MODSEQ (" in b"".join(answer), answer
