"""The command parser against RFC 9051 and the extensions' own examples."""

from __future__ import annotations

import datetime as dt

import pytest

from kittiwake.imap import commands as c
from kittiwake.imap.codes import Code
from kittiwake.imap.parser import CommandError, parse_command, parse_sequence_set
from kittiwake.imap.section import Partial, Section, SectionText

ALL = c.SearchAll()
FROM_SMITH_NOT = c.SearchNot(c.SearchHeader("FROM", "Smith"))
FEB_1994 = dt.date(1994, 2, 1)
SINCE_FEB = c.SearchDate(c.DateField.INTERNAL, c.DateOp.SINCE, FEB_1994)


def p(line: bytes, *, utf8: bool = False, messages: tuple[c.AppendMessage, ...] = ()
      ) -> c.Command:
    tag, cmd = parse_command(line, utf8=utf8, messages=messages)
    assert line.startswith(tag.encode() + b" ")
    return cmd


def bad(line: bytes, match: str, **kw: object) -> CommandError:
    with pytest.raises(CommandError, match=match) as e:
        parse_command(line, **kw)  # type: ignore[arg-type]
    return e.value


def seq(text: str) -> c.SequenceSet:
    return parse_sequence_set(text)


# --- RFC 9051 §8: the sample session ---

def test_rfc9051_sample_session() -> None:
    assert p(b"a001 login mrc secret") == c.Login("mrc", b"secret")
    assert p(b"a002 select inbox") == c.Select("INBOX")
    full = p(b"a003 fetch 12 full")
    assert isinstance(full, c.Fetch) and [i.name for i in full.items] == [  # type: ignore[union-attr]
        "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]
    assert p(b"a004 fetch 12 body[header]") == c.Fetch(
        False, seq("12"), (c.BodySection(Section(text=SectionText.HEADER)),))
    assert p(rb"a005 store 12 +flags \deleted") == c.Store(
        False, seq("12"), c.StoreMode.ADD, False, ("\\Deleted",))
    assert p(b"a006 logout") == c.Logout()


# --- RFC 9051 §6 examples ---

@pytest.mark.parametrize(("line", "cmd"), [
    (b"abcd CAPABILITY", c.Capability()),
    (b"a002 NOOP", c.Noop()),
    (b"a002 STARTTLS", c.StartTLS()),
    (b"A932 EXAMINE blurdybloop", c.Select("blurdybloop", readonly=True)),
    (b"A003 CREATE owatagusiam/", c.Create("owatagusiam/")),
    (b"A683 DELETE blurdybloop", c.Delete("blurdybloop")),
    (b"A683 RENAME blurdybloop sarasoop", c.Rename("blurdybloop", "sarasoop")),
    (b"A002 SUBSCRIBE #news.comp.mail.mime", c.Subscribe("#news.comp.mail.mime")),
    (b"A002 UNSUBSCRIBE #news.comp.mail.mime", c.Unsubscribe("#news.comp.mail.mime")),
    (b'A101 LIST "" ""', c.List("", ("",))),
    (b'A102 LIST #news.comp.mail.misc ""', c.List("#news.comp.mail.misc", ("",))),
    (b"A202 LIST ~/Mail/ %", c.List("~/Mail/", ("%",))),
    (b'A682 LIST "" *', c.List("", ("*",))),
    (b"A001 NAMESPACE", c.Namespace()),
    (b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
     c.Status("blurdybloop", ("UIDNEXT", "MESSAGES"))),
    (b"A002 IDLE", c.Idle()),
    (b"A341 CLOSE", c.Close()),
    (b"A342 UNSELECT", c.Unselect()),
    (b"A202 EXPUNGE", c.Expunge()),
    (b"A003 UID EXPUNGE 3000:3002", c.Expunge(seq("3000:3002"))),
    (b"A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
     c.Search(False, c.SearchAnd((c.SearchFlag("\\Flagged"), SINCE_FEB, FROM_SMITH_NOT)),
              None, ())),
    (b'A284 SEARCH TEXT "string not in mailbox"',
     c.Search(False, c.SearchText("string not in mailbox"))),
    (b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
     c.Fetch(False, seq("2:4"), (c.FetchAttr("FLAGS"), c.BodySection(
         Section(text=SectionText.HEADER_FIELDS, fields=("DATE", "FROM")))))),
    (rb"A003 STORE 2:4 +FLAGS (\Deleted)",
     c.Store(False, seq("2:4"), c.StoreMode.ADD, False, ("\\Deleted",))),
    (rb"A003 STORE 2:4 -FLAGS.SILENT \Seen \Flagged",
     c.Store(False, seq("2:4"), c.StoreMode.REMOVE, True, ("\\Seen", "\\Flagged"))),
    (b"A003 COPY 2:4 MEETING", c.Copy(False, seq("2:4"), "MEETING")),
    (b"A3 MOVE 42:69 foo", c.Move(False, seq("42:69"), "foo")),
    (b"C01 UID MOVE $ Other", c.Move(True, seq("$"), "Other")),  # RFC 5182 with RFC 6851
    (b"A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.HEADER)",  # RFC 5182 §2.1
     c.Fetch(False, seq("$"), (c.FetchAttr("UID"), c.FetchAttr("INTERNALDATE"),
                               c.FetchAttr("FLAGS"), c.FetchAttr("RFC822.HEADER")))),
    (b"A301 UID SEARCH UID $ SMALLER 4096", c.Search(True, c.SearchAnd((  # RFC 5182 §2.4
        c.SearchSequence(seq("$"), True), c.SearchSize(4096, False))))),
    (b"A282 SEARCH RETURN (SAVE) FLAGGED", c.Search(False, c.SearchFlag("\\Flagged"),
                                                   None, ("SAVE",))),
    (b"a STATUS INBOX (DELETED-STORAGE)", c.Status("INBOX", ("DELETED-STORAGE",))),
    (b"A999 UID FETCH 4827313:4828442 FLAGS",
     c.Fetch(True, seq("4827313:4828442"), (c.FetchAttr("FLAGS"),))),
    (b"a023 ID (\"name\" \"sodr\" \"version\" \"19.34\")",
     c.Id((("name", "sodr"), ("version", "19.34")))),
    (b"a023 ID NIL", c.Id(None)),
    (b"t2 ENABLE CONDSTORE X-GOOD-IDEA", c.Enable(("CONDSTORE", "X-GOOD-IDEA"))),
])
def test_rfc9051_examples(line: bytes, cmd: c.Command) -> None:
    assert p(line) == cmd


def test_search_return_min_count() -> None:  # RFC 9051 §6.4.4 / RFC 4731
    cmd = p(b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
    assert cmd == c.Search(False, c.SearchAnd((c.SearchFlag("\\Flagged"), SINCE_FEB,
                                               FROM_SMITH_NOT)), None, ("MIN", "COUNT"))


def test_search_charset_with_literal() -> None:
    cmd = p(b"A285 SEARCH CHARSET UTF-8 TEXT {12}\r\n" + "ĉeĥoslovakio".encode()[:12])
    assert isinstance(cmd, c.Search) and cmd.charset == "UTF-8"


def test_every_search_key() -> None:
    line = (rb"t SEARCH ALL ANSWERED BCC a BEFORE 1-Feb-1994 BODY b CC c DELETED DRAFT "
            rb"FLAGGED FROM d HEADER X-Foo e KEYWORD $Junk LARGER 10 NEW NOT SEEN OLD "
            rb"ON 2-Mar-2000 OR SEEN DRAFT RECENT SEEN SENTBEFORE 1-Jan-2000 "
            rb"SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 SINCE 1-Jan-2000 SMALLER 5 "
            rb"SUBJECT f TEXT g TO h UID 1:* UNANSWERED UNDELETED UNDRAFT UNFLAGGED "
            rb"UNKEYWORD $x UNSEEN 1,3:5 $ (SEEN) MODSEQ 5 OLDER 60 YOUNGER 30 "
            rb"SAVEDBEFORE 1-Jan-2020 SAVEDON 1-Jan-2020 SAVEDSINCE 1-Jan-2020 "
            rb"SAVEDATESUPPORTED EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9")
    cmd = p(line)
    assert isinstance(cmd, c.Search) and isinstance(cmd.criteria, c.SearchAnd)
    keys = cmd.criteria.keys
    assert len(keys) == 47
    assert keys[11] == c.SearchKeyword("$Junk")
    assert keys[13] == c.SearchAnd((c.SearchFlag("\\Recent"), c.SearchFlag("\\Seen", False)))
    assert keys[15] == c.SearchFlag("\\Recent", False)
    assert keys[-1] == c.SearchObjectId("THREADID", "T64b478a75b7ea9")
    assert c.SearchSequence(c.SequenceSet(saved=True)) in keys


@pytest.mark.parametrize(("line", "match"), [
    (b"t SEARCH", "expected a space"),
    (b"t SEARCH FOO", "unknown search key FOO"),
    (b"t SEARCH BEFORE 31-Feb-2000", "no such date"),
    (b"t SEARCH BEFORE 1-Foo-2000", "month"),
    (b"t SEARCH (SEEN", "expected"),
    (b"t SEARCH OR SEEN", "expected a space"),
    (b"t SEARCH UID 0", "must not be zero"),
    (b"t SEARCH LARGER 99999999999999999999", "too large"),
    (b"t SEARCH " + b"NOT " * 100 + b"SEEN", "nested"),
    (b"t SEARCH " + b"(" * 100 + b"SEEN" + b")" * 100, "nested"),
])
def test_bad_searches(line: bytes, match: str) -> None:
    bad(line, match)


@pytest.mark.parametrize("line", [
    b"t SEARCH CHARSET X-KLINGON TEXT x",
    b"t SEARCH CHARSET ISO-8859-1 TEXT x",  # Python has a codec; we do not offer it
    b"t UID SEARCH RETURN (COUNT) CHARSET koi8-r SUBJECT x",
    b"t SORT (DATE) ISO-8859-1 ALL",
    b"t THREAD REFERENCES WINDOWS-1252 ALL",
])
def test_unsupported_charset_is_no_badcharset(line: bytes) -> None:
    # RFC 9051 §6.4.4 / §7.1: NO [BADCHARSET (the charsets we take)], not BAD.
    e = bad(line, "is not supported")
    assert (e.status, e.code, e.tag, e.code_args) == ("NO", Code.BADCHARSET, "t",
                                                      "(UTF-8 US-ASCII)")


@pytest.mark.parametrize("charset", [b"UTF-8", b"utf-8", b"US-ASCII", b"us-ascii"])
def test_supported_charsets(charset: bytes) -> None:
    cmd = p(b"t SEARCH CHARSET " + charset + b" SUBJECT \"caf\xc3\xa9\"")
    assert isinstance(cmd, c.Search) and cmd.criteria == c.SearchHeader("SUBJECT", "café")
    sort = p(b"t SORT (DATE) " + charset + b" ALL")
    assert isinstance(sort, c.Sort) and sort.charset == charset.decode()


# --- FETCH items ---

@pytest.mark.parametrize(("item", "parsed"), [
    (b"BODY[]", c.BodySection(Section())),
    (b"BODY.PEEK[1.2.3]<0.100>", c.BodySection(Section((1, 2, 3)), Partial(0, 100), True)),
    (b"BODY[1.MIME]", c.BodySection(Section((1,), SectionText.MIME))),
    (b"BODY[2.TEXT]", c.BodySection(Section((2,), SectionText.TEXT))),
    (b"BODY[HEADER.FIELDS.NOT (Received x-y)]",
     c.BodySection(Section((), SectionText.HEADER_FIELDS_NOT, ("RECEIVED", "X-Y")))),
    (b"BINARY[1]", c.BinarySection((1,))),
    (b"BINARY.PEEK[]<5.10>", c.BinarySection((), Partial(5, 10), True)),
    (b"BINARY.SIZE[1.2]", c.BinarySize((1, 2))),
    (b"BODYSTRUCTURE", c.FetchAttr("BODYSTRUCTURE")),
    (b"body", c.FetchAttr("BODY")),
    (b"RFC822.HEADER", c.FetchAttr("RFC822.HEADER")),
    (b"MODSEQ", c.FetchAttr("MODSEQ")),
    (b"EMAILID", c.FetchAttr("EMAILID")),
    (b"SAVEDATE", c.FetchAttr("SAVEDATE")),
    (b"PREVIEW", c.Preview()),
    (b"PREVIEW (LAZY)", c.Preview(lazy=True)),  # RFC 8970 §3.1
])
def test_fetch_items(item: bytes, parsed: c.FetchItem) -> None:
    cmd = p(b"t FETCH 1 (" + item + b")")
    assert isinstance(cmd, c.Fetch) and cmd.items == (parsed,)


@pytest.mark.parametrize(("line", "match"), [
    (b"t FETCH 1 (BODY[MIME])", "MIME after a part"),
    (b"t FETCH 1 (BODY[1.HEADER.FIELDS ()])", "must not be empty"),
    (b"t FETCH 1 (BODY[]<0.0>)", "must not be zero"),
    (b"t FETCH 1 (FOO)", "unknown fetch attribute FOO"),
    (b"t FETCH 1 ()", "must not be empty"),
    (b"t FETCH 0 FLAGS", "must not be zero"),
    (b"t FETCH 1:* FLAGS (VANISHED)", "VANISHED needs UID FETCH"),
    (b"t FETCH a FLAGS", "message number"),
])
def test_bad_fetches(line: bytes, match: str) -> None:
    bad(line, match)


# --- sequence sets ---

def test_sequence_sets() -> None:
    s = seq("2,4:7,9,12:*")
    assert s.ranges == ((2, 2), (4, 7), (9, 9), (12, None))
    assert s.values(13) == [2, 4, 5, 6, 7, 9, 12, 13]
    assert s.contains(13, 13) and not s.contains(8, 13) and str(s) == "2,4:7,9,12:*"
    assert seq("*:4").values(10) == [4, 5, 6, 7, 8, 9, 10]  # RFC 9051 §9: *:4 is 4:*
    assert seq("5:2").contains(3, 10)
    assert seq("$").saved and str(seq("$")) == "$"
    with pytest.raises(ValueError):
        seq("$").contains(1, 1)


# --- mailbox names ---

def test_inbox_is_case_insensitive_only_alone() -> None:
    assert p(b"t SELECT iNbOx") == c.Select("INBOX")
    assert p(b"t SELECT inbox/sub") == c.Select("inbox/sub")


def test_modified_utf7_names_are_decoded() -> None:
    assert p(b"t CREATE Entw&APw-rfe") == c.Create("Entwürfe")
    bad(b"t CREATE &AGE-", "must not be base64-encoded")


def test_utf8_names_when_enabled() -> None:
    # RFC 6855 §3: after ENABLE UTF8=ACCEPT, names are UTF-8 and '&' is itself.
    assert p('t CREATE "Entwürfe & co"'.encode(), utf8=True) == c.Create("Entwürfe & co")
    assert p("t CREATE Entwürfe".encode(), utf8=True) == c.Create("Entwürfe")
    bad(b"t CREATE \"\xff\"", "not valid UTF-8", utf8=True)


# --- LITERAL+, LOGIN, AUTHENTICATE ---

def test_non_synchronising_literals() -> None:  # RFC 7888 §3 example
    assert p(b"A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man") == \
        c.Login("FRED FOOBAR", b"fat man")


def test_sasl_ir() -> None:  # RFC 4959 §3
    assert p(b"a01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=") == \
        c.Authenticate("PLAIN", b"test\0test\0test")
    assert p(b"a01 AUTHENTICATE EXTERNAL =") == c.Authenticate("EXTERNAL", b"")
    assert p(b"a01 AUTHENTICATE scram-sha-256") == c.Authenticate("SCRAM-SHA-256")
    bad(b"a01 AUTHENTICATE PLAIN dGVzdA", "invalid base64")


# --- SELECT with CONDSTORE / QRESYNC (RFC 7162) ---

def test_select_condstore_qresync() -> None:
    assert p(b"a SELECT INBOX (CONDSTORE)") == c.Select("INBOX", condstore=True)
    assert p(b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 "
             b"41,43:211,214:541))") == c.Select("INBOX", qresync=c.QResync(
                 67890007, 20050715194045000, seq("41,43:211,214:541")))
    cmd = p(b"B01 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 "
            b"(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976)))")
    assert isinstance(cmd, c.Select) and cmd.qresync is not None
    assert cmd.qresync.seq_match == (seq("5000,7500,9000,9990:9999"),
                                     seq("15000,22500,27000,29970,29973,29976"))
    assert p(b"a SELECT INBOX (QRESYNC (1 2))") == c.Select("INBOX", qresync=c.QResync(1, 2))
    bad(b"a SELECT INBOX (FOO)", "unknown SELECT parameter FOO")


def test_condstore_fetch_store_search() -> None:
    assert p(b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)") == c.Fetch(
        True, seq("1:*"), (c.FetchAttr("FLAGS"),), 12345)
    assert p(b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)") == c.Fetch(
        True, seq("300:500"), (c.FetchAttr("FLAGS"),), 12345, True)
    assert p(rb"a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\Deleted)") \
        == c.Store(True, seq("6,4,8"), c.StoreMode.ADD, True, ("\\Deleted",), 12121230045)
    cmd = p(b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338')
    assert cmd == c.Search(False, c.SearchModSeq(620162338, "/flags/\\draft", "all"))


# --- LIST-EXTENDED, LIST-STATUS, SPECIAL-USE ---

@pytest.mark.parametrize(("line", "cmd"), [
    (b'A04 LIST (SUBSCRIBED) "" "*"', c.List("", ("*",), ("SUBSCRIBED",))),
    (b'A05 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)',
     c.List("", ("%",), ("SUBSCRIBED", "RECURSIVEMATCH"), ("CHILDREN",))),
    (b'A06 LIST "" ("foo" "foo/*")', c.List("", ("foo", "foo/*"))),
    (b'A02 LIST (REMOTE) "" %', c.List("", ("%",), ("REMOTE",))),
    (b'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))',
     c.List("", ("%",), status=("MESSAGES", "UNSEEN"))),
    (b't1 LIST "" "%" RETURN (SPECIAL-USE)', c.List("", ("%",), returns=("SPECIAL-USE",))),
    (b't1 LIST (SPECIAL-USE) "" "*"', c.List("", ("*",), ("SPECIAL-USE",))),
    (b'A01 LSUB "#news." "comp.mail.*"', c.Lsub("#news.", "comp.mail.*")),
    (rb"t1 CREATE MySpecial (USE (\Drafts \Sent))", c.Create("MySpecial", ("\\Drafts", "\\Sent"))),
])
def test_list_extensions(line: bytes, cmd: c.Command) -> None:
    assert p(line) == cmd


def test_recursivematch_alone_is_bad() -> None:  # RFC 5258 §3.1
    bad(b'a LIST (RECURSIVEMATCH) "" *', "RECURSIVEMATCH needs another")


def test_status_items() -> None:  # RFC 8438, RFC 7162, RFC 8474, RFC 7889
    assert p(b"a STATUS INBOX (SIZE HIGHESTMODSEQ MAILBOXID APPENDLIMIT DELETED)") == c.Status(
        "INBOX", ("SIZE", "HIGHESTMODSEQ", "MAILBOXID", "APPENDLIMIT", "DELETED"))
    bad(b"a STATUS INBOX ()", "must not be empty")
    bad(b"a STATUS INBOX (FOO)", "unknown status item FOO")


# --- APPEND (with streamed message placeholders) ---

M5 = c.AppendMessage(size=5)


def test_append_with_flags_and_date() -> None:
    cmd = p(b'A003 APPEND saved-messages (\\Seen) "17-Jul-1996 02:44:25 -0700" \0',
            messages=(M5,))
    when = dt.datetime(1996, 7, 17, 2, 44, 25, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    assert cmd == c.Append("saved-messages", (c.AppendMessage(("\\Seen",), when, 5),))


def test_multiappend_and_utf8() -> None:  # RFC 3502 §6.3.11, RFC 6855 §4
    m = (M5, c.AppendMessage(size=7, binary=True))
    cmd = p(b'A APPEND INBOX \0 (\\Draft) UTF8 (\0)', messages=m)
    assert cmd == c.Append("INBOX", (M5, c.AppendMessage(("\\Draft",), None, 7, True, True)))


def test_replace() -> None:  # RFC 8508 §3
    assert p(b"A001 UID REPLACE 4 Drafts (\\Seen \\Draft) \0", messages=(M5,)) == \
        c.Replace(True, 4, "Drafts", c.AppendMessage(("\\Seen", "\\Draft"), None, 5))


def test_append_refuses_recent_and_bad_dates() -> None:
    bad(b"a APPEND INBOX (\\Recent) \0", "Recent", messages=(M5,))
    bad(b'a APPEND INBOX "30-Feb-2000 00:00:00 +0000" \0', "no such date", messages=(M5,))
    bad(b'a APPEND INBOX "1-Feb-2000 00:00:00 0000" \0', "zone", messages=(M5,))


# --- QUOTA, METADATA, NOTIFY, SORT, THREAD, COMPRESS ---

@pytest.mark.parametrize(("line", "cmd"), [
    (b'G0001 GETQUOTA "!partition/sda4"', c.GetQuota("!partition/sda4")),
    (b"A003 GETQUOTAROOT INBOX", c.GetQuotaRoot("INBOX")),
    (b'S0000 SETQUOTA "#user/alice" (STORAGE 510)', c.SetQuota("#user/alice",
                                                              (("STORAGE", 510),))),
    (b'a GETMETADATA "" /shared/comment', c.GetMetadata("", ("/shared/comment",))),
    (b"a GETMETADATA INBOX (/shared/comment /private/comment)",
     c.GetMetadata("INBOX", ("/shared/comment", "/private/comment"))),
    (b"a GETMETADATA (MAXSIZE 1024 DEPTH infinity) INBOX /shared/comment",
     c.GetMetadata("INBOX", ("/shared/comment",), 1024, "infinity")),
    (b"a SETMETADATA INBOX (/private/comment {33}\r\nMy new comment across\r\ntwo lines.)",
     c.SetMetadata("INBOX", (("/private/comment", b"My new comment across\r\ntwo lines."),))),
    (b"a SETMETADATA INBOX (/private/comment NIL)",
     c.SetMetadata("INBOX", (("/private/comment", None),))),
    (b"a NOTIFY NONE", c.Notify(None)),
    (b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994",
     c.Sort(False, (c.SortCriterion("SUBJECT"),), "UTF-8", SINCE_FEB)),
    (b"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
     c.Sort(False, (c.SortCriterion("SUBJECT"), c.SortCriterion("DATE", True)), "UTF-8", ALL)),
    (b"A283 SORT (DISPLAYFROM) UTF-8 ALL",
     c.Sort(False, (c.SortCriterion("DISPLAYFROM"),), "UTF-8", ALL)),
    (b"A282 SORT RETURN (MIN COUNT) (DATE) UTF-8 SINCE 1-Feb-1994",
     c.Sort(False, (c.SortCriterion("DATE"),), "UTF-8", SINCE_FEB, ("MIN", "COUNT"))),
    (b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000",
     c.Thread(False, "ORDEREDSUBJECT", "UTF-8",
              c.SearchDate(c.DateField.INTERNAL, c.DateOp.SINCE, dt.date(2000, 3, 5)))),
    (b'A284 UID THREAD REFERENCES US-ASCII TEXT "gewp"',
     c.Thread(True, "REFERENCES", "US-ASCII", c.SearchText("gewp"))),
    (b"a COMPRESS DEFLATE", c.Compress("DEFLATE")),
    (b"a1 search UNSEEN YOUNGER 259200",  # RFC 5032 §4
     c.Search(False, c.SearchAnd((c.SearchFlag("\\Seen", False), c.SearchAge(259200, False))))),
    (b"27 SEARCH EMAILID M6d99ac3275bb4e",  # RFC 8474 §6
     c.Search(False, c.SearchObjectId("EMAILID", "M6d99ac3275bb4e"))),
])
def test_extension_examples(line: bytes, cmd: c.Command) -> None:
    assert p(line) == cmd


def test_notify_set() -> None:  # RFC 5465 §3
    cmd = p(b"a NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header.fields "
            b"(from to subject)]) MessageExpunge)) (subtree Lists (MailboxName "
            b"SubscriptionChange)) (mailboxes (INBOX Sent) NONE)")
    assert isinstance(cmd, c.Notify) and cmd.status and cmd.groups is not None
    sel, sub, mbx = cmd.groups
    assert sel.filter == "SELECTED" and sel.events[0].name == "MESSAGENEW"
    assert sel.events[0].fetch[0] == c.FetchAttr("UID")
    assert sub == c.NotifyGroup("SUBTREE", ("Lists",), (
        c.NotifyEvent("MAILBOXNAME"), c.NotifyEvent("SUBSCRIPTIONCHANGE")))
    assert mbx == c.NotifyGroup("MAILBOXES", ("INBOX", "Sent"), ())
    # An unknown event is syntactically an event-ext (RFC 5465 §8): the driver says BADEVENT.
    bogus = p(b"a NOTIFY SET (selected (Bogus))")
    assert isinstance(bogus, c.Notify) and bogus.groups is not None
    assert bogus.groups[0].events == (c.NotifyEvent("BOGUS"),)
    bad(b"a NOTIFY SET (elsewhere (MessageNew MessageExpunge))", "unknown NOTIFY filter")


# --- general syntax errors ---

@pytest.mark.parametrize(("line", "match"), [
    (b"", "starts with a tag"),
    (b"+ NOOP", "starts with a tag"),
    (b"a1", "expected a command name"),
    (b"a1 ", "expected a command name"),
    (b"a1 FROB", "unknown command FROB"),
    (b"a1 UID NOOP", "UID NOOP is not a command"),
    (b"a1 NOOP now", "unexpected ' now'"),
    (b"a1 LOGIN \"joe", "closing"),
    (b"a1 LOGIN \"jo\\e\" x", "may only escape"),
    (b"a1 LOGIN {5}\r\nab", "shorter than announced"),
    (b"a1 LOGIN {2}\r\na\0 x", "NUL in a literal"),
    (b"a1 LOGIN ~{2}\r\nab x", "literal8"),
    (b"a1 SELECT \xc3\xa4", "8-bit"),
    (b"a1 STORE 1 FLAGS (\\Recent)", "Recent"),
    (b"a1 STORE 1 BOGUS (\\Seen)", "FLAGS or FLAGS.SILENT"),
    (b"a1 ENABLE", "expected a space"),
])
def test_syntax_errors_have_reasons(line: bytes, match: str) -> None:
    bad(line, match)


def test_error_keeps_the_tag() -> None:
    assert bad(b"x9 FROB", "unknown").tag == "x9"
    assert bad(b"+x FROB", "tag").tag is None
