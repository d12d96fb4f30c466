"""APPEND and MULTIAPPEND (RFC 9051 §6.3.12, RFC 3502, RFC 4315 APPENDUID).

Message literals stream into spool files as they arrive (``AppendData``),
never into memory beyond the spool's buffer; each spool is at the final name
of a message id reserved for it (``Account.spool``), so the message is written
once, where it stays, and its file is made with its first octets written (for
a message under 256 KiB, in the store's delivery thread: no file creation on
the event loop). When the command is complete, the spools are handed to the
store's ``append`` unfinished: its delivery thread writes them out, takes their
header fields from the octets they hold and fsyncs them through their open
descriptors (the same group commit as SMTP deliveries: a one-message APPEND
shares its COMMIT with concurrent deliveries, and its file's fsync overlaps it;
a MULTIAPPEND is one delivery, all or nothing); only when it returns, with
every file and row durable, is the OK sent, with ``[APPENDUID uidvalidity
uids]``. A refused or broken command drops its spool files; once handed to the
store, the store removes them on an error.

Whether the target mailbox exists is asked of the store before the first
literal to a mailbox (NO [TRYCREATE] before any octet is sent), not before
each: a client appending many messages gets each continuation at once. The
store refuses a mailbox deleted meanwhile, and that is answered the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kittiwake.imap import commands as c
from kittiwake.imap import responses as r
from kittiwake.imap.codes import Code
from kittiwake.imap.events import AppendStart
from kittiwake.imapserver.listing import store_name
from kittiwake.imapserver.mailboxes import uid_set
from kittiwake.imapserver.metrics import APPENDED
from kittiwake.imapserver.quota import check_messages
from kittiwake.imapserver.state import Answer, HandlerError, PendingAppend
from kittiwake.store import Appended
from kittiwake.store.model import Change, Flags, MailboxNotFound
from kittiwake.store.spool import SpoolFile

if TYPE_CHECKING:
    from kittiwake.imapserver.connection import IMAPConnection


async def append_start(conn: IMAPConnection, event: AppendStart) -> None:
    """Decide on a message literal before its octets come (RFC 7888 §4)."""
    s = conn.session
    assert conn.account is not None
    pending = conn.appends.get(event.tag)
    if pending is None:
        name = store_name(event.mailbox)
        if name != conn.append_mailbox:
            # Asked of the store once per target, not before every literal: the "+"
            # goes out without a thread hop; the store still refuses a mailbox
            # deleted meanwhile (answered as here, see _append).
            try:
                await conn.account.mailbox(name)
            except MailboxNotFound:
                s.no(f"no mailbox {event.mailbox}", Code.TRYCREATE)
                return
            conn.append_mailbox = name
        pending = PendingAppend(name)
        conn.appends[event.tag] = pending
    limit = conn.ctx.limits.max_append
    quota = conn.ctx.quota_of(conn.account_name)
    if event.size > limit:
        conn._drop_append(event.tag)
        s.no(f"message too large (at most {limit} octets)", Code.TOOBIG)
        return
    if quota:
        used = await conn.account.total_size()
        spooled = sum(sp.size for sp in pending.spools)
        if used + spooled + event.size > quota:
            conn._drop_append(event.tag)
            s.no("the account is over its quota", Code.OVERQUOTA)
            return
    if event.command == "APPEND":  # REPLACE (RFC 8508) takes one message for one
        try:
            await check_messages(conn, len(pending.spools) + 1)
        except HandlerError as exc:
            conn._drop_append(event.tag)
            s.no(exc.text, exc.code)
            return
    pending.spools.append(conn.account.spool())
    pending.starts.append(event)
    conn._append_tag = event.tag
    conn.quick_ack()
    s.accept_literal()


async def _append(conn: IMAPConnection, tag: str, cmd: c.Append) -> Answer:
    assert conn.account is not None
    pending = conn.appends.pop(tag, None)
    conn._append_tag = None
    if pending is None or len(pending.spools) != len(cmd.messages):
        if pending is not None:
            for spool in pending.spools:
                spool.discard()
        return Answer("NO", "APPEND data went missing", Code.SERVERBUG)
    try:
        items = [_appended(spool, msg) for spool, msg in zip(pending.spools, cmd.messages,
                                                              strict=True)]
    except BaseException:
        for spool in pending.spools:
            spool.discard()
        raise
    try:
        # The store owns the spools from here on (flushed, summarized from the head
        # they hold and fsynced in its delivery thread; removed there on an error).
        delivered = await conn.account.append(pending.mailbox, items)
    except MailboxNotFound:
            # Deleted since append_start looked (RFC 9051 §6.3.12: TRYCREATE).
            conn.append_mailbox = None
            raise HandlerError(f"no mailbox {cmd.mailbox}", Code.TRYCREATE) from None
    APPENDED.inc(len(delivered))
    first = delivered[0]
    code = r.ResponseCode.appenduid(first.uidvalidity, uid_set([d.uid for d in delivered]))
    conn.logger.info("appended", mailbox=pending.mailbox, messages=len(delivered),
                     size=sum(d.size for d in delivered))
    return Answer("OK", "APPEND completed", code)


def _appended(spool: SpoolFile, msg: c.AppendMessage) -> Appended:
    """A spooled message for the store, its flags (\\Recent is not the client's to set)
    and INTERNALDATE (RFC 9051 §6.3.12)."""
    received = int(msg.internal_date.timestamp() * 1000) if msg.internal_date else 0
    flags = Flags.parse([f for f in msg.flags if f.lower() != "\\recent"])
    return Appended(spool.path, flags, received, spool)


async def _replace(conn: IMAPConnection, tag: str, cmd: c.Replace) -> Answer:
    """REPLACE / UID REPLACE (RFC 8508): the new message in, the old one out, atomically.

    Answered like the RFC's example: ``* OK [APPENDUID ...]``, EXISTS when the new
    message is in the selected mailbox, the old one's EXPUNGE (VANISHED under
    QRESYNC), then the tagged OK.
    """
    from kittiwake.imapserver.messages import resolve, send_own_expunges

    assert conn.account is not None and conn.selected is not None
    sel = conn.selected
    pending = conn.appends.pop(tag, None)
    conn._append_tag = None
    if pending is None or len(pending.spools) != 1:
        if pending is not None:
            for spool in pending.spools:
                spool.discard()
        return Answer("NO", "REPLACE data went missing", Code.SERVERBUG)
    spool = pending.spools[0]
    try:
        if sel.readonly:
            raise HandlerError("the mailbox is read-only (EXAMINE)", Code.READ_ONLY)
        found = resolve(conn, c.SequenceSet.of(cmd.number), cmd.uid)
        if not found:
            raise HandlerError(f"no message {cmd.number} to replace", Code.NONEXISTENT)
        old_uid = found[0][1]
        item = _appended(spool, cmd.message)
    except BaseException:
        spool.discard()
        raise
    try:  # the store owns the spool from here on (see _append)
        [new] = await conn.account.append(pending.mailbox, [item],
                                          replaces=(sel.name, old_uid))
    except MailboxNotFound:
        if pending.mailbox != sel.name:
            conn.append_mailbox = None  # deleted since append_start looked
            raise HandlerError(f"no mailbox {cmd.mailbox}", Code.TRYCREATE) from None
        raise
    APPENDED.inc()
    conn.session.send(r.untagged_status("OK", "replacement stored", r.ResponseCode.appenduid(
        new.uidvalidity, uid_set([new.uid]))))
    if pending.mailbox == sel.name:
        sel.view.apply(Change("added", sel.mailbox_id, sel.name, (new.uid,), 0))
        conn.announce(expunges_allowed=False)
    send_own_expunges(conn, [old_uid])
    return Answer("OK", "REPLACE completed")


HANDLERS: dict[type[c.Command], Any] = {c.Append: _append, c.Replace: _replace}
