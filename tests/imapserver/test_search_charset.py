"""SEARCH, SORT and THREAD charsets on the wire (RFC 9051 §6.4.4, §7.1 BADCHARSET)."""

from __future__ import annotations

import pytest
from tests.imapserver.conftest import IMAPServer
from tests.imapserver.test_imap_wire import Wire

CAFE = "Subject: café\r\nFrom: x@example.net\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nhi\r\n"


async def selected(server: IMAPServer) -> Wire:
    await server.deliver(CAFE.encode())
    await server.deliver(b"Subject: other\r\n\r\nhi\r\n")
    w = await Wire.open(server.port)
    await w.login()
    await w.cmd(b"SELECT INBOX")
    return w


@pytest.mark.parametrize("command", [
    b"SEARCH CHARSET ISO-8859-1 SUBJECT caf",
    b"UID SEARCH CHARSET X-UNKNOWN ALL",
    b"SORT (SUBJECT) WINDOWS-1252 ALL",
    b"THREAD REFERENCES KOI8-R ALL",
])
async def test_unsupported_charset_is_refused_with_badcharset(imap_server: IMAPServer,
                                                              command: bytes) -> None:
    w = await selected(imap_server)
    answer = await w.cmd(command)
    assert answer[-1].startswith(b"a NO [BADCHARSET (UTF-8 US-ASCII)] "), answer
    assert len(answer) == 1  # no untagged result
    assert (await w.cmd(b"NOOP"))[-1].startswith(b"a OK")  # the session goes on


@pytest.mark.parametrize("charset", [b"UTF-8", b"US-ASCII", b"us-ascii"])
async def test_supported_charsets_search(imap_server: IMAPServer, charset: bytes) -> None:
    w = await selected(imap_server)
    needle = b"caf\xc3\xa9" if charset == b"UTF-8" else b"caf"
    answer = await w.cmd(b"SEARCH CHARSET " + charset + b" SUBJECT \"" + needle + b"\"")
    assert answer == [b"* SEARCH 1\r\n", answer[-1]] and answer[-1].startswith(b"a OK")
    answer = await w.cmd(b"SORT (REVERSE SUBJECT) " + charset + b" ALL")
    assert answer[0] == b"* SORT 2 1\r\n", answer
    answer = await w.cmd(b"THREAD ORDEREDSUBJECT " + charset + b" ALL")
    assert answer[0] == b"* THREAD (1)(2)\r\n", answer
