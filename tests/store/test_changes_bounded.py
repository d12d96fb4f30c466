"""A subscription bounded against a reader that stopped (store.changes)."""

from __future__ import annotations

from kittiwake.store.changes import ChangeHub, Subscription
from kittiwake.store.model import Change


def change(uid: int) -> Change:
    return Change(kind="added", mailbox_id=1, mailbox="INBOX", uids=(uid,))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bounded(hub: ChangeHub, clock: Clock, told: list[str]) -> Subscription:
    sub = Subscription(hub, "alice", limit=10, stale_after=120, clock=clock,
                       on_overflow=lambda: told.append("overflow"))
    hub._subscribers["alice"].add(sub)
    return sub


def test_a_burst_to_a_reader_that_keeps_reading_is_delivered_whole() -> None:
    hub, clock, told = ChangeHub(), Clock(), []
    sub = bounded(hub, clock, told)
    hub.publish("alice", [change(i) for i in range(1, 1001)])  # one STORE on 1,000
    assert told == [] and len(sub.pending()) == 1000


def test_a_reader_that_stopped_is_told_once_and_its_queue_freed() -> None:
    hub, clock, told = ChangeHub(), Clock(), []
    sub = bounded(hub, clock, told)
    other = hub.subscribe("alice")  # unbounded, e.g. the junk filter
    hub.publish("alice", [change(i) for i in range(1, 9)])
    clock.now += 121  # the client has read nothing for two minutes
    hub.publish("alice", [change(9), change(10)])  # 10: not above the limit
    assert told == []
    hub.publish("alice", [change(11)])
    assert told == ["overflow"] and sub.overflowed and sub.queue.qsize() == 0
    hub.publish("alice", [change(12)])
    assert told == ["overflow"] and sub.queue.qsize() == 0
    assert len(other.pending()) == 12  # the others hear everything


def test_reading_resets_the_clock() -> None:
    hub, clock, told = ChangeHub(), Clock(), []
    sub = bounded(hub, clock, told)
    hub.publish("alice", [change(i) for i in range(1, 10)])
    clock.now += 200
    sub.pending()
    hub.publish("alice", [change(i) for i in range(10, 30)])
    assert told == []
