"""ServerSession against real SMTP clients over loopback: Python's smtplib and swaks.

A test-only asyncio driver (smtp_minidriver) wraps the session; the clients
are the oracles for wire compatibility (pipelining, STARTTLS, AUTH, SMTPUTF8,
dot-stuffing).
"""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import ssl

import pytest
import trustme
from smtp_minidriver import MiniServer

from kittiwake.smtp import ServerConfig


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mx.example.org", "127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


async def test_smtplib_starttls_auth_dotstuffing(ca: trustme.CA) -> None:
    server_ctx, client_ctx = tls_contexts(ca)
    mini = MiniServer(ServerConfig("mx.example.org", starttls=True,
                                   auth_mechanisms=("PLAIN",)), server_ctx)
    server, port = await mini.start()
    body = "Subject: test\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n"

    def client() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
            c.ehlo("client.example")
            assert c.has_extn("starttls") and not c.has_extn("auth")
            c.starttls(context=client_ctx)
            c.ehlo("client.example")
            assert c.has_extn("auth") and not c.has_extn("starttls")
            assert c.has_extn("requiretls")
            c.login("alice", "secret")
            return c.sendmail("a@example.com", ["b@example.org", "c@example.org"], body)

    async with server:
        refused = await asyncio.to_thread(client)
    assert refused == {}
    [msg] = mini.messages
    assert msg.data == body.encode()
    assert msg.tls and msg.authenticated
    assert [str(r) for r in msg.recipients] == ["b@example.org", "c@example.org"]


async def test_smtplib_wrong_password_gets_535(ca: trustme.CA) -> None:
    mini = MiniServer(ServerConfig("mx.example.org", auth_mechanisms=("PLAIN",),
                                   auth_requires_tls=False))
    server, port = await mini.start()

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
            c.login("alice", "wrong")

    async with server:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            await asyncio.to_thread(client)
    assert e.value.smtp_code == 535


async def test_smtplib_smtputf8() -> None:
    mini = MiniServer(ServerConfig("mx.example.org"))
    server, port = await mini.start()

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
            c.ehlo("client.example")
            c.sendmail("jörg@bücher.example", ["ünsal@例え.jp"], b"Subject: x\r\n\r\nhi\r\n",
                       mail_options=["SMTPUTF8"])

    async with server:
        await asyncio.to_thread(client)
    [msg] = mini.messages
    assert msg.mail_from is not None and msg.mail_from.domain == "xn--bcher-kva.example"
    assert msg.recipients[0].unicode_domain == "例え.jp"


@pytest.mark.integration
async def test_swaks_pipelining() -> None:
    swaks = shutil.which("swaks")
    assert swaks, "swaks (Debian package swaks) is required for this test"
    mini = MiniServer(ServerConfig("mx.example.org"))
    server, port = await mini.start()
    async with server:
        proc = await asyncio.create_subprocess_exec(
            swaks, "--server", "127.0.0.1", "--port", str(port), "--pipeline",
            "--from", "a@example.com", "--to", "b@example.org,c@example.org",
            "--helo", "client.example", "--data", "Subject: piped\n\n.dot line\nbody\n",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text
    # swaks sent MAIL, RCPT, RCPT and DATA as one group, then read the four replies.
    assert " -> DATA\n<-  250 2.1.0 OK\n<-  250 2.1.5 OK\n<-  250 2.1.5 OK\n<-  354" in text
    assert "250 2.0.0 queued" in text
    [msg] = mini.messages
    # swaks stuffed ".dot line" to "..dot line" and ends the data with an empty line.
    assert " -> ..dot line" in text
    assert msg.data == b"Subject: piped\r\n\r\n.dot line\r\nbody\r\n\r\n"
    assert len(msg.recipients) == 2
