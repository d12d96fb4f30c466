"""Expunge rules compared with Dovecot: two sessions, one expunges, what the other is told.

RFC 9051 §7.5.1: no EXPUNGE while a FETCH, STORE or SEARCH by sequence number
is answered; the UID forms and NOOP may carry it. The same script runs
against a private Dovecot and against kittiwake; the EXPUNGE/EXISTS lines
each step gets must be the same.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from tests.imapserver.conftest import PASSWORD, IMAPServer
from tests.integration.dovecot import Dovecot

pytestmark = pytest.mark.integration

MSGS = [b"Subject: %d\r\nMessage-ID: <%d@x>\r\n\r\nbody\r\n" % (i, i) for i in range(1, 5)]

NEW = "Subject: new\r\n\r\nhi"
STEPS = [
    ("b", "STORE 2 +FLAGS.SILENT (\\Deleted)"),
    ("b", "EXPUNGE"),
    ("a", "FETCH 3 (UID)"),         # by number: nothing about the expunge yet
    ("a", "SEARCH ALL"),            # by number: still 4 messages
    ("a", "STORE 4 +FLAGS.SILENT (\\Seen)"),
    ("a", "NOOP"),                  # now: * 2 EXPUNGE
    ("b", f"APPEND INBOX {{{len(NEW)}+}}\r\n{NEW}"),
    ("a", "UID FETCH 1:* (UID)"),   # a UID command may carry EXISTS
    ("a", "NOOP"),
]

_KEEP = re.compile(rb"^\* (\d+ (EXPUNGE|EXISTS)|SEARCH.*)$")


def normalise(lines: list[bytes]) -> list[bytes]:
    return [ln for ln in (x.rstrip(b"\r\n") for x in lines) if _KEEP.match(ln)]


class Raw:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.n = reader, writer, 0

    @classmethod
    async def open(cls, port: int, user: str, password: str) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        raw = cls(reader, writer)
        await reader.readline()
        await raw.cmd(f"LOGIN {user} {password}")
        await raw.cmd("SELECT INBOX")
        return raw

    async def cmd(self, text: str) -> list[bytes]:
        self.n += 1
        tag = b"t%d" % self.n
        self.writer.write(tag + b" " + text.encode() + b"\r\n")
        out = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 10)
            assert line, out
            if line.startswith(tag + b" "):
                assert line.startswith(tag + b" OK"), (text, line)
                return out
            out.append(line)


async def run(port: int, user: str, password: str) -> list[list[bytes]]:
    a = await Raw.open(port, user, password)
    b = await Raw.open(port, user, password)
    sessions = {"a": a, "b": b}
    seen = []
    for who, command in STEPS:
        lines = await sessions[who].cmd(command)
        seen.append(normalise(lines) if who == "a" else [])
    return seen


async def test_expunge_announcements_equal_dovecots(imap_server: IMAPServer) -> None:
    for data in MSGS:
        await imap_server.deliver(data)
    ours = await run(imap_server.port, "alice", PASSWORD)
    with Dovecot(messages=MSGS) as dc:
        theirs = await run(dc.port, dc.user, "secret")
    # One difference on purpose: a message another session expunged, not yet announced,
    # keeps its number but matches no SEARCH key here (its data is gone); Dovecot still
    # matches it from its index.
    assert (ours[3], theirs[3]) == ([b"* SEARCH 1 3 4"], [b"* SEARCH 1 2 3 4"])
    assert ours[:3] + ours[4:] == theirs[:3] + theirs[4:]
    assert ours[5] == [b"* 2 EXPUNGE"]  # the NOOP after the other session's expunge
    assert ours[7] == [b"* 4 EXISTS"]  # the UID FETCH after the other session's APPEND
