"""CHANGEDSINCE from the mailbox's change log (kittiwake.imapserver.changelog) answers
exactly what the store's modseq index answers (RFC 7162 §3.1.4), whatever others did
meanwhile: other sessions' STORE, EXPUNGE, COPY and MOVE, and SMTP deliveries."""

from __future__ import annotations

import random
import re

import pytest
from tests.imapserver.conftest import IMAPServer
from tests.imapserver.test_imap_wire import Wire

from kittiwake.imapserver import changelog
from kittiwake.store.changes import ChangeHub
from kittiwake.store.model import Change, Flags

SEEN = Flags.parse(["\\Seen"])
FLAGGED = Flags.parse(["\\Flagged", "$Work"])


def _log(hub: ChangeHub, floor: int) -> changelog.ChangeLog:
    return changelog.attach(hub, "alice").attach("/acct", 7, floor)


def test_the_log_answers_from_its_floor_on_and_not_below() -> None:
    hub = ChangeHub()
    log = _log(hub, 10)
    hub.publish("alice", [Change("flags", 7, "Inbox", (1, 2), 11, (SEEN, FLAGGED))])
    hub.publish("alice", [Change("flags", 8, "Other", (1,), 12, (SEEN,))])  # not this one
    hub.publish("alice", [Change("flags", 7, "Inbox", (2,), 13, (SEEN,))])
    seq = {1: 1, 2: 2, 3: 3}.get
    rows = log.changed(10, seq)
    assert rows is not None
    assert [(q, r.uid, r.modseq, r.flags, r.keywords) for q, r in rows] == [
        (1, 1, 11, SEEN.system, ""), (2, 2, 13, SEEN.system, "")]
    assert [r.uid for _, r in log.changed(11, seq) or []] == [2]
    assert log.changed(13, seq) == []
    assert log.changed(9, seq) is None  # below the floor: the store answers


def test_expunged_copied_and_unnamed_messages() -> None:
    hub = ChangeHub()
    log = _log(hub, 10)
    hub.publish("alice", [Change("added", 7, "Inbox", (4, 5), 11, (SEEN, FLAGGED))])
    hub.publish("alice", [Change("expunged", 7, "Inbox", (4,), 12)])
    rows = log.changed(10, {4: 4, 5: 5}.get)
    assert [(q, r.uid, r.keywords) for q, r in rows or []] == [(5, 5, "$Work")]
    assert log.changed(10, {4: 4}.get) == []  # 5 is not in the set
    hub.publish("alice", [Change("added", 7, "Inbox", (6,), 13)])  # COPY: no flags
    assert log.changed(10, {6: 6}.get) is None
    assert log.changed(10, {5: 5}.get) is not None  # 6 not asked for


def test_a_database_ahead_of_the_log_starts_it_afresh() -> None:
    """Another process wrote (kittiwake import): the next SELECT sees a HIGHESTMODSEQ
    above all heard, and questions below it go to the store."""
    hub = ChangeHub()
    log = _log(hub, 10)
    hub.publish("alice", [Change("flags", 7, "Inbox", (1,), 11, (SEEN,))])
    again = changelog.attach(hub, "alice").attach("/acct", 7, 11)
    assert again is log and log.changed(10, {1: 1}.get) is not None
    changelog.attach(hub, "alice").attach("/acct", 7, 20)
    assert log.changed(10, {1: 1}.get) is None and log.changed(20, {1: 1}.get) == []
    assert len(hub._subscribers["alice"]) == 1  # the SELECTs' own subscriptions closed


def test_a_log_too_far_behind_gives_up_and_memory_stays_bounded() -> None:
    hub = ChangeHub()
    log = _log(hub, 0)
    for i in range(changelog.MAX_UNREAD + 1):
        hub.publish("alice", [Change("flags", 7, "Inbox", (1,), i + 1, (SEEN,))])
    assert log.changed(0, {1: 1}.get) is None
    log = changelog.attach(hub, "alice").attach("/acct", 7, 0)  # a new one at SELECT
    uids = tuple(range(1, 3 * changelog.MAX_ENTRIES))
    hub.publish("alice", [Change("flags", 7, "Inbox", uids, 5, (SEEN,) * len(uids))])
    hub.publish("alice", [Change("flags", 7, "Inbox", (2,), 6, (FLAGGED,))])
    assert [r.uid for _, r in log.changed(5, {2: 2}.get) or []] == [2]
    assert len(log.entries) <= changelog.MAX_ENTRIES
    assert log.changed(0, {2: 2}.get) is None  # the floor rose past modseq 5


_FETCH = re.compile(rb"^\* \d+ FETCH \(")


async def _open(server: IMAPServer, select: bytes) -> Wire:
    w = await Wire.open(server.port)
    await w.login()
    answer = await w.cmd(select)
    assert answer[-1].startswith(b"a OK"), answer
    return w


@pytest.mark.parametrize("kinds", [("store", "store", "store", "deliver", "expunge"),
                                   ("store", "store", "deliver", "expunge", "copy", "move")])
async def test_log_answers_equal_the_store_answers_under_concurrent_changes(
        imap_server: IMAPServer, kinds: tuple[str, ...]) -> None:
    """Session A selected with CONDSTORE (its CHANGEDSINCE comes from the log), session
    C without (from the store's modseq index); another session B and SMTP deliveries
    change the mailbox. After each step both are told the same updates (NOOP) and
    then give the same octets to the same CHANGEDSINCE questions. (COPY and MOVE
    into the mailbox leave the log without the new messages' flags: questions
    about them go to the store, the second mix.)"""
    for i in range(12):
        await imap_server.deliver(b"Subject: m%d\r\n\r\nbody\r\n" % i)
    a = await _open(imap_server, b"SELECT INBOX (CONDSTORE)")
    b = await _open(imap_server, b"SELECT INBOX")
    c = await _open(imap_server, b"SELECT INBOX")
    await b.cmd(b"CREATE Other")
    modseqs = [int(re.search(rb"HIGHESTMODSEQ (\d+)", x).group(1))  # type: ignore[union-attr]
               for x in await a.cmd(b"STATUS INBOX (HIGHESTMODSEQ)") if b"HIGHESTMODSEQ" in x]
    rng = random.Random(9)
    flags = [b"\\Seen", b"\\Flagged", b"$Work", b"\\Answered", b"\\Deleted"]
    for step in range(40):
        what = rng.choice(kinds)
        n = 12 + step
        pick = b",".join(b"%d" % rng.randint(1, n) for _ in range(rng.randint(1, 4)))
        if what == "store":
            await b.cmd(b"UID STORE %s %sFLAGS.SILENT (%s)" % (
                pick, rng.choice([b"+", b"-", b""]), rng.choice(flags)))
        elif what == "deliver":
            await imap_server.deliver(b"Subject: new %d\r\n\r\nbody\r\n" % step)
        elif what == "expunge":
            await b.cmd(b"UID STORE %s +FLAGS.SILENT (\\Deleted)" % pick)
            await b.cmd(b"UID EXPUNGE %s" % pick)
        elif what == "copy":
            await b.cmd(b"UID COPY %s INBOX" % pick)
        else:
            await b.cmd(b"UID MOVE %s Other" % pick)
            await b.cmd(b"SELECT Other")
            await b.cmd(b"UID MOVE 1:* INBOX")
            await b.cmd(b"SELECT INBOX")
        # Asked before the sessions are told (an expunged message still has its number:
        # FETCH by number may not announce EXPUNGE, RFC 9051 §7.5.1), then after.
        await _same_answers(a, c, rng, modseqs, (step, what))
        told_a = [x for x in await a.cmd(b"NOOP") if not x.startswith(b"a ")]
        told_c = [x for x in await c.cmd(b"NOOP") if not x.startswith(b"a ")]
        assert [x for x in told_a if not _FETCH.match(x)] == \
            [x for x in told_c if not _FETCH.match(x)], step
        status = await a.cmd(b"STATUS INBOX (HIGHESTMODSEQ)")
        modseqs.append(int(re.search(rb"HIGHESTMODSEQ (\d+)",  # type: ignore[union-attr]
                                     status[0]).group(1)))
        await _same_answers(a, c, rng, modseqs, (step, what))


async def _same_answers(a: Wire, c: Wire, rng: random.Random, modseqs: list[int],
                        where: tuple[int, str]) -> None:
    for since in sorted({modseqs[0], *rng.sample(modseqs, min(3, len(modseqs)))}):
        for cmd in (b"FETCH 1:* (UID FLAGS) (CHANGEDSINCE %d)" % since,
                    b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % since):
            got_a, got_c = await a.cmd(cmd), await c.cmd(cmd)
            assert got_a == got_c, (where, cmd)
            assert got_a[-1].startswith(b"a OK")


def test_a_shared_log_that_lost_its_subscription_is_replaced_at_the_next_select() -> None:
    """A second SELECT finds the mailbox's log, which turns out to have lost its
    subscription (too many changes unread): the SELECT gets a fresh log on its own
    subscription instead of an error (found by the session fuzz test)."""
    hub = ChangeHub()
    first = changelog.attach(hub, "alice").attach("/acct-lost", 7, 5)
    first.sub.overflowed = True  # the hub gave up on it while nobody read
    second = changelog.attach(hub, "alice").attach("/acct-lost", 7, 9)
    assert second is not first and second.valid and not first.valid
    assert second.floor == 9


def test_changes_heard_out_of_modseq_order_answer_as_in_order() -> None:
    """A STORE's many UIDs go in at once; a change heard after a later one (commits
    publish in any order) and UIDs not ascending still give the right answer."""
    hub = ChangeHub()
    log = _log(hub, 10)
    many = tuple(range(1, 301))
    hub.publish("alice", [Change("flags", 7, "Inbox", many, 20, (SEEN,) * len(many))])
    hub.publish("alice", [Change("flags", 7, "Inbox", (5, 400, 2), 15, (FLAGGED,) * 3)])
    hub.publish("alice", [Change("flags", 7, "Inbox", (7, 3), 25, (FLAGGED, FLAGGED))])
    seq = {u: u for u in (*many, 400)}.get
    rows = log.changed(10, seq) or []
    want = {u: (20, SEEN.system) for u in many} | {400: (15, FLAGGED.system)} \
        | {7: (25, FLAGGED.system), 3: (25, FLAGGED.system)}
    assert [(r.uid, r.modseq, r.flags) for _, r in rows] == [
        (u, *want[u]) for u in sorted(want)]
    assert [(r.uid, r.modseq) for _, r in log.changed(19, seq) or []] == [
        (u, want[u][0]) for u in sorted(want) if want[u][0] > 19]
    assert [r.uid for _, r in log.changed(20, seq) or []] == [3, 7]
