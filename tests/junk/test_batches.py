"""The junk filter learns from a burst of changes in one go, each change exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kittiwake.config import DomainsConfig
from kittiwake.junk import JunkFilter
from kittiwake.junk import filter as junk_filter
from kittiwake.junk.database import JunkDatabase
from kittiwake.junk.history import Class
from kittiwake.store import Flags, Store

CONF = DomainsConfig.model_validate({
    "domains": {"example.org": {}},
    "accounts": {"alice": {"domain": "example.org", "destinations": {"alice@example.org": {}}}}})


def text(n: int) -> bytes:
    return (f"From: s{n}@sender.example\r\nSubject: note {n}\r\nMessage-ID: <m{n}@x>\r\n\r\n"
            f"uniqueword{n} common words here\r\n").encode()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data")
    yield s
    s.close()


def counting(db: JunkDatabase, name: str, calls: list[int]) -> None:
    method = getattr(db, name)

    def counted(*args: Any) -> Any:
        calls.append(1)
        return method(*args)
    setattr(db, name, counted)


async def test_a_burst_of_flag_changes_is_learnt_once_each_in_one_go(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(junk_filter, "LEARN_DELAY", 1.0)  # the burst is surely together
    junk = JunkFilter(store, lambda: CONF)
    await junk.start()
    alice = await store.account("alice")
    for n in range(1, 7):
        await alice.deliver("Inbox", text(n))
    await junk.settled()
    db = await junk.database("alice")
    flags_calls: list[int] = []
    counting(db, "flags_changed", flags_calls)
    # Four STOREs, one after the other, before the filter looks.
    await alice.store_flags("Inbox", [1, 2, 3], "add", Flags.parse(["$Junk"]))
    await alice.store_flags("Inbox", [3, 4], "add", Flags.parse(["$NotJunk"]))
    await alice.store_flags("Inbox", [1], "remove", Flags.parse(["$Junk"]))
    await alice.store_flags("Inbox", [5], "add", Flags.parse(["\\Seen"]))
    await junk.settled()
    assert flags_calls == [1]  # one read and one transaction for the four changes
    want = {1: Class.UNKNOWN, 2: Class.JUNK, 3: Class.HAM, 4: Class.HAM, 5: Class.HAM,
            6: Class.UNKNOWN}
    by_uid = {m.uid: m.id for m in await alice.messages("Inbox")}
    got = {uid: await asyncio.to_thread(db.message_class, by_uid[uid]) for uid in want}
    assert got == {uid: (cls, cls) for uid, cls in want.items()}
    stats = await junk.stats("alice")
    assert (stats.ham_messages, stats.junk_messages) == (3, 1)
    counts = await asyncio.to_thread(db.counts, ["uniqueword1", "uniqueword2", "uniqueword3",
                                                 "common"])
    # Message 1 was junk for a moment: trained and untrained, nothing left of it.
    assert "uniqueword1" not in counts
    assert (counts["uniqueword2"].ham, counts["uniqueword2"].junk) == (0, 1)
    assert (counts["uniqueword3"].ham, counts["uniqueword3"].junk) == (1, 0)
    assert (counts["common"].ham, counts["common"].junk) == (3, 1)
    await junk.close()


async def test_a_burst_of_deliveries_is_located_in_one_transaction(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(junk_filter, "LEARN_DELAY", 1.0)
    junk = JunkFilter(store, lambda: CONF)
    await junk.start()
    alice = await store.account("alice")
    db = await junk.database("alice")
    calls: list[int] = []
    counting(db, "located_many", calls)
    for n in range(20):
        await alice.deliver("Inbox", text(n), Flags.parse(["\\Seen"]) if n % 2 else Flags())
    await junk.settled()
    assert calls == [1]
    stats = await junk.stats("alice")
    assert (stats.known_messages, stats.ham_messages, stats.junk_messages) == (20, 10, 0)
    await junk.close()


async def test_a_change_heard_before_close_is_learnt_after_a_restart(store: Store) -> None:
    junk = JunkFilter(store, lambda: CONF)
    await junk.start()
    alice = await store.account("alice")
    await alice.deliver("Inbox", text(1))
    await junk.settled()
    await alice.store_flags("Inbox", [1], "add", Flags.parse(["$Junk"]))
    await junk.close()  # at once: the change is still waiting to be learnt
    again = JunkFilter(store, lambda: CONF)
    [m] = await alice.messages("Inbox")
    db = await again.database("alice")
    assert await asyncio.to_thread(db.message_class, m.id) == (Class.JUNK, Class.JUNK)
    assert (await again.stats("alice")).junk_messages == 1
    await again.close()
