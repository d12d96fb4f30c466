"""The client against scripted servers that behave as real ones do (and misbehave)."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket

import pytest

from kittiwake import log
from kittiwake.smtp import Reply
from kittiwake.smtpclient import (
    AuthError,
    Client,
    ConnectError,
    Outcome,
    ReplyError,
    SMTPTimeout,
    Stage,
    Timeouts,
    TLSError,
    TLSMode,
    unverified_context,
)

from .conftest import CA, FakeServers, Peer

MSG = b"From: a@example.com\r\nSubject: test\r\n\r\nHello\r\n"
FAST = Timeouts(connect=2, greeting=2, command=2, data_start=2, data_block=2, data_end=2)


async def connect(port: int, **kw: object) -> Client:
    kw.setdefault("timeouts", FAST)
    return await Client.connect("127.0.0.1", port, local_hostname="client.example",
                                remote_name="mx.test", **kw)  # type: ignore[arg-type]


async def test_550_to_mail_then_close_with_pipelining(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING", "ENHANCEDSTATUSCODES")
        for prefix in ("MAIL FROM:<a@example.com>", "RCPT TO:<b@example.org>",
                       "RCPT TO:<c@example.org>", "DATA"):
            await p.expect(prefix)  # all four arrive before any reply: one group
        await p.send("550 5.7.1 sender blocked by policy")
        p.close()

    port = await fake.start(script)
    async with await connect(port) as c:
        result = await c.deliver("a@example.com", ["b@example.org", "c@example.org"], MSG)
    assert [r.outcome for r in result.recipients] == [Outcome.PERMANENT] * 2
    for r in result.recipients:
        assert r.stage is Stage.MAIL and r.command == "MAIL FROM:<a@example.com>"
        assert r.reply == Reply(550, "5.7.1", ("sender blocked by policy",))
    assert [cr.reply.code for cr in result.replies] == [550]


async def test_8bit_without_8bitmime(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING")
        await p.expect("MAIL FROM:<a@example.com>")
        await p.expect("RCPT TO:")
        await p.expect("DATA")
        await p.send("250 ok", "250 ok", "354 go")
        assert "ü".encode() in await p.read_data()
        await p.send("250 queued")
        await p.quit()

    port = await fake.start(script)
    body = "Subject: ü\r\n\r\nGrüße\r\n".encode()
    async with await connect(port) as c:
        strict = await c.deliver("a@example.com", ["b@example.org"], body, eightbit=True,
                                 strict=True)
        sent = await c.deliver("a@example.com", ["b@example.org"], body, eightbit=True)
    [r] = strict.recipients
    assert r.outcome is Outcome.PERMANENT and r.stage is Stage.LOCAL
    assert r.reason == "8-bit message but mx.test does not support 8BITMIME"
    assert [r.outcome for r in sent.recipients] == [Outcome.DELIVERED]
    await fake.finished()
    # No BODY=8BITMIME to a server that does not know it, and strict sent nothing.
    assert fake.peers[0].received[1] == b"MAIL FROM:<a@example.com>"


async def test_starttls_not_offered(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING")
        line = (await p.line()).decode()
        if line == "QUIT":
            await p.send("221 bye")
            return
        assert line.startswith("MAIL FROM:")
        for _ in range(2):
            await p.line()
        await p.send("250 ok", "250 ok", "354 go")
        await p.read_data()
        await p.send("250 ok")
        await p.quit()

    port = await fake.start(script)
    with pytest.raises(TLSError) as info:
        await connect(port, tls=TLSMode.STARTTLS)
    assert not info.value.handshake
    assert str(info.value) == "STARTTLS required but not offered by mx.test"
    # Opportunistic: carry on in plain text.
    async with await connect(port, tls=TLSMode.OPPORTUNISTIC) as c:
        assert c.tls is None
        result = await c.deliver("a@example.com", ["b@example.org"], MSG)
    assert result.recipients[0].outcome is Outcome.DELIVERED


async def test_tls_handshake_failure_then_plaintext_fallback(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("STARTTLS", "PIPELINING")
        line = await p.line()
        if line == b"STARTTLS":
            await p.send("220 go ahead")
            await p.line()  # the ClientHello's first bytes
            await p.send("this is not a TLS server hello")
            p.close()
            return
        assert line.startswith(b"MAIL")  # the fallback connection, without TLS
        await p.line()
        await p.line()
        await p.send("250 ok", "250 ok", "354 go")
        await p.read_data()
        await p.send("250 ok")
        await p.quit()

    port = await fake.start(script)
    with pytest.raises(TLSError) as info:
        await connect(port, tls=TLSMode.OPPORTUNISTIC)
    assert info.value.handshake and info.value.temporary
    assert str(info.value).startswith("TLS handshake with mx.test failed")
    async with await connect(port, tls=TLSMode.NONE) as c:
        result = await c.deliver("a@example.com", ["b@example.org"], MSG)
    assert result.recipients[0].outcome is Outcome.DELIVERED


async def test_greylisting_451_on_rcpt(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING", "ENHANCEDSTATUSCODES")
        for _ in range(4):
            await p.line()
        await p.send("250 2.1.0 ok", "451-4.7.1 greylisted,", "451 4.7.1 try again later",
                     "250 2.1.5 ok", "354 go")
        await p.read_data()
        await p.send("250 2.0.0 queued as X1")
        await p.quit()

    port = await fake.start(script)
    async with await connect(port) as c:
        result = await c.deliver("a@example.com", ["grey@example.org", "ok@example.org"], MSG)
    grey, ok = result.recipients
    assert grey.outcome is Outcome.TEMPORARY and grey.stage is Stage.RCPT
    assert grey.command == "RCPT TO:<grey@example.org>"
    assert grey.reply == Reply(451, "4.7.1", ("greylisted,", "try again later"))
    assert grey.enhanced == "4.7.1"
    assert ok.outcome is Outcome.DELIVERED and ok.reply == Reply(250, "2.0.0", ("queued as X1",))
    assert [(cr.stage, cr.reply.code) for cr in result.replies] == [
        (Stage.MAIL, 250), (Stage.RCPT, 451), (Stage.RCPT, 250), (Stage.DATA, 354),
        (Stage.DATA_END, 250)]


async def test_slow_server_timeouts(fake: FakeServers) -> None:
    async def slow_greeting(p: Peer) -> None:
        await asyncio.sleep(1.0)

    port = await fake.start(slow_greeting)
    with pytest.raises(SMTPTimeout) as info:
        await connect(port, timeouts=Timeouts(greeting=0.2))
    assert info.value.stage is Stage.GREETING and info.value.temporary

    async def slow_data_end(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING")
        for _ in range(3):
            await p.line()
        await p.send("250 ok", "250 ok", "354 go")
        await p.read_data()
        await asyncio.sleep(1.0)

    port = await fake.start(slow_data_end)
    c = await connect(port, timeouts=Timeouts(command=2, data_end=0.3))
    result = await c.deliver("a@example.com", ["b@example.org"], MSG)
    [r] = result.recipients
    assert r.outcome is Outcome.TEMPORARY and r.stage is Stage.DATA_END and r.reply is None
    assert "no reply from mx.test to data-end within 0.3s" in r.reason
    assert c.closed


async def test_rcptmax_splits_into_transactions(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING", "LIMITS RCPTMAX=2")
        for n, batch in enumerate((2, 2, 1)):
            if n:
                await p.expect("RSET")  # pipelined in front of the next MAIL (RFC 2920 §3.1)
            await p.expect("MAIL FROM:")
            for _ in range(batch):
                await p.expect("RCPT TO:")
            await p.expect("DATA")
            await p.send(*["250 ok"] * (n > 0), "250 ok", *["250 ok"] * batch, "354 go")
            await p.read_data()
            await p.send("250 ok")
        await p.quit()

    port = await fake.start(script)
    rcpts = [f"u{i}@example.org" for i in range(5)]
    async with await connect(port) as c:
        result = await c.deliver("a@example.com", rcpts, MSG)
    assert result.transactions == 3
    assert [r.recipient for r in result.delivered] == rcpts


async def test_552_to_rcpt_is_temporary(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING")
        for _ in range(3):
            await p.line()
        await p.send("250 ok", "552 5.5.3 too many recipients", "554 no valid recipients")
        await p.quit()

    port = await fake.start(script)
    async with await connect(port) as c:
        result = await c.deliver("a@example.com", ["b@example.org"], MSG)
    [r] = result.recipients
    assert r.outcome is Outcome.TEMPORARY and r.reply is not None and r.reply.code == 552


async def test_smtputf8_and_requiretls_missing(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING", "8BITMIME")
        await p.quit()

    port = await fake.start(script)
    async with await connect(port) as c:
        utf8 = await c.deliver("a@example.com", ["jösé@example.org"], MSG)
        notls = await c.deliver("a@example.com", ["b@example.org"], MSG, requiretls=True)
    assert [(r.outcome, r.reason) for r in utf8.recipients] == [
        (Outcome.PERMANENT, "SMTPUTF8 required but not supported by mx.test")]
    [r] = notls.recipients
    assert r.outcome is Outcome.PERMANENT and r.stage is Stage.LOCAL
    assert r.reason == "REQUIRETLS requested but the connection to mx.test is not TLS"
    await fake.finished()
    assert fake.peers[0].received[1:] == [b"QUIT"]  # nothing was sent


async def test_requiretls_not_announced_over_tls(fake: FakeServers, ca: CA) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("STARTTLS")
        await p.expect("STARTTLS")
        await p.send("220 go")
        await p.starttls(ca.server)
        await p.expect("EHLO")
        await p.send("250-fake.example", "250 PIPELINING")
        await p.quit()

    port = await fake.start(script)
    async with await connect(port, tls=TLSMode.STARTTLS, tls_context=ca.client,
                             tls_server_name="mx.example.org") as c:
        assert c.tls is not None and c.tls.pkix_verified
        # The whole chain the server sent: leaf and intermediate, for DANE.
        assert len(c.tls.chain_der) == 2 and len(c.tls.verified_chain_der) == 3
        result = await c.deliver("a@example.com", ["b@example.org"], MSG, requiretls=True)
    assert result.recipients[0].reason == "REQUIRETLS requested but not supported by mx.test"


async def test_greeting_554_is_permanent(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.send("554 5.7.1 you are on our blocklist")
        await p.quit()

    port = await fake.start(script)
    with pytest.raises(ReplyError) as info:
        await connect(port)
    assert info.value.permanent and info.value.stage is Stage.GREETING
    assert info.value.reply == Reply(554, "5.7.1", ("you are on our blocklist",))
    await fake.finished()
    assert fake.peers[0].received == [b"QUIT"]


async def test_no_pipelining_dot_stuffing_and_ehlo_fallback(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.send("220 old.example SMTP")
        await p.expect("EHLO")
        await p.send("502 what?")
        await p.expect("HELO client.example")
        await p.send("250 old.example")
        await p.expect("MAIL FROM:<>")
        # Without PIPELINING the next command only comes after the reply.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(p.reader.readline(), 0.1)
        await p.send("250 ok")
        await p.expect("RCPT TO:<b@example.org>")
        await p.send("250 ok")
        await p.expect("DATA")
        await p.send("354 go")
        assert await p.read_data() == b"Subject: x\r\n\r\n..leading dot\r\n"
        await p.send("250 ok")
        await p.quit()

    port = await fake.start(script)
    async with await connect(port) as c:
        result = await c.deliver("", ["b@example.org"], b"Subject: x\n\n.leading dot\n")
    assert result.recipients[0].outcome is Outcome.DELIVERED


async def test_bdat_for_binarymime(fake: FakeServers) -> None:
    body = b"Subject: bin\r\n\r\n\x00\x01.\r\n.\r\n"

    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING", "CHUNKING", "BINARYMIME")
        await p.expect("MAIL FROM:<a@example.com> BODY=BINARYMIME")
        await p.expect("RCPT TO:")
        await p.send("250 ok", "250 ok")
        await p.expect(f"BDAT {len(body)} LAST")
        assert await p.read_exactly(len(body)) == body
        await p.send("250 2.0.0 got it")
        await p.quit()

    port = await fake.start(script)
    async with await connect(port) as c:
        result = await c.deliver("a@example.com", ["b@example.org"], body, binarymime=True)
    [r] = result.recipients
    assert r.outcome is Outcome.DELIVERED and r.stage is Stage.BDAT
    assert r.command == f"BDAT {len(body)} LAST"


async def test_scram_server_must_prove_its_key(fake: FakeServers, ca: CA) -> None:
    async def script(p: Peer) -> None:
        await p.send("220 fake")
        await p.expect("EHLO")
        await p.send("250-fake", "250 AUTH SCRAM-SHA-256")
        line = await p.expect("AUTH SCRAM-SHA-256 ")
        first = base64.b64decode(line.split()[2]).decode()
        nonce = first.split("r=", 1)[1]
        server_first = f"r={nonce}srv,s={base64.b64encode(b'salt').decode()},i=4096"
        await p.send("334 " + base64.b64encode(server_first.encode()).decode())
        await p.line()  # client-final with the proof
        await p.send("235 2.7.0 welcome, whoever you are")  # no server signature
        await asyncio.sleep(0.5)

    port = await fake.start(script)
    c = await connect(port)
    with pytest.raises(AuthError) as info:
        await c.auth("alice", "secret")
    assert "without proving its key" in str(info.value) and info.value.permanent
    assert c.closed


async def test_tls_verify_callback_rejects(fake: FakeServers, ca: CA) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("STARTTLS")
        await p.expect("STARTTLS")
        await p.send("220 go")
        await p.starttls(ca.server)
        await p.quit()

    seen: list[int] = []

    def dane(info):  # type: ignore[no-untyped-def]
        seen.append(len(info.chain_der))
        return "no TLSA record matches"

    port = await fake.start(script)
    with pytest.raises(TLSError) as info:
        await connect(port, tls=TLSMode.STARTTLS, tls_context=unverified_context(),
                      tls_verify=dane)
    assert str(info.value) == "TLS certificate of mx.test rejected: no TLSA record matches"
    assert seen == [2]  # the unverified chain is there even without PKIX checks
    await fake.finished()
    assert fake.peers[0].received[-1] == b"QUIT"


async def test_transcript_hides_credentials_and_data(fake: FakeServers, caplog) -> None:  # type: ignore[no-untyped-def]
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING", "AUTH CRAM-MD5")
        await p.expect("AUTH CRAM-MD5")
        await p.send("334 " + base64.b64encode(b"<1.2@fake>").decode())
        await p.line()
        await p.send("235 ok")
        for _ in range(3):
            await p.line()
        await p.send("250 ok", "250 ok", "354 go")
        await p.read_data()
        await p.send("250 ok")
        await p.quit()

    port = await fake.start(script)
    body = b"Subject: secret body\r\n"
    logger = log.get_logger("smtpclient")
    logger.logger.setLevel(int(log.TRACE))
    try:
        with caplog.at_level(int(log.TRACE), logger="kittiwake.smtpclient"):
            async with await connect(port, logger=logger) as c:
                assert await c.auth("alice", "secret", ["CRAM-MD5"]) == "CRAM-MD5"
                await c.deliver("a@example.com", ["b@example.org"], body)
    finally:
        logger.logger.setLevel(logging.NOTSET)
    lines = [r.getMessage() for r in caplog.records]
    assert "C: AUTH CRAM-MD5" in lines and "C: ***" in lines
    assert "C: RCPT TO:<b@example.org>" in lines and "S: 354 go" in lines
    text = "\n".join(lines)
    assert "secret body" not in text and "alice" not in text
    assert f"...({len(body)} bytes)" in text


async def test_connect_refused_and_preconnected_socket(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING")
        await p.quit()

    port = await fake.start(script)
    # A pre-connected socket (as a SOCKS proxy hands out): host only names the server.
    sock = socket.create_connection(("127.0.0.1", port))
    c = await Client.connect("mx.example.org", 25, local_hostname="client.example", sock=sock,
                             timeouts=FAST)
    assert c.capabilities is not None and c.capabilities.pipelining
    await c.quit()
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    closed_port = free.getsockname()[1]
    free.close()
    with pytest.raises(ConnectError, match=rf"connecting to \[127.0.0.1\] port {closed_port}"):
        await Client.connect("127.0.0.1", closed_port, local_hostname="c.example")


async def test_no_recipient_accepted_but_354(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING", "LIMITS RCPTMAX=1 MAILMAX=1")
        for _ in range(3):
            await p.line()
        # A broken server that says 354 although no recipient was accepted.
        await p.send("250 ok", "550 5.1.1 no such user", "354 go")
        assert await p.line() == b"."  # RFC 2920 §3.1: only the end of data
        await p.send("554 no valid recipients")
        await p.quit()

    port = await fake.start(script)
    async with await connect(port) as c:
        result = await c.deliver("a@example.com", ["x@example.org", "y@example.org"], MSG)
    x, y = result.recipients
    assert x.outcome is Outcome.PERMANENT and x.reply is not None and x.reply.enhanced == "5.1.1"
    # RFC 9422 MAILMAX=1: the second transaction waits for another session.
    assert y.outcome is Outcome.TEMPORARY and y.stage is Stage.LOCAL
    assert y.reason == "mx.test allows 1 transactions per session"
    assert result.transactions == 1


async def test_garbage_reply_makes_recipients_temporary(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("PIPELINING")
        for _ in range(3):
            await p.line()
        await p.send("250 ok", "hello? \x00\xff")
        await asyncio.sleep(0.2)

    port = await fake.start(script)
    c = await connect(port)
    result = await c.deliver("a@example.com", ["b@example.org"], MSG)
    [r] = result.recipients
    assert r.outcome is Outcome.TEMPORARY and r.reply is None
    assert r.reason.startswith("mx.test sent a malformed reply")
    assert c.closed


async def test_starttls_refused_454(fake: FakeServers) -> None:
    async def script(p: Peer) -> None:
        await p.greet_ehlo("STARTTLS", "PIPELINING")
        await p.expect("STARTTLS")
        await p.send("454 4.7.0 TLS not available due to temporary reason")
        line = await p.line()
        if line == b"QUIT":
            await p.send("221 bye")
            return
        assert line.startswith(b"MAIL")  # opportunistic: same session, plain text
        await p.line()
        await p.line()
        await p.send("250 ok", "250 ok", "354 go")
        await p.read_data()
        await p.send("250 ok")
        await p.quit()

    port = await fake.start(script)
    with pytest.raises(TLSError) as info:
        await connect(port, tls=TLSMode.STARTTLS)
    assert not info.value.handshake and info.value.reply is not None
    assert info.value.reply.code == 454
    async with await connect(port, tls=TLSMode.OPPORTUNISTIC) as c:
        assert c.tls is None
        result = await c.deliver("a@example.com", ["b@example.org"], MSG)
    assert result.recipients[0].outcome is Outcome.DELIVERED
    await fake.finished()
    assert [p.received[-1] for p in fake.peers] == [b"QUIT", b"QUIT"]
