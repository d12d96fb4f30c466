"""Python's imaplib (a real client) against ServerSession over loopback TLS."""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator

import pytest
import trustme
from imap_minidriver import MiniIMAP

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody line\r\n"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[MiniIMAP]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("imap.example.org").configure_cert(ctx)
    srv = MiniIMAP(ctx)
    yield srv
    srv.join()


def client(ca: trustme.CA, server: MiniIMAP) -> imaplib.IMAP4_SSL:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.check_hostname = False
    return imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=ctx, timeout=10)


def test_imaplib_session(ca: trustme.CA, server: MiniIMAP) -> None:
    imap = client(ca, server)
    assert "IMAP4REV2" in imap.capabilities and "AUTH=PLAIN" in imap.capabilities
    assert imap.login("alice", "secret")[0] == "OK"
    typ, data = imap.append("INBOX", "(\\Seen)", None, MESSAGE)  # synchronising literal
    assert typ == "OK" and b"[APPENDUID 1 1]" in data[0]
    assert imap.append("Nosuch", None, None, MESSAGE)[0] == "NO"
    assert imap.select("INBOX") == ("OK", [b"1"])
    assert imap.search(None, "UNSEEN") == ("OK", [b""])
    typ, data = imap.fetch("1", "(FLAGS BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == MESSAGE  # type: ignore[index]
    typ, data = imap.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
    assert typ == "OK" and b"\\Flagged" in data[0]  # type: ignore[operator]
    imap.literal = b"alice"  # imaplib sends the next argument as a literal
    assert imap.uid("SEARCH", "CHARSET", "UTF-8", "FROM") == ("OK", [b"1"])
    assert imap.logout()[0] == "BYE"
    assert server.messages[0].data == MESSAGE
    assert server.messages[0].flags == {"\\Seen", "\\Flagged"}


def test_imaplib_bad_password(ca: trustme.CA, server: MiniIMAP) -> None:
    imap = client(ca, server)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.login("alice", "wrong")
    imap.logout()
