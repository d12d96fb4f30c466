"""JunkFilter decisions on a real store: block lists, known junk, Rejects, several accounts."""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.junk.conftest import Servers, domains
from tests.junk.test_scenario import SPAM_WORDS, message, sender_dns, train

from kittiwake.config import DomainsConfig
from kittiwake.config.domains import JunkConfig
from kittiwake.dns import MockResolver
from kittiwake.junk import Action, JunkFilter, Reason, SenderIdentities
from kittiwake.server.outbox import JunkNotingOutbox
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.deliver import LocalDelivery, deliver_local
from kittiwake.store import Flags, Store

CAROL = SenderIdentities("192.0.2.9", dmarc_domain="sender.example",
                         verified_domains=frozenset({"sender.example"}),
                         address="carol@sender.example")


def two_accounts(bob_junk: dict[str, object]) -> DomainsConfig:
    return DomainsConfig.model_validate({
        "domains": {"example.org": {}},
        "accounts": {
            "alice": {"domain": "example.org", "destinations": {"alice@example.org": {}},
                      "junk": {"known_junk": "reject"}},
            "bob": {"domain": "example.org", "destinations": {"bob@example.org": {}},
                    "junk": bob_junk}}})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data")
    yield s
    s.close()


async def test_dnsbl_listing_files_unknown_senders_as_junk(store: Store) -> None:
    conf = DomainsConfig.model_validate({
        "domains": {"example.org": {}},
        "accounts": {"alice": {"domain": "example.org", "junk": {"dnsbl_zones": ["bl.example"]}}}})
    resolver = MockResolver()
    resolver.add("A", "9.2.0.192.bl.example", "127.0.0.2")
    junk = JunkFilter(store, lambda: conf, resolver)
    verdict = await junk.classify("alice", CAROL, message("carol@sender.example", "hi", "x", 1))
    assert (verdict.action, verdict.reason, verdict.mailbox) == (Action.JUNK, Reason.DNSBL, "Junk")
    assert verdict.header() == b"X-Kittiwake-Junk: junk; reason=dnsbl; zone=bl.example\r\n"
    clean = await junk.classify("alice", SenderIdentities("192.0.2.10"), b"Subject: x\r\n\r\n")
    assert clean.action is Action.ACCEPT and clean.reason is Reason.UNTRAINED
    await junk.close()


async def test_known_junk_rejected_for_one_account_kept_and_accepted_for_another(
        store: Store) -> None:
    conf = two_accounts({"enabled": False})
    junk = JunkFilter(store, lambda: conf)
    await junk.start()
    alice = await store.account("alice", default_mailboxes=["Junk"])
    await alice.deliver("Junk", message("carol@sender.example", "old", "x", 1))
    [first] = await alice.messages("Junk")
    db = await junk.database("alice")
    await asyncio.to_thread(db.record_delivery, first.id, "Junk", first.uid, "<1>", CAROL)
    await junk.settled()

    ctx = ServerContext(hostname="mx.example.org", store=store, domains=conf, junk=junk)
    deliveries = [LocalDelivery(a, ctx.index.lookup(*a.split("@")))  # type: ignore[arg-type]
                  for a in ("alice@example.org", "bob@example.org")]
    data = message("carol@sender.example", "new", "y", 2)
    failures = await deliver_local(ctx, deliveries, data, "bounce@sender.example", sender=CAROL)
    assert failures == []  # bob took it: the message is accepted, alice's copy is kept
    [kept] = await alice.messages("Rejects")
    stored = await alice.read(kept.id)
    assert stored.startswith(b"X-Kittiwake-Junk: junk; reason=address-reputation;")
    bob = await store.account("bob")
    [delivered] = await bob.messages("Inbox")
    assert (await bob.read(delivered.id)) == data  # junk filtering off for bob: no header

    failures = await deliver_local(ctx, deliveries[:1], message("carol@sender.example", "n",
                                                                "z", 3),
                                   "bounce@sender.example", sender=CAROL)
    assert [(f.code, f.enhanced) for f in failures] == [(451, "4.7.1")]
    await junk.close()


async def test_rejects_are_expunged_after_their_days(store: Store) -> None:
    conf = two_accounts({})
    now = time.time()
    junk = JunkFilter(store, lambda: conf, clock=lambda: now)
    alice = await store.account("alice", default_mailboxes=["Rejects"])
    await alice.deliver("Rejects", b"Subject: old reject\r\n\r\nx\r\n")
    assert await junk.expunge_old_rejects() == 0
    now += 15 * 86400  # past the default 14 days
    assert await junk.expunge_old_rejects() == 1
    assert await alice.messages("Rejects") == []
    await junk.close()


@pytest.mark.parametrize("servers", [{"min_training_messages": 3, "reject_threshold": 0.95,
                                      "first_time_delay_seconds": 0}], indirect=True)
async def test_a_retried_reject_is_kept_once(servers: Servers) -> None:
    await train(servers)
    sender_dns(servers)
    spam = message("carol@sender.example", "you won", SPAM_WORDS, 1)
    for _ in range(2):  # 451: the sender retries the same message
        with pytest.raises(smtplib.SMTPDataError) as info:
            await servers.send("bounce@sender.example", spam)
        assert info.value.smtp_code == 451 and b"4.7.1" in info.value.smtp_error
    account = await servers.store.account("alice")
    assert len(await account.messages("Rejects")) == 1


@pytest.mark.parametrize("servers", [{"min_training_messages": 3, "reject_threshold": 0.95,
                                      "first_time_delay_seconds": 0}], indirect=True)
async def test_a_retry_before_the_history_is_written_is_kept_once(servers: Servers) -> None:
    """The history row of a rejected message is written after the reply (in a batch):
    a retry judged before that is still known to be in Rejects, and no second copy is
    stored."""
    await train(servers)
    spam = message("carol@sender.example", "you won", SPAM_WORDS, 1)
    ctx = ServerContext(hostname="mx.example.org", store=servers.store, domains=domains(
        {"min_training_messages": 3, "reject_threshold": 0.95}), junk=servers.junk)
    target = ctx.index.lookup("alice", "example.org")
    assert target is not None
    rcpt = [LocalDelivery("alice@example.org", target)]
    # The account's writer waits (as behind a long training) until both are judged.
    async with servers.junk._lock("alice"):
        for _ in range(2):
            [failure] = await deliver_local(ctx, rcpt, spam, "bounce@x.example", sender=CAROL)
            assert (failure.code, failure.enhanced) == (451, "4.7.1")
    await servers.junk.recorded()
    account = await servers.store.account("alice")
    assert len(await account.messages("Rejects")) == 1
    retry = await servers.junk.classify("alice", CAROL, spam)  # and once it is written
    assert retry.already_kept and servers.junk._rejects_pending.get("alice") == {}


async def test_an_address_the_account_wrote_to_is_good(store: Store) -> None:
    conf = two_accounts({})
    junk = JunkFilter(store, lambda: conf)
    sent: list[dict[str, object]] = []

    class Queue:
        async def enqueue(self, **kwargs: object) -> list[int]:
            sent.append(kwargs)
            return [1]

    outbox = JunkNotingOutbox(Queue(), junk)
    await outbox.enqueue(account="alice", mailfrom="alice@example.org",
                         recipients=["Carol@sender.example"], data=b"Subject: hi\r\n\r\nx\r\n",
                         smtputf8=False, requiretls=None)
    assert len(sent) == 1
    verdict = await junk.classify("alice", CAROL, b"Subject: casino\r\n\r\nprize\r\n")
    assert (verdict.action, verdict.reason) == (Action.ACCEPT, Reason.SENT_TO_ADDRESS)
    assert not verdict.first_time and verdict.delay == 0
    await junk.close()


async def test_flags_from_a_client_retrain(store: Store) -> None:
    conf = two_accounts({})
    junk = JunkFilter(store, lambda: conf)
    await junk.start()
    alice = await store.account("alice")
    await alice.deliver("Inbox", b"Subject: lunch\r\n\r\nagenda\r\n", flags=Flags.parse(["\\Seen"]))
    await junk.settled()
    assert (await junk.stats("alice")).ham_messages == 1
    [m] = await alice.messages("Inbox")
    await alice.store_flags("Inbox", [m.uid], "add", Flags.parse(["$Junk"]))
    await junk.settled()
    stats = await junk.stats("alice")
    assert (stats.ham_messages, stats.junk_messages) == (0, 1)
    await alice.store_flags("Inbox", [m.uid], "replace", Flags.parse(["\\Seen", "$NotJunk"]))
    await junk.settled()
    stats = await junk.stats("alice")
    assert (stats.ham_messages, stats.junk_messages) == (1, 0)
    await junk.close()


def test_settings_are_checked() -> None:
    with pytest.raises(ValidationError) as info:
        JunkConfig(junk_threshold=0.9, reject_threshold=0.5)
    assert "reject_threshold 0.5 is below junk_threshold 0.9" in str(info.value)
    with pytest.raises(ValidationError):
        JunkConfig(reject_code=500)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        JunkConfig(junk_mailbox="Inbox")


async def test_metrics_count_verdicts_training_and_latency(store: Store) -> None:
    from kittiwake.metrics import render

    before, _ = render()
    assert b'kittiwake_junk_verdicts_total{action="reject",reason="dnsbl"} 0.0' in before
    assert b'kittiwake_junk_training_events_total{class="junk",direction="remove"}' in before

    def value(text: bytes, line: bytes) -> float:
        found = [x for x in text.splitlines() if x.startswith(line + b" ")]
        return float(found[0].split()[-1]) if found else 0.0

    verdicts = b'kittiwake_junk_verdicts_total{action="accept",reason="content-untrained"}'
    latency = b"kittiwake_junk_classify_duration_seconds_count"
    conf = two_accounts({})
    junk = JunkFilter(store, lambda: conf)
    await junk.classify("alice", CAROL, b"Subject: x\r\n\r\ny\r\n")
    after, _ = render()
    assert value(after, verdicts) == value(before, verdicts) + 1
    assert value(after, latency) == value(before, latency) + 1
    await junk.close()


async def test_mail_from_before_the_filter_is_trained_once(store: Store) -> None:
    conf = two_accounts({"enabled": False})
    alice = await store.account("alice", default_mailboxes=["Junk", "Archive"])
    await alice.deliver("Junk", b"Subject: prize\r\n\r\ncasino\r\n")
    await alice.deliver("Archive", b"Subject: notes\r\n\r\nagenda\r\n",
                        flags=Flags.parse(["\\Seen"]))
    junk = JunkFilter(store, lambda: conf)
    assert await junk.train_untrained() == ["alice"]  # bob has the filter off
    stats = await junk.stats("alice")
    assert (stats.ham_messages, stats.junk_messages) == (1, 1)
    assert await junk.train_untrained() == []
    await junk.close()


async def test_no_first_time_pause_while_the_account_has_no_history(store: Store) -> None:
    conf = two_accounts({"min_training_messages": 2})
    junk = JunkFilter(store, lambda: conf)
    new = await junk.classify("bob", CAROL, b"Subject: x\r\n\r\ny\r\n")
    assert not new.first_time and new.delay == 0
    db = await junk.database("bob")
    for i in (1, 2):
        await asyncio.to_thread(db.located, i, "Inbox", i, 0, (), f"<{i}@x>", 0)
    later = await junk.classify("bob", CAROL, b"Subject: x\r\n\r\ny\r\n")
    assert later.first_time and later.delay == 15.0
    await junk.close()


async def test_each_decision_is_one_log_line_with_fields(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    conf = two_accounts({})
    junk = JunkFilter(store, lambda: conf)
    with caplog.at_level(logging.INFO, logger="kittiwake.junk"):
        await junk.classify("bob", CAROL, b"Subject: x\r\n\r\ny\r\n")
    [line] = [r for r in caplog.records if r.getMessage() == "junk verdict"]
    assert line.kw_fields == {  # type: ignore[attr-defined]
        "account": "bob", "ip": "192.0.2.9", "sender": "carol@sender.example",
        "verdict": "ham", "action": "accept", "reason": "content-untrained"}
    await junk.close()


async def test_words_are_computed_in_a_cpu_worker_process(store: Store) -> None:
    """In the server the words of training and incoming mail come from kittiwake.cpupool."""
    from kittiwake import metrics
    from kittiwake.cpupool import CpuPool

    def in_workers() -> float:
        return metrics.REGISTRY.get_sample_value("kittiwake_cpu_jobs_total",
                                                 {"where": "worker"}) or 0.0

    conf = two_accounts({"min_training_messages": 2})
    bob = await store.account("bob", default_mailboxes=["Junk", "Archive"])
    for i in range(2):
        await bob.deliver("Junk", f"Subject: prize {i}\r\n\r\ncasino winner pills\r\n".encode())
        await bob.deliver("Archive", f"Subject: notes {i}\r\n\r\nagenda budget\r\n".encode(),
                          flags=Flags.parse(["\\Seen"]))
    pool = CpuPool(1, preload=["kittiwake.junk.tokens"])
    pool.start()
    junk = JunkFilter(store, lambda: conf, cpu=pool)
    try:
        before = in_workers()
        assert await junk.train_untrained() == ["alice", "bob"]
        trained = in_workers()
        assert trained >= before + 4  # the four messages' words
        verdict = await junk.classify("bob", SenderIdentities("192.0.2.7"),
                                      b"Subject: prize\r\n\r\ncasino winner\r\n")
        stats = await junk.stats("bob")
        assert (stats.ham_messages, stats.junk_messages) == (2, 2)
        assert (verdict.action, verdict.reason) == (Action.JUNK, Reason.CONTENT)
        assert in_workers() == trained + 1
    finally:
        await junk.close()
        pool.close()


async def test_the_text_is_read_only_when_the_words_are_judged(store: Store) -> None:
    """A message given as a reader (the server reads a worker's spool file) is read only
    when the content classifier looks at its words, never for a verdict without them."""
    conf = two_accounts({"min_training_messages": 2})
    reads: list[str] = []

    def reader(data: bytes) -> Callable[[], bytes]:
        def read() -> bytes:
            reads.append("read")
            return data
        return read

    junk = JunkFilter(store, lambda: conf)
    try:
        text = b"Subject: prize\r\n\r\ncasino winner\r\n"
        untrained = await junk.classify("bob", SenderIdentities("192.0.2.7"), reader(text),
                                        "<1@x>")
        assert (untrained.action, untrained.reason) == (Action.ACCEPT, Reason.UNTRAINED)
        assert reads == []
        bob = await store.account("bob", default_mailboxes=["Junk", "Archive"])
        for i in range(2):
            await bob.deliver("Junk", f"Subject: prize {i}\r\n\r\ncasino winner\r\n".encode())
            await bob.deliver("Archive", f"Subject: notes {i}\r\n\r\nagenda budget\r\n"
                              .encode(), flags=Flags.parse(["\\Seen"]))
        assert await junk.train_untrained() == ["alice", "bob"]
        judged = await junk.classify("bob", SenderIdentities("192.0.2.7"), reader(text),
                                     "<2@x>")
        assert (judged.action, judged.reason) == (Action.JUNK, Reason.CONTENT)
        assert reads == ["read"]
    finally:
        await junk.close()


def test_consecutive_additions_to_one_mailbox_are_learnt_together() -> None:
    from kittiwake.junk.filter import merge_added
    from kittiwake.store.model import Change

    changes = [Change("added", 1, "Inbox", (1,), 5), Change("added", 1, "Inbox", (2,), 6),
               Change("flags", 1, "Inbox", (1,), 7), Change("added", 1, "Inbox", (3,), 8),
               Change("added", 2, "Junk", (1,), 9)]
    assert merge_added(changes) == [Change("added", 1, "Inbox", (1, 2), 6), changes[2],
                                    changes[3], changes[4]]
