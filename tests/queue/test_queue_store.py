"""QueueStore: durable enqueue, retry bookkeeping, grouping, holds, drop, dump."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
from queue_helpers import T0, envelope

from kittiwake.queue import (
    DeliveryError,
    Envelope,
    Filter,
    MessageNotFound,
    NewRecipient,
    Outcome,
    QueueError,
    QueueStore,
    Status,
)
from kittiwake.queue.schedule import BASE_DELAYS
from kittiwake.smtp.params import Notify, ORcpt, Ret

TEMP = DeliveryError(451, "4.3.0", "try later", "mx.example.net")


def test_enqueue_survives_reopen_with_every_field(tmp_path: Path) -> None:
    root = tmp_path / "queue"
    store = QueueStore(root)
    env = Envelope(
        mail_from="alice@例え.jp",
        recipients=(NewRecipient("bob@Example.NET", frozenset({Notify.FAILURE, Notify.DELAY}),
                                 ORcpt("rfc822", "bob@example.net")),
                    NewRecipient("carol@bücher.de")),
        account="alice", smtputf8=True, eightbit=True, requiretls=True, ret=Ret.HDRS,
        envid="env-1", release_at=T0 + timedelta(hours=2))
    msg = store.enqueue(env, [b"Subject: x\r\n", b"\r\nbody\r\n"], now=T0)
    store.close()

    store = QueueStore(root)
    again = store.message(msg.id)
    assert again == msg
    assert (again.account, again.mail_from, again.smtputf8, again.eightbit, again.requiretls,
            again.ret, again.envid, again.size) == (
        "alice", "alice@例え.jp", True, True, True, Ret.HDRS, "env-1", 20)
    assert again.created == T0 and again.release_at == T0 + timedelta(hours=2)
    assert store.read(msg.id) == b"Subject: x\r\n\r\nbody\r\n"
    assert again.path == root / "msg" / "0" / str(msg.id)
    bob, carol = store.recipients(msg.id)
    assert (bob.address, bob.domain, bob.notify, bob.orcpt) == (
        "bob@Example.NET", "example.net", frozenset({Notify.FAILURE, Notify.DELAY}),
        ORcpt("rfc822", "bob@example.net"))
    assert carol.domain == "xn--bcher-kva.de" and carol.notify is None
    for r in (bob, carol):
        assert (r.attempts, r.status, r.held, r.dsn_delayed_sent, r.last_error) == (
            0, Status.QUEUED, False, False, None)
        # RFC 4865: FUTURERELEASE holds the message until its release time.
        assert r.next_attempt == T0 + timedelta(hours=2)
    assert store.due(T0 + timedelta(hours=1)) == []
    assert len(store.due(T0 + timedelta(hours=2))) == 2
    store.close()


def test_requiretls_unset_and_tls_required_no(store: QueueStore) -> None:
    a = store.enqueue(envelope("b@example.net"), b"x", now=T0)
    b = store.enqueue(envelope("b@example.net", requiretls=False, tls_required_no=True,
                               mail_from=""), b"x", now=T0)
    assert (a.requiretls, a.tls_required_no) == (None, False)
    assert (b.requiretls, b.tls_required_no, b.mail_from, b.from_domain) == (False, True, "", "")


def test_enqueue_rejects_recipient_without_domain_and_leaves_nothing(store: QueueStore) -> None:
    with pytest.raises(QueueError):
        store.enqueue(envelope("postmaster"), b"x", now=T0)
    with pytest.raises(QueueError):
        store.enqueue(envelope(), b"x", now=T0)
    assert store.list() == []
    assert list((store.root / "tmp").iterdir()) == []
    assert not (store.root / "msg").exists() or not any((store.root / "msg").rglob("*[0-9]"))


def test_orphan_files_and_temp_files_are_removed_on_open(tmp_path: Path) -> None:
    root = tmp_path / "queue"
    store = QueueStore(root)
    kept = store.enqueue(envelope("b@example.net"), b"kept", now=T0)
    store.close()
    orphan = root / "msg" / "0" / "999"
    orphan.write_bytes(b"never acknowledged")
    (root / "tmp" / "partial").write_bytes(b"half")
    store = QueueStore(root)
    assert not orphan.exists()
    assert list((root / "tmp").iterdir()) == []
    assert store.read(kept.id) == b"kept"
    store.close()


def test_temporary_failures_follow_schedule_delay_dsn_at_5_fail_at_9(store: QueueStore) -> None:
    msg = store.enqueue(envelope("bob@example.net"), b"x", now=T0)
    (rcpt,) = store.recipients(msg.id)
    now = T0
    for attempt in range(1, 9):
        recorded = store.record_result([rcpt.id], Outcome.TEMPORARY, TEMP, now=now)
        (current,) = store.recipients(msg.id)
        assert current.attempts == attempt
        assert current.last_attempt == now
        assert current.last_error == TEMP
        delay = current.next_attempt - now
        assert BASE_DELAYS[attempt] * 0.95 <= delay <= BASE_DELAYS[attempt] * 1.05
        assert store.due(now) == []
        # RFC 3464 "delayed" DSN: due from the 5th failed attempt on, until marked sent.
        if attempt == 5:
            assert [r.id for r in recorded.needs_delay_dsn] == [rcpt.id]
            assert [r.id for r in store.needs_delay_dsn()] == [rcpt.id]
            store.mark_delay_dsn_sent([rcpt.id])
        else:
            assert recorded.needs_delay_dsn == ()
            assert store.needs_delay_dsn() == []
        assert recorded.finished == ()
        now = current.next_attempt
        assert [len(b.recipients) for b in store.due(now)] == [1]
    recorded = store.record_result([rcpt.id], Outcome.TEMPORARY, TEMP, now=now)
    (failed,) = recorded.finished
    assert (failed.status, failed.attempts) == (Status.FAILED, 9)
    assert recorded.removed_messages == (msg.id,)
    assert not msg.path.exists()
    with pytest.raises(MessageNotFound):
        store.message(msg.id)
    (hist,) = store.history()
    assert (hist.status, hist.attempts, hist.last_error, hist.address) == (
        Status.FAILED, 9, TEMP, "bob@example.net")


def test_permanent_error_stops_retries_other_recipient_continues(store: QueueStore) -> None:
    msg = store.enqueue(envelope("bob@example.net", "carol@example.net"), b"x", now=T0)
    bob, carol = store.recipients(msg.id)
    perm = DeliveryError(550, "5.1.1", "no such user")
    recorded = store.record_result([bob.id], Outcome.PERMANENT, perm, "mx.example.net", T0)
    (failed,) = recorded.finished
    assert failed.status is Status.FAILED and failed.attempts == 1
    assert failed.last_error == DeliveryError(550, "5.1.1", "no such user", "mx.example.net")
    assert recorded.removed_messages == ()
    assert msg.path.exists()
    assert [r.id for _, r in store.list()] == [carol.id]
    recorded = store.record_result([carol.id], Outcome.OK, None, "mx.example.net", T0)
    assert recorded.finished[0].status is Status.DELIVERED
    assert recorded.removed_messages == (msg.id,)
    assert not msg.path.exists()
    assert store.list() == []
    assert {(h.address, h.status) for h in store.history()} == {
        ("bob@example.net", Status.FAILED), ("carol@example.net", Status.DELIVERED)}


def test_keep_files_defers_removal_for_dsn(store: QueueStore) -> None:
    msg = store.enqueue(envelope("bob@example.net"), b"x", now=T0)
    (bob,) = store.recipients(msg.id)
    rec = store.record_result([bob.id], Outcome.PERMANENT, None, "", T0, keep_files=True)
    assert msg.path.read_bytes() == b"x"
    store.remove_files(rec.removed_messages)
    assert not msg.path.exists()


def test_unknown_recipient_ids_are_ignored(store: QueueStore) -> None:
    assert store.record_result([12345], Outcome.OK, now=T0).finished == ()


def test_due_groups_by_domain_and_message(store: QueueStore) -> None:
    m1 = store.enqueue(envelope("a@one.example", "b@one.example", "c@two.example"), b"1",
                       now=T0)
    m2 = store.enqueue(envelope("d@ONE.example", "e@three.example"), b"2", now=T0)
    batches = store.due(T0)
    got = sorted((b.message_id, b.domain, tuple(r.address for r in b.recipients))
                 for b in batches)
    assert got == [
        (m1.id, "one.example", ("a@one.example", "b@one.example")),
        (m1.id, "two.example", ("c@two.example",)),
        (m2.id, "one.example", ("d@ONE.example",)),
        (m2.id, "three.example", ("e@three.example",)),
    ]
    assert all(b.path == store.path(b.message_id) and b.message.mail_from == "alice@example.org"
               for b in batches)
    assert len(store.due(T0, limit=2)) == 2
    rest = store.due(T0, exclude_domains=["one.example"])
    assert sorted(b.domain for b in rest) == ["three.example", "two.example"]
    assert store.next_due() == T0
    assert store.next_due(exclude_domains=["one.example", "two.example", "three.example"]) \
        is None


def test_hold_rules_hold_new_mail_and_removal_does_not_release(store: QueueStore) -> None:
    rule = store.add_hold_rule(to_domain="Blocked.Example")
    acct_rule = store.add_hold_rule(account="mallory", from_domain="")
    assert store.hold_rules() == [rule, acct_rule]
    assert rule.to_domain == "blocked.example"
    with pytest.raises(QueueError):
        store.add_hold_rule(to_domain="blocked.example")
    m = store.enqueue(envelope("x@blocked.example", "y@fine.example"), b"x", now=T0)
    m2 = store.enqueue(envelope("z@fine.example", account="mallory"), b"x", now=T0)
    m3 = store.enqueue(envelope("z@fine.example", account="alice"), b"x", now=T0)
    held = {(r.message_id, r.address): r.held for _, r in store.list()}
    assert held == {(m.id, "x@blocked.example"): True, (m.id, "y@fine.example"): False,
                    (m2.id, "z@fine.example"): True, (m3.id, "z@fine.example"): False}
    assert sorted((b.message_id, b.domain) for b in store.due(T0)) == [
        (m.id, "fine.example"), (m3.id, "fine.example")]
    store.remove_hold_rule(rule.id)
    store.remove_hold_rule(acct_rule.id)
    assert store.hold_rules() == []
    with pytest.raises(QueueError):
        store.remove_hold_rule(rule.id)
    # Removing a rule does not release what it held.
    assert sum(r.held for _, r in store.list()) == 2
    assert store.release(Filter(to_domain="blocked.example")) == 1
    assert store.release(Filter(account="mallory")) == 1
    assert len(store.due(T0)) == 4


def test_sender_domain_rule(store: QueueStore) -> None:
    store.add_hold_rule(from_domain="spammy.example")
    store.enqueue(envelope("a@b.example", mail_from="x@SPAMMY.example"), b"x", now=T0)
    store.enqueue(envelope("a@b.example", mail_from="x@ok.example"), b"x", now=T0)
    assert sorted(r.held for _, r in store.list()) == [False, True]


def test_per_message_hold_release_kick(store: QueueStore) -> None:
    m1 = store.enqueue(envelope("a@one.example"), b"1", now=T0)
    m2 = store.enqueue(envelope("b@one.example"), b"2", now=T0)
    assert store.hold(Filter(ids=(m1.id,))) == 1
    assert store.hold(Filter(ids=(m1.id,))) == 0  # already held
    assert [b.message_id for b in store.due(T0)] == [m2.id]
    (r2,) = store.recipients(m2.id)
    store.record_result([r2.id], Outcome.TEMPORARY, TEMP, now=T0)
    assert store.due(T0 + timedelta(minutes=1)) == []
    assert store.kick(Filter(to_domain="one.example"), now=T0 + timedelta(minutes=1)) == 2
    assert [b.message_id for b in store.due(T0 + timedelta(minutes=1))] == [m2.id]
    assert store.release(Filter(ids=(m1.id,))) == 1
    assert sorted(b.message_id for b in store.due(T0 + timedelta(minutes=1))) == [m1.id, m2.id]


def test_drop_returns_removed_and_dump(store: QueueStore) -> None:
    m1 = store.enqueue(envelope("a@one.example", "b@two.example"), b"message one", now=T0)
    m2 = store.enqueue(envelope("c@two.example"), b"message two", now=T0)
    assert store.read(m1.id) == b"message one"
    dropped = store.drop(Filter(to_domain="two.example"), now=T0)
    assert [(d.message.id, [r.address for r in d.recipients]) for d in dropped] == [
        (m1.id, ["b@two.example"]), (m2.id, ["c@two.example"])]
    assert m1.path.exists() and not m2.path.exists()
    with pytest.raises(MessageNotFound):
        store.read(m2.id)
    assert [r.address for _, r in store.list()] == ["a@one.example"]
    assert {h.address for h in store.history()} == {"b@two.example", "c@two.example"}
    assert all(h.status is Status.FAILED for h in store.history())


def test_history_is_bounded(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q", rng=random.Random(0), history_keep=3)
    for i in range(5):
        m = store.enqueue(envelope(f"r{i}@x.example"), b"x", now=T0)
        (r,) = store.recipients(m.id)
        store.record_result([r.id], Outcome.OK, now=T0 + timedelta(seconds=i))
    assert [h.address for h in store.history()] == ["r4@x.example", "r3@x.example",
                                                     "r2@x.example"]
    m = store.enqueue(envelope("late@x.example"), b"x", now=T0)
    (r,) = store.recipients(m.id)
    store.record_result([r.id], Outcome.OK, now=T0 + timedelta(days=30))
    assert [h.address for h in store.history()] == ["late@x.example"]
    store.close()


def test_filters_normalize_domains(store: QueueStore) -> None:
    m = store.enqueue(envelope("a@bücher.de", mail_from="x@Example.ORG"), b"x", now=T0)
    assert [mm.id for mm, _ in store.list(Filter(to_domain="BÜCHER.de"))] == [m.id]
    assert [mm.id for mm, _ in store.list(Filter(from_domain="example.org"))] == [m.id]
    assert store.list(Filter(account="nobody")) == []


def test_message_ids_are_not_reused(tmp_path: Path) -> None:
    root = tmp_path / "q"
    store = QueueStore(root)
    m = store.enqueue(envelope("a@b.example"), b"x", now=T0)
    store.drop(Filter(ids=(m.id,)), now=T0)
    store.close()
    store = QueueStore(root)
    assert store.enqueue(envelope("a@b.example"), b"x", now=T0).id > m.id
    store.close()


@pytest.mark.parametrize(("mail_from", "notify", "wanted"), [
    ("alice@example.org", None, True),
    ("alice@example.org", frozenset({Notify.DELAY}), True),
    ("alice@example.org", frozenset({Notify.FAILURE}), False),
    ("alice@example.org", frozenset({Notify.NEVER}), False),
    ("", None, False),  # no DSN about a DSN
])
def test_delay_dsn_respects_notify_and_null_sender(
        store: QueueStore, mail_from: str, notify: frozenset[Notify] | None,
        wanted: bool) -> None:
    env = Envelope(mail_from=mail_from, recipients=(NewRecipient("b@x.example", notify),))
    m = store.enqueue(env, b"x", now=T0)
    (r,) = store.recipients(m.id)
    for _ in range(5):
        recorded = store.record_result([r.id], Outcome.TEMPORARY, TEMP, now=T0)
    assert bool(recorded.needs_delay_dsn) is wanted
    assert bool(store.needs_delay_dsn()) is wanted


def test_times_round_trip_exactly(store: QueueStore) -> None:
    odd = T0 + timedelta(microseconds=123000)  # sub-second times survive the round trip
    m = store.enqueue(envelope("a@b.example", release_at=odd), b"x", now=T0)
    (r,) = store.recipients(m.id)
    assert r.next_attempt == odd and store.next_due() == odd
    assert len(store.due(odd)) == 1
    assert store.due(odd - timedelta(milliseconds=1)) == []


def test_history_row_of_a_delivered_recipient_has_the_attempt_and_the_message(
        store: QueueStore) -> None:
    """A finished recipient goes to the history in the recording transaction with the
    attempt's values and its message's sender, account and creation time."""
    msg = store.enqueue(envelope("bob@example.net", "carol@example.net"), b"x", now=T0)
    bob, carol = store.recipients(msg.id)
    later = T0 + timedelta(minutes=3)
    store.record_result([bob.id], Outcome.OK, None, "mx.example.net", later)
    (hist,) = store.history()
    assert (hist.recipient_id, hist.message_id, hist.account, hist.mail_from, hist.address,
            hist.status, hist.attempts, hist.last_attempt, hist.created, hist.retired) == (
        bob.id, msg.id, msg.account, msg.mail_from, "bob@example.net", Status.DELIVERED, 1,
        later, msg.created, later)
    assert hist.last_error == DeliveryError(0, "", "", "mx.example.net")
    assert [r.id for _, r in store.list()] == [carol.id]
    assert msg.path.exists()


def test_a_message_goes_with_rows_of_finished_recipients_left_behind(store: QueueStore) -> None:
    """A recipient row that is no longer queued but still in the table (left by an
    older version) does not keep its message, nor make recording fail."""
    msg = store.enqueue(envelope("bob@example.net", "carol@example.net"), b"x", now=T0)
    bob, carol = store.recipients(msg.id)
    with store._write() as db:
        db.execute("UPDATE recipient SET status = 'delivered' WHERE id = ?", (carol.id,))
    recorded = store.record_result([bob.id], Outcome.OK, None, "mx.example.net", T0)
    assert recorded.removed_messages == (msg.id,)
    assert not msg.path.exists()
    assert store.list() == []
    with pytest.raises(MessageNotFound):
        store.message(msg.id)
