"""Sending DSNs: local senders' Inbox, remote senders via the queue, the queue hooks."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import random
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kittiwake.config import DomainsConfig
from kittiwake.config.lookup import AddressIndex
from kittiwake.dsn import Action
from kittiwake.queue import (
    Batch,
    DeliveryError,
    DeliveryResult,
    Envelope,
    Filter,
    NewRecipient,
    Outcome,
    Queue,
    Scheduler,
    Status,
)
from kittiwake.queue.notices import DSNSender, report_of, retry_until
from kittiwake.queue.schedule import DELAY_DSN_AFTER, MAX_ATTEMPTS
from kittiwake.server.control import ControlServer
from kittiwake.server.queuecontrol import register_control
from kittiwake.smtp.params import Notify
from kittiwake.store import Store

CONFIG = DomainsConfig.model_validate({
    "domains": {"example.org": {}},
    "accounts": {
        "alice": {"domain": "example.org", "quota_bytes": 10_000_000,
                  "destinations": {"alice@example.org": {}}},
        "bob": {"domain": "example.org", "destinations": {"bob@example.org": {}}},
    },
    "aliases": {"team@example.org": {"addresses": ["alice@example.org", "bob@example.org"]}},
})
ORIGINAL = (b"From: alice@example.org\r\nTo: someone@remote.example\r\n"
            b"Subject: project plan\r\nMessage-ID: <p1@example.org>\r\n\r\nSee attached.\r\n")
REJECTED = DeliveryError(550, "5.1.1", "no such user", "mx.remote.example")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock()
        self.queue = Queue(tmp_path, clock=self.clock, rng=random.Random(1))
        self.store = Store(tmp_path)
        self.index = AddressIndex(CONFIG)
        self.sender = DSNSender(hostname="mail.example.org", store=self.store,
                                queue=self.queue, index=lambda: self.index)
        self.schedulers: list[Scheduler] = []

    async def enqueue(self, *rcpts: str, mail_from: str = "alice@example.org",
                      notify: frozenset[Notify] | None = None, data: bytes = ORIGINAL) -> int:
        env = Envelope(mail_from=mail_from, account="alice",
                       recipients=tuple(NewRecipient(r, notify) for r in rcpts))
        return (await self.queue.enqueue(env, data)).id

    async def inbox(self, account: str) -> list[email.message.EmailMessage]:
        acc = await self.store.account(account)
        out = []
        for m in await acc.messages("Inbox"):
            msg = email.message_from_bytes(await acc.read(m.id), policy=email.policy.default)
            assert isinstance(msg, email.message.EmailMessage)
            out.append(msg)
        return out

    def scheduler(self, deliver: Callable[[Batch], Any]) -> Scheduler:
        async def run(batch: Batch) -> Sequence[DeliveryResult]:
            return deliver(batch)

        s = Scheduler(self.queue, run, on_recorded=self.sender.on_recorded, max_sleep=0.05)
        self.schedulers.append(s)
        return s


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(tmp_path)
    yield e
    for s in e.schedulers:
        await s.close()
    e.queue.close()
    e.store.close()


async def until(cond: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def text_of(msg: email.message.EmailMessage) -> str:
    return msg.get_payload()[0].get_content()  # type: ignore[index,no-any-return]


def reject(batch: Batch) -> list[DeliveryResult]:
    return [DeliveryResult(r.id, Outcome.PERMANENT, REJECTED) for r in batch.recipients]


async def test_local_sender_gets_the_dsn_in_the_inbox(env: Env) -> None:
    mid = await env.enqueue("someone@remote.example")
    message = await env.queue.message(mid)
    [rcpt] = await env.queue.recipients(mid)
    recorded = await env.queue.record_result([rcpt.id], Outcome.PERMANENT, REJECTED,
                                             keep_files=True)
    report = report_of(recorded.finished[0], Action.FAILED)
    dsn = await env.sender.notify(message, [report])
    assert dsn is not None
    # The account keeps its configured quota (opening it must not reset it).
    assert env.store._accounts["alice"].core.quota_bytes == 10_000_000
    [msg] = await env.inbox("alice")
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Return-Path"] == "<>"
    assert msg["To"].addresses[0].addr_spec == "alice@example.org"
    text = text_of(msg)
    assert "550 5.1.1 no such user" in text and "mx.remote.example" in text
    assert "someone@remote.example" in text
    inner = msg.get_payload()[2].get_payload()[0]  # type: ignore[index]
    assert inner["Subject"] == "project plan"
    # Nothing was queued for a local sender.
    assert await env.queue.list() == []


async def test_remote_sender_gets_a_queued_dsn_with_null_sender(env: Env) -> None:
    mid = await env.enqueue("someone@remote.example", mail_from="carol@elsewhere.example")
    message = await env.queue.message(mid)
    [rcpt] = await env.queue.recipients(mid)
    recorded = await env.queue.record_result([rcpt.id], Outcome.PERMANENT, REJECTED,
                                             keep_files=True)
    await env.sender.notify(message, [report_of(recorded.finished[0], Action.FAILED)])
    [(queued, to)] = await env.queue.list()
    assert queued.mail_from == "" and queued.account is None
    assert to.address == "carol@elsewhere.example"
    data = await env.queue.read(queued.id)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert "no such user" in text_of(msg)  # type: ignore[arg-type]
    assert await env.inbox("alice") == []


async def test_unknown_local_sender_gets_nothing_and_alias_goes_to_members(env: Env) -> None:
    mid = await env.enqueue("someone@remote.example", mail_from="nobody@example.org")
    message = await env.queue.message(mid)
    [rcpt] = await env.queue.recipients(mid)
    report = report_of(rcpt, Action.FAILED, error=REJECTED)
    await env.sender.notify(message, [report])
    assert [m.id for m, _ in await env.queue.list()] == [mid]  # no DSN queued
    mid2 = await env.enqueue("someone@remote.example", mail_from="team@example.org")
    message2 = await env.queue.message(mid2)
    await env.sender.notify(message2, [report])
    assert len(await env.inbox("alice")) == 1
    assert len(await env.inbox("bob")) == 1


async def test_scheduler_hook_permanent_failure_end_to_end(env: Env) -> None:
    mid = await env.enqueue("someone@remote.example", "other@remote.example")
    scheduler = env.scheduler(reject)
    scheduler.start()

    async def delivered() -> bool:
        return len(await env.inbox("alice")) == 1

    await until(delivered)
    await scheduler.wait_idle()
    [msg] = await env.inbox("alice")
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    groups = msg.get_payload()[1].get_payload()  # type: ignore[index]
    assert sorted(g["Final-Recipient"] for g in groups[1:]) == [
        "rfc822; other@remote.example", "rfc822; someone@remote.example"]
    assert {g["Status"] for g in groups[1:]} == {"5.1.1"}
    assert "no such user" in text_of(msg)
    assert await env.queue.list() == []
    # The original's file was removed after the DSN was made.
    assert not env.queue.store.path(mid).exists()


async def test_dsn_to_remote_sender_fails_too_but_makes_no_second_dsn(env: Env) -> None:
    await env.enqueue("someone@remote.example", mail_from="carol@elsewhere.example")
    seen: list[str] = []

    def deliver(batch: Batch) -> list[DeliveryResult]:
        seen.append(batch.message.mail_from)
        return reject(batch)

    scheduler = env.scheduler(deliver)
    scheduler.start()

    async def both_failed() -> bool:
        history = await env.queue.history()
        return len(history) == 2 and not await env.queue.list()

    await until(both_failed)
    # Idle: the second failure was recorded and its hook ran; a DSN about the DSN
    # would be queued by now, and nothing is due any more.
    await scheduler.wait_idle()
    assert await scheduler.dispatch() == 0
    assert seen == ["carol@elsewhere.example", ""]  # the DSN went out with MAIL FROM:<>
    assert await env.queue.list() == []  # RFC 5321 §6.1: no DSN about the DSN


async def test_notify_never_gives_no_dsn_through_the_hook(env: Env) -> None:
    await env.enqueue("someone@remote.example", notify=frozenset({Notify.NEVER}))
    scheduler = env.scheduler(reject)
    scheduler.start()

    async def done() -> bool:
        return len(await env.queue.history()) == 1

    await until(done)
    await scheduler.wait_idle()
    assert await env.inbox("alice") == []
    assert await env.queue.list() == []


async def test_notify_success_gives_a_relayed_notice(env: Env) -> None:
    await env.enqueue("someone@remote.example",
                      notify=frozenset({Notify.SUCCESS, Notify.FAILURE}))
    accepted = DeliveryError(250, "2.0.0", "queued as 4711", "mx.remote.example")
    scheduler = env.scheduler(lambda batch: [DeliveryResult(r.id, Outcome.OK, accepted)
                                             for r in batch.recipients])
    scheduler.start()

    async def arrived() -> bool:
        return len(await env.inbox("alice")) == 1

    await until(arrived)
    [msg] = await env.inbox("alice")
    assert msg["Subject"] == "Successful Mail Delivery Report"
    group = msg.get_payload()[1].get_payload()[1]  # type: ignore[index]
    assert group["Action"] == "relayed" and group["Status"] == "2.0.0"
    assert "250 2.0.0 queued as 4711" in text_of(msg)


async def test_delay_dsn_is_sent_once(env: Env) -> None:
    mid = await env.enqueue("someone@remote.example")
    [rcpt] = await env.queue.recipients(mid)
    later = DeliveryError(451, "4.7.1", "greylisted", "mx.remote.example")
    for _ in range(DELAY_DSN_AFTER - 1):
        recorded = await env.queue.record_result([rcpt.id], Outcome.TEMPORARY, later)
        assert not recorded.needs_delay_dsn
    attempts: list[int] = []

    def deliver(batch: Batch) -> list[DeliveryResult]:
        attempts.extend(r.attempts for r in batch.recipients)
        return [DeliveryResult(r.id, Outcome.TEMPORARY, later) for r in batch.recipients]

    scheduler = env.scheduler(deliver)
    scheduler.start()
    for n in (1, 2):  # the 5th attempt owes a "delayed" DSN, the 6th not another one
        await env.queue.kick(Filter())

        async def tried(n: int = n) -> bool:
            return len(attempts) == n

        await until(tried)
        await scheduler.wait_idle()
    [msg] = await env.inbox("alice")
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    text = text_of(msg)
    assert "451 4.7.1 greylisted" in text and "retry until" in text
    group = msg.get_payload()[1].get_payload()[1]  # type: ignore[index]
    assert group["Action"] == "delayed" and group["Status"] == "4.7.1"
    [now] = await env.queue.recipients(mid)
    assert now.dsn_delayed_sent and now.status is Status.QUEUED
    assert email.utils.parsedate_to_datetime(group["Will-Retry-Until"]) > env.clock.now
    assert await env.sender.send_pending_delays() == 0


async def test_send_pending_delays_catches_up(env: Env) -> None:
    mid = await env.enqueue("someone@remote.example")
    [rcpt] = await env.queue.recipients(mid)
    for _ in range(DELAY_DSN_AFTER):
        await env.queue.record_result([rcpt.id], Outcome.TEMPORARY,
                                      DeliveryError(0, "", "connection refused",
                                                    "mx.remote.example"))
    assert await env.sender.send_pending_delays() == 1
    assert await env.sender.send_pending_delays() == 0
    [msg] = await env.inbox("alice")
    assert "connection refused" in text_of(msg)


def test_retry_until_matches_the_queue_schedule() -> None:
    from kittiwake.queue.model import Recipient
    from kittiwake.queue.schedule import schedule

    next_at = datetime(2026, 3, 1, tzinfo=UTC)
    rcpt = Recipient(1, 1, "a@b.example", "b.example", None, None, DELAY_DSN_AFTER, next_at,
                     None, None, Status.QUEUED, False, False)
    expected = next_at + sum((schedule(a) for a in range(DELAY_DSN_AFTER + 1, MAX_ATTEMPTS)),
                             timedelta())
    assert retry_until(rcpt) == expected
    assert retry_until(rcpt) - next_at == timedelta(hours=28)


async def test_on_dropped_through_the_control_handler(env: Env, tmp_path: Path) -> None:
    mid = await env.enqueue("someone@remote.example", "other@remote.example")
    control = ControlServer(tmp_path / "ctl.sock")
    register_control(control, env.queue, on_dropped=env.sender.on_dropped)

    async def progress(data: dict[str, Any]) -> None:
        return None

    result = await control.handlers["queue-drop"]({"id": mid}, progress)
    assert result["count"] == 2
    [msg] = await env.inbox("alice")
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    text = text_of(msg)
    assert "administrator removed this message" in text
    groups = msg.get_payload()[1].get_payload()  # type: ignore[index]
    assert [g["Action"] for g in groups[1:]] == ["failed", "failed"]
    assert [g["Status"] for g in groups[1:]] == ["5.0.0", "5.0.0"]
    inner = msg.get_payload()[2].get_payload()[0]  # type: ignore[index]
    assert inner["Subject"] == "project plan"
    assert not (env.queue.store.path(mid)).exists()  # removed after the DSN was made


async def test_delay_dsn_that_cannot_be_stored_is_tried_again(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    tiny = CONFIG.model_copy(deep=True)
    tiny.accounts["alice"].quota_bytes = 100
    env.index = AddressIndex(tiny)
    mid = await env.enqueue("someone@remote.example")
    [rcpt] = await env.queue.recipients(mid)
    for _ in range(DELAY_DSN_AFTER):
        await env.queue.record_result([rcpt.id], Outcome.TEMPORARY,
                                      DeliveryError(421, "4.3.2", "busy", "mx.remote.example"))
    assert await env.sender.send_pending_delays() == 0  # over quota: not sent, not marked
    [still] = await env.queue.recipients(mid)
    assert not still.dsn_delayed_sent
    [warning] = [r for r in caplog.records if r.getMessage() == "dsn not sent"]
    fields = warning.kw_fields  # type: ignore[attr-defined]
    assert (fields["message"], fields["to"]) == (mid, "alice@example.org")
    assert "quota" in str(fields["error"])
    env.index = AddressIndex(CONFIG)
    assert await env.sender.send_pending_delays() == 1
    assert [m["Subject"] for m in await env.inbox("alice")] == [
        "Delayed Mail (still being retried)"]
