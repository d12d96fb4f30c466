"""Delivering accepted mail into local accounts, each to its chosen mailbox.

Invariants (DESIGN.md "Durability"; a 250 is a promise):

- The SMTP reply to DATA is sent only after every delivery here returned,
  that is after message file and row are on disk.
- Every recipient that got a 250 ends in a mailbox, in the queue, or in a
  DSN to the sender: a local delivery that fails after others of the same
  message succeeded (so the message as a whole is acknowledged) is reported
  to the sender by a "failed" DSN (RFC 3464), see :func:`notify_failures`.
- Each recipient's fate is logged: ``delivered`` (account, mailbox, uid) or
  ``delivery failed``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kittiwake import log, metrics
from kittiwake.config.lookup import AccountRecipient, pick_mailbox
from kittiwake.junk import JunkVerdict, SenderIdentities
from kittiwake.message.headers import parse_header_section
from kittiwake.smtpserver import metrics as smtp_metrics
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.spool import MessageHead, SpooledMessage
from kittiwake.store import MailboxNotFound, OverQuota, StoreError
from kittiwake.store.model import Delivered
from kittiwake.store.store import Account

logger = log.get_logger("smtpserver")


@dataclass
class LocalDelivery:
    recipient: str  # the RCPT TO address
    target: AccountRecipient


@dataclass
class DeliveryFailure:
    recipient: str
    temporary: bool
    reason: str
    account: str = ""
    code: int = 0  # the SMTP reply when the failure chose one (a junk reject)
    enhanced: str = ""


JUNK_READ_LIMIT = 1024 * 1024
"""The junk filter judges the header and the first MiB of a message's text."""


async def deliver_local(ctx: ServerContext, deliveries: list[LocalDelivery],
                        message: bytes | SpooledMessage,
                        mailfrom: str, verified_domains: frozenset[str] = frozenset(),
                        sender: SenderIdentities | None = None,
                        head: MessageHead | None = None) -> list[DeliveryFailure]:
    """Store the message once per (account, mailbox); returns the failures.

    A :class:`SpooledMessage` (received over SMTP) is handed to the store by
    hard link with its prefix, so concurrent deliveries share the store's group
    commit and no body is copied; bytes (notices) are stored as they are.

    ``sender`` (MX mail only) has the junk filter judge the message per account:
    its verdict picks the mailbox and adds the X-Kittiwake-Junk header. A rejected
    message is kept in the account's Rejects mailbox; it is refused in SMTP only
    when no other recipient took it (a 250 for the others stands, and a junk
    sender gets no DSN). ``head`` is the received header section, parsed once
    (rulesets match on it; the fields we prepended are not matched).
    """
    spooled = message if isinstance(message, SpooledMessage) else None
    if spooled is not None:
        head = spooled.head
    data = message if isinstance(message, bytes) else b""
    headers = head.headers if head is not None else parse_header_section(data)[0]
    judged: bytes | Callable[[], bytes] | None = None  # what the junk filter reads
    # What rulesets match on, decoded (RFC 2047) once and only for a destination
    # that has rulesets.
    header_pairs: list[tuple[str, str]] | None = None
    msg_from = ""
    done: dict[tuple[str, str], int] = {}
    failures: list[DeliveryFailure] = []
    verdicts: dict[str, JunkVerdict] = {}
    rejected: list[DeliveryFailure] = []
    accepted = False
    for item in deliveries:
        account_name = item.target.account
        verdict = None
        if ctx.junk is not None and sender is not None:
            verdict = verdicts.get(account_name)
            if verdict is None:
                if judged is None:
                    # A spooled message is read (once, whatever the accounts) only if
                    # the filter gets to its words (in the filter's worker thread).
                    judged = data if spooled is None else _start_reader(spooled)
                verdict = verdicts[account_name] = await ctx.junk.classify(
                    account_name, sender, judged, headers.get("message-id") or "")
        if header_pairs is None and item.target.destination.rulesets:
            header_pairs = [(h.name.lower(), h.decoded) for h in headers]
            msg_from = headers.decoded("from") or ""
        mailbox = (verdict.mailbox if verdict is not None and verdict.mailbox else
                   pick_mailbox(item.target.destination, mailfrom=mailfrom, msg_from=msg_from,
                                verified_domains=verified_domains, headers=header_pairs))
        key = (account_name, mailbox)
        if verdict is not None and verdict.reject is not None:
            r = verdict.reject
            rejected.append(DeliveryFailure(item.recipient, r.code < 500, r.text, account_name,
                                            r.code, r.enhanced))
            if verdict.already_kept:
                continue
        if key in done:
            logger.info("delivered", rcpt=item.recipient, account=account_name,
                        mailbox=mailbox, uid=done[key], copy="shared")
            accepted = accepted or verdict is None or verdict.reject is None
            continue
        conf = ctx.domains.accounts.get(account_name)
        started = time.monotonic()
        added = verdict.header() if verdict is not None else b""
        try:
            account = await ctx.store.account(
                account_name, conf.quota_bytes if conf else 0, conf.mailboxes if conf else (),
                quota_messages=conf.quota_messages if conf else 0)
            try:
                delivered = await _store(account, mailbox, message, added, mailfrom,
                                         item.recipient)
            except MailboxNotFound:
                # A configured mailbox that does not exist yet (or was deleted) is
                # created: the configuration says where this mail goes.
                logger.info("creating mailbox for delivery", account=account_name,
                            mailbox=mailbox)
                await account.ensure_mailboxes([mailbox])
                delivered = await _store(account, mailbox, message, added, mailfrom,
                                         item.recipient)
            logger.info("delivered", rcpt=item.recipient, account=account_name,
                        mailbox=delivered.mailbox, uid=delivered.uid, size=delivered.size)
            done[key] = delivered.uid
            accepted = accepted or verdict is None or verdict.reject is None
            if verdict is not None and ctx.junk is not None:
                await ctx.junk.record_delivery(account_name, verdict, delivered)
            metrics.child(smtp_metrics.LOCAL_DELIVERIES, "delivered").inc()
            smtp_metrics.LOCAL_DELIVERY_SECONDS.observe(time.monotonic() - started)
        except OverQuota as exc:
            smtp_metrics.LOCAL_DELIVERIES.labels(result="overquota").inc()
            logger.info("delivery failed", rcpt=item.recipient, account=account_name,
                        reason=str(exc))
            failures.append(DeliveryFailure(item.recipient, False, str(exc), account_name))
        except (StoreError, OSError) as exc:
            smtp_metrics.LOCAL_DELIVERIES.labels(result="failed").inc()
            logger.error("delivery failed", rcpt=item.recipient, account=account_name,
                         reason=str(exc))
            failures.append(DeliveryFailure(item.recipient, True, "local delivery failed",
                                            account_name))
    if ctx.junk is not None and verdicts:
        await ctx.junk.pause(max(v.delay for v in verdicts.values()))
    if rejected and not accepted:
        return rejected + [f for f in failures if f.recipient not in
                           {r.recipient for r in rejected}]
    return failures


def _start_reader(spooled: SpooledMessage) -> Callable[[], bytes]:
    """The prefix and the first :data:`JUNK_READ_LIMIT` octets, read when first asked
    (blocking unless in memory: the server process of SMTP workers gets the message
    by its file, :meth:`SpooledMessage.__reduce__`) and then kept."""
    return functools.cache(lambda: spooled.read_start(JUNK_READ_LIMIT))


async def _store(account: Account, mailbox: str, message: bytes | SpooledMessage,
                 added: bytes, mailfrom: str, rcptto: str) -> Delivered:
    """One copy into one mailbox: a spooled message by hard link (the connection
    removes its spool file afterwards), bytes as they are."""
    if isinstance(message, SpooledMessage):
        return await account.deliver_spool(mailbox, message.path, prefix=added + message.prefix,
                                           mailfrom=mailfrom, rcptto=rcptto, keep=True,
                                           headers=message.head.headers)
    return await account.deliver(mailbox, added + message, mailfrom=mailfrom, rcptto=rcptto)


@dataclass(frozen=True)
class LocalError:
    """Why a local delivery failed, as a DSN reports it (:class:`kittiwake.dsn.report.
    DeliveryError`): our own reply, ``host`` being this server."""

    code: int
    enhanced: str
    text: str
    host: str


async def notify_failures(ctx: ServerContext, failures: list[DeliveryFailure], *,
                          mailfrom: str, data: bytes, smtputf8: bool, envid: str | None,
                          ret: Any, rcpt_params: Mapping[str, Any]) -> bool:
    """Send the sender a "failed" DSN (RFC 3464) for recipients not delivered.

    Used when the message is acknowledged for its other recipients. The DSN
    goes to the sender's Inbox when the sender is one of our addresses,
    otherwise into the outgoing queue with the null reverse-path (RFC 5321
    §4.5.5). Returns False when it could not be sent (no outgoing queue, or
    storing/queueing failed): the caller must then not acknowledge.
    A null sender, or NOTIFY without FAILURE (RFC 3461 §4.1), gets no DSN,
    which is what it asked for: True.
    """
    from kittiwake.dsn.compose import compose
    from kittiwake.dsn.report import Action, RecipientReport

    reports = []
    for failure in failures:
        params = rcpt_params.get(failure.recipient)
        code, enhanced = (451, "4.3.0") if failure.temporary else (552, "5.2.2")
        reports.append(RecipientReport(
            address=failure.recipient, action=Action.FAILED,
            error=LocalError(code, enhanced, failure.reason, ctx.hostname),
            status="5.2.2" if not failure.temporary else "4.3.0",
            notify=getattr(params, "notify", None), orcpt=getattr(params, "orcpt", None),
            attempts=1, last_attempt=datetime.now(UTC)))
    dsn = compose(hostname=ctx.hostname, mail_from=mailfrom, recipients=reports,
                  original=data, now=datetime.now(UTC), envid=envid, ret=ret,
                  smtputf8=smtputf8)
    if dsn is None:
        logger.info("no failure notice wanted", mailfrom=mailfrom,
                    rcpts=",".join(f.recipient for f in failures))
        return True
    local, _, domain = mailfrom.rpartition("@")
    found = ctx.index.lookup(local, domain) if local and domain else None
    if isinstance(found, AccountRecipient):
        notice = b"Return-Path: <>\r\n" + dsn.data
        problems = await deliver_local(ctx, [LocalDelivery(mailfrom, found)], notice, "")
        if not problems:
            logger.info("failure notice delivered", to=mailfrom, account=found.account)
            return True
        return False
    if ctx.outbox is None:
        logger.error("failure notice not sent: outgoing delivery is not configured",
                     to=mailfrom)
        return False
    try:
        ids = await ctx.outbox.enqueue(account=None, mailfrom="", recipients=[mailfrom],
                                       data=dsn.data, smtputf8=dsn.smtputf8, requiretls=None)
    except Exception as exc:
        logger.error("failure notice not queued", to=mailfrom, error=str(exc))
        return False
    logger.info("failure notice queued", to=mailfrom, ids=",".join(map(str, ids)))
    return True
