"""Incoming mail on the MX listener, as a sending server sees it."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from kittiwake import dkim

MESSAGE = (b"From: Carol <carol@sender.example>\r\nTo: alice@example.org\r\n"
           b"Subject: hello\r\nMessage-ID: <1@sender.example>\r\n\r\nHi Alice!\r\n")


def send(port: int, mailfrom: str, rcpts: list[str], data: bytes, starttls=None,  # type: ignore[no-untyped-def]
         helo: str = "mail.sender.example") -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=10) as client:
        client.ehlo()
        if starttls is not None:
            client.starttls(context=starttls)
            client.ehlo()
        return client.sendmail(mailfrom, rcpts, data)


def sign(resolver, data: bytes) -> bytes:  # type: ignore[no-untyped-def]
    key = dkim.generate_key("ed25519")
    resolver.add("TXT", "sel._domainkey.sender.example", dkim.dns_record(
        dkim.load_private_key(key)), authentic=True)
    return dkim.sign_message(data, "sender.example", "sel", dkim.load_private_key(key))


async def test_authenticated_mail_delivered_with_headers(smtp_server) -> None:
    r = smtp_server.resolver
    r.add("TXT", "sender.example", "v=spf1 ip4:127.0.0.1 -all", authentic=True)
    r.add("TXT", "_dmarc.sender.example", "v=DMARC1; p=reject", authentic=True)
    r.add("PTR", "1.0.0.127.in-addr.arpa", "mail.sender.example")
    r.add("A", "mail.sender.example", "127.0.0.1")
    data = sign(r, MESSAGE)
    refused = await asyncio.to_thread(send, smtp_server.ports["smtp"], "bounce@sender.example",
                                      ["alice+tag@example.org"], data, smtp_server.client_tls)
    assert refused == {}
    [stored] = smtp_server.messages("alice")
    head = stored.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n\t", " ").replace(
        "\r\n ", " ")
    assert stored.endswith(data)
    added = stored[:len(stored) - len(data)].split(b"\r\n")  # Received-SPF, Received, A-R
    assert max(len(line) for line in added) <= 78, added  # RFC 5322 §2.1.1, folded
    assert "Authentication-Results: mx.example.org;" in head
    assert "spf=pass" in head and "smtp.mailfrom=bounce@sender.example" in head
    assert "dkim=pass" in head and "header.d=sender.example" in head
    assert "dmarc=pass" in head and "header.from=sender.example" in head
    assert "iprev=pass" in head
    assert "Received-SPF: pass" in head
    received = head[head.index("Received: from"):]
    assert "by mx.example.org with ESMTPS" in received
    assert "TLSv1.3" in received and "spf dnssec" in received and "dkim dnssec" in received


async def test_dmarc_reject_policy_refuses_with_550(smtp_server) -> None:
    r = smtp_server.resolver
    r.add("TXT", "sender.example", "v=spf1 -all")
    r.add("TXT", "_dmarc.sender.example", "v=DMARC1; p=reject")
    with pytest.raises(smtplib.SMTPDataError) as info:
        await asyncio.to_thread(send, smtp_server.ports["smtp"], "x@sender.example",
                                ["alice@example.org"], MESSAGE)
    assert info.value.smtp_code == 550 and b"5.7.1" in info.value.smtp_error
    assert smtp_server.messages("alice") == []


async def test_unknown_recipient_and_relaying_refused(smtp_server) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await asyncio.to_thread(send, smtp_server.ports["smtp"], "x@sender.example",
                                ["nobody@example.org", "victim@elsewhere.example"], MESSAGE)
    refused = info.value.recipients
    assert refused["nobody@example.org"][0] == 550 and b"5.1.1" in \
        refused["nobody@example.org"][1]
    assert refused["victim@elsewhere.example"][0] == 550 and b"relaying denied" in \
        refused["victim@elsewhere.example"][1]


async def test_null_sender_gets_one_recipient(smtp_server) -> None:
    refused = await asyncio.to_thread(send, smtp_server.ports["smtp"], "",
                                      ["alice@example.org", "bob@example.org"], MESSAGE)
    assert refused["bob@example.org"][0] == 550
    assert len(smtp_server.messages("alice")) == 1


async def test_ruleset_picks_mailbox(smtp_server) -> None:
    await asyncio.to_thread(send, smtp_server.ports["smtp"], "owner@lists.example.net",
                            ["alice@example.org"], MESSAGE)
    assert len(smtp_server.messages("alice", "Lists")) == 1
    assert smtp_server.messages("alice") == []


async def test_loop_is_detected(smtp_server) -> None:
    data = b"Received: from x by y; Tue, 24 Nov 2026 10:00:00 +0000\r\n" * 60 + MESSAGE
    with pytest.raises(smtplib.SMTPDataError) as info:
        await asyncio.to_thread(send, smtp_server.ports["smtp"], "x@sender.example",
                                ["alice@example.org"], data)
    assert info.value.smtp_code == 554


async def test_auth_not_offered_on_mx(smtp_server) -> None:
    def ehlo() -> str:
        with smtplib.SMTP("127.0.0.1", smtp_server.ports["smtp"], timeout=10) as client:
            client.starttls(context=smtp_server.client_tls)
            _code, text = client.ehlo()
            return text.decode()
    features = await asyncio.to_thread(ehlo)
    assert "AUTH" not in features and "REQUIRETLS" in features and "STARTTLS" not in features


async def test_bare_lf_smuggling_rejected(smtp_server) -> None:
    async def raw() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", smtp_server.ports["smtp"])
        writer.write(b"EHLO x.example\r\nMAIL FROM:<a@sender.example>\r\n"
                     b"RCPT TO:<alice@example.org>\r\nDATA\r\n")
        await writer.drain()
        got = b""
        while b"354" not in got:
            got += await reader.read(4096)
        writer.write(b"Subject: x\r\n\r\nbody\n.\nMAIL FROM:<evil@example.org>\r\n.\r\nQUIT\r\n")
        await writer.drain()
        rest = await reader.read(4096)
        while not rest.rstrip().endswith(b"closing connection"):
            more = await reader.read(4096)
            if not more:
                break
            rest += more
        writer.close()
        return rest
    out = await raw()
    assert out.startswith(b"550 5.6.0")
    assert smtp_server.messages("alice") == []


async def test_listed_ip_is_refused_at_mail(smtp_server) -> None:  # type: ignore[no-untyped-def]
    from kittiwake.config.static import Listener

    smtp_server.ctx.listener = Listener.model_validate(
        {"ips": ["127.0.0.1"], "smtp": {"enabled": True, "dnsbl_zones": ["bl.example"]}})
    smtp_server.resolver.add("A", "1.0.0.127.bl.example", "127.0.0.2")
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        await asyncio.to_thread(send, smtp_server.ports["smtp"], "x@sender.example",
                                ["alice@example.org"], MESSAGE)
    assert info.value.smtp_code == 554 and b"listed in bl.example" in info.value.smtp_error


async def test_trace_log_hides_message_data_of_data_and_bdat(smtp_server) -> None:  # type: ignore[no-untyped-def]
    import io

    from kittiwake import log

    for level, shown in (("trace", False), ("tracedata", True)):
        stream = io.StringIO()
        log.setup(level=level, stream=stream)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1",
                                                           smtp_server.ports["smtp"])
            secret = b"SECRET-BODY-" + level.encode()
            writer.write(b"EHLO x.example\r\nMAIL FROM:<a@sender.example>\r\n"
                         b"RCPT TO:<alice@example.org>\r\n")
            body = b"Subject: t\r\n\r\n" + secret + b"\r\n"
            writer.write(b"BDAT %d LAST\r\n" % len(body) + body)
            await writer.drain()
            got = b""
            while got.count(b"\r\n250 ") < 4:
                more = await reader.read(4096)
                assert more, got
                got += more
            writer.write(b"MAIL FROM:<a@sender.example>\r\nRCPT TO:<alice@example.org>\r\n"
                         b"DATA\r\n")
            await writer.drain()
            while b"354" not in got:
                got += await reader.read(4096)
            writer.write(body.replace(b"SECRET", b"SECRET2") + b".\r\nQUIT\r\n")
            await writer.drain()
            while not got.rstrip().endswith(b"closing connection"):
                more = await reader.read(4096)
                if not more:
                    break
                got += more
            writer.close()
            # The server logs its 221 after every line of the session (the data
            # included): once it is there, a hidden secret can no longer appear.
            deadline = asyncio.get_running_loop().time() + 5
            while "S: 221 " not in stream.getvalue():
                assert asyncio.get_running_loop().time() < deadline, stream.getvalue()
                await asyncio.sleep(0.01)
        finally:
            log.reset()
        text = stream.getvalue()
        assert "BDAT" in text and "RCPT TO" in text
        assert ("SECRET-BODY" in text) is shown, text[-2000:]
        assert ("SECRET2-BODY" in text) is shown
