"""Sending DSNs for the outgoing queue: to a local sender's Inbox, else queued.

:class:`DSNSender` turns what the queue recorded into DSNs (RFC 3464) and
sends them:

- :meth:`DSNSender.on_recorded` is the ``Scheduler(on_recorded=...)`` hook:
  finished recipients that failed give a "failed" DSN, those delivered
  with NOTIFY=SUCCESS a "relayed" one (RFC 3461 §4.1: the next hop's own
  DSN support is not known here), and ``Recorded.needs_delay_dsn`` a
  "delayed" DSN, once (then :meth:`Queue.mark_delay_dsn_sent`);
- :meth:`DSNSender.on_dropped` is the ``register_control(on_dropped=...)``
  hook: dropped recipients give a "failed" DSN saying the administrator
  removed the message;
- :meth:`DSNSender.send_pending_delays` catches up on "delayed" DSNs that a
  crash or restart may have missed (call it at start).

A DSN to a sender whose MAIL FROM address is one of ours is stored in that
account's Inbox (with ``Return-Path: <>``, RFC 5321 §4.4); any other sender
gets it through the queue with the null reverse-path (RFC 5321 §4.5.5), so
no DSN is ever made about it (RFC 3461 §6.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from kittiwake import metrics
from kittiwake.dsn.compose import DSN, MAX_ORIGINAL_BODY, compose
from kittiwake.dsn.report import Action, RecipientReport
from kittiwake.log import get_logger
from kittiwake.queue.model import (
    Batch,
    Dropped,
    Envelope,
    NewRecipient,
    QueuedMessage,
    QueueError,
    Recipient,
    Recorded,
    Status,
)
from kittiwake.queue.schedule import BASE_DELAYS, MAX_ATTEMPTS

logger = get_logger("dsn")

DROPPED_NOTE = ("The mail system administrator removed this message from the outgoing queue;"
                " it will not be delivered.")

DSNS_SENT = metrics.counter(
    "queue_dsns_sent",
    "Delivery status notifications sent, by the actions they report (RFC 3464 §2.3.3).",
    {"kind": tuple(str(a) for a in Action)})



def count_sent(dsn: DSN) -> None:
    """One DSN sent, counted once per action it reports."""
    for action in sorted({str(r.action) for r in dsn.reports}):
        DSNS_SENT.labels(kind=action).inc()


class AddressLookup(Protocol):
    """What :class:`kittiwake.config.lookup.AddressIndex` offers that we use."""

    def lookup(self, localpart: str, domain: str) -> Any: ...


IndexSource = AddressLookup | Callable[[], AddressLookup]


def retry_until(rcpt: Recipient) -> datetime:
    """When the queue gives up on a still-queued recipient (RFC 3464 §2.3.9).

    The next attempt is at ``next_attempt``; each later failure waits the
    next step of :data:`kittiwake.queue.schedule.BASE_DELAYS` (without the
    small jitter) until :data:`MAX_ATTEMPTS` failed attempts.
    """
    rest = sum((BASE_DELAYS[a] for a in range(rcpt.attempts + 1, MAX_ATTEMPTS)), timedelta())
    return rcpt.next_attempt + rest


def report_of(rcpt: Recipient, action: Action, **changes: Any) -> RecipientReport:
    """A :class:`RecipientReport` from a queue recipient row."""
    values: dict[str, Any] = {
        "address": rcpt.address, "action": action, "error": rcpt.last_error,
        "notify": rcpt.notify, "orcpt": rcpt.orcpt, "attempts": rcpt.attempts,
        "last_attempt": rcpt.last_attempt,
    }
    if action is Action.DELAYED:
        values["will_retry_until"] = retry_until(rcpt)
    values.update(changes)
    return RecipientReport(**values)


class DSNSender:
    """Composes DSNs for queued messages and delivers them (locally or via the queue).

    ``index`` is an :class:`~kittiwake.config.lookup.AddressIndex` or a
    function returning the current one (domains.conf is reloaded); its
    ``config.accounts`` (when present) gives quota and default mailboxes
    for opening an account. ``success_action``: what a NOTIFY=SUCCESS
    notice says for delivered recipients (None: send none).
    """

    def __init__(self, *, hostname: str, store: Any, queue: Any, index: IndexSource,
                 clock: Callable[[], datetime] | None = None,
                 max_original_body: int = MAX_ORIGINAL_BODY,
                 success_action: Action | None = Action.RELAYED) -> None:
        self.hostname = hostname
        self.store = store
        self.queue = queue
        self.index = index
        self.clock: Callable[[], datetime] = clock or queue.clock
        self.max_original_body = max_original_body
        self.success_action = success_action

    def _index(self) -> AddressLookup:
        index = self.index
        return index if hasattr(index, "lookup") else index()  # type: ignore[operator]

    # --- hooks ----------------------------------------------------------------

    async def on_recorded(self, batch: Batch, recorded: list[Recorded]) -> None:
        """``Scheduler(on_recorded=...)``: DSNs for what one delivery attempt changed.

        Runs before the scheduler removes the files of finished messages.
        A DSN that cannot be sent is logged; the delivery result stands.
        """
        finished = [r for rec in recorded for r in rec.finished]
        delayed = [r for rec in recorded for r in rec.needs_delay_dsn]
        reports = []
        for rcpt in finished:
            if rcpt.status is Status.FAILED:
                reports.append(report_of(rcpt, Action.FAILED))
            elif rcpt.status is Status.DELIVERED and self.success_action is not None:
                reports.append(report_of(rcpt, self.success_action))
        if reports:
            await self._notify_safely(batch.message, reports, batch.path)
        if delayed:
            await self._send_delayed(batch.message, delayed, batch.path)

    async def on_dropped(self, dropped: list[Dropped]) -> None:
        """``register_control(..., on_dropped=...)``: "failed" DSNs for dropped mail."""
        for item in dropped:
            reports = [report_of(r, Action.FAILED, error=None, status="5.0.0",
                                 note=DROPPED_NOTE) for r in item.recipients]
            await self._notify_safely(item.message, reports, item.message.path,
                                      intro=DROPPED_NOTE)

    async def send_pending_delays(self) -> int:
        """Send the "delayed" DSNs still due (e.g. after a restart); how many were sent."""
        pending: dict[int, list[Recipient]] = {}
        for rcpt in await self.queue.needs_delay_dsn():
            pending.setdefault(rcpt.message_id, []).append(rcpt)
        sent = 0
        for message_id, rcpts in pending.items():
            try:
                message = await self.queue.message(message_id)
            except QueueError:
                continue  # gone meanwhile
            if await self._send_delayed(message, rcpts, message.path):
                sent += 1
        return sent

    async def _send_delayed(self, message: QueuedMessage, rcpts: Sequence[Recipient],
                            path: Path) -> bool:
        reports = [report_of(r, Action.DELAYED) for r in rcpts]
        ok = await self._notify_safely(message, reports, path)
        if ok:  # RFC 3464 §2.3.3: one "delayed" notice per recipient, not one per attempt
            await self.queue.mark_delay_dsn_sent([r.id for r in rcpts])
        return ok

    # --- composing and sending -----------------------------------------------------

    async def _notify_safely(self, message: QueuedMessage, reports: Sequence[RecipientReport],
                             path: Path, intro: str = "") -> bool:
        """Compose and send; False (logged) when sending failed. No DSN wanted is success."""
        from kittiwake.store import StoreError

        try:
            dsn = await self.notify(message, reports, path, intro=intro)
        except asyncio.CancelledError:
            raise
        except (StoreError, QueueError, OSError) as exc:  # over quota, disk full, ...
            logger.warning("dsn not sent", message=message.id, to=message.mail_from,
                           error=exc)
            return False
        except Exception as exc:
            from kittiwake.metrics import panic

            panic("queue", exc)
            return False
        if dsn is not None:
            count_sent(dsn)
        return True

    async def notify(self, message: QueuedMessage, reports: Sequence[RecipientReport],
                     path: Path | None = None, intro: str = "") -> DSN | None:
        """Compose the DSN about ``reports`` of ``message`` and send it; None if none is due."""
        if not message.mail_from:
            return None  # RFC 5321 §6.1: never a DSN to the null reverse-path
        original = await _read(path or message.path)
        if original is not None and message.prefix:
            original = message.prefix + original  # headers added at hand-over (add_file)
        dsn = compose(hostname=self.hostname, mail_from=message.mail_from, recipients=reports,
                      original=original, now=self.clock(), arrival=message.created,
                      envid=message.envid, ret=message.ret, smtputf8=message.smtputf8,
                      max_original_body=self.max_original_body, intro=intro)
        if dsn is None:
            return None
        await self.send(dsn)
        actions = ",".join(sorted({str(r.action) for r in dsn.reports}))
        logger.info("dsn sent", message=message.id, to=dsn.recipient, action=actions,
                    recipients=len(dsn.reports))
        return dsn

    async def send(self, dsn: DSN) -> list[str]:
        """Deliver ``dsn``: into local accounts' Inboxes, else queued; where it went."""
        local, _, domain = dsn.recipient.rpartition("@")
        index = self._index()
        found = index.lookup(local, domain) if local and domain else None
        targets = _accounts_of(found)
        if targets:
            await self._deliver_local(dsn, targets)
            return [f"account:{name}" for name in targets]
        is_local = getattr(index, "is_local_domain", None)
        if found is not None or (domain and is_local is not None and is_local(domain)):
            # One of our domains but no account (unknown, or an empty alias):
            # queueing it would only bring it back here.
            logger.warning("dsn not sent: local address without an account",
                           to=dsn.recipient)
            return []
        envelope = Envelope(mail_from="", recipients=(NewRecipient(dsn.recipient),),
                            smtputf8=dsn.smtputf8, eightbit=dsn.eightbit)
        queued = await self.queue.enqueue(envelope, dsn.data)
        return [f"queue:{queued.id}"]

    async def _deliver_local(self, dsn: DSN, accounts: Iterable[str]) -> None:
        # RFC 5321 §4.4: the final delivery adds Return-Path with the (null) reverse-path.
        data = b"Return-Path: <>\r\n" + dsn.data
        config = getattr(self._index(), "config", None)
        for name in accounts:
            settings = config.accounts.get(name) if config is not None else None
            account = await self.store.account(
                name, settings.quota_bytes if settings else 0,
                settings.mailboxes if settings else ())
            await account.deliver("Inbox", data, mailfrom="", rcptto=dsn.recipient)


def _accounts_of(found: Any) -> list[str]:
    """Account names an address lookup result delivers to (an alias: its members)."""
    if found is None:
        return []
    if hasattr(found, "members"):
        return list(dict.fromkeys(m.account for m in found.members))
    name = getattr(found, "account", None)
    return [name] if name else []


async def _read(path: Path) -> bytes | None:
    """The original message, or None when its file is gone (the DSN then has no copy)."""
    try:
        return await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        logger.warning("dsn original message not readable", path=path, error=exc)
        return None
