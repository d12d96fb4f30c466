"""The IMAP server with Python's imaplib: what a mail client sees."""

from __future__ import annotations

import asyncio
import imaplib

from tests.imapserver.conftest import PASSWORD, IMAPServer

MSG = (b"From: Carol <carol@example.net>\r\nTo: alice@example.org\r\n"
       b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from the cliffs\r\n"
       b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.net>\r\n\r\n"
       b"Kittiwakes nest on cliffs.\r\n")


def client(server: IMAPServer) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
    imap.login("alice@example.org", PASSWORD)
    return imap


async def test_login_list_select_fetch(imap_server: IMAPServer) -> None:
    uid = await imap_server.deliver(MSG)

    def run() -> None:
        imap = client(imap_server)
        typ, boxes = imap.list()
        assert typ == "OK"
        names = [b.decode().rsplit(" ", 1)[1] for b in boxes]
        assert '"INBOX"' in names or "INBOX" in names
        typ, data = imap.select("INBOX")
        assert (typ, data) == ("OK", [b"1"])
        typ, data = imap.uid("FETCH", str(uid), "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
        assert typ == "OK"
        assert data[0][1] == MSG
        assert b"FLAGS ()" in data[0][0]
        typ, data = imap.fetch("1", "(ENVELOPE)")
        assert typ == "OK" and b"carol" in data[0] and b"m1@example.net" in data[0]
        typ, data = imap.fetch("1", "(BODY[TEXT])")
        assert data[0][1] == b"Kittiwakes nest on cliffs.\r\n"
        typ, data = imap.fetch("1", "(FLAGS)")
        assert b"\\Seen" in data[0]  # BODY[] without PEEK sets \Seen
        imap.logout()

    await asyncio.to_thread(run)


async def test_wrong_password_is_refused(imap_server: IMAPServer) -> None:
    def run() -> None:
        imap = imaplib.IMAP4("127.0.0.1", imap_server.port, timeout=10)
        try:
            imap.login("alice", "wrong")
        except imaplib.IMAP4.error as exc:
            assert "AUTHENTICATIONFAILED" in str(exc)
        else:
            raise AssertionError("wrong password accepted")
        imap.login("alice", PASSWORD)  # the account name works as login too
        imap.logout()

    await asyncio.to_thread(run)


async def test_append_store_search_expunge(imap_server: IMAPServer) -> None:
    def run() -> None:
        imap = client(imap_server)
        typ, data = imap.append("Drafts", "(\\Draft)", None, MSG)
        assert typ == "OK" and b"APPENDUID" in data[0]
        imap.select("Drafts")
        imap.literal = "grüße".encode()
        typ, data = imap.search("UTF-8", "SUBJECT")
        assert data == [b"1"]  # encoded subject, case-folded
        typ, data = imap.search(None, "BODY", "KITTIWAKES")
        assert data == [b"1"]
        typ, data = imap.search(None, "FROM", "nobody")
        assert data == [b""]
        typ, data = imap.store("1", "+FLAGS", "(\\Deleted)")
        assert typ == "OK" and b"\\Deleted" in data[0]
        typ, data = imap.expunge()
        assert data == [b"1"]
        typ, data = imap.select("Drafts")
        assert data == [b"0"]
        typ, data = imap.create("Projects/Kittiwake")
        assert typ == "OK"
        typ, boxes = imap.list('""', "Projects/*")
        assert any(b"Projects/Kittiwake" in b for b in boxes)
        imap.logout()

    await asyncio.to_thread(run)


async def test_delivery_shows_in_idle(imap_server: IMAPServer) -> None:
    loop = asyncio.get_running_loop()
    idling = asyncio.Event()

    def run() -> bytes:
        imap = client(imap_server)
        imap.select("INBOX")
        tag = imap._new_tag()
        imap.send(tag + b" IDLE\r\n")
        assert imap.readline().startswith(b"+")
        loop.call_soon_threadsafe(idling.set)
        line = imap.readline()
        imap.send(b"DONE\r\n")
        while not imap.readline().startswith(tag):
            pass
        imap.logout()
        return line

    task = asyncio.ensure_future(asyncio.to_thread(run))
    await asyncio.wait_for(idling.wait(), 10)
    await imap_server.deliver(MSG)
    assert await asyncio.wait_for(task, 10) == b"* 1 EXISTS\r\n"


async def test_deleting_the_selected_mailbox_deselects_it(imap_server: IMAPServer) -> None:
    """DELETE of the selected mailbox (RFC 9051 §6.3.4) leaves the session authenticated:
    a FETCH then gets BAD (no mailbox selected), the session goes on, and a refused
    DELETE keeps the selection."""
    def run() -> None:
        imap = client(imap_server)
        assert imap.create("Projects")[0] == "OK"
        assert imap.append("Projects", None, None, MSG)[0] == "OK"
        assert imap.select("Projects") == ("OK", [b"1"])
        assert imap.delete("Projects")[0] == "OK"
        try:
            imap.fetch("1", "(FLAGS)")
        except imaplib.IMAP4.error as exc:
            assert "needs a selected mailbox" in str(exc)
        else:
            raise AssertionError("FETCH after deleting the selected mailbox was answered")
        assert imap.noop()[0] == "OK"  # still connected, no BYE
        assert imap.select("INBOX")[0] == "OK"
        typ, _ = imap.delete("INBOX")  # refused (RFC 9051 §6.3.4): INBOX stays selected
        assert typ == "NO"
        assert imap.search(None, "ALL")[0] == "OK"  # still selected
        imap.logout()

    await asyncio.to_thread(run)
