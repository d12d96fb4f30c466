"""IMAP extensions as a client library (imapclient) uses them, one scenario each."""

from __future__ import annotations

import asyncio
import datetime as dt

from imapclient import IMAPClient
from tests.imapserver.conftest import PASSWORD, IMAPServer


def msg(subject: str, mid: str, refs: str = "", date: str = "01 Dec 2026 10:00:00 +0000",
        frm: str = "carol@example.net") -> bytes:
    head = (f"From: {frm}\r\nTo: alice@example.org\r\nSubject: {subject}\r\n"
            f"Date: Tue, {date}\r\nMessage-ID: <{mid}>\r\n")
    if refs:
        head += f"References: {refs}\r\n"
    return (head + "\r\nbody of " + subject + "\r\n").encode()


def connect(server: IMAPServer) -> IMAPClient:
    c = IMAPClient("127.0.0.1", server.port, ssl=False, timeout=10)
    c.login("alice", PASSWORD)
    return c


async def in_thread(fn):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(fn)


async def test_capabilities_namespace_id_enable(imap_server: IMAPServer) -> None:
    def run() -> None:
        c = connect(imap_server)
        caps = set(c.capabilities())
        for cap in (b"IMAP4REV2", b"IMAP4REV1", b"IDLE", b"UIDPLUS", b"MOVE", b"CONDSTORE",
                    b"QRESYNC", b"ESEARCH", b"SORT", b"THREAD=REFERENCES", b"SPECIAL-USE",
                    b"LIST-STATUS", b"BINARY", b"UNSELECT", b"NAMESPACE", b"ID"):
            assert cap in caps, cap
        for cap in (b"OBJECTID", b"COMPRESS=DEFLATE", b"METADATA", b"METADATA-SERVER",
                    b"REPLACE", b"INPROGRESS"):
            assert cap in caps, cap
        for cap in (b"NOTIFY", b"UIDONLY", b"QUOTA=RES-MESSAGE"):
            assert cap in caps, cap
        assert c.namespace().personal == (("", "/"),)
        typ, _data = c._imap._simple_command("ID", '("name" "test")')
        assert typ == "OK"
        assert c._imap.untagged_responses.pop("ID") == [
            b'("name" "kittiwake" "version" "0.1.0")']
        assert c.enable("CONDSTORE", "NOSUCHTHING") == [b"CONDSTORE"]
        c.logout()

    await in_thread(run)


async def test_special_use_and_list_status(imap_server: IMAPServer) -> None:
    await imap_server.deliver(msg("one", "1@x"))

    def run() -> None:
        c = connect(imap_server)
        folders = {name: flags for flags, _delim, name in c.list_folders()}
        assert b"\\Sent" in folders["Sent"] and b"\\Junk" in folders["Junk"]
        assert c.find_special_folder(b"\\Trash") == "Trash"
        status = c.folder_status("INBOX", ["MESSAGES", "UNSEEN", "UIDNEXT", "SIZE",
                                           "HIGHESTMODSEQ"])
        assert status[b"MESSAGES"] == 1 and status[b"UNSEEN"] == 1 and status[b"UIDNEXT"] == 2
        assert status[b"SIZE"] == len(msg("one", "1@x"))
        typ, _data = c._imap._simple_command("LIST", '""', '"*"', "RETURN", "(STATUS (MESSAGES))")
        assert typ == "OK"
        lines = c._imap.untagged_responses.pop("STATUS", [])
        assert any(b"INBOX" in line and b"MESSAGES 1" in line for line in lines)
        c.logout()

    await in_thread(run)


async def test_condstore_changedsince_and_unchangedsince(imap_server: IMAPServer) -> None:
    for i in range(3):
        await imap_server.deliver(msg(f"m{i}", f"{i}@x"))

    def run() -> None:
        c = connect(imap_server)
        info = c.select_folder("INBOX")
        modseq = info[b"HIGHESTMODSEQ"]
        c.add_flags([2], [b"\\Flagged"])
        changed = c.fetch("1:*", ["FLAGS"], modifiers=[f"CHANGEDSINCE {modseq}"])
        assert list(changed) == [2] and b"\\Flagged" in changed[2][b"FLAGS"]
        new_modseq = changed[2][b"MODSEQ"][0]
        assert new_modseq > modseq
        # A conditional STORE against an old modseq fails for the changed message.
        typ, data = c._imap._simple_command("UID", "STORE", "1:3",
                                            f"(UNCHANGEDSINCE {modseq})", "+FLAGS", "(\\Seen)")
        assert typ == "OK" and b"[MODIFIED 2]" in data[-1]
        flags = c.get_flags([1, 2, 3])
        assert b"\\Seen" in flags[1] and b"\\Seen" not in flags[2]
        c.logout()

    await in_thread(run)


async def test_move_uidplus_and_expunge_numbers(imap_server: IMAPServer) -> None:
    for i in range(4):
        await imap_server.deliver(msg(f"m{i}", f"{i}@x"))

    def run() -> None:
        c = connect(imap_server)
        c.select_folder("INBOX")
        c.move([2, 3], "Archive")
        assert c.search() == [1, 4]
        c.select_folder("Archive")
        fetched = c.fetch("1:*", ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        subjects = sorted(v[b"BODY[HEADER.FIELDS (SUBJECT)]"] for v in fetched.values())
        assert subjects == [b"Subject: m1\r\n\r\n", b"Subject: m2\r\n\r\n"]
        typ, data = c._imap._simple_command("UID", "COPY", "1:2", "Trash")
        assert typ == "OK" and data[0].startswith(b"[COPYUID ")
        typ, data = c._imap._simple_command("UID", "COPY", "1", "Nowhere")
        assert typ == "NO" and data[0].startswith(b"[TRYCREATE]")
        c.logout()

    await in_thread(run)


async def test_esearch_searchres_sort_thread(imap_server: IMAPServer) -> None:
    await imap_server.deliver(msg("kittiwake colony", "a@x", date="03 Dec 2026 10:00:00 +0000",
                                  frm="zed@example.net"))
    await imap_server.deliver(msg("Re: kittiwake colony", "b@x", refs="<a@x>",
                                  date="04 Dec 2026 10:00:00 +0000", frm="amy@example.net"))
    await imap_server.deliver(msg("fulmar", "c@x", date="02 Dec 2026 10:00:00 +0000",
                                  frm="bob@example.net"))

    def run() -> None:
        c = connect(imap_server)
        c.select_folder("INBOX")
        typ, _data = c._imap.uid("SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "SUBJECT",
                                "kittiwake")
        assert typ == "OK"
        esearch = b" ".join(c._imap.untagged_responses.pop("ESEARCH", []))
        for item in (b"UID", b"MIN 1", b"MAX 2", b"COUNT 2", b"ALL 1:2"):
            assert item in esearch, esearch
        typ, _ = c._imap._simple_command("SEARCH", "RETURN", "(SAVE)", "FROM", "amy")
        assert typ == "OK"
        typ, _ = c._imap._simple_command("FETCH", "$", "(UID)")  # SEARCHRES: the saved result
        assert typ == "OK" and c._imap.untagged_responses.pop("FETCH") == [b"2 (UID 2)"]
        assert c.sort(["DATE"]) == [3, 1, 2]
        assert c.sort(["FROM"]) == [2, 3, 1]
        assert c.sort(["REVERSE", "DATE"]) == [2, 1, 3]
        assert c.thread("REFERENCES") == ((3,), (1, 2))
        c.logout()

    await in_thread(run)


async def test_multiappend_binary_and_internaldate(imap_server: IMAPServer) -> None:
    attach = (b"From: a@example.org\r\nSubject: att\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
              b"Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
              b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
              b"\r\nAQIDBAU=\r\n--b--\r\n")

    def run() -> None:
        c = connect(imap_server)
        when = dt.datetime(2020, 5, 17, 8, 30, tzinfo=dt.UTC)
        result = c.multiappend("Archive", [msg("a", "1@x"), {"msg": attach, "flags": [b"\\Seen"],
                                                             "date": when}])
        assert result[0] == "OK" and b"[APPENDUID " in result[1][0]
        c.select_folder("Archive")
        data = c.fetch([2], ["BINARY[2]", "BINARY.SIZE[2]", "INTERNALDATE", "FLAGS"])[2]
        assert data[b"BINARY[2]"] == b"\x01\x02\x03\x04\x05"
        assert data[b"BINARY.SIZE[2]"] == 5
        assert data[b"INTERNALDATE"].astimezone(dt.UTC) == when
        assert b"\\Seen" in data[b"FLAGS"]
        c.logout()

    await in_thread(run)


async def test_another_sessions_changes_show_on_noop(imap_server: IMAPServer) -> None:
    for i in range(3):
        await imap_server.deliver(msg(f"m{i}", f"{i}@x"))

    def run() -> None:
        a = connect(imap_server)
        b = connect(imap_server)
        a.select_folder("INBOX")
        b.select_folder("INBOX")
        b.add_flags([1], [b"\\Flagged"])
        b.add_flags([3], [b"\\Deleted"])
        b.expunge()
        responses = a.noop()[1]
        assert (3, b"EXPUNGE") in responses
        assert any(r[1] == b"FETCH" and r[0] == 1 for r in responses)
        a.logout()
        b.logout()

    await in_thread(run)


async def test_expunge_waits_while_fetch_by_number(imap_server: IMAPServer) -> None:
    for i in range(2):
        await imap_server.deliver(msg(f"m{i}", f"{i}@x"))

    def run() -> None:
        a = connect(imap_server)
        b = connect(imap_server)
        a.select_folder("INBOX")
        b.select_folder("INBOX")
        b.add_flags([1], [b"\\Deleted"])
        b.expunge()
        # RFC 9051 §7.5.1: no EXPUNGE while answering FETCH; sequence numbers still hold.
        typ, data = a._imap.fetch("2", "(UID)")
        assert typ == "OK" and data[0] == b"2 (UID 2)"
        assert "EXPUNGE" not in a._imap.untagged_responses
        responses = a.noop()[1]
        assert (1, b"EXPUNGE") in responses
        a.use_uid = False
        assert a.fetch("1", ["UID"])[1][b"UID"] == 2
        a.logout()
        b.logout()

    await in_thread(run)
