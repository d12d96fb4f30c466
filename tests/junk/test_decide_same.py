"""The verdicts of the filter's decision equal those of the code it replaced.

The reference below is the decision as it was before the reputation reads were
cut (every identity's tally read up front, with the SQL of that time): the same
training and the same incoming mail, through both, give equal verdicts (action,
reason, evidence, score, words, first-time pause), while the history grows
between the messages as the MX records them.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from bench.corpus import message as ham_message
from bench.junkcpu import good_sender, junk_message, junk_sender, new_sender

from kittiwake.config import DomainsConfig
from kittiwake.config.domains import JunkConfig
from kittiwake.dns import MockResolver
from kittiwake.junk import JunkFilter, JunkVerdict, SenderIdentities, database, reputation
from kittiwake.junk.bayes import score
from kittiwake.junk.database import (
    CLASSIFIED_LIMIT,
    TOTAL_LIMIT,
    JunkDatabase,
    Tally,
)
from kittiwake.junk.filter import DAY_MS, reject_reply, rejects
from kittiwake.junk.history import Class
from kittiwake.junk.model import Action, Reason
from kittiwake.junk.tokens import message_words
from kittiwake.message import parse_msgids
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.deliver import LocalDelivery, deliver_local
from kittiwake.store import Flags, Store

CONF = DomainsConfig.model_validate({
    "domains": {"example.org": {}},
    "accounts": {"alice": {"domain": "example.org",
                           "destinations": {"alice@example.org": {}},
                           "junk": {"min_training_messages": 10,
                                    "first_time_delay_seconds": 5}}}})


# --- the reference: the decision as it was --------------------------------------

def old_tally(db: JunkDatabase, column: str, value: str, since_ms: int) -> Tally:
    if not value:
        return Tally()
    value = value.lower()
    r = db.reader
    total = r.execute(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM message INDEXED BY message_{column}"
        f" WHERE {column} = ? AND received >= ? LIMIT ?)",
        (value, since_ms, TOTAL_LIMIT)).fetchone()[0]
    if not total:
        return Tally()
    ham, junk = r.execute(
        "SELECT COALESCE(SUM(class = 'ham'), 0), COALESCE(SUM(class = 'junk'), 0)"
        f" FROM (SELECT class FROM message INDEXED BY message_{column}_classified"
        f" WHERE {column} = ? AND received >= ? AND class != ''"
        " ORDER BY received DESC LIMIT ?)",
        (value, since_ms, CLASSIFIED_LIMIT)).fetchone()
    return Tally(total, ham, junk)


def old_tally_verified(db: JunkDatabase, domains: frozenset[str], since_ms: int) -> Tally:
    wanted = sorted({d.lower() for d in domains})
    marks = ",".join("?" * len(wanted))
    r = db.reader
    total = 0
    for domain in wanted:
        total += r.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM verified v JOIN message m"
            " ON m.id = v.message WHERE v.domain = ? AND m.received >= ?"
            " ORDER BY v.message DESC LIMIT ?)",
            (domain, since_ms, TOTAL_LIMIT)).fetchone()[0]
        if total >= TOTAL_LIMIT:
            total = TOTAL_LIMIT
            break
    if not total:
        return Tally()
    ham, junk = r.execute(
        "SELECT COALESCE(SUM(c.class = 'ham'), 0), COALESCE(SUM(c.class = 'junk'), 0)"
        " FROM (SELECT id, class FROM message INDEXED BY message_classified"
        " WHERE received >= ? AND class != '' ORDER BY received DESC LIMIT ?) c"
        f" WHERE EXISTS (SELECT 1 FROM verified v WHERE v.domain IN ({marks})"
        " AND v.message = c.id)",
        (since_ms, database.VERIFIED_SCAN, *wanted)).fetchone()
    return Tally(total, ham, junk)


def old_signals(db: JunkDatabase, who: SenderIdentities, since: int
                ) -> list[reputation.Signal]:
    wanted = [(Reason.ADDRESS, "address", "address", who.address),
              (Reason.DMARC_DOMAIN, "domain", "dmarc_domain", who.dmarc_domain)]
    signals = [reputation.Signal(reason, key, value, old_tally(db, column, value, since))
               for reason, key, column, value in wanted if value]
    if who.verified_domains:
        signals.append(reputation.Signal(
            Reason.VERIFIED_DOMAIN, "domain", ",".join(sorted(who.verified_domains)),
            old_tally_verified(db, who.verified_domains, since)))
    for reason, key, column, value in ((Reason.IP, "ip", "ip", who.ip),
                                       (Reason.NETWORK, "net", "net", who.network)):
        if value:
            signals.append(reputation.Signal(reason, key, value,
                                             old_tally(db, column, value, since)))
    return signals


def old_junk(db: JunkDatabase, settings: JunkConfig, verdict: JunkVerdict,
             reject: bool) -> JunkVerdict:
    if not reject:
        return replace(verdict, action=Action.JUNK, mailbox=settings.junk_mailbox)
    return replace(verdict, action=Action.REJECT, mailbox=settings.rejects_mailbox,
                   reject=reject_reply(settings), already_kept=db.in_rejects(verdict.message_id))


def old_decide(db: JunkDatabase, settings: JunkConfig, identities: SenderIdentities,
               message: bytes, since: int, message_id: str) -> JunkVerdict:
    ids = parse_msgids(message_id)
    msgid = ids[0] if ids else ""
    signals = old_signals(db, identities, since)
    sent_to = identities.address if identities.address and db.sent_to(
        identities.address) else ""
    first = not sent_to and reputation.first_time(signals) and db.knows_at_least(
        settings.min_training_messages)
    base = JunkVerdict(Action.ACCEPT, Reason.UNTRAINED, identities=identities,
                       message_id=msgid, first_time=first,
                       delay=settings.first_time_delay_seconds if first else 0.0)
    decision = reputation.decide(sent_to, signals)
    if decision is not None:
        evidence = ((decision.signal.key, decision.signal.value),)
        if decision.cls is Class.HAM:
            return replace(base, reason=decision.signal.reason, evidence=evidence)
        return old_junk(db, settings, replace(base, reason=decision.signal.reason,
                                              evidence=evidence),
                        reject=settings.known_junk == "reject")
    if identities.dnsbl_listed:
        return old_junk(db, settings, replace(
            base, reason=Reason.DNSBL, evidence=(("zone", identities.dnsbl_listed[0]),)),
            reject=False)
    ham_total, junk_total = db.totals()
    if min(ham_total, junk_total) < settings.min_training_messages:
        return base
    words = message_words(message)
    result = score(words, db.counts(words), ham_total, junk_total)
    verdict = replace(base, reason=Reason.CONTENT, score=result.probability,
                      words=result.words[:10])
    if rejects(settings, result.probability):
        return old_junk(db, settings, verdict, reject=True)
    if result.probability >= settings.junk_threshold:
        return old_junk(db, settings, verdict, reject=False)
    return verdict


# --- the scenario ------------------------------------------------------------------

@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data")
    yield s
    s.close()


def incoming(rng: random.Random, i: int) -> tuple[bytes, SenderIdentities]:
    """Mail from every kind of sender: known good and bad ones, new ones, listed ones,
    one the account wrote to, senders with only an IP."""
    kind = i % 12
    if kind < 3:
        return ham_message(rng, 1000 + i, 1500), good_sender(i)
    if kind < 5:
        return junk_message(rng, 1000 + i, 1200), junk_sender(i)
    if kind < 7:
        return ham_message(rng, 1000 + i, 1500), new_sender(i)
    if kind < 9:
        return junk_message(rng, 1000 + i, 1200), new_sender(i)
    if kind == 9:
        who = replace(new_sender(i), dnsbl_listed=("bl.example",))
        return junk_message(rng, 1000 + i, 800), who
    if kind == 10:
        return ham_message(rng, 1000 + i, 800), SenderIdentities(
            f"198.51.{i % 5}.{200 + i % 3}")  # a known network, no verified identity
    return ham_message(rng, 1000 + i, 800), SenderIdentities(
        "192.0.2.1", address="friend@written.example")


async def test_verdicts_equal_the_reference_as_the_history_grows(store: Store) -> None:
    async def no_pause(seconds: float) -> None:
        """The first-time sender's pause is not waited for."""

    junk = JunkFilter(store, lambda: CONF, MockResolver(), sleep=no_pause)
    await junk.start()
    ctx = ServerContext(hostname="mx.example.org", store=store, domains=CONF, junk=junk)
    target = ctx.index.lookup("alice", "example.org")
    assert target is not None
    rcpt = [LocalDelivery("alice@example.org", target)]
    rng = random.Random(5)
    for i in range(60):  # the training: good senders' mail read, junk moved to Junk
        data, who = (ham_message(rng, i, 1500), good_sender(i)) if i % 3 else \
            (junk_message(rng, i, 1200), junk_sender(i))
        await deliver_local(ctx, rcpt, data, "bounce@x.example", sender=who)
    await junk.record_sent("alice", ["friend@written.example"], b"To: x@y.example\r\n\r\n")
    await junk.settled(30)
    alice = await store.account("alice")
    inbox = await alice.messages("Inbox")
    await alice.store_flags("Inbox", [m.uid for m in inbox], "add", Flags.parse(["\\Seen"]))
    await junk.settled(30)
    for m in inbox:  # the junk senders' (every third, the first) and a few more
        if m.uid % 3 != 1 and m.uid % 10:
            continue
        await alice.move("Inbox", [m.uid], "Junk")
    await junk.settled(30)

    db = await junk.database("alice")
    settings = junk.settings("alice")
    assert settings is not None
    seen: set[tuple[Action, Reason, bool]] = set()
    for i in range(96):
        data, who = incoming(rng, i)
        msgid = f"<in{i}@x.example>"
        since = int(junk.clock() * 1000) - settings.history_days * DAY_MS
        new = junk._decide(db, settings, who, data, since, msgid)
        old = old_decide(db, settings, who, data, since, msgid)
        assert (new, new.words) == (old, old.words), (i, who)
        seen.add((new.action, new.reason, new.first_time))
        await deliver_local(ctx, rcpt, data, "bounce@x.example", sender=who)
        await junk.recorded()
        if i % 24 == 23:  # the user reads what came, and calls some of it junk
            inbox = await alice.messages("Inbox")
            await alice.store_flags("Inbox", [m.uid for m in inbox], "add",
                                    Flags.parse(["\\Seen"]))
            await alice.store_flags("Inbox", [m.uid for m in inbox[-6:]], "add",
                                    Flags.parse(["$Junk"]))
            await junk.settled(30)
    await junk.close()
    # Every way of deciding was met.
    reasons = {reason for _action, reason, _first in seen}
    assert set(Reason) - {Reason.UNTRAINED, Reason.DISABLED} <= reasons
    assert any(first for _a, _r, first in seen)
    assert {action for action, _r, _f in seen} == set(Action)
