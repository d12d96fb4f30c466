"""Recent reputation verdicts (kittiwake.junk.recent): a sender accepted on its history a
moment ago is accepted again at once, each message with its own Message-ID; junk
verdicts are never kept; training forgets the account's verdicts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.junk.test_filter import CAROL, two_accounts

from kittiwake.config.domains import JunkConfig
from kittiwake.junk import Action, JunkFilter, Reason, SenderIdentities
from kittiwake.junk import recent as recent_module
from kittiwake.junk.model import JunkVerdict
from kittiwake.junk.recent import RecentVerdicts
from kittiwake.server.outbox import JunkNotingOutbox
from kittiwake.store import Flags, Store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def accepted(reason: Reason = Reason.ADDRESS, **kw: object) -> JunkVerdict:
    return JunkVerdict(Action.ACCEPT, reason, identities=CAROL, message_id="<a@x>",
                       evidence=(("address", "carol@sender.example"),), **kw)  # type: ignore[arg-type]


def test_an_accepting_reputation_verdict_is_kept_for_a_second() -> None:
    clock, settings = Clock(), JunkConfig()
    recent = RecentVerdicts(clock)
    recent.remember("alice", settings, accepted())
    got = recent.get("alice", settings, CAROL, "<b@x>")
    assert got is not None and (got.reason, got.message_id) == (Reason.ADDRESS, "<b@x>")
    assert recent.get("bob", settings, CAROL, "<b@x>") is None  # per account
    other = SenderIdentities("192.0.2.10", address="carol@sender.example")
    assert recent.get("alice", settings, other, "<b@x>") is None  # per identities
    assert recent.get("alice", JunkConfig(), CAROL, "<b@x>") is None  # new settings
    recent.remember("alice", settings, accepted())
    clock.now += recent_module.SECONDS
    assert recent.get("alice", settings, CAROL, "<c@x>") is None  # expired
    recent.remember("alice", settings, accepted())
    recent.forget("alice")
    assert recent.get("alice", settings, CAROL, "<c@x>") is None
    # An account too little trained to judge words: the same for every message too.
    recent.remember("alice", settings, accepted(Reason.UNTRAINED))
    got = recent.get("alice", settings, CAROL, "<d@x>")
    assert got is not None and got.reason is Reason.UNTRAINED


def test_only_acceptances_on_history_are_kept_and_the_memory_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = JunkConfig()
    recent = RecentVerdicts(Clock())
    for verdict in (JunkVerdict(Action.JUNK, Reason.ADDRESS, identities=CAROL),
                    accepted(Reason.CONTENT), accepted(Reason.DNSBL),
                    accepted(Reason.UNTRAINED, first_time=True, delay=15.0)):
        recent.remember("alice", settings, verdict)
        assert recent.get("alice", settings, CAROL, "<b@x>") is None, verdict
    monkeypatch.setattr(recent_module, "MAX_ENTRIES", 10)
    senders = [SenderIdentities(f"192.0.2.{n}", address=f"s{n}@sender.example")
               for n in range(25)]
    for n, who in enumerate(senders):
        recent.remember("alice" if n % 2 else "bob", settings,
                        JunkVerdict(Action.ACCEPT, Reason.IP, identities=who))
    assert len(recent) == 10  # of all accounts, the newest kept
    assert recent.get("alice", settings, senders[23], "<m@x>") is not None
    assert recent.get("bob", settings, senders[0], "<m@x>") is None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data")
    yield s
    s.close()


async def test_a_known_good_sender_is_decided_once_then_at_once_until_training(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = two_accounts({})
    junk = JunkFilter(store, lambda: conf)
    await junk.start()

    class Queue:
        async def enqueue(self, **kwargs: object) -> list[int]:
            return [1]

    await JunkNotingOutbox(Queue(), junk).enqueue(
        account="alice", mailfrom="alice@example.org", recipients=["carol@sender.example"],
        data=b"Subject: hi\r\n\r\nx\r\n", smtputf8=False, requiretls=None)
    decided = 0
    real = junk._decide

    def counting(*args: object) -> JunkVerdict:
        nonlocal decided
        decided += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(junk, "_decide", counting)
    verdicts = [await junk.classify("alice", CAROL, b"Subject: x\r\n\r\ny\r\n", f"<{n}@s>")
                for n in range(3)]
    assert [(v.action, v.reason) for v in verdicts] == \
        [(Action.ACCEPT, Reason.SENT_TO_ADDRESS)] * 3
    assert [v.message_id for v in verdicts] == ["0@s", "1@s", "2@s"]
    assert decided == 1 and junk.recent.hits == 2
    # A user marks a message as junk: the account's counts change, decide afresh.
    alice = await store.account("alice")
    await alice.deliver("Inbox", b"Subject: lunch\r\n\r\nagenda\r\n",
                        flags=Flags.parse(["\\Seen"]))
    await junk.settled()
    [m] = await alice.messages("Inbox")
    await alice.store_flags("Inbox", [m.uid], "add", Flags.parse(["$Junk"]))
    await junk.settled()
    await junk.classify("alice", CAROL, b"Subject: x\r\n\r\ny\r\n", "<3@s>")
    assert decided == 2
    await junk.close()
