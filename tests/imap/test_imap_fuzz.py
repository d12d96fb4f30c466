"""Properties: any octets give a command or a BAD with a reason, never an
exception; the session stays usable after a BAD; typed commands written as
a client would write them parse back equal."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from imap_helpers import drive, new_session, ok_all, output

from kittiwake.imap import commands as c
from kittiwake.imap import mutf7
from kittiwake.imap.events import AppendStart, CommandReceived, Event
from kittiwake.imap.parser import CommandError, parse_command
from kittiwake.imap.section import Partial, Section, SectionText
from kittiwake.imap.server import ServerSession, State

WORDS = [b"a1", b" ", b"FETCH", b"UID", b"SEARCH", b"APPEND", b"LOGIN", b"SELECT", b"LIST",
         b"STORE", b"(", b")", b"[", b"]", b"<", b">", b"{3}\r\n", b"{2+}\r\n", b"~{1}\r\n",
         b'"', b"\\", b"*", b"%", b"$", b"1:*", b"BODY", b"BODY.PEEK", b"HEADER.FIELDS",
         b"INBOX", b"NIL", b"RETURN", b"CHARSET", b"OR", b"NOT", b"\r\n", b"\0", b"\xff",
         b"+FLAGS", b"\\Seen", b"1-Jan-2000", b"&AOQ-", b"UTF8", b"QRESYNC", b"NOTIFY", b"SET"]
TOKENS = st.lists(st.sampled_from(WORDS) | st.binary(max_size=4), max_size=30).map(b"".join)


@settings(max_examples=1500, deadline=None)
@given(data=st.binary(max_size=200) | TOKENS, utf8=st.booleans())
def test_parser_gives_a_command_or_a_reason(data: bytes, utf8: bool) -> None:
    msgs = (c.AppendMessage(size=1),) * data.count(b"\0")
    try:
        tag, cmd = parse_command(data, utf8=utf8, messages=msgs)
    except CommandError as e:
        assert e.reason and e.status in ("BAD", "NO")
        assert e.tag is None or data.startswith(e.tag.encode() + b" ") or data == e.tag.encode()
        return
    assert isinstance(cmd, c.Command) and tag


def answer(session: ServerSession, event: Event) -> None:
    ok_all(session, event)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.binary(max_size=60) | TOKENS, max_size=8),
       state=st.sampled_from([State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED]))
def test_session_never_raises(chunks: list[bytes], state: State) -> None:
    s = new_session(state=state, max_line=80, max_literal=50)
    for chunk in chunks:
        drive(s, chunk, answer)
    for piece in s.data_to_send():
        assert isinstance(piece, bytes)


STOPPERS = (c.Logout, c.StartTLS, c.Compress, c.Idle, c.Authenticate)


@settings(max_examples=600, deadline=None)
@given(garbage=(st.binary(max_size=80) | TOKENS).filter(
    lambda g: b"\n" not in g and not g.rstrip().endswith(b"}")))
def test_session_usable_after_a_bad_line(garbage: bytes) -> None:
    s = new_session(state=State.SELECTED)
    seen: list[Event] = []

    def record(session: ServerSession, event: Event) -> None:
        seen.append(event)
        if isinstance(event, AppendStart):
            session.no("refused")
        else:
            session.ok()

    batch = s.receive(garbage + b"\r\n")
    for ev in batch:
        if isinstance(ev, CommandReceived):
            assume(not isinstance(ev.command, STOPPERS))
        if ev.needs_reply:
            record(s, ev)
    assume(s.state == State.SELECTED)
    _, out = drive(s, b"z NOOP\r\n")
    everything = output(s) + out
    assert out.endswith(b"z OK NOOP completed\r\n"), everything


# --- round trip: typed commands -> client octets -> the same commands ---

NAME_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x7f")
MAILBOX = st.text(NAME_CHARS, min_size=1, max_size=12).filter(
    lambda n: n.upper() != "INBOX") | st.just("INBOX")
NZ = st.integers(1, 2**32 - 1)
SEQ_NUM = NZ | st.none()
SEQSET = st.lists(st.tuples(SEQ_NUM, SEQ_NUM), min_size=1, max_size=4).map(
    lambda rs: c.SequenceSet(tuple(rs))) | st.just(c.SequenceSet(saved=True))
FLAG = st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft",
                        "$Junk", "$Forwarded", "NonJunk"])
TEXT = st.text(NAME_CHARS, max_size=10)
DATE = st.dates(dt.date(1970, 1, 1), dt.date(9999, 12, 31))


def astring(data: bytes) -> bytes:
    if data and all(0x21 <= b < 0x7f and b not in b'(){ %*"\\]' for b in data):
        return data
    if data.isascii() and b"\r" not in data and b"\n" not in data and b"\0" not in data:
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d+}\r\n" % len(data) + data


def mailbox(name: str) -> bytes:
    return astring(mutf7.encode(name).encode("ascii"))


def seqset(s: c.SequenceSet) -> bytes:
    return str(s).encode()


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def date(d: dt.date) -> bytes:
    return f"{d.day}-{MONTHS[d.month - 1]}-{d.year:04d}".encode()


def search_keys(depth: int = 2) -> st.SearchStrategy[c.SearchKey]:
    leaves = st.one_of(
        st.just(c.SearchAll()),
        st.builds(c.SearchFlag, st.sampled_from(["\\Seen", "\\Answered", "\\Flagged",
                                                 "\\Deleted", "\\Draft"]), st.booleans()),
        st.builds(c.SearchKeyword, st.sampled_from(["$Junk", "Foo"]), st.booleans()),
        st.builds(c.SearchHeader, st.sampled_from(["FROM", "TO", "CC", "BCC", "SUBJECT",
                                                   "X-LIST"]), TEXT),
        st.builds(c.SearchText, TEXT, st.booleans()),
        st.builds(c.SearchDate, st.sampled_from(list(c.DateField)),
                  st.sampled_from(list(c.DateOp)), DATE),
        st.builds(c.SearchSize, st.integers(0, 2**63 - 1), st.booleans()),
        st.builds(c.SearchSequence, SEQSET, st.booleans()),
        st.builds(c.SearchAge, NZ, st.booleans()),
        st.builds(c.SearchModSeq, st.integers(0, 2**63 - 1)),
        st.builds(c.SearchObjectId, st.sampled_from(["EMAILID", "THREADID"]),
                  st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z")),
    )
    if depth == 0:
        return leaves
    sub = search_keys(depth - 1)
    return st.one_of(
        leaves, st.builds(c.SearchNot, sub), st.builds(c.SearchOr, sub, sub),
        st.lists(sub, min_size=1, max_size=3).map(lambda ks: c.SearchAnd(tuple(ks))))


def fmt_key(k: c.SearchKey) -> bytes:
    if isinstance(k, c.SearchAll):
        return b"ALL"
    if isinstance(k, c.SearchFlag):
        return (b"" if k.present else b"UN") + k.flag[1:].upper().encode()
    if isinstance(k, c.SearchKeyword):
        return (b"KEYWORD " if k.present else b"UNKEYWORD ") + k.keyword.encode()
    if isinstance(k, c.SearchHeader):
        v = astring(k.value.encode())
        if k.field.startswith("X-"):
            return b"HEADER " + k.field.encode() + b" " + v
        return k.field.encode() + b" " + v
    if isinstance(k, c.SearchText):
        return (b"BODY " if k.body_only else b"TEXT ") + astring(k.value.encode())
    if isinstance(k, c.SearchDate):
        prefix = {c.DateField.INTERNAL: "", c.DateField.SENT: "SENT",
                  c.DateField.SAVED: "SAVED"}[k.field]
        return (prefix + k.op.value.upper()).encode() + b" " + date(k.date)
    if isinstance(k, c.SearchSize):
        return (b"LARGER %d" if k.larger else b"SMALLER %d") % k.size
    if isinstance(k, c.SearchSequence):
        return (b"UID " if k.uid else b"") + seqset(k.set)
    if isinstance(k, c.SearchAge):
        return (b"OLDER %d" if k.older else b"YOUNGER %d") % k.seconds
    if isinstance(k, c.SearchModSeq):
        return b"MODSEQ %d" % k.modseq
    if isinstance(k, c.SearchObjectId):
        return k.kind.encode() + b" " + k.id.encode()
    if isinstance(k, c.SearchNot):
        return b"NOT " + fmt_key(k.key)
    if isinstance(k, c.SearchOr):
        return b"OR " + fmt_key(k.left) + b" " + fmt_key(k.right)
    assert isinstance(k, c.SearchAnd)
    return b"(" + b" ".join(fmt_key(x) for x in k.keys) + b")"


PART = st.lists(st.integers(1, 99), min_size=1, max_size=3).map(tuple)
FIELDS = st.lists(st.sampled_from(["FROM", "TO", "SUBJECT", "X-SPAM"]), min_size=1,
                  max_size=3).map(tuple)
SECTION = st.one_of(
    st.just(Section()), st.builds(Section, PART),
    st.builds(Section, PART | st.just(()), st.sampled_from([SectionText.HEADER,
                                                            SectionText.TEXT])),
    st.builds(Section, PART, st.just(SectionText.MIME)),
    st.builds(Section, PART | st.just(()), st.sampled_from(
        [SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT]), FIELDS))
PARTIAL = st.none() | st.builds(Partial, st.integers(0, 2**40), st.integers(1, 2**40))
FETCH_ITEM = st.one_of(
    st.sampled_from(["ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "UID", "BODY",
                     "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT", "MODSEQ",
                     "EMAILID", "THREADID", "SAVEDATE"]).map(c.FetchAttr),
    st.builds(c.BodySection, SECTION, PARTIAL, st.booleans()),
    st.builds(c.BinarySection, PART | st.just(()), PARTIAL, st.booleans()),
    st.builds(c.BinarySize, PART | st.just(())),
    st.builds(c.Preview, st.booleans()),
)


def fmt_item(i: c.FetchItem) -> bytes:
    def partial(p: Partial | None) -> bytes:
        return b"" if p is None else b"<%d.%d>" % (p.origin, p.count)
    if isinstance(i, c.FetchAttr):
        return i.name.encode()
    if isinstance(i, c.BodySection):
        return (b"BODY.PEEK[" if i.peek else b"BODY[") + i.section.spec().encode() + b"]" + \
            partial(i.partial)
    part = ".".join(map(str, i.part)).encode() if not isinstance(i, c.Preview) else b""
    if isinstance(i, c.BinarySection):
        return (b"BINARY.PEEK[" if i.peek else b"BINARY[") + part + b"]" + partial(i.partial)
    if isinstance(i, c.BinarySize):
        return b"BINARY.SIZE[" + part + b"]"
    return b"PREVIEW (LAZY)" if i.lazy else b"PREVIEW"


COMMANDS = st.one_of(
    st.builds(c.Login, TEXT.filter(bool), st.binary(min_size=1, max_size=10).filter(
        lambda b: b"\0" not in b)),
    st.builds(c.Select, MAILBOX, st.booleans(), st.booleans()),
    st.builds(c.Create, MAILBOX, st.lists(st.sampled_from(["\\Sent", "\\Drafts"]),
                                          max_size=2).map(tuple)),
    st.builds(c.Rename, MAILBOX, MAILBOX),
    st.builds(c.Status, MAILBOX, st.lists(st.sampled_from(
        ["MESSAGES", "UIDNEXT", "UNSEEN", "SIZE", "HIGHESTMODSEQ"]), min_size=1,
        max_size=3).map(tuple)),
    st.builds(c.Copy, st.booleans(), SEQSET, MAILBOX),
    st.builds(c.Move, st.booleans(), SEQSET, MAILBOX),
    st.builds(c.Fetch, st.just(True), SEQSET, st.lists(FETCH_ITEM, min_size=1,
                                                       max_size=4).map(tuple),
              st.none() | st.integers(0, 2**63 - 1), st.booleans()),
    st.builds(c.Fetch, st.just(False), SEQSET, st.lists(FETCH_ITEM, min_size=1,
                                                        max_size=4).map(tuple),
              st.none() | st.integers(0, 2**63 - 1)),
    st.builds(c.Store, st.booleans(), SEQSET, st.sampled_from(list(c.StoreMode)),
              st.booleans(), st.lists(FLAG, max_size=3).map(tuple),
              st.none() | st.integers(0, 2**63 - 1)),
    st.builds(c.Search, st.booleans(), search_keys(), st.just("UTF-8") | st.none(),
              st.none() | st.lists(st.sampled_from(["MIN", "MAX", "COUNT", "ALL", "SAVE"]),
                                   max_size=3).map(tuple)),
    st.builds(c.Expunge, st.none() | SEQSET),
    st.builds(c.List, MAILBOX | st.just(""), st.lists(MAILBOX, min_size=1,
                                                      max_size=2).map(tuple)),
    st.builds(c.Enable, st.lists(st.sampled_from(["CONDSTORE", "UTF8=ACCEPT", "QRESYNC"]),
                                 min_size=1, max_size=3).map(tuple)),
)


def fmt(cmd: c.Command) -> bytes:
    if isinstance(cmd, c.Login):
        return b"LOGIN " + astring(cmd.username.encode()) + b" " + astring(cmd.password)
    if isinstance(cmd, c.Select):
        params = [b"CONDSTORE"] if cmd.condstore else []
        return cmd.name.encode() + b" " + mailbox(cmd.mailbox) + (
            b" (" + b" ".join(params) + b")" if params else b"")
    if isinstance(cmd, c.Create):
        use = b" (USE (" + " ".join(cmd.special_use).encode() + b"))" if cmd.special_use \
            else b""
        return b"CREATE " + mailbox(cmd.mailbox) + use
    if isinstance(cmd, c.Rename):
        return b"RENAME " + mailbox(cmd.mailbox) + b" " + mailbox(cmd.new_name)
    if isinstance(cmd, c.Status):
        return b"STATUS " + mailbox(cmd.mailbox) + b" (" + " ".join(cmd.items).encode() + b")"
    uid = b"UID " if getattr(cmd, "uid", False) else b""
    if isinstance(cmd, c.Copy | c.Move):
        return uid + cmd.name.encode() + b" " + seqset(cmd.sequence) + b" " + \
            mailbox(cmd.mailbox)
    if isinstance(cmd, c.Fetch):
        mods = []
        if cmd.changed_since is not None:
            mods.append(b"CHANGEDSINCE %d" % cmd.changed_since)
            if cmd.vanished:
                mods.append(b"VANISHED")
        return uid + b"FETCH " + seqset(cmd.sequence) + b" (" + b" ".join(
            fmt_item(i) for i in cmd.items) + b")" + (b" (" + b" ".join(mods) + b")"
                                                      if mods else b"")
    if isinstance(cmd, c.Store):
        mod = b"" if cmd.unchanged_since is None else \
            b"(UNCHANGEDSINCE %d) " % cmd.unchanged_since
        return uid + b"STORE " + seqset(cmd.sequence) + b" " + mod + cmd.mode.value.encode() \
            + (b"FLAGS.SILENT (" if cmd.silent else b"FLAGS (") + \
            " ".join(cmd.flags).encode() + b")"
    if isinstance(cmd, c.Search):
        ret = b"" if cmd.returns is None else b"RETURN (" + " ".join(cmd.returns).encode() \
            + b") "
        cs = b"" if cmd.charset is None else b"CHARSET " + cmd.charset.encode() + b" "
        crit = cmd.criteria
        body = b" ".join(fmt_key(k) for k in crit.keys) if isinstance(crit, c.SearchAnd) \
            and len(crit.keys) > 1 else fmt_key(crit)
        return uid + b"SEARCH " + ret + cs + body
    if isinstance(cmd, c.Expunge):
        return b"UID EXPUNGE " + seqset(cmd.uids) if cmd.uids else b"EXPUNGE"
    if isinstance(cmd, c.List):
        pats = b"(" + b" ".join(mailbox(x) for x in cmd.patterns) + b")"
        return b"LIST " + (mailbox(cmd.reference) if cmd.reference else b'""') + b" " + pats
    assert isinstance(cmd, c.Enable)
    return b"ENABLE " + " ".join(cmd.capabilities).encode()


def normal(cmd: c.Command) -> c.Command:
    """What the parser returns for a command (a lone parenthesised top-level
    search is the same as its keys)."""
    if isinstance(cmd, c.Fetch) and cmd.vanished and (not cmd.uid or cmd.changed_since is None):
        return c.Fetch(cmd.uid, cmd.sequence, cmd.items, cmd.changed_since, False)
    return cmd


@settings(max_examples=800, deadline=None)
@given(cmd=COMMANDS)
def test_round_trip(cmd: c.Command) -> None:
    cmd = normal(cmd)
    line = b"t1 " + fmt(cmd)
    assert parse_command(line) == ("t1", cmd), line


@settings(max_examples=300, deadline=None)
@given(cmd=COMMANDS)
def test_round_trip_through_the_session(cmd: c.Command) -> None:
    cmd = normal(cmd)
    s = new_session(state=State.AUTHENTICATED)
    if not isinstance(cmd, c.Enable):
        drive(s, b"e ENABLE QRESYNC\r\ns SELECT INBOX\r\n", lambda s, e: s.enabled(
            ["QRESYNC"]) if isinstance(e, CommandReceived) and isinstance(
                e.command, c.Enable) else s.ok())
    events, _ = drive(s, b"t1 " + fmt(cmd) + b"\r\n", lambda s, e: None)
    assert [e.command for e in events if isinstance(e, CommandReceived)] == [cmd] or \
        isinstance(cmd, c.Login)  # LOGIN is refused in the selected state
