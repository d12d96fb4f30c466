"""NOTIFY (RFC 5465) for one session: the command, and telling the client what changed.

A session that gave ``NOTIFY SET`` hears of changes all the time, not only
while a command runs or during IDLE (§3.1). The connection routes each change
from the store's change hub (``IMAPConnection.announce``):

- changes of the selected mailbox's messages go to its view as always. With a
  ``selected`` group naming MessageNew/MessageExpunge they are pushed at once
  (``selected``: EXPUNGE too, at any time; ``selected-delayed``: EXPUNGE only
  when RFC 9051 §7.5.1 allows), FLAGS only with FlagChange, and each new
  message is fetched with the group's attributes (§5.2). Without such a
  group the selected mailbox keeps the base behaviour: updates when a command
  completes, never pushed (Dovecot sends nothing at all then; we keep the
  client's numbers in step with the mailbox, RFC 9051 §7.3.1);
- everything else waits in :attr:`NotifyState.backlog` for :func:`tell`,
  which sends STATUS for other mailboxes' messages (§5.1-§5.3: MESSAGES,
  UIDNEXT, UNSEEN; HIGHESTMODSEQ under CONDSTORE or with FlagChange; a flag
  change as UNSEEN if that changed, else as HIGHESTMODSEQ alone where it is
  reported), LIST for mailbox names (§5.4:
  ``\\NonExistent`` when deleted, ``OLDNAME`` when renamed) and
  subscriptions (§5.5), METADATA for metadata entries (§5.6, §5.7).

The session's own changes are told as well, as Dovecot does. When more
changes wait than the limit, or the client leaves too much unread, the
session gets ``* OK [NOTIFICATIONOVERFLOW]`` and NOTIFY is off (§5.8).

SUBSCRIBE/UNSUBSCRIBE and SETMETADATA are published by the store (Change
kinds ``subscription`` and ``metadata``), whoever made them, so every session
of the account hears of them.

Memory: a session without NOTIFY carries only an attribute ``None``;
NOTIFY sessions hold their plan, their subscriptions (only when a group is
``subscribed``) and the last UNSEEN told per watched mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kittiwake import log
from kittiwake.imap import commands as c
from kittiwake.imap import responses as r
from kittiwake.imap.codes import Code
from kittiwake.imap.notify import EVENTS, MESSAGE_EVENTS, NotifyError, NotifyPlan, plan
from kittiwake.imapserver import metrics as m
from kittiwake.imapserver.listing import SEPARATOR, imap_name, store_name
from kittiwake.imapserver.state import Answer
from kittiwake.store.model import METADATA, SUBSCRIPTION, Change, Mailbox, MailboxNotFound

if TYPE_CHECKING:
    from kittiwake.imapserver.connection import IMAPConnection

__all__ = ["SUPPORTED", "NotifyState", "tell"]

# ANNOTATE (RFC 5257) is not implemented, so AnnotationChange is refused (BADEVENT).
SUPPORTED = tuple(e for e in EVENTS if e != "AnnotationChange")

log_ = log.get_logger("imapserver")


@dataclass(slots=True)
class NotifyState:
    """One session's NOTIFY SET and what it needs to answer it."""

    plan: NotifyPlan
    inboxes: set[str]
    subscriptions: set[str] = field(default_factory=set)
    unseen: dict[int, int] = field(default_factory=dict)  # mailbox id -> UNSEEN told
    backlog: list[Change] = field(default_factory=list)
    new_uids: list[int] = field(default_factory=list)  # to fetch (MessageNew attributes)

    @property
    def pushes_selected(self) -> bool:
        """The selected mailbox's message events are pushed (a selected group with them)."""
        sel = self.plan.selected
        return sel is not None and "MessageNew" in sel

    def events_for(self, mailbox: str, also_subscribed: str = "") -> frozenset[str]:
        subs = self.subscriptions
        return self.plan.events_for(
            mailbox, lambda n: n in subs or n == also_subscribed, self.inboxes.__contains__)


def _uses_subscriptions(p: NotifyPlan) -> bool:
    return any(g.filter == "SUBSCRIBED" for g in p.others)


async def notify_command(conn: IMAPConnection, tag: str, cmd: c.Notify) -> Answer:
    """NOTIFY NONE / NOTIFY SET (RFC 5465 §3.1)."""
    assert conn.account is not None
    try:
        p = plan(cmd, SUPPORTED, store_name)
    except NotifyError as exc:
        code = r.ResponseCode(exc.code, exc.code_args) if exc.code else None
        return Answer(exc.status, exc.text, code)
    if p is None:
        stop(conn)
        return Answer("OK", "NOTIFY completed")
    old = conn.notify
    state = NotifyState(p, conn.ctx.inboxes_of(conn.account_name))
    if _uses_subscriptions(p):
        state.subscriptions = set(await conn.account.subscriptions())
    if old is not None:
        state.backlog = old.backlog
    else:
        m.NOTIFY_SESSIONS.inc()
    conn.notify = state
    if p.status or any(g.events & {"FlagChange"} for g in p.others):
        selected_id = conn.selected.mailbox_id if conn.selected is not None else None
        for box in await conn.account.mailboxes():
            events = state.events_for(box.name)
            if box.id == selected_id or not events & MESSAGE_EVENTS:
                continue
            state.unseen[box.id] = box.unseen
            if p.status:
                # RFC 5465 §3.1: a STATUS for each such mailbox before the OK.
                items = [("MESSAGES", box.messages), ("UIDNEXT", box.uidnext),
                         ("UIDVALIDITY", box.uidvalidity), ("UNSEEN", box.unseen)]
                if _reports_modseq(conn, events):
                    items.append(("HIGHESTMODSEQ", box.highestmodseq))
                conn.session.send(r.status_response(imap_name(box.name), items,
                                                    utf8=conn.session.utf8))
    return Answer("OK", "NOTIFY completed")


def stop(conn: IMAPConnection) -> None:
    """NOTIFY NONE, an overflow, or the end of the session."""
    if conn.notify is not None:
        conn.notify = None
        m.NOTIFY_SESSIONS.dec()


async def tell(conn: IMAPConnection) -> None:
    """Send what the backlog holds that the client asked for (see the module docstring)."""
    state = conn.notify
    if state is None or conn.session.closed:
        return
    waiting = len(state.backlog) + (conn.sub.queue.qsize() if conn.sub is not None else 0)
    if waiting > conn.ctx.limits.notify_max_backlog or \
            _unsent(conn) > conn.ctx.limits.notify_max_unsent:
        _overflow(conn)
        return
    changes, state.backlog = state.backlog, []
    if state.new_uids:
        await _fetch_new(conn, state)
    counts: dict[str, set[str]] = {}  # mailbox -> the kinds of message change seen
    for change in changes:
        kind = change.kind
        if kind in ("added", "expunged", "flags"):
            counts.setdefault(change.mailbox, set()).add(kind)
        elif kind in ("mailbox-added", "mailbox-renamed", "mailbox-removed"):
            _mailbox_name(conn, state, change)
        elif kind == SUBSCRIPTION:
            _subscription(conn, state, change)
        elif kind == METADATA:
            _metadata(conn, state, change)
    for name, kinds in counts.items():
        await _status(conn, state, name, kinds)


def _unsent(conn: IMAPConnection) -> int:
    transport = conn.writer.transport
    return transport.get_write_buffer_size() if transport is not None else 0


def _overflow(conn: IMAPConnection) -> None:
    """RFC 5465 §5.8: say so, and behave as after NOTIFY NONE."""
    assert conn.notify is not None
    conn.logger.info("notify overflow", backlog=len(conn.notify.backlog))
    stop(conn)
    m.NOTIFY_OVERFLOWS.inc()
    conn.session.send(r.untagged_status(
        "OK", "too many changes to tell; NOTIFY is off, use NOTIFY SET again",
        Code.NOTIFICATIONOVERFLOW))


async def _fetch_new(conn: IMAPConnection, state: NotifyState) -> None:
    """RFC 5465 §5.2: new messages of the selected mailbox with the attributes asked for."""
    from kittiwake.imapserver.messages import fetch_unsolicited

    uids, state.new_uids = state.new_uids, []
    if conn.selected is not None and state.plan.fetch:
        await fetch_unsolicited(conn, uids, state.plan.fetch)
        m.NOTIFICATIONS.labels(event="MessageNew").inc(len(uids))


async def _status(conn: IMAPConnection, state: NotifyState, name: str, kinds: set[str]) -> None:
    sel = conn.selected
    if sel is not None and sel.name == name:
        return  # the selected mailbox's changes went to its view
    wanted = state.events_for(name)
    events = {e for k, e in (("added", "MessageNew"), ("expunged", "MessageExpunge"),
                             ("flags", "FlagChange")) if k in kinds and e in wanted}
    if not events:
        return
    assert conn.account is not None
    try:
        box: Mailbox = await conn.account.mailbox(name)
    except MailboxNotFound:
        return  # deleted meanwhile; MailboxName says so if asked
    modseq = _reports_modseq(conn, wanted)
    before = state.unseen.get(box.id)
    state.unseen[box.id] = box.unseen
    items: list[tuple[str, int | str]]
    if events & {"MessageNew", "MessageExpunge"}:
        items = [("MESSAGES", box.messages), ("UIDNEXT", box.uidnext), ("UNSEEN", box.unseen)]
    elif before != box.unseen:
        items = [("UNSEEN", box.unseen)]
    elif modseq:
        items = []  # only the flags changed: HIGHESTMODSEQ tells it (as Dovecot)
    else:
        return
    if modseq:
        items.append(("HIGHESTMODSEQ", box.highestmodseq))
    conn.session.send(r.status_response(imap_name(name), items, utf8=conn.session.utf8))
    for event in events:
        m.NOTIFICATIONS.labels(event=event).inc()


def _reports_modseq(conn: IMAPConnection, events: frozenset[str]) -> bool:
    """STATUS carries HIGHESTMODSEQ under CONDSTORE (RFC 7162 §3.1.1), and where
    FlagChange is asked for (a flag change that leaves UNSEEN alone is seen only
    there; Dovecot does the same)."""
    return conn.session.condstore or "FlagChange" in events


def _mailbox_name(conn: IMAPConnection, state: NotifyState, change: Change) -> None:
    """RFC 5465 §5.4: LIST for a created, deleted or renamed mailbox."""
    names = (change.mailbox, change.old_name) if change.old_name else (change.mailbox,)
    if not any("MailboxName" in state.events_for(n) for n in names):
        return
    utf8 = conn.session.utf8
    if change.kind == "mailbox-removed":
        line = r.list_response(["\\NonExistent"], SEPARATOR, imap_name(change.mailbox), utf8=utf8)
    elif change.kind == "mailbox-renamed":
        line = r.list_response([], SEPARATOR, imap_name(change.mailbox), utf8=utf8,
                               extended=[("OLDNAME", [imap_name(change.old_name)])])
    else:
        line = r.list_response([], SEPARATOR, imap_name(change.mailbox), utf8=utf8)
    if state.subscriptions and change.old_name in state.subscriptions:
        state.subscriptions.discard(change.old_name)  # the store moves subscriptions along
        state.subscriptions.add(change.mailbox)
    conn.session.send(line)
    m.NOTIFICATIONS.labels(event="MailboxName").inc()


def _subscription(conn: IMAPConnection, state: NotifyState, change: Change) -> None:
    """RFC 5465 §5.5: LIST with or without \\Subscribed."""
    name = change.mailbox
    subscribed = bool(change.extra.get("subscribed"))
    wanted = "SubscriptionChange" in state.events_for(name, also_subscribed=name)
    if subscribed:
        state.subscriptions.add(name)
    else:
        state.subscriptions.discard(name)
    if not wanted:
        return
    conn.session.send(r.list_response(["\\Subscribed"] if subscribed else [], SEPARATOR,
                                      imap_name(name), utf8=conn.session.utf8))
    m.NOTIFICATIONS.labels(event="SubscriptionChange").inc()


def _metadata(conn: IMAPConnection, state: NotifyState, change: Change) -> None:
    """RFC 5465 §5.6 (a mailbox's entries) and §5.7 (the server's, mailbox "")."""
    name = change.mailbox
    entries = change.extra.get("entries")
    if not isinstance(entries, tuple) or not entries:
        return
    if name == "":
        event = "ServerMetadataChange"
        wanted = state.plan.wants(event)
    else:
        event = "MailboxMetadataChange"
        sel = conn.selected
        selected_events = state.plan.selected if sel is not None and sel.name == name else None
        wanted = event in (selected_events or frozenset()) or event in state.events_for(name)
    if not wanted:
        return
    conn.session.send(r.metadata_changed("" if name == "" else imap_name(name),
                                         [str(e) for e in entries], utf8=conn.session.utf8))
    m.NOTIFICATIONS.labels(event=event).inc()
