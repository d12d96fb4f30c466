"""The message pipeline: checks, then the decision, then delivery or the queue.

The connection driver (:mod:`.connection`) receives a message into a
:class:`~.spool.Spool` and hands the finished :class:`~.spool.SpooledMessage`
here with the envelope; :func:`process` returns the reply to DATA/BDAT. No
sockets: a test drives it with a context, an envelope and a spooled message.

Parse once (DESIGN.md "The mail path"): every step reads the header section
parsed when it arrived (:class:`~.spool.MessageHead`) and the DKIM body
hashes computed while the body was written; the headers we add (Received,
Authentication-Results, Received-SPF, DKIM-Signature, a missing Date or
Message-ID) form a prefix kept beside the spooled bytes.

Steps, in order:
1. loop detection (too many Received fields, RFC 5321 §6.3);
2. submission: the account may use the From addresses (RFC 6409 §6.1),
   Message-ID/Date added (§8.2, §8.3), DKIM signing (RFC 6376 §5) in a
   worker thread; MX: iprev, SPF, DKIM, DMARC (:mod:`.incoming`), DMARC
   reject (RFC 7489 §6.6.4);
3. the account writes (:func:`write_accounts`): remote recipients into the
   queue, local ones into their mailboxes; a partial local failure becomes a
   DSN (RFC 3464), never nothing. In an SMTP worker process
   (:mod:`kittiwake.server.smtpworkers`) steps 1-2 run in the worker and
   step 3 in the main process, which owns the store and the queue
   (``ServerContext.account_writer``); the reply is the main process's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from kittiwake import dkim, metrics
from kittiwake.junk import SenderIdentities
from kittiwake.log import Logger
from kittiwake.smtp import Reply
from kittiwake.smtpserver import incoming, submission
from kittiwake.smtpserver import metrics as smtp_metrics
from kittiwake.smtpserver.context import DMARCRecorder, ServerContext
from kittiwake.smtpserver.deliver import LocalDelivery, deliver_local, notify_failures
from kittiwake.smtpserver.spool import MessageHead, Spool, SpooledMessage


@dataclass
class Transaction:
    """One mail transaction (MAIL FROM to end of data): the envelope and its spool."""

    mailfrom: str = ""
    smtputf8: bool = False
    requiretls: bool = False
    ret: Any = None  # RFC 3461 RET and ENVID from MAIL FROM
    envid: str | None = None
    rcpt_params: dict[str, Any] = field(default_factory=dict)  # address -> RcptParams
    local: list[LocalDelivery] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    rcpts: list[str] = field(default_factory=list)
    data_trigger: Reply | bool | None = False  # localserve: reply after DATA; None = hang
    spool: Spool | None = None

    def discard(self) -> None:
        """Drop the message being received (RSET, rejection, end of connection)."""
        if self.spool is not None:
            self.spool.discard()
            self.spool = None


@dataclass(frozen=True)
class Sender:
    """Who is sending: the service, the authenticated account, the session's facts."""

    kind: str                      # smtp, submission or submissions
    account: str | None
    conn: incoming.Connection

    @property
    def submits(self) -> bool:
        return self.kind in ("submission", "submissions")


def body_hashes_needed(ctx: ServerContext, sender: Sender, head: MessageHead
                       ) -> set[dkim.BodyHashKey]:
    """Which DKIM body hashes to compute while the body arrives (``Spool.on_head``):
    the signatures' to verify on MX mail, the selectors' to sign with on submission."""
    if sender.submits or ctx.localserve:
        if sender.account is None or ctx.localserve:
            return set()
        return submission.signing_body_hashes(ctx, head)
    return dkim.body_hash_keys(head.dkim_fields)


def record_dmarc(recorder: DMARCRecorder, analysis: incoming.Analysis, ip: str,
                 tx: Transaction) -> None:
    """Hand the DMARC verdict to the aggregate-report recorder (RFC 7489 §7.2): an
    in-memory append; the recorder writes batches in a worker thread."""
    assert analysis.dmarc is not None
    rcpt = tx.rcpts[0] if tx.rcpts else ""
    try:
        recorder.record(analysis.dmarc, analysis.spf, analysis.dkim, ip=ip,
                        mailfrom=tx.mailfrom, recipient_domain=rcpt.rpartition("@")[2])
    except Exception as exc:  # reporting never costs a message
        metrics.panic("smtpserver", exc, msg="recording the DMARC evaluation failed")


async def process(ctx: ServerContext, sender: Sender, tx: Transaction,
                  message: SpooledMessage, logger: Logger) -> Reply:
    """Check, decide and deliver one received message; the reply to its data."""
    head = message.head
    if head.headers.count("received") > ctx.limits.max_received_headers:
        return Reply(554, "5.4.6", ["too many Received headers: mail loop?"])
    if isinstance(tx.data_trigger, Reply):
        return tx.data_trigger
    verified: frozenset[str] = frozenset()
    identities: SenderIdentities | None = None  # of MX mail, for the junk filter
    if sender.submits or ctx.localserve:
        prefix = b""
        if sender.account is not None and not ctx.localserve:
            try:
                from_domain = submission.check_sender(ctx, sender.account, tx.mailfrom, head)
            except submission.SubmissionRejected as exc:
                return exc.reply
            prefix = submission.missing_headers(ctx.hostname, head)
            prefix = await asyncio.to_thread(submission.dkim_signatures, ctx, from_domain,
                                             head, prefix, message.body_hashes) + prefix
        prefix = incoming.submission_received(sender.conn, tx.rcpts) + prefix
    else:
        analysis = await incoming.analyze(ctx.resolver, sender.conn, tx.mailfrom, head,
                                          message.body_hashes, tx.rcpts)
        logger.info("checks", spf=str(analysis.spf.status) if analysis.spf else "",
                    dkim=",".join(str(d.status) for d in analysis.dkim) or "none",
                    dmarc=str(analysis.dmarc.status) if analysis.dmarc else "none")
        smtp_metrics.count_analysis(analysis)
        if analysis.dmarc is not None and ctx.dmarc_recorder is not None:
            record_dmarc(ctx.dmarc_recorder, analysis, sender.conn.ip, tx)
        if analysis.reject:
            return Reply(550, "5.7.1", ["rejected by the sender domain's DMARC policy"])
        prefix = analysis.headers
        verified = analysis.verified_domains
        identities = analysis.identities(sender.conn.ip, tx.mailfrom)
    # The store and the queue take the spool file by hard link, the prefix beside it.
    message.prefix = prefix
    writes = AccountWrites(
        account=sender.account, session_id=sender.conn.session_id, mailfrom=tx.mailfrom,
        smtputf8=tx.smtputf8, requiretls=tx.requiretls, ret=tx.ret, envid=tx.envid,
        rcpt_params=tx.rcpt_params, local=tx.local, remote=tx.remote, rcpts=tx.rcpts,
        message=message, verified=verified, identities=identities)
    if ctx.account_writer is not None:  # an SMTP worker process: the main process writes
        return await ctx.account_writer.write(writes)
    return await write_accounts(ctx, writes, logger)


@dataclass
class AccountWrites:
    """What a received, checked message needs written: the queue for its remote
    recipients, the mailboxes of its local ones (the junk decision included) and a
    DSN for the local deliveries that failed. Plain, picklable values: an SMTP
    worker process sends this to the main process, which owns the store and the
    queue (:mod:`kittiwake.server.smtpworkers`); the spool file is taken by link."""

    account: str | None            # the authenticated account (submission), else None
    session_id: str
    mailfrom: str
    smtputf8: bool
    requiretls: bool
    ret: Any
    envid: str | None
    rcpt_params: dict[str, Any]
    local: list[LocalDelivery]
    remote: list[str]
    rcpts: list[str]
    message: SpooledMessage
    verified: frozenset[str] = frozenset()
    identities: SenderIdentities | None = None


async def write_accounts(ctx: ServerContext, w: AccountWrites, logger: Logger) -> Reply:
    """Queue, deliver and notify (step 3 of the module docstring); the reply to the data.

    Every write is committed before this returns a 2xx reply."""
    message = w.message
    if w.remote:
        if ctx.outbox is None:
            return Reply(451, "4.3.0", ["outgoing delivery is not configured"])
        try:
            ids = await ctx.outbox.enqueue_spooled(
                account=w.account, mailfrom=w.mailfrom, recipients=w.remote,
                message=message, smtputf8=w.smtputf8,
                requiretls=True if w.requiretls else None,
                ret=w.ret, envid=w.envid, rcpt_params=w.rcpt_params)
        except Exception as exc:
            metrics.panic("smtpserver", exc, msg="queueing failed")
            return Reply(451, "4.3.0", ["could not queue the message, try again"])
        logger.info("queued", rcpts=",".join(w.remote), ids=",".join(map(str, ids)))
    failures = await deliver_local(ctx, w.local, message, w.mailfrom, w.verified, w.identities)
    if failures and len(failures) == len(w.local) and not w.remote:
        first = failures[0]
        if first.code:  # the failure chose its reply (a junk reject)
            return Reply(first.code, first.enhanced, [first.reason])
        if first.temporary:
            return Reply(451, "4.3.0", [first.reason])
        return Reply(552, "5.2.2", [first.reason])
    if failures:
        # Others are delivered, so the message is acknowledged: the recipients that
        # failed go into a DSN to the sender, never nowhere (RFC 3464).
        data = await asyncio.to_thread(message.read)  # the DSN may return it (RFC 3461)
        sent = await notify_failures(
            ctx, failures, mailfrom=w.mailfrom, data=data, smtputf8=w.smtputf8,
            envid=w.envid, ret=w.ret, rcpt_params=w.rcpt_params)
        if not sent:
            return Reply(451, "4.3.0", ["local delivery failed for some recipients,"
                                        " try again"])
    logger.info("message accepted", size=message.total_size, recipients=len(w.rcpts),
                mailfrom=w.mailfrom)
    return Reply(250, "2.0.0", [f"message accepted (id {w.session_id})"])
