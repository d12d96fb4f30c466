"""Messages delivered with a prefix (headers added at delivery, kept in the store's
row, the body a spooled file moved into place): IMAP clients see one message."""

from __future__ import annotations

import asyncio
import imaplib

from tests.imapserver.conftest import PASSWORD, IMAPServer

PREFIX = (b"Received: from mx.example.net by mail.example.org; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
          b"Authentication-Results: mail.example.org; spf=pass smtp.mailfrom=fulmarcheck\r\n")
HEAD = (b"From: carol@example.net\r\nTo: alice@example.org\r\nSubject: cliffs\r\n"
        b"Message-ID: <p1@example.net>\r\n\r\n")


def client_login(server: IMAPServer) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
    imap.login("alice@example.org", PASSWORD)
    return imap


async def _deliver(server: IMAPServer, body: bytes) -> bytes:
    account = await server.store.account("alice",
                                         default_mailboxes=server.ctx.mailboxes_of("alice"))
    spool = account.spool()
    spool.write(HEAD + body)
    await account.deliver_spool("Inbox", spool, PREFIX)
    return PREFIX + HEAD + body


async def test_fetch_sees_prefix_and_file_as_one_message(imap_server: IMAPServer) -> None:
    small = await _deliver(imap_server, b"Kittiwakes nest on cliffs.\r\n")
    # Larger than the server reads ahead: the body is streamed from the file.
    big = await _deliver(imap_server, b"".join(b"line %06d of the cliff survey\r\n" % i
                                               for i in range(6000)))

    def run() -> None:
        imap = client_login(imap_server)
        imap.select("INBOX")
        for seq, whole in (("1", small), ("2", big)):
            typ, data = imap.fetch(seq, "(RFC822.SIZE BODY.PEEK[])")
            assert typ == "OK"
            assert b"RFC822.SIZE %d" % len(whole) in data[0][0]
            assert data[0][1] == whole
            typ, data = imap.fetch(seq, "(BODY.PEEK[HEADER])")
            assert data[0][1] == PREFIX + HEAD
            typ, data = imap.fetch(seq, "(BODY.PEEK[TEXT])")
            assert data[0][1] == whole[len(PREFIX + HEAD):]
            typ, data = imap.fetch(seq, "(BODY.PEEK[HEADER.FIELDS (AUTHENTICATION-RESULTS)])")
            assert data[0][1] == PREFIX.split(b"\r\n")[1] + b"\r\n\r\n"
            # A partial that starts in the prefix and ends in the file.
            start = len(PREFIX) - 10
            typ, data = imap.fetch(seq, f"(BODY.PEEK[]<{start}.70000>)")
            assert data[0][1] == whole[start:start + 70000]
            typ, data = imap.fetch(seq, "(BINARY.PEEK[])")
            assert data[0][1] == whole
        typ, data = imap.search(None, "HEADER", "Authentication-Results", "fulmarcheck")
        assert (typ, data) == ("OK", [b"1 2"])
        typ, data = imap.search(None, "BODY", "survey")
        assert (typ, data) == ("OK", [b"2"])
        imap.logout()

    await asyncio.to_thread(run)
