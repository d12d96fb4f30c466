"""Random sequences of plausible IMAP commands from several sessions at once, against
the in-process server: whatever the order, every command gets its tagged answer, no
session gets an internal error (``kittiwake_panic_total{origin="imapserver"}`` stays put)
and a session ends only as the protocol says (LOGOUT, BYE after its selected mailbox was
deleted by another session, BYE after too many invalid commands).

Found the DELETE-of-the-selected-mailbox crash (a FETCH after it reached a mailbox that
was gone). Seeds are fixed; each session's command stream is reproducible, their
interleaving is not (that is the point).
"""

from __future__ import annotations

import asyncio
import random

import pytest
from tests.imapserver.conftest import PASSWORD, IMAPServer

from kittiwake import metrics

EXPECTED_BYE = (b"selected mailbox was deleted", b"too many invalid commands")

MBOXES = ["INBOX", "Archive", "Sent", "Trash", "Junk", "a/b", "&AOQ-", "Nope", "\"x y\"",
          "Drafts", "INBOX/sub"]
FLAGS = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Junk", "$NotJunk",
         "custom", "$Forwarded", "\\Recent"]
SECTIONS = ["", "HEADER", "TEXT", "1", "2", "1.1", "1.2", "2.1", "1.MIME", "2.MIME", "1.HEADER",
            "1.TEXT", "HEADER.FIELDS (FROM SUBJECT)", "HEADER.FIELDS.NOT (DATE)", "3", "1.1.1",
            "2.HEADER.FIELDS (X)", "0", "99"]
ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE",
         "MODSEQ", "EMAILID", "THREADID", "SAVEDATE", "PREVIEW", "RFC822", "RFC822.HEADER",
         "RFC822.TEXT", "BINARY.SIZE[1]", "BINARY.SIZE[]", "BINARY.PEEK[1]", "BINARY[2]<0.10>",
         "PREVIEW (LAZY)", "FAST", "ALL", "FULL"]
SEARCH = ["ALL", "SEEN", "UNSEEN", "FLAGGED", "DELETED", "NEW", "OLD", "RECENT", "ANSWERED",
          "SUBJECT hello", "FROM bob", "TO alice", "CC x", "BCC y", "BODY world", "TEXT déjà",
          "HEADER Message-ID x", "LARGER 100", "SMALLER 5000", "SINCE 1-Jan-2020",
          "BEFORE 1-Jan-2030", "ON 1-Dec-2026", "SENTSINCE 1-Jan-2000", "SENTBEFORE 1-Jan-2000",
          "KEYWORD custom", "UNKEYWORD custom", "MODSEQ 1", "OLDER 100", "YOUNGER 100",
          "NOT SEEN", "OR SEEN FLAGGED", "UID 1:*", "1:3", "$", "EMAILID Mx", "THREADID Tx",
          "SAVEDATESINCE 1-Jan-2020", "SAVEDBEFORE 1-Jan-2030", "(SEEN UNSEEN)", "DRAFT",
          "UNDRAFT", "UNFLAGGED", "UNANSWERED", "UNDELETED", "SENTON 1-Dec-2026"]


def seqset(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 3)):
        a = rng.choice(["1", "2", "3", "*", "5", "100", "4294967295", "$"])
        if rng.random() < 0.5:
            parts.append(f"{a}:{rng.choice(['1', '*', '2', '7', '4294967295'])}")
        else:
            parts.append(a)
    return ",".join(p for p in parts if p != "$" or len(parts) == 1) or "1"


def message(rng: random.Random, i: int) -> bytes:
    kinds = [
        b"From: bob@example.org\r\nTo: alice@example.org\r\nSubject: hello %d\r\n"
        b"Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m%d@x>\r\n\r\nworld body\r\n",
        b"From: =?utf-8?q?D=C3=A9j=C3=A0?= <d@example.org>\r\nSubject: =?utf-8?b?ZMOpasOg?=\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\npart one\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n"
        b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+\r\n"
        b"--c--\r\n--b--\r\n",
        b"Subject: broken\r\nContent-Type: multipart/mixed\r\nFrom: <<<\r\n\r\nno boundary %d\r\n",
        b"garbage without headers %d",
        b"Content-Transfer-Encoding: x-weird\r\nContent-Type: text/plain; charset=koi8-r\r\n"
        b"Subject: \xd0\xbf\xd1\x80\r\n\r\n\xd0\xbf\xd1\x80 %d\r\n",
    ]
    k = rng.choice(kinds)
    return k % tuple([i] * k.count(b"%d"))


def command(rng: random.Random, state: dict) -> list[bytes]:
    """A command as a list of pieces; a piece after a literal marker is the literal."""
    u = "UID " if rng.random() < 0.4 else ""
    c = rng.randrange(31)
    # the mailbox this session selected last, often: commands on it interact most
    mb = state.get("selected", "INBOX") if rng.random() < 0.3 else rng.choice(MBOXES)
    if c < 3:
        q = ""
        if rng.random() < 0.3:
            q = f" (QRESYNC ({rng.randint(1, 5)} {rng.randint(0, 50)} {seqset(rng)}))" \
                if rng.random() < 0.7 else " (CONDSTORE)"
        state["selected"] = mb
        return [f"{rng.choice(['SELECT', 'EXAMINE'])} {mb}{q}".encode()]
    if c < 8:
        items = " ".join(rng.sample(ITEMS, rng.randint(1, 4)))
        sec = rng.choice(SECTIONS)
        part = rng.choice(["", "<0.10>", "<5.1000>", "<4294967295.1>"])
        more = f" BODY{'.PEEK' if rng.random() < .5 else ''}[{sec}]{part}"
        mod = " (CHANGEDSINCE 3)" if rng.random() < 0.1 else ""
        if rng.random() < 0.1:
            mod = " (CHANGEDSINCE 3 VANISHED)"
        return [f"{u}FETCH {seqset(rng)} ({items}{more}){mod}".encode()]
    if c < 11:
        keys = " ".join(rng.sample(SEARCH, rng.randint(1, 3)))
        ret = rng.choice(["", "RETURN (MIN MAX COUNT) ", "RETURN (SAVE) ", "RETURN () ",
                          "RETURN (ALL PARTIAL 1:10) "])
        cs = rng.choice(["", "CHARSET UTF-8 ", "CHARSET US-ASCII ", "CHARSET KOI8-R "])
        return [f"{u}SEARCH {ret}{cs}{keys}".encode()]
    if c < 14:
        op = rng.choice(["+FLAGS", "-FLAGS", "FLAGS", "+FLAGS.SILENT", "-FLAGS.SILENT"])
        fl = " ".join(rng.sample(FLAGS, rng.randint(0, 3)))
        unch = " (UNCHANGEDSINCE 5)" if rng.random() < 0.2 else ""
        return [f"{u}STORE {seqset(rng)}{unch} {op} ({fl})".encode()]
    if c < 16:
        return [f"{u}{rng.choice(['COPY', 'MOVE'])} {seqset(rng)} {mb}".encode()]
    if c < 18:
        data = message(rng, state["n"])
        state["n"] += 1
        fl = " ".join(rng.sample(FLAGS[:6], rng.randint(0, 2)))
        date = rng.choice(["", ' "01-Dec-2026 10:00:00 +0000"', ' "bogus"'])
        utf8 = rng.random() < 0.1
        lit = f"{{{len(data)}+}}"
        if utf8:
            return [f"APPEND {mb} ({fl}){date} UTF8 (~{lit}".encode(), data, b")"]
        return [f"APPEND {mb} ({fl}){date} {lit}".encode(), data]
    if c == 18:
        return [rng.choice([b"EXPUNGE", f"UID EXPUNGE {seqset(rng)}".encode(), b"CLOSE",
                            b"UNSELECT", b"CHECK", b"NOOP"])]
    if c == 19:
        return [f"{rng.choice(['CREATE', 'DELETE', 'SUBSCRIBE', 'UNSUBSCRIBE'])} {mb}".encode()]
    if c == 20:
        return [f"RENAME {mb} {rng.choice(MBOXES)}".encode()]
    if c == 21:
        return [rng.choice([b'LIST "" *', b'LIST "" %', b'LSUB "" *',
                            b'LIST (SUBSCRIBED RECURSIVEMATCH) "" *',
                            b'LIST "" * RETURN (STATUS (MESSAGES UNSEEN SIZE) SPECIAL-USE '
                            b'CHILDREN)', b'LIST (SPECIAL-USE) "" *', b'LIST "" ""',
                            b'LIST "INBOX/" %'])]
    if c == 22:
        items = " ".join(rng.sample(["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED",
                                     "SIZE", "RECENT", "HIGHESTMODSEQ", "APPENDLIMIT",
                                     "MAILBOXID"], rng.randint(1, 4)))
        return [f"STATUS {mb} ({items})".encode()]
    if c == 23:
        crit = rng.choice(['(DATE)', '(REVERSE ARRIVAL SUBJECT)', '(DISPLAYFROM SIZE)',
                           'REFERENCES', 'ORDEREDSUBJECT', '(CC TO)'])
        verb = rng.choice(['SORT', 'THREAD'])
        return [f"{u}{verb} {crit} UTF-8 {rng.choice(SEARCH)}".encode()]
    if c == 24:
        return [rng.choice([b"ENABLE IMAP4rev2", b"ENABLE CONDSTORE", b"ENABLE QRESYNC",
                            b"ENABLE UTF8=ACCEPT", b"ENABLE UIDONLY", b"ENABLE METADATA"])]
    if c == 25:
        return [rng.choice([b'GETMETADATA "" /private/comment',
                            b"GETMETADATA INBOX (DEPTH infinity) /",
                            b'SETMETADATA INBOX (/private/comment "hi")',
                            b"SETMETADATA INBOX (/shared/comment NIL)",
                            b"GETQUOTAROOT INBOX", b'GETQUOTA ""', b"NAMESPACE",
                            b'ID ("name" "fuzz")', b"ID NIL", b"CAPABILITY"])]
    if c == 26:
        return [rng.choice([b"NOTIFY SET (SELECTED (MessageNew MessageExpunge FlagChange)) "
                            b"(PERSONAL (MailboxName))", b"NOTIFY NONE",
                            b"NOTIFY SET STATUS (INBOXES (MessageNew))"])]
    if c == 27:
        return [b"IDLE"]
    if c == 28:
        data = message(rng, state["n"])
        state["n"] += 1
        return [f"{u}REPLACE {rng.randint(1, 5)} {mb} {{{len(data)}+}}".encode(), data]
    if c == 29:
        return [f"{u}FETCH {seqset(rng)} (BODY.PEEK[{rng.choice(SECTIONS)}]<{rng.randint(0, 9)}."
                f"{rng.randint(0, 9)}> BINARY.PEEK[{rng.choice(['1', '2', '1.1', ''])}])".encode()]
    # plain garbage-ish
    return [rng.choice([b"FETCH", b"UID", b"SEARCH (", b"STORE 1 +FLAGS (\\Bogus)",
                        b"SELECT", b"FETCH 1 (BODY[HEADER.FIELDS ()])", b"FETCH 0 FLAGS",
                        b"SEARCH CHARSET", b"COPY 1:* \"\"", b"MOVE * INBOX",
                        b"FETCH 1:* (BODY[1.2.3.4.5.6.7.8.9.10])", b"SEARCH NOT NOT NOT ALL",
                        b"SEARCH " + b"(" * 60 + b"ALL" + b")" * 60,
                        b"ESEARCH IN (mailboxes INBOX) ALL"])]



class Client:
    """One connection; sends a command and reads up to its tagged answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.n = reader, writer, 0

    async def answer(self, tag: bytes, what: bytes, problems: list[str]) -> bytes:
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 30)
            if not line:
                return b""
            stripped = line.rstrip()
            if stripped.endswith(b"}") and b"{" in stripped:
                count = stripped[stripped.rindex(b"{") + 1:-1].rstrip(b"+")
                if count.isdigit():
                    await self.reader.readexactly(int(count))
            if line.startswith(b"* BYE") and not any(e in line for e in EXPECTED_BYE):
                problems.append(f"{line!r} after {what[:120]!r}")
            if line.startswith(tag + b" "):
                if b"SERVERBUG" in line:
                    problems.append(f"{line!r} after {what[:120]!r}")
                return line

    async def run(self, pieces: list[bytes], problems: list[str]) -> bytes:
        self.n += 1
        tag = f"t{self.n}".encode()
        if len(pieces) > 1:  # a LITERAL+ literal, then the rest of the line
            tail = pieces[2] if len(pieces) > 2 else b""
            self.writer.write(tag + b" " + pieces[0] + b"\r\n" + pieces[1] + tail + b"\r\n")
        else:
            self.writer.write(tag + b" " + pieces[0] + b"\r\n")
        await self.writer.drain()
        if pieces[0] == b"IDLE":
            while True:
                line = await asyncio.wait_for(self.reader.readline(), 30)
                if not line or line.startswith(tag + b" "):
                    return line
                if line.startswith(b"+"):
                    self.writer.write(b"DONE\r\n")
                    break
        return await self.answer(tag, pieces[0], problems)


async def _session(port: int, rng: random.Random, steps: int, problems: list[str]) -> None:
    state = {"n": 0}
    done = 0
    while done < steps:  # a session closed as the protocol allows: a new one goes on
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = Client(reader, writer)
        await reader.readline()
        assert b" OK" in await client.run([f"LOGIN alice {PASSWORD}".encode()], problems)
        while done < steps:
            done += 1
            if not await client.run(command(rng, state), problems):
                break
        writer.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_sessions_get_answers_and_no_internal_error(imap_server: IMAPServer,
                                                                  seed: int) -> None:
    rng = random.Random(seed)
    for i in range(6):
        await imap_server.deliver(message(rng, i))
    before = metrics.REGISTRY.get_sample_value("kittiwake_panic_total",
                                               {"origin": "imapserver"}) or 0.0
    problems: list[str] = []
    await asyncio.gather(*(_session(imap_server.port, random.Random(seed * 100 + s), 300,
                                    problems) for s in range(4)))
    after = metrics.REGISTRY.get_sample_value("kittiwake_panic_total",
                                              {"origin": "imapserver"}) or 0.0
    assert problems == []
    assert after == before
