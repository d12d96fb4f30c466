"""IMAP on the wire: literal8, STARTTLS/LOGINDISABLED, SASL-IR, QRESYNC, garbage."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from pathlib import Path

import pytest
import trustme
from tests.imapserver.conftest import PASSWORD, IMAPServer

from kittiwake.imapserver.service import IMAPService


class Wire:
    """A raw IMAP client: send lines, read until a tagged answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Wire:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        w = cls(reader, writer)
        assert (await w.line()).startswith(b"* OK")
        return w

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), 10)

    async def cmd(self, text: bytes, tag: bytes = b"a") -> list[bytes]:
        self.writer.write(tag + b" " + text + b"\r\n")
        out = []
        while True:
            line = await self.line()
            assert line, out
            out.append(line)
            if line.startswith(tag + b" "):
                return out

    async def login(self) -> None:
        answer = await self.cmd(b"LOGIN alice " + PASSWORD.encode())
        assert answer[-1].startswith(b"a OK"), answer


async def test_binary_with_nul_is_a_literal8(imap_server: IMAPServer) -> None:
    data = (b"Subject: bin\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"\0ab\0") + b"\r\n")
    await imap_server.deliver(data)
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"SELECT INBOX")
    w.writer.write(b"b FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])\r\n")
    head = await w.line()
    assert head == b"* 1 FETCH (BINARY[1] ~{4}\r\n"
    assert await w.reader.readexactly(4) == b"\0ab\0"
    assert await w.line() == b" BINARY.SIZE[1] 4)\r\n"
    assert (await w.line()).startswith(b"b OK")


async def test_body_with_nul_keeps_its_length_without_nul(imap_server: IMAPServer) -> None:
    await imap_server.deliver(b"Subject: nul\r\n\r\nx\0y\r\n")
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"SELECT INBOX")
    w.writer.write(b"b FETCH 1 (BODY.PEEK[TEXT])\r\n")
    assert await w.line() == b"* 1 FETCH (BODY[TEXT] {5}\r\n"
    body = await w.reader.readexactly(5)
    assert len(body) == 5 and b"\0" not in body  # RFC 9051 §4.3: no NUL in a literal


async def test_sasl_ir_plain_and_scram(imap_server: IMAPServer) -> None:
    import scramp

    w = await Wire.open(imap_server.port)
    ir = base64.b64encode(b"\0alice@example.org\0" + PASSWORD.encode())
    assert (await w.cmd(b"AUTHENTICATE PLAIN " + ir))[-1].startswith(b"a OK")
    w2 = await Wire.open(imap_server.port)
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
    first = base64.b64encode(client.get_client_first().encode())
    w2.writer.write(b"s AUTHENTICATE SCRAM-SHA-256 " + first + b"\r\n")
    challenge = await w2.line()
    assert challenge.startswith(b"+ ")
    client.set_server_first(base64.b64decode(challenge[2:].strip()).decode())
    w2.writer.write(base64.b64encode(client.get_client_final().encode()) + b"\r\n")
    final = await w2.line()
    client.set_server_final(base64.b64decode(final[2:].strip()).decode())  # proves the server
    w2.writer.write(b"\r\n")
    assert (await w2.line()).startswith(b"s OK")


async def test_garbage_gets_bad_then_bye(imap_server: IMAPServer) -> None:
    w = await Wire.open(imap_server.port)
    for _ in range(imap_server.ctx.limits.bad_commands - 1):
        assert (await w.cmd(b"FROBNICATE"))[-1].startswith(b"a BAD ")
    w.writer.write(b"x FROBNICATE\r\n" * 5)
    lines = []
    while True:
        line = await w.line()
        if not line:
            break
        lines.append(line)
    assert any(line.startswith(b"* BYE") for line in lines), lines


async def test_qresync_select_reports_vanished_and_changes(imap_server: IMAPServer) -> None:
    for i in range(4):
        await imap_server.deliver(b"Subject: %d\r\n\r\nx\r\n" % i)
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"ENABLE QRESYNC")
    answer = await w.cmd(b"SELECT INBOX")
    uidvalidity = next(line for line in answer if b"UIDVALIDITY" in line).split()[3][:-1]
    modseq = next(line for line in answer if b"HIGHESTMODSEQ" in line).split()[3][:-1]
    await w.cmd(b"STORE 2 +FLAGS (\\Flagged)")
    await w.cmd(b"STORE 3 +FLAGS (\\Deleted)")
    await w.cmd(b"EXPUNGE")
    answer = await w.cmd(b"SELECT INBOX (QRESYNC (" + uidvalidity + b" " + modseq + b"))")
    assert b"* OK [CLOSED] previous mailbox is now closed\r\n" in answer
    assert b"* VANISHED (EARLIER) 3\r\n" in answer
    assert any(line.startswith(b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ") for line in answer)


@pytest.fixture
async def tls_server(imap_server: IMAPServer, tmp_path: Path):  # type: ignore[no-untyped-def]
    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.org")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    imap_server.ctx.tls_context = ctx
    imap_server.ctx.plaintext_login = False
    service = IMAPService(imap_server.ctx, "imap", ["127.0.0.1"], 0)
    await service.start()
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    yield int(service.addresses()[0].rsplit(":", 1)[1]), client_ctx
    await service.close(1)


async def test_starttls_then_login(tls_server) -> None:  # type: ignore[no-untyped-def]
    port, client_ctx = tls_server
    w = await Wire.open(port)
    caps = (await w.cmd(b"CAPABILITY"))[0]
    assert b"STARTTLS" in caps and b"LOGINDISABLED" in caps and b"AUTH=" not in caps
    answer = await w.cmd(b"LOGIN alice " + PASSWORD.encode())
    assert answer[-1].startswith(b"a NO [PRIVACYREQUIRED]")
    assert (await w.cmd(b"STARTTLS"))[-1].startswith(b"a OK")
    await w.writer.start_tls(client_ctx, server_hostname="mail.example.org")
    caps = (await w.cmd(b"CAPABILITY"))[0]
    assert b"LOGINDISABLED" not in caps and b"AUTH=PLAIN" in caps and b"STARTTLS" not in caps
    await w.login()


async def test_reselect_after_delete_and_create_with_a_reused_id(imap_server: IMAPServer) -> None:
    """A deleted mailbox's changes never reach a new mailbox that got its database id."""
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"CREATE B1")
    w.writer.write(b"p APPEND B1 {11+}\r\nSubject: 1\r\n")
    assert (await w.line()).startswith(b"p OK")
    await w.cmd(b"EXAMINE B1")
    await w.cmd(b"CLOSE")
    await w.cmd(b"DELETE B1")
    await w.cmd(b"CREATE B2")
    answer = await w.cmd(b"EXAMINE B2")
    assert answer[-1].startswith(b"a OK [READ-ONLY]"), answer
    assert b"* 0 EXISTS\r\n" in answer
    assert (await w.cmd(b"NOOP"))[-1].startswith(b"a OK")


async def test_sessions_per_account_are_limited(imap_server: IMAPServer) -> None:
    imap_server.ctx.limits.max_per_account = 2
    first, second, third = [await Wire.open(imap_server.port) for _ in range(3)]
    await first.login()
    await second.login()
    answer = await third.cmd(b"LOGIN alice " + PASSWORD.encode())
    assert answer[-1].startswith(b"a NO [LIMIT]")
    await first.cmd(b"LOGOUT")
    for _ in range(50):
        if imap_server.ctx.sessions_per_account.get("alice") == 1:
            break
        await asyncio.sleep(0.02)
    await third.login()


def _sample(name: str, **labels: str) -> float:
    from kittiwake.metrics import REGISTRY

    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


async def test_metrics_count_sessions_commands_logins_and_idle(imap_server: IMAPServer) -> None:
    before = {
        "ok": _sample("kittiwake_imapserver_logins_total", mechanism="PLAIN", result="ok"),
        "bad": _sample("kittiwake_imapserver_logins_total", mechanism="PLAIN",
                       result="badcreds"),
        "select": _sample("kittiwake_imapserver_commands_total", command="SELECT",
                          status="OK"),
        "accepted": _sample("kittiwake_imapserver_connections_total", service="imap",
                            result="accepted"),
    }
    w = await Wire.open(imap_server.port)
    assert (await w.cmd(b"LOGIN alice wrong"))[-1].startswith(b"a NO")
    await w.login()
    await w.cmd(b"SELECT INBOX")
    assert _sample("kittiwake_imapserver_open_connections", service="imap") >= 1
    w.writer.write(b"i IDLE\r\n")
    assert (await w.line()).startswith(b"+ ")
    assert _sample("kittiwake_imapserver_idle_sessions") >= 1
    w.writer.write(b"DONE\r\n")
    assert (await w.line()).startswith(b"i OK")
    assert _sample("kittiwake_imapserver_logins_total", mechanism="PLAIN", result="ok") == \
        before["ok"] + 1
    assert _sample("kittiwake_imapserver_logins_total", mechanism="PLAIN",
                   result="badcreds") == before["bad"] + 1
    assert _sample("kittiwake_imapserver_commands_total", command="SELECT", status="OK") == \
        before["select"] + 1
    assert _sample("kittiwake_imapserver_connections_total", service="imap",
                   result="accepted") == before["accepted"] + 1


async def test_transcript_hides_passwords_and_message_data(imap_server: IMAPServer) -> None:
    import io

    from kittiwake import log

    def transcript(level: str) -> str:
        stream = io.StringIO()
        log.setup("info", {"imapserver": level}, stream=stream)
        return stream  # type: ignore[return-value]

    secret_body = b"Subject: s\r\n\r\nconfidential-body-text\r\n"
    try:
        for level, shows_password, shows_data in (("trace", False, False),
                                                  ("traceauth", True, False),
                                                  ("tracedata", True, True)):
            stream = transcript(level)
            w = await Wire.open(imap_server.port)
            await w.login()
            w.writer.write(b"p APPEND INBOX {%d+}\r\n" % len(secret_body) + secret_body + b"\r\n")
            assert (await w.line()).startswith(b"p OK")
            await w.cmd(b"LOGOUT")
            text = stream.getvalue()  # type: ignore[attr-defined]
            assert "LOGIN" in text, level
            assert (PASSWORD in text) == shows_password, level
            assert ("confidential-body-text" in text) == shows_data, level
    finally:
        log.reset()


async def test_random_bytes_never_break_the_server(imap_server: IMAPServer) -> None:
    import random

    rng = random.Random(7)
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", imap_server.port)
        await reader.readline()
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
        writer.write(junk + b"\r\n" + b"z NOOP\r\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
    w = await Wire.open(imap_server.port)  # the server still serves everyone else
    await w.login()
    assert (await w.cmd(b"NOOP"))[-1].startswith(b"a OK")
    from kittiwake.metrics import REGISTRY

    assert not REGISTRY.get_sample_value("kittiwake_panic_total", {"origin": "imapserver"})


async def test_connections_per_ip_are_limited_by_the_shared_slots(
        imap_server: IMAPServer) -> None:
    from kittiwake.limits import ConnectionSlots

    imap_server.ctx.connections = ConnectionSlots(max_total=100, max_per_ip=2)
    held = [await Wire.open(imap_server.port) for _ in range(2)]
    reader, writer = await asyncio.open_connection("127.0.0.1", imap_server.port)
    assert await reader.readline() == \
        b"* BYE [UNAVAILABLE] too many connections, try again later\r\n"
    writer.close()
    for w in held:  # the first two are served; refusals free no slot
        assert (await w.cmd(b"NOOP"))[-1].startswith(b"a OK")
    reader, writer = await asyncio.open_connection("127.0.0.1", imap_server.port)
    assert (await reader.readline()).startswith(b"* BYE [UNAVAILABLE]")
    writer.close()
    await held[0].cmd(b"LOGOUT")
    for _ in range(100):
        if imap_server.ctx.connections.open_from("127.0.0.1") < 2:
            break
        await asyncio.sleep(0.01)
    assert (await Wire.open(imap_server.port)) is not None


async def test_objectid_mailboxid_emailid_threadid(imap_server: IMAPServer) -> None:
    """RFC 8474: ids in CREATE, SELECT and STATUS; kept on RENAME and MOVE; searchable."""
    import re

    w = await Wire.open(imap_server.port)
    await w.login()
    created = (await w.cmd(b"CREATE Projects"))[-1]
    box_id = re.search(rb"\[MAILBOXID \((F\d+)\)\]", created).group(1)  # type: ignore[union-attr]
    await w.cmd(b"RENAME Projects Work")
    status = (await w.cmd(b"STATUS Work (MAILBOXID MESSAGES)"))[0]
    assert status == b'* STATUS "Work" (MAILBOXID (' + box_id + b") MESSAGES 0)\r\n"
    await imap_server.deliver(b"Message-ID: <t1@x>\r\nSubject: a\r\n\r\nx\r\n")
    await imap_server.deliver(b"Message-ID: <t2@x>\r\nIn-Reply-To: <t1@x>\r\n"
                              b"References: <t1@x>\r\nSubject: Re: a\r\n\r\ny\r\n")
    selected = await w.cmd(b"SELECT INBOX")
    assert any(line.startswith(b"* OK [MAILBOXID (F") for line in selected)
    fetched = await w.cmd(b"FETCH 1:2 (EMAILID THREADID)")
    ids = [re.search(rb"EMAILID \((M\d+)\) THREADID \((T\d+)\)", line).groups()  # type: ignore[union-attr]
           for line in fetched[:-1]]
    assert ids[0][0] != ids[1][0] and ids[0][1] == ids[1][1]  # two messages, one thread
    found = await w.cmd(b"UID SEARCH EMAILID " + ids[1][0])
    assert found[0] == b"* SEARCH 2\r\n"
    await w.cmd(b"UID MOVE 2 Work")
    await w.cmd(b"SELECT Work")
    moved = await w.cmd(b"FETCH 1 (EMAILID)")
    assert ids[1][0] in moved[0]  # a moved message keeps its EMAILID


async def test_compress_deflate(imap_server: IMAPServer) -> None:
    """COMPRESS=DEFLATE (RFC 4978): raw DEFLATE both ways after the tagged OK."""
    import zlib

    await imap_server.deliver(b"Subject: squeezed\r\n\r\n" + b"kittiwake " * 500 + b"\r\n")
    w = await Wire.open(imap_server.port)
    await w.login()
    assert (await w.cmd(b"COMPRESS DEFLATE"))[-1].startswith(b"a OK")
    out, inflate = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)

    async def send(line: bytes) -> None:
        w.writer.write(out.compress(line) + out.flush(zlib.Z_SYNC_FLUSH))
        await w.writer.drain()

    async def until(tag: bytes) -> bytes:
        got = b""
        while not any(ln.startswith(tag + b" ") for ln in got.split(b"\r\n")):
            chunk = await asyncio.wait_for(w.reader.read(65536), 10)
            assert chunk, got
            got += inflate.decompress(chunk)
        return got

    await send(b"b SELECT INBOX\r\n")
    assert b"* 1 EXISTS\r\n" in await until(b"b")
    await send(b"c FETCH 1 BODY.PEEK[TEXT]\r\nd COMPRESS DEFLATE\r\n")
    answer = await until(b"d")
    assert b"kittiwake " * 500 in answer
    assert b"d NO [COMPRESSIONACTIVE]" in answer


async def test_idle_timeouts_before_and_after_login(imap_server: IMAPServer) -> None:
    """RFC 9051 §5.4: an inactivity timer; shorter before login (60 s / 30 min by default)."""
    imap_server.ctx.limits.preauth_timeout = 0.3
    imap_server.ctx.limits.idle_timeout = 0.6
    loop = asyncio.get_running_loop()
    quiet = await Wire.open(imap_server.port)
    start = loop.time()
    assert (await quiet.line()).startswith(b"* BYE")
    assert 0.25 < loop.time() - start < 5
    w = await Wire.open(imap_server.port)
    await w.login()
    start = loop.time()
    assert (await w.line()).startswith(b"* BYE")
    assert loop.time() - start > 0.5  # the longer timer applies once logged in


async def test_metadata_server_and_mailbox_entries(imap_server: IMAPServer) -> None:
    """METADATA (RFC 5464): set, get with DEPTH and MAXSIZE, remove with NIL, limits."""
    w = await Wire.open(imap_server.port)
    await w.login()
    assert (await w.cmd(b'SETMETADATA "" (/private/vendor/x/colour "teal"'
                        b' /shared/comment "our server")'))[-1].startswith(b"a OK")
    got = await w.cmd(b'GETMETADATA "" (/private/vendor/x/colour /shared/comment)')
    assert got[0] == (b'* METADATA "" ("/private/vendor/x/colour" "teal"'
                      b' "/shared/comment" "our server")\r\n')
    await w.cmd(b'SETMETADATA INBOX (/private/comment {5+}\r\nhello /private/a/b "deep")')
    deep = await w.cmd(b"GETMETADATA (DEPTH infinity) INBOX (/private)")
    assert b"/private/comment" in deep[0] and b"/private/a/b" in deep[0]
    only = await w.cmd(b"GETMETADATA (DEPTH 1) INBOX (/private)")
    assert b"/private/comment" in only[0] and b"/private/a/b" not in only[0]
    sized = await w.cmd(b"GETMETADATA (MAXSIZE 4) INBOX (/private/comment /private/a/b)")
    assert b"[METADATA LONGENTRIES 5]" in sized[-1] and b"deep" in sized[0]
    await w.cmd(b"SETMETADATA INBOX (/private/comment NIL)")
    gone = await w.cmd(b"GETMETADATA INBOX (/private/comment)")
    assert not any(b"/private/comment" in line for line in gone[:-1])
    big = b"x" * (40 * 1024)
    too_big = await w.cmd(b"SETMETADATA INBOX (/private/big {%d+}\r\n" % len(big) + big + b")")
    assert b"NO [METADATA MAXSIZE 32768]" in too_big[-1]
    bad = await w.cmd(b'SETMETADATA INBOX (/elsewhere "x")')
    assert bad[-1].startswith(b"a BAD")
    missing = await w.cmd(b'GETMETADATA Nowhere (/private/comment)')
    assert missing[-1].startswith(b"a NO [NONEXISTENT]")


async def test_replace_swaps_a_draft_atomically(imap_server: IMAPServer) -> None:
    """REPLACE (RFC 8508): APPENDUID, EXISTS, the old one's EXPUNGE, in one step."""
    old = b"Subject: draft 1\r\n\r\nfirst words\r\n"
    new = b"Subject: draft 2\r\n\r\nmore words\r\n"
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"APPEND Drafts (\\Draft) {%d+}\r\n" % len(old) + old)
    await w.cmd(b"SELECT Drafts")
    answer = await w.cmd(b"UID REPLACE 1 Drafts (\\Draft) {%d+}\r\n" % len(new) + new)
    assert answer[0].startswith(b"* OK [APPENDUID ") and answer[0].split()[4] == b"2]"
    assert answer[1:] == [b"* 2 EXISTS\r\n", b"* 1 EXPUNGE\r\n", b"a OK REPLACE completed\r\n"]
    fetched = await w.cmd(b"FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert fetched[0].startswith(b"* 1 FETCH (UID 2 FLAGS (\\Draft) ")  # one message left
    assert fetched[1] == b"Subject: draft 2\r\n" and not any(b"* 2 FETCH" in x for x in fetched)
    gone = await w.cmd(b"UID REPLACE 9 Drafts {%d+}\r\n" % len(new) + new)
    assert gone[-1].startswith(b"a NO [NONEXISTENT]")
    assert (await w.cmd(b"STATUS Drafts (MESSAGES)"))[0].endswith(b"(MESSAGES 1)\r\n")


async def test_long_search_reports_progress(imap_server: IMAPServer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """INPROGRESS (RFC 9585): a long text search tells how far it got."""
    from kittiwake.imapserver import messages

    monkeypatch.setattr(messages, "PROGRESS_EVERY", 0.0)
    monkeypatch.setattr(messages, "SEARCH_SLICE", 2)
    for i in range(5):
        await imap_server.deliver(b"Subject: %d\r\n\r\nneedle %d\r\n" % (i, i))
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"SELECT INBOX")
    answer = await w.cmd(b"SEARCH BODY needle", tag=b"s1")
    progress = [ln for ln in answer if b"INPROGRESS" in ln]
    assert progress[0].startswith(b'* OK [INPROGRESS ("s1" 2 5)]')
    assert answer[-2] == b"* SEARCH 1 2 3 4 5\r\n"


async def test_a_new_keyword_is_announced_in_flags(imap_server: IMAPServer) -> None:
    """RFC 9051 §7.3.5: FLAGS is sent again when a new keyword comes into use."""
    await imap_server.deliver(b"Subject: k\r\n\r\nx\r\n")
    a, b = await Wire.open(imap_server.port), await Wire.open(imap_server.port)
    await a.login()
    await b.login()
    await a.cmd(b"SELECT INBOX")
    await b.cmd(b"SELECT INBOX")
    stored = await a.cmd(b"STORE 1 +FLAGS ($Important)")
    assert stored[0] == (b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft"
                         b" $Important)\r\n")
    seen_by_b = await b.cmd(b"NOOP")
    assert seen_by_b[0].startswith(b"* FLAGS (") and b"$Important" in seen_by_b[0]
    assert seen_by_b[1].startswith(b"* 1 FETCH (UID 1 FLAGS ($Important)")
    again = await a.cmd(b"STORE 1 +FLAGS ($Important)")
    assert not any(line.startswith(b"* FLAGS") for line in again)  # known now


async def test_text_search_straight_from_the_index(imap_server: IMAPServer) -> None:
    """Once delivered mail is indexed, BODY/TEXT are answered from the substring index."""
    for body in (b"puffins nest", b"KITTIWAKES NEST", b"gulls fly", b"Kittiwake chick"):
        await imap_server.deliver(b"Subject: s\r\n\r\n" + body + b"\r\n")
    account = await imap_server.store.account("alice")
    for _ in range(1000):
        if not account.core.to_index and account._indexer is None:
            break
        await asyncio.sleep(0.01)
    indexed, _hits = await account.text_search("Inbox", "nest", "body")
    assert len(indexed) == 4  # the direct path applies
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"SELECT INBOX")
    assert (await w.cmd(b"SEARCH BODY kittiwake"))[0] == b"* SEARCH 2 4\r\n"
    assert (await w.cmd(b"UID SEARCH TEXT NEST"))[0] == b"* SEARCH 1 2\r\n"
    await w.cmd(b"SEARCH RETURN (SAVE) BODY gulls")
    assert (await w.cmd(b"FETCH $ (UID)"))[0] == b"* 3 FETCH (UID 3)\r\n"
    assert (await w.cmd(b"SEARCH RETURN (COUNT) BODY zz"))[0].endswith(b"COUNT 0\r\n")


async def test_header_search_straight_from_the_index(imap_server: IMAPServer) -> None:
    """A header key rules messages out through the index; the field decides the rest."""
    for subject, frm in ((b"Kittiwake colony", b"amy"), (b"gulls", b"kittiwake-fan"),
                         (b"=?utf-8?q?Kittiwake_K=C3=BCken?=", b"bob")):
        await imap_server.deliver(b"From: " + frm + b"@x\r\nSubject: " + subject +
                                  b"\r\n\r\nbody\r\n")
    account = await imap_server.store.account("alice")
    for _ in range(1000):
        if not account.core.to_index and account._indexer is None:
            break
        await asyncio.sleep(0.01)
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"SELECT INBOX")
    assert (await w.cmd(b"SEARCH SUBJECT kittiwake"))[0] == b"* SEARCH 1 3\r\n"
    assert (await w.cmd(b"SEARCH FROM kittiwake"))[0] == b"* SEARCH 2\r\n"
    assert (await w.cmd(b"SEARCH HEADER Subject k\xc3\xbcken".replace(
        b"k\xc3\xbcken", b"{6+}\r\nk\xc3\xbcken")))[0] == b"* SEARCH 3\r\n"


async def test_header_search_on_encoded_folded_and_unindexed_headers(
        imap_server: IMAPServer) -> None:
    """SUBJECT/FROM/HEADER match decoded, unfolded values (RFC 9051 §6.4.4), whether
    the message is in the substring index or not yet; a line break inside an encoded
    word is no field of its own."""
    indexed = (
        b"From: =?utf-8?b?S2l0dGl3YWtlIEZhbg==?= <fan@x>\r\nSubject: gulls\r\n\r\nb\r\n",
        b"From: amy@x\r\nSubject: the\r\n kittiwake\r\n colony\r\n\r\nb\r\n",
        b"From: bob@x\r\nSubject: none\r\nX-Note: =?utf-8?q?x=0Asubject:_kittiwake?=\r\n\r\nb\r\n",
    )
    for data in indexed:
        await imap_server.deliver(data)
    account = await imap_server.store.account("alice")
    for _ in range(1000):
        if not account.core.to_index and account._indexer is None:
            break
        await asyncio.sleep(0.01)
    # Two more straight into the store: not indexed (nothing runs the indexer).
    for data in (b"From: cy@x\r\nSubject: =?iso-8859-1?q?K=EFttiwake?= eggs\r\n\r\nb\r\n",
                 b"From: =?utf-8?q?Kittiwake_Two?= <two@x>\r\nSubject: s\r\n\r\nb\r\n"):
        await asyncio.to_thread(account.core.deliver, "Inbox", data)
    _hits, unindexed = await asyncio.to_thread(account.core.text_matches, "Inbox",
                                               "kittiwake", "headers")
    assert [m.uid for m in unindexed] == [4, 5]
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"SELECT INBOX")
    assert (await w.cmd(b"SEARCH SUBJECT kittiwake"))[0] == b"* SEARCH 2\r\n"
    assert (await w.cmd(b"SEARCH SUBJECT \"kittiwake colony\""))[0] == b"* SEARCH 2\r\n"
    assert (await w.cmd(b"SEARCH SUBJECT {7+}\r\nk\xc3\xafttiw"))[0] == b"* SEARCH 4\r\n"
    assert (await w.cmd(b"UID SEARCH FROM KITTIWAKE"))[0] == b"* SEARCH 1 5\r\n"
    assert (await w.cmd(b"SEARCH HEADER X-Note kittiwake"))[0] == b"* SEARCH 3\r\n"
    assert (await w.cmd(b"SEARCH HEADER X-Note \"x subject\""))[0] == b"* SEARCH\r\n"
    assert (await w.cmd(b"SEARCH TO kittiwake"))[0] == b"* SEARCH\r\n"
    assert (await w.cmd(b"SEARCH FROM ki"))[0] == b"* SEARCH 1 5\r\n"  # below a trigram


async def _append(w: Wire, mailbox: bytes, data: bytes, tag: bytes = b"p") -> list[bytes]:
    """APPEND with a synchronizing literal: the data goes only after the "+"."""
    w.writer.write(tag + b" APPEND " + mailbox + b" {%d}\r\n" % len(data))
    first = await w.line()
    if not first.startswith(b"+"):
        return [first]
    w.writer.write(data + b"\r\n")
    out = []
    while not out or not out[-1].startswith(tag + b" "):
        out.append(await w.line())
    return out


async def test_append_after_its_mailbox_was_deleted_by_another_session(
        imap_server: IMAPServer, tmp_path: Path) -> None:
    """RFC 9051 §6.3.12: APPEND to a mailbox that does not exist is NO [TRYCREATE],
    before the literal when the server knows it then, or after it when the mailbox
    went away since this session last appended there; nothing is stored."""
    w, other = await Wire.open(imap_server.port), await Wire.open(imap_server.port)
    await w.login()
    await other.login()
    message = b"Subject: one\r\n\r\nbody\r\n"
    assert (await w.cmd(b"CREATE Box"))[-1].startswith(b"a OK")
    assert (await _append(w, b"Box", message))[-1].startswith(b"p OK [APPENDUID ")
    assert (await other.cmd(b"DELETE Box"))[-1].startswith(b"a OK")
    late = await _append(w, b"Box", message)
    assert late[-1].startswith(b"p NO [TRYCREATE]"), late
    # Known not to exist now: refused before the literal.
    early = await _append(w, b"Box", message)
    assert early[-1].startswith(b"p NO [TRYCREATE]") and len(early) == 1, early
    assert (await w.cmd(b"CREATE Box"))[-1].startswith(b"a OK")
    again = await _append(w, b"Box", message)
    assert again[-1].startswith(b"p OK [APPENDUID "), again
    status = await w.cmd(b"STATUS Box (MESSAGES)")
    assert b"(MESSAGES 1)" in status[0], status
    acc = await imap_server.store.account("alice")
    acc.core.ready.wait()  # (files made ahead for deliveries are not messages)
    spooled = [p for p in (acc.core.root / "msg").rglob("*")
               if p.is_file() and int(p.name) not in acc.core.ready]
    assert len(spooled) == 1, spooled  # the refused literal left no file


def test_store_operations_of_imap_start_at_zero() -> None:
    """DESIGN.md "Metrics": the store operations only IMAP commands use (SEARCH TEXT's
    text_matches, ...) are on /metrics at 0 from the start, not from their first use."""
    import subprocess
    import sys

    code = (
        "import kittiwake.imapserver.metrics\n"
        "from kittiwake.metrics import REGISTRY\n"
        "for op in ('text_matches', 'selection', 'update_flags'):\n"
        "    for result in ('ok', 'error'):\n"
        "        print(op, result, REGISTRY.get_sample_value(\n"
        "            'kittiwake_store_operations_total', {'op': op, 'result': result}))\n"
        "    print(op, 'count', REGISTRY.get_sample_value(\n"
        "        'kittiwake_store_operation_duration_seconds_count', {'op': op}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert [x for x in out if x] == [f"{op} {r} 0.0" for op in ("text_matches", "selection",
                                                               "update_flags")
                                     for r in ("ok", "error", "count")]


async def test_a_long_uid_set_line_is_accepted(imap_server: IMAPServer) -> None:
    """RFC 7162 §4: clients keep command lines to about 8192 octets, but one resyncing a
    big mailbox with scattered UIDs sends more; lines up to 64 KiB are taken (as
    Dovecot's), longer ones get BAD [TOOBIG] and the session goes on."""
    for n in range(3):
        await imap_server.deliver(f"Subject: long {n}\r\n\r\nbody\r\n".encode())
    w = await Wire.open(imap_server.port)
    await w.login()
    await w.cmd(b"SELECT INBOX")
    uids = b",".join(str(u).encode() for u in range(1, 12_000, 2))  # ~30 KB
    assert len(uids) > 30_000
    answer = await w.cmd(b"UID FETCH " + uids + b" (FLAGS)")
    assert answer[-1].startswith(b"a OK"), answer[-1]
    assert sum(line.startswith(b"* ") and b"FETCH" in line for line in answer) == 2
    too_long = await w.cmd(b"UID FETCH " + b"1," * 40_000 + b"1 (FLAGS)", tag=b"b")
    assert too_long[-1].startswith(b"b BAD [TOOBIG]"), too_long[-1]
    assert (await w.cmd(b"NOOP", tag=b"c"))[-1].startswith(b"c OK")
