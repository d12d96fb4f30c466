"""The learner passes over what the MX delivered: record_delivery already wrote it.

The junk database must end the same either way (the rows of its history, the
classes, what is trained), while the learner reads no store rows back for
messages the MX just delivered; a later flag change is learnt as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.junk.test_scenario import message

from kittiwake.config import DomainsConfig
from kittiwake.dns import MockResolver
from kittiwake.junk import JunkFilter, SenderIdentities
from kittiwake.junk import filter as junk_filter
from kittiwake.junk.history import Class
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.deliver import LocalDelivery, deliver_local
from kittiwake.store import Flags, Store
from kittiwake.store.account import AccountStore

CLEAN = SenderIdentities("192.0.2.10", dmarc_domain="sender.example",
                         verified_domains=frozenset({"sender.example"}),
                         address="carol@sender.example")
LISTED = SenderIdentities("192.0.2.9", address="spam@listed.example")
CONF = DomainsConfig.model_validate({
    "domains": {"example.org": {}},
    "accounts": {"alice": {"domain": "example.org",
                           "destinations": {"alice@example.org": {}},
                           "junk": {"dnsbl_zones": ["bl.example"]}}}})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data")
    yield s
    s.close()


async def scenario(store: Store) -> tuple[list[tuple[object, ...]], int, tuple[int, int],
                                          list[tuple[Class, Class] | None]]:
    """Two MX deliveries (one into Inbox, one into Junk: its IP is listed), then the
    Inbox one read by its user; the history rows, the store reads the learner made,
    the trained totals and each message's (class, trained)."""
    resolver = MockResolver()
    resolver.add("A", "9.2.0.192.bl.example", "127.0.0.2")
    junk = JunkFilter(store, lambda: CONF, resolver)
    await junk.start()
    ctx = ServerContext(hostname="mx.example.org", store=store, domains=CONF, junk=junk)
    rcpt = [LocalDelivery("alice@example.org",
                          ctx.index.lookup("alice", "example.org"))]  # type: ignore[arg-type]
    reads = 0
    original = AccountStore.messages

    def counted(self: AccountStore, *args: object, **kwargs: object) -> object:
        nonlocal reads
        reads += 1
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    AccountStore.messages = counted  # type: ignore[assignment,method-assign]
    try:
        for n, who in ((1, CLEAN), (2, LISTED)):
            failures = await deliver_local(ctx, rcpt, message(who.address, "hello", "hi", n),
                                           f"bounce@{who.address.split('@')[1]}", sender=who)
            assert failures == []
            # Message ids settled: the files made ahead after the first delivery are
            # made before the next takes one (else it may take an id after the batch).
            (await store.account("alice")).core.ready.wait()
        await junk.settled()
        after_delivery = reads
        alice = await store.account("alice")
        [inbox] = await alice.messages("Inbox")
        [junked] = await alice.messages("Junk")
        await alice.store_flags("Inbox", [inbox.uid], "add", Flags.parse(["\\Seen"]))
        await junk.settled()
    finally:
        AccountStore.messages = original  # type: ignore[method-assign]
    db = await junk.database("alice")
    rows = db.reader.execute(
        "SELECT id, mailbox, uid, msgid, ip, net, dmarc_domain, address, flags, keywords,"
        " rescued, replied, expunged, class, trained FROM message ORDER BY id").fetchall()
    classes = [db.message_class(inbox.id), db.message_class(junked.id)]
    totals = db.totals()
    await junk.close()
    return rows, after_delivery, totals, classes


async def test_mx_deliveries_are_not_read_back_and_end_as_before(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows, reads, totals, classes = await scenario(store)
    assert reads == 0  # the learner read no store rows for what the MX delivered
    # The Junk delivery trained as junk once; the read Inbox message as ham.
    assert totals == (1, 1)
    assert classes == [(Class.HAM, Class.HAM), (Class.JUNK, Class.JUNK)]
    assert [(r[1], r[4], r[7]) for r in rows] == [
        ("Inbox", CLEAN.ip, CLEAN.address), ("Junk", LISTED.ip, LISTED.address)]

    # The same with the learner reading everything back, as it did before: same rows.
    monkeypatch.setattr(junk_filter, "_not_recorded", lambda recorded, mailbox, uids: uids)
    other = Store(tmp_path / "other")
    try:
        rows_before, reads_before, totals_before, classes_before = await scenario(other)
    finally:
        other.close()
    assert reads_before > 0
    assert (rows_before, totals_before, classes_before) == (rows, totals, classes)
