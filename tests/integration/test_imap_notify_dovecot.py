"""NOTIFY (RFC 5465) compared with Dovecot: one script, both servers, the same lines.

Session ``a`` sets NOTIFY and only listens; session ``b`` changes things. After
each change, ``a`` reads until the line that change must cause (``wait``);
what it read on the way is kept, so a notification that should not have come
shows up in the transcript (no timeout decides a negative). The transcripts
are compared after normalising what legitimately differs: mailbox name
quoting and hierarchy separator, UIDVALIDITY values, Dovecot's ``\\Recent``
and RECENT, the UID item in unsolicited flag FETCHes, the text of tagged
replies (status and response code kept, BADEVENT's list dropped: Dovecot
lists the refused events, we the supported ones, RFC 5465 §8), and repeated
lines (Dovecot sometimes sends a STATUS twice).

Known difference, on purpose and not scripted here: when NOTIFY does not name
the selected mailbox, Dovecot tells nothing about it even at NOOP; we send
its EXISTS/EXPUNGE when a command completes (see kittiwake.imapserver.notify).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.imapserver.conftest import PASSWORD
from tests.integration.dovecot import Dovecot

from kittiwake.config.domains import DomainsConfig
from kittiwake.imapserver.context import IMAPContext
from kittiwake.imapserver.service import IMAPService
from kittiwake.sasl import derive_credentials
from kittiwake.store import Store
from kittiwake.store.account import AccountStore
from kittiwake.store.store import account_dir

pytestmark = pytest.mark.integration

MSGS = [b"Subject: %d\r\nMessage-ID: <%d@x>\r\n\r\nbody\r\n" % (i, i) for i in range(1, 4)]
NEW = "Subject: new\r\n\r\nhi\r\n"
APPEND = f"APPEND INBOX {{{len(NEW)}+}}\r\n{NEW}"
ALL_OTHERS = ("NOTIFY SET STATUS (personal (MessageNew MessageExpunge FlagChange MailboxName "
              "SubscriptionChange))")

# (session, command) runs a command; ("a", "wait", pattern) reads until a line matches.
STEPS: list[tuple[str, str] | tuple[str, str, str]] = [
    ("a", "NOTIFY SET (selected (MessageNew))"),
    ("a", "NOTIFY SET (inboxes (MessageNew (UID) MessageExpunge))"),
    ("a", "NOTIFY SET (selected (MessageNew MessageExpunge)) "
          "(selected-delayed (MessageNew MessageExpunge))"),
    ("a", "NOTIFY SET (selected (MessageNew MessageExpunge AnnotationChange))"),
    ("a", ALL_OTHERS),                          # the initial STATUS of INBOX
    ("b", APPEND),
    ("a", "wait", r"^\* STATUS .*MESSAGES 4 "),  # MessageNew in a mailbox not selected
    ("b", "SELECT INBOX"),
    ("b", "STORE 1 +FLAGS.SILENT (\\Seen)"),
    ("a", "wait", r"^\* STATUS \S+ \(UNSEEN 3"),  # UNSEEN changed
    ("b", "STORE 1 +FLAGS.SILENT (\\Flagged)"),
    ("a", "wait", r"^\* STATUS \S+ \(HIGHESTMODSEQ"),  # UNSEEN the same
    ("b", "CREATE foo"),
    ("a", "wait", r"^\* LIST "),
    ("b", "RENAME foo bar"),
    ("a", "wait", r"^\* LIST "),
    ("b", "SUBSCRIBE bar"),
    ("a", "wait", r"^\* LIST "),
    ("b", "UNSUBSCRIBE bar"),
    ("a", "wait", r"^\* LIST "),
    ("b", "DELETE bar"),
    ("a", "wait", r"^\* LIST "),
    ("b", "STORE 2 +FLAGS.SILENT (\\Deleted)"),
    ("a", "wait", r"^\* STATUS \S+ \(HIGHESTMODSEQ"),
    ("b", "EXPUNGE"),
    ("a", "wait", r"^\* STATUS .*MESSAGES 3 "),  # MessageExpunge
    # The selected mailbox. Dovecot pushes its changes late (at its next check), so
    # here a command by number asks: under "selected" it may carry EXPUNGE, under
    # "selected-delayed" not (RFC 9051 §7.5.1). Our pushing is in tests/imapserver.
    ("a", "SELECT INBOX"),
    ("a", "NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))"),
    ("b", APPEND),
    ("a", "FETCH 1 (UID)"),                     # EXISTS, the new message's FETCH
    ("b", "STORE 1 +FLAGS.SILENT (\\Deleted)"),  # no FlagChange asked: nothing
    ("b", "EXPUNGE"),
    ("a", "NOOP"),                              # the EXPUNGE (pushed at once by us)
    ("a", "NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))"),
    ("b", "STORE 1 +FLAGS.SILENT (\\Deleted)"),
    ("b", "EXPUNGE"),
    ("b", "STORE 1 +FLAGS.SILENT (\\Answered)"),
    ("a", "FETCH 2 (UID)"),                     # flags, but no EXPUNGE yet
    ("a", "NOOP"),                              # now the EXPUNGE
    ("a", "NOTIFY NONE"),
]

_TAGGED = re.compile(rb"^t\d+ (OK|NO|BAD)( \[([A-Z-]+)[^\]]*\])?")


def normalise(lines: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for raw in lines:
        line = raw.rstrip(b"\r\n")
        m = _TAGGED.match(line)
        if m:
            line = b"tag " + m.group(1) + (b" [" + m.group(3) + b"]" if m.group(3) else b"")
        if re.match(rb"^\* \d+ RECENT$", line) or line.startswith(b"* OK [CLOSED]"):
            continue
        if re.match(rb"^\* (FLAGS|OK \[)", line):
            continue  # SELECT's own data differs between servers; not NOTIFY's business
        line = line.replace(b'"', b"").replace(b" . ", b" / ")
        line = re.sub(rb" ?\\Recent", b"", line).replace(b"( ", b"(")
        line = re.sub(rb" UIDVALIDITY \d+", b"", line)
        line = re.sub(rb"HIGHESTMODSEQ \d+", b"HIGHESTMODSEQ n", line)
        line = re.sub(rb"MODSEQ \(\d+\) ", b"", line)  # Dovecot: FlagChange turns CONDSTORE on
        if re.match(rb"^\* \d+ FETCH \(UID \d+ ", line):
            line = re.sub(rb"\(UID \d+ ", b"(", line, count=1)
        if out and out[-1] == line and line.startswith(b"* STATUS "):
            continue
        out.append(line)
    return out


class Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.n = reader, writer, 0

    @classmethod
    async def open(cls, port: int, user: str, password: str) -> Session:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        s = cls(reader, writer)
        await s.line()
        assert (await s.cmd(f"LOGIN {user} {password}"))[-1].startswith(b"t1 OK")
        return s

    async def line(self) -> bytes:
        line = await asyncio.wait_for(self.reader.readline(), 10)
        assert line, "connection closed"
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if m:
            line += await self.reader.readexactly(int(m.group(1)))
            line += await self.line()
        return line

    async def cmd(self, text: str) -> list[bytes]:
        self.n += 1
        tag = b"t%d" % self.n
        self.writer.write(tag + b" " + text.encode() + b"\r\n")
        out = []
        while True:
            line = await self.line()
            out.append(line)
            if line.startswith(tag + b" "):
                return out

    async def wait(self, pattern: str) -> list[bytes]:
        out = []
        while True:
            line = await self.line()
            out.append(line)
            if re.match(pattern.encode(), line):
                return out


async def transcript(port: int, user: str, password: str) -> list[bytes]:
    a = await Session.open(port, user, password)
    b = await Session.open(port, user, password)
    seen: list[bytes] = []
    for step in STEPS:
        if len(step) == 3:
            try:
                seen += await a.wait(step[2])
            except TimeoutError:
                raise AssertionError(f"port {port}: nothing matched {step} after {seen}") from None
        elif step[0] == "a":
            seen += await a.cmd(step[1])
        else:
            answer = await b.cmd(step[1])
            assert re.match(rb"t\d+ OK", answer[-1]), (step, answer)
    for s in (a, b):
        s.writer.close()
    return _sorted_per_command(normalise(seen))


def _sorted_per_command(lines: list[bytes]) -> list[bytes]:
    """Untagged lines sorted within each command's window (up to its tagged line): when
    a change is pushed (we: at once; Dovecot: at its next look) moves it within it."""
    out: list[bytes] = []
    window: list[bytes] = []
    for line in lines:
        if line.startswith(b"tag "):
            out += [*sorted(window), line]
            window = []
        else:
            window.append(line)
    return out + sorted(window)


@pytest.fixture
async def kittiwake_port(tmp_path: Path) -> AsyncIterator[int]:
    """Our server, its account holding only INBOX with the three messages (as Dovecot's)."""
    data_dir = tmp_path / "data"
    core = AccountStore("alice", account_dir(data_dir, "alice"))
    core.set_credentials(json.dumps(derive_credentials(PASSWORD).to_dict()))
    core.close()
    domains = DomainsConfig.model_validate({
        "domains": {"example.org": {}},
        "accounts": {"alice": {"domain": "example.org", "mailboxes": ["Inbox"],
                               "destinations": {"alice@example.org": {}}}}})
    store = Store(data_dir)
    account = await store.account("alice", default_mailboxes=["Inbox"])
    for data in MSGS:
        await account.deliver("Inbox", data)
    ctx = IMAPContext(hostname="mail.example.org", store=store, domains=domains,
                      plaintext_login=True)
    service = IMAPService(ctx, "imap", ["127.0.0.1"], 0)
    await service.start()
    yield int(service.addresses()[0].rsplit(":", 1)[1])
    await service.close(1)
    store.close()


async def test_notify_transcript_equals_dovecots(kittiwake_port: int) -> None:
    ours = await transcript(kittiwake_port, "alice", PASSWORD)
    # Dovecot looks at the selected mailbox every mailbox_idle_check_interval (30 s by
    # default) when its inotify watch misses a change.
    with Dovecot(messages=MSGS, extra_config="mailbox_idle_check_interval = 1 secs") as dc:
        theirs = await transcript(dc.port, dc.user, "secret")
    assert ours == theirs
    # What the script is about, so a normalisation cannot hide it.
    assert ours[:4] == [b"tag BAD"] * 3 + [b"tag NO [BADEVENT]"]
    assert b"* STATUS INBOX (MESSAGES 3 UIDNEXT 4 UNSEEN 3 HIGHESTMODSEQ n)" in ours  # STATUS
    assert b"* STATUS INBOX (HIGHESTMODSEQ n)" in ours  # a flag change, UNSEEN the same
    assert b"* LIST () / bar (OLDNAME (foo))" in ours
    assert b"* LIST (\\NonExistent) / bar" in ours
    assert b"* 4 FETCH (FLAGS ())" in ours  # MessageNew with its attributes
    # selected-delayed: the FETCH by number got the flags but not the EXPUNGE; NOOP did.
    assert ours[-7:] == [b"* 1 FETCH (FLAGS (\\Deleted))", b"* 2 FETCH (FLAGS (\\Answered))",
                         b"* 2 FETCH (UID 4)", b"tag OK", b"* 1 EXPUNGE", b"tag OK", b"tag OK"]
