"""The response writer against RFC 9051 and the extensions' examples."""

from __future__ import annotations

from kittiwake.imap import responses as r
from kittiwake.imap.codes import Code
from kittiwake.imap.parser import parse_sequence_set
from kittiwake.imap.responses import ResponseCode
from kittiwake.imap.values import Atom, FileLiteral, Raw


def test_tagged_with_codes() -> None:
    assert r.tagged("A003", "OK", "APPEND completed", ResponseCode.appenduid(
        38505, parse_sequence_set("3955"))) == \
        b"A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"
    assert r.tagged("A004", "OK", "Done", ResponseCode.copyuid(
        38505, parse_sequence_set("304,319:320"), parse_sequence_set("3956:3958"))) == \
        b"A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"
    assert r.tagged("a", "NO", "no such mailbox", Code.TRYCREATE) == \
        b"a NO [TRYCREATE] no such mailbox\r\n"
    assert r.tagged("a", "OK", "", Code.READ_ONLY) == b"a OK [READ-ONLY] completed\r\n"
    assert r.tagged("d105", "OK", "Conditional STORE failed", ResponseCode.modified(
        parse_sequence_set("7,9"))) == b"d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n"


def test_untagged_status_and_codes() -> None:
    assert r.untagged_status("OK", "Predicted next UID", ResponseCode.uidnext(4392)) == \
        b"* OK [UIDNEXT 4392] Predicted next UID\r\n"
    assert r.untagged_status("OK", "Ok", ResponseCode.highestmodseq(715194045007)) == \
        b"* OK [HIGHESTMODSEQ 715194045007] Ok\r\n"
    assert r.untagged_status("OK", "x", ResponseCode.permanentflags(["\\Deleted", "\\*"])) == \
        b"* OK [PERMANENTFLAGS (\\Deleted \\*)] x\r\n"
    assert r.untagged_status("OK", "Previous mailbox is now closed", Code.CLOSED) == \
        b"* OK [CLOSED] Previous mailbox is now closed\r\n"
    assert r.untagged_status("NO", "working", ResponseCode.inprogress("a1", 5, None)) == \
        b'* NO [INPROGRESS ("a1" 5 NIL)] working\r\n'


def test_text_cannot_forge_a_code_or_a_line() -> None:
    assert r.tagged("a", "NO", "[ALERT] evil\r\n* BYE") == b"a NO  [ALERT] evil  * BYE\r\n"
    assert r.tagged("a", "NO", "RFC 9051 §6.3.2 says ü") == \
        b"a NO RFC 9051 section 6.3.2 says \\xfc\r\n"


def test_greeting_bye_continuation() -> None:
    assert r.greeting(["IMAP4rev2", "AUTH=PLAIN"], "ready") == \
        b"* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] ready\r\n"
    assert r.greeting(["IMAP4rev2"], "hi", preauth=True) == \
        b"* PREAUTH [CAPABILITY IMAP4rev2] hi\r\n"
    assert r.bye("Autologout; idle for too long") == b"* BYE Autologout; idle for too long\r\n"
    assert r.continuation() == b"+ Ready\r\n"
    assert r.continuation(data=b"\0x") == b"+ AHg=\r\n"


def test_mailbox_data() -> None:
    assert r.exists(23) == b"* 23 EXISTS\r\n" and r.expunge(3) == b"* 3 EXPUNGE\r\n"
    assert r.flags(["\\Answered", "\\Seen"]) == b"* FLAGS (\\Answered \\Seen)\r\n"
    assert r.capability(["IMAP4rev2", "IDLE"]) == b"* CAPABILITY IMAP4rev2 IDLE\r\n"
    assert r.enabled(["CONDSTORE"]) == b"* ENABLED CONDSTORE\r\n"
    assert r.search([2, 3, 6]) == b"* SEARCH 2 3 6\r\n"
    assert r.search([2, 5], modseq=917162500) == b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"
    assert r.sort([2, 84, 882]) == b"* SORT 2 84 882\r\n"


def test_list_names_in_mutf7_or_utf8() -> None:
    assert r.list_response(["\\HasNoChildren"], "/", "Entwürfe") == \
        b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"\r\n'
    assert r.list_response([], "/", "Entwürfe", utf8=True) == \
        '* LIST () "/" "Entwürfe"\r\n'.encode()
    assert r.list_response(["\\Noselect"], None, "") == b'* LIST (\\Noselect) NIL ""\r\n'
    # RFC 5258 §6: CHILDINFO extended data
    assert r.list_response([], "/", "Foo", extended=[("CHILDINFO", ["SUBSCRIBED"])]) == \
        b'* LIST () "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    assert r.list_response([], "/", "Foo", verb="LSUB") == b'* LSUB () "/" "Foo"\r\n'


def test_status_esearch_vanished() -> None:
    assert r.status_response("blurdybloop", [("MESSAGES", 231), ("UIDNEXT", 44292)]) == \
        b'* STATUS "blurdybloop" (MESSAGES 231 UIDNEXT 44292)\r\n'
    assert r.esearch("A282", False, [("MIN", 2), ("COUNT", 3)]) == \
        b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'
    assert r.esearch("A2", True, [("ALL", parse_sequence_set("4:18,21,28"))]) == \
        b'* ESEARCH (TAG "A2") UID ALL 4:18,21,28\r\n'
    assert r.esearch(None, False, []) == b"* ESEARCH\r\n"
    assert r.vanished(parse_sequence_set("41,43:116"), earlier=True) == \
        b"* VANISHED (EARLIER) 41,43:116\r\n"
    assert r.vanished(parse_sequence_set("405,407")) == b"* VANISHED 405,407\r\n"


def test_fetch_with_literals_and_files() -> None:
    assert r.fetch(12, [("FLAGS", [Atom("\\Seen")]), ("UID", 4827313),
                        ("INTERNALDATE", "17-Jul-1996 02:44:25 -0700")]) == [
        b'* 12 FETCH (FLAGS (\\Seen) UID 4827313 INTERNALDATE "17-Jul-1996 02:44:25 -0700")\r\n']
    assert r.fetch(1, [("BODY[HEADER]", b"Subject: x\r\n\r\n")]) == [
        b"* 1 FETCH (BODY[HEADER] {14}\r\nSubject: x\r\n\r\n)\r\n"]
    span = FileLiteral("/m/1", 100, 2000)
    assert r.fetch(2, [("BODY[]", span), ("MODSEQ", [Raw(b"624140003")])]) == [
        b"* 2 FETCH (BODY[] {2000}\r\n", span, b" MODSEQ (624140003))\r\n"]
    assert r.untagged(3, Atom("EXISTS")) == [b"* 3 EXISTS\r\n"]


def test_namespace_id_quota_metadata_thread() -> None:
    assert r.namespace([("", "/")]) == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
    assert r.namespace([("", "/")], [("~", "/")], [("#shared/", "/"), ("#public/", "/")]) == \
        b'* NAMESPACE (("" "/")) (("~" "/")) (("#shared/" "/")("#public/" "/"))\r\n'
    assert r.id_response([("name", "Cyrus"), ("version", "1.5")]) == \
        b'* ID ("name" "Cyrus" "version" "1.5")\r\n'
    assert r.id_response(None) == b"* ID NIL\r\n"
    assert r.quota("", [("STORAGE", 10, 512)]) == b'* QUOTA "" (STORAGE 10 512)\r\n'
    assert r.quotaroot("INBOX", [""]) == b'* QUOTAROOT "INBOX" ""\r\n'
    assert r.metadata("", [("/shared/comment", b"Shared comment")]) == \
        b'* METADATA "" ("/shared/comment" "Shared comment")\r\n'
    # RFC 5256 §4's example
    assert r.thread([(2,), (3, 6, (4, 23), (44, 7, 96))]) == \
        b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"
    assert r.thread([]) == b"* THREAD\r\n"


def test_fetch_names_as_the_response_spells_them() -> None:  # RFC 9051 §7.5.2
    from kittiwake.imap import commands as c
    from kittiwake.imap.section import Partial, Section, SectionText
    assert r.fetch_name(c.BodySection(Section((1, 2), SectionText.HEADER_FIELDS,
                                              ("FROM",)), Partial(0, 100), peek=True)) == \
        "BODY[1.2.HEADER.FIELDS (FROM)]<0>"
    assert r.fetch_name(c.BodySection(Section())) == "BODY[]"
    assert r.fetch_name(c.BinarySection((1,), None, peek=True)) == "BINARY[1]"
    assert r.fetch_name(c.BinarySize(())) == "BINARY.SIZE[]"
    assert r.fetch_name(c.FetchAttr("RFC822.SIZE")) == "RFC822.SIZE"
    assert r.fetch_name(c.Preview(lazy=True)) == "PREVIEW"
