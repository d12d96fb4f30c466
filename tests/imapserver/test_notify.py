"""NOTIFY (RFC 5465) on the wire: what a client is told, and when, without asking.

Negative checks ("not told") never wait for a timeout: a later change that
must be told is the fence; the line read next must be the fence's.
"""

from __future__ import annotations

import re

from tests.imapserver.conftest import IMAPServer
from tests.imapserver.test_imap_wire import Wire

from kittiwake.imapserver import metrics as m

MSG = b"Subject: hello\r\nMessage-ID: <%d@x>\r\n\r\nbody\r\n"


async def session(server: IMAPServer, *commands: bytes) -> Wire:
    w = await Wire.open(server.port)
    await w.login()
    for command in commands:
        answer = await w.cmd(command)
        assert answer[-1].startswith(b"a OK"), (command, answer)
    return w


def modseq_n(line: bytes) -> bytes:
    return re.sub(rb"HIGHESTMODSEQ \d+", b"HIGHESTMODSEQ n", line)


async def ok(w: Wire, command: bytes) -> list[bytes]:
    answer = await w.cmd(command, tag=b"x")
    assert answer[-1].startswith(b"x OK"), (command, answer)
    return answer[:-1]


async def test_other_mailboxes_are_told(imap_server: IMAPServer) -> None:
    a = await session(imap_server, b"NOTIFY SET (personal (MessageNew MessageExpunge FlagChange "
                      b"MailboxName SubscriptionChange MailboxMetadataChange "
                      b"ServerMetadataChange))")
    b = await session(imap_server)
    # With FlagChange, STATUS carries HIGHESTMODSEQ (a flag change may leave UNSEEN alone).
    await imap_server.deliver(MSG % 1, "Archive")
    assert modseq_n(await a.line()) == \
        b'* STATUS "Archive" (MESSAGES 1 UIDNEXT 2 UNSEEN 1 HIGHESTMODSEQ n)\r\n'
    await ok(b, b"SELECT Archive")
    await ok(b, b"STORE 1 +FLAGS.SILENT (\\Seen)")
    assert modseq_n(await a.line()) == b'* STATUS "Archive" (UNSEEN 0 HIGHESTMODSEQ n)\r\n'
    await ok(b, b"STORE 1 +FLAGS.SILENT (\\Flagged)")
    assert modseq_n(await a.line()) == b'* STATUS "Archive" (HIGHESTMODSEQ n)\r\n'
    await ok(b, b"CREATE foo")
    assert await a.line() == b'* LIST () "/" "foo"\r\n'
    await ok(b, b"RENAME foo bar")
    assert await a.line() == b'* LIST () "/" "bar" ("OLDNAME" ("foo"))\r\n'
    await ok(b, b"SUBSCRIBE bar")
    assert await a.line() == b'* LIST (\\Subscribed) "/" "bar"\r\n'
    await ok(b, b"UNSUBSCRIBE bar")
    assert await a.line() == b'* LIST () "/" "bar"\r\n'
    await ok(b, b'SETMETADATA bar (/shared/comment "x")')
    assert await a.line() == b'* METADATA "bar" "/shared/comment"\r\n'
    await ok(b, b'SETMETADATA "" (/shared/admin "mailto:x@example.org")')
    assert await a.line() == b'* METADATA "" "/shared/admin"\r\n'
    await ok(b, b"DELETE bar")
    assert await a.line() == b'* LIST (\\NonExistent) "/" "bar"\r\n'
    await ok(b, b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert modseq_n(await a.line()) == b'* STATUS "Archive" (HIGHESTMODSEQ n)\r\n'
    await ok(b, b"EXPUNGE")
    assert modseq_n(await a.line()) == \
        b'* STATUS "Archive" (MESSAGES 0 UIDNEXT 2 UNSEEN 0 HIGHESTMODSEQ n)\r\n'
    # Its own changes too (as Dovecot), before its tagged OK.
    assert await ok(a, b"CREATE mine") == [b'* LIST () "/" "mine"\r\n']


async def test_specifiers_pick_the_mailboxes(imap_server: IMAPServer) -> None:
    # New mailboxes are subscribed (the store does it): Archive and Lists/other are not now.
    a = await session(imap_server, b"CREATE Lists/kw", b"CREATE Lists/other",
                      b"UNSUBSCRIBE Lists/other", b"UNSUBSCRIBE Archive",
                      b"NOTIFY SET (subtree Lists/kw (MessageNew MessageExpunge)) "
                      b"(subscribed (MessageNew MessageExpunge)) (inboxes (MailboxName))")
    for box in ("Lists/other", "Archive", "Lists/kw", "Sent"):
        await imap_server.deliver(MSG % 1, box)
    assert await a.line() == b'* STATUS "Lists/kw" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)\r\n'
    assert await a.line() == b'* STATUS "Sent" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)\r\n'
    assert await ok(a, b"CREATE Lists/kw/deeper") == []  # not an inbox: no MailboxName
    await ok(a, b"UNSUBSCRIBE Lists/kw/deeper")
    await imap_server.deliver(MSG % 2, "Lists/kw/deeper")  # the subtree grows with it
    assert await a.line() == b'* STATUS "Lists/kw/deeper" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)\r\n'
    await ok(a, b"SUBSCRIBE Archive")  # "subscribed" follows the subscriptions
    await imap_server.deliver(MSG % 3, "Archive")
    assert await a.line() == b'* STATUS "Archive" (MESSAGES 2 UIDNEXT 3 UNSEEN 2)\r\n'


async def test_status_indicator_and_condstore(imap_server: IMAPServer) -> None:
    await imap_server.deliver(MSG % 1)
    await imap_server.deliver(MSG % 2, "Archive")
    a = await session(imap_server, b"ENABLE CONDSTORE", b"SELECT INBOX")
    answer = await ok(a, b"NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) "
                         b"(mailboxes (INBOX Archive Junk) (MessageNew MessageExpunge))")
    assert len(answer) == 2 and b'"Junk" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY ' in answer[1]
    assert answer[0].startswith(b'* STATUS "Archive" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ')
    assert b" UNSEEN 1 HIGHESTMODSEQ " in answer[0]  # not INBOX: it is the selected one
    await imap_server.deliver(MSG % 3, "Archive")
    line = await a.line()
    assert line.startswith(b'* STATUS "Archive" (MESSAGES 2 UIDNEXT 3 UNSEEN 2 HIGHESTMODSEQ ')


async def test_selected_pushes_new_messages_and_expunges(imap_server: IMAPServer) -> None:
    await imap_server.deliver(MSG % 1)
    a = await session(imap_server, b"SELECT INBOX",
                      b"NOTIFY SET (selected (MessageNew (UID BODY[HEADER.FIELDS (SUBJECT)]) "
                      b"MessageExpunge))")
    b = await session(imap_server, b"SELECT INBOX")
    await imap_server.deliver(MSG % 2)
    assert await a.line() == b"* 2 EXISTS\r\n"
    assert await a.line() == b"* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {18}\r\n"
    assert await a.reader.readexactly(18 + 3) == b"Subject: hello\r\n\r\n)\r\n"
    assert (await ok(a, b"FETCH 2 (FLAGS)")) == [b"* 2 FETCH (FLAGS ())\r\n"]  # no \Seen set
    await ok(b, b"STORE 1 +FLAGS.SILENT (\\Flagged)")  # no FlagChange asked: not told
    await ok(b, b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    await ok(b, b"EXPUNGE")
    assert await a.line() == b"* 1 EXPUNGE\r\n"  # "selected": even with no command running
    assert await ok(a, b"NOOP") == []


async def test_selected_delayed_keeps_expunge_for_a_command(imap_server: IMAPServer) -> None:
    for i in (1, 2):
        await imap_server.deliver(MSG % i)
    a = await session(imap_server, b"SELECT INBOX",
                      b"NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))")
    b = await session(imap_server, b"SELECT INBOX")
    await ok(b, b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await a.line() == b"* 1 FETCH (UID 1 FLAGS (\\Deleted))\r\n"
    await ok(b, b"EXPUNGE")
    await ok(b, b"STORE 1 +FLAGS.SILENT (\\Flagged)")  # the fence: told before any EXPUNGE
    assert await a.line() == b"* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n"
    assert await ok(a, b"FETCH 2 (UID)") == [b"* 2 FETCH (UID 2)\r\n"]  # numbers held
    assert await ok(a, b"NOOP") == [b"* 1 EXPUNGE\r\n"]


async def test_idle_tells_only_what_notify_asked(imap_server: IMAPServer) -> None:
    a = await session(imap_server, b"SELECT INBOX",
                      b"NOTIFY SET (personal (MessageNew MessageExpunge))")
    a.writer.write(b"i IDLE\r\n")
    assert await a.line() == b"+ idling\r\n"
    await imap_server.deliver(MSG % 1)  # the selected mailbox: not in the NOTIFY
    await imap_server.deliver(MSG % 2, "Archive")
    assert await a.line() == b'* STATUS "Archive" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)\r\n'
    a.writer.write(b"DONE\r\n")
    assert await a.line() == b"* 1 EXISTS\r\n"  # base IMAP at the command's end
    assert (await a.line()).startswith(b"i OK")


async def test_notify_none_and_errors(imap_server: IMAPServer) -> None:
    before = m.NOTIFY_SESSIONS._value.get()
    a = await session(imap_server)
    answer = await a.cmd(b"NOTIFY SET (selected (MessageNew MessageExpunge AnnotationChange))")
    assert answer == [b"a NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName "
                      b"SubscriptionChange MailboxMetadataChange ServerMetadataChange)] "
                      b"unsupported NOTIFY events: AnnotationChange\r\n"]
    answer = await a.cmd(b"NOTIFY SET (inboxes (MessageNew))")
    assert answer[-1].startswith(b"a BAD MessageNew and MessageExpunge go together"), answer
    await ok(a, b"NOTIFY SET (personal (MailboxName))")
    await ok(a, b"NOTIFY SET (personal (MessageNew MessageExpunge))")  # replaces the first
    assert m.NOTIFY_SESSIONS._value.get() == before + 1
    await ok(a, b"NOTIFY NONE")
    assert m.NOTIFY_SESSIONS._value.get() == before
    await imap_server.deliver(MSG % 1, "Archive")  # not told: the fence is our own command
    assert await ok(a, b"NOOP") == []


async def test_overflow_switches_notify_off(imap_server: IMAPServer) -> None:
    imap_server.ctx.limits.notify_max_backlog = 2
    overflows = m.NOTIFY_OVERFLOWS._value.get()
    a = await session(imap_server, b"NOTIFY SET (personal (MessageNew MessageExpunge))")
    acc = await imap_server.store.account("alice")
    await acc.deliver("Archive", MSG % 1)
    assert (await a.line()).startswith(b'* STATUS "Archive" (MESSAGES 1 ')
    # A burst the session cannot keep up with: three changes in one publication.
    box = await acc.mailbox("Archive")
    from kittiwake.store.model import Change
    imap_server.store.changes.publish("alice", [Change("added", box.id, "Archive", (1,), 1)] * 3)
    assert await a.line() == (b"* OK [NOTIFICATIONOVERFLOW] too many changes to tell; NOTIFY "
                              b"is off, use NOTIFY SET again\r\n")
    assert m.NOTIFY_OVERFLOWS._value.get() == overflows + 1
    await acc.deliver("Archive", MSG % 2)
    assert await ok(a, b"NOOP") == []  # NOTIFY is off now


async def test_uidonly_new_messages_as_uidfetch(imap_server: IMAPServer) -> None:
    a = await session(imap_server, b"ENABLE UIDONLY", b"SELECT INBOX",
                      b"NOTIFY SET (selected (MessageNew (FLAGS) MessageExpunge))")
    uid = await imap_server.deliver(MSG % 1)
    assert await a.line() == b"* 1 EXISTS\r\n"
    assert await a.line() == b"* %d UIDFETCH (FLAGS ())\r\n" % uid


async def test_flag_changes_not_asked_are_not_told(imap_server: IMAPServer) -> None:
    await imap_server.deliver(MSG % 1, "Archive")
    a = await session(imap_server, b"NOTIFY SET (personal (MessageNew MessageExpunge))")
    b = await session(imap_server, b"SELECT Archive")
    await ok(b, b"STORE 1 +FLAGS.SILENT (\\Seen)")  # UNSEEN changes, but no FlagChange
    await imap_server.deliver(MSG % 2, "Archive")  # the fence
    assert await a.line() == b'* STATUS "Archive" (MESSAGES 2 UIDNEXT 3 UNSEEN 1)\r\n'


async def test_a_session_that_stopped_reading_is_ended_not_grown(
        imap_server: IMAPServer) -> None:
    """Changes pile up for a session whose client reads nothing (no command, no IDLE):
    past the limit it gets BYE and is closed, so its queue cannot grow without
    bound; another session of the account carries on and hears everything."""
    imap_server.ctx.limits.max_unread_changes = 5
    imap_server.ctx.limits.unread_changes_seconds = 0.0
    overflows = m.CHANGE_OVERFLOWS._value.get()
    stuck = await session(imap_server, b"SELECT INBOX")
    imap_server.ctx.limits.max_unread_changes = 1_000_000  # for the next session
    reading = await session(imap_server, b"SELECT INBOX")
    for i in range(1, 8):
        await imap_server.deliver(MSG % i)
    assert await stuck.line() == b"* BYE too many changes waiting unread; reconnect\r\n"
    assert await stuck.line() == b""  # closed
    assert m.CHANGE_OVERFLOWS._value.get() == overflows + 1
    answer = await reading.cmd(b"NOOP")
    assert b"* 7 EXISTS\r\n" in answer and answer[-1].startswith(b"a OK"), answer


async def test_subscriptions_and_metadata_changed_outside_imap_are_told(
        imap_server: IMAPServer) -> None:
    """The store publishes SUBSCRIBE and SETMETADATA changes itself, so a change made
    by another part of the server (not an IMAP session) reaches NOTIFY sessions."""
    a = await session(imap_server, b"NOTIFY SET (personal (SubscriptionChange "
                      b"MailboxMetadataChange ServerMetadataChange))")
    acc = await imap_server.store.account("alice")
    await acc.subscribe("Archive", False)
    assert await a.line() == b'* LIST () "/" "Archive"\r\n'
    await acc.set_metadata("Archive", [("/private/comment", b"x")])
    assert await a.line() == b'* METADATA "Archive" "/private/comment"\r\n'
    await acc.set_metadata(None, [("/shared/admin", b"mailto:x@example.org")])
    assert await a.line() == b'* METADATA "" "/shared/admin"\r\n'
