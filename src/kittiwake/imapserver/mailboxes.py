"""Mailbox commands: SELECT/EXAMINE, LIST/LSUB, STATUS, CREATE, DELETE, RENAME,
SUBSCRIBE/UNSUBSCRIBE, NAMESPACE, CLOSE/UNSELECT, GETQUOTA/GETQUOTAROOT.

Each handler takes the connection, the tag and the typed command and returns
an :class:`~kittiwake.imapserver.connection.Answer` (or raises HandlerError);
the dispatcher sends pending updates and the tagged reply.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any

from kittiwake.imap import commands as c
from kittiwake.imap import responses as r
from kittiwake.imap.codes import Code
from kittiwake.imap.commands import SequenceSet
from kittiwake.imap.server import State
from kittiwake.imapserver import changelog, quota
from kittiwake.imapserver.cache import LRU
from kittiwake.imapserver.listing import (
    SEPARATOR,
    ListOptions,
    imap_name,
    list_mailboxes,
    lsub,
    store_name,
)
from kittiwake.imapserver.state import Answer, HandlerError, Selected
from kittiwake.imapserver.view import SelectedView
from kittiwake.store.model import Mailbox, MailboxExists, MailboxNotFound, Message

if TYPE_CHECKING:
    from kittiwake.imapserver.connection import IMAPConnection

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")




def uid_set(uids: list[int]) -> SequenceSet:
    """A compact UID set (ranges of consecutive UIDs)."""
    ranges: list[tuple[int | None, int | None]] = []
    for uid in sorted(uids):
        if ranges and ranges[-1][1] == uid - 1:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return SequenceSet(tuple(ranges))


# --- SELECT / EXAMINE (RFC 9051 §6.3.2-§6.3.3, RFC 7162 §3.1.8, §3.2.5) ----------

async def _select(conn: IMAPConnection, tag: str, cmd: c.Select) -> Answer:
    from kittiwake.imapserver.messages import fetch_flags_line

    assert conn.account is not None
    s = conn.session
    if conn.selected is not None:
        conn.selected = None
        # RFC 9051 §6.3.2 / RFC 7162 §3.2.11: the old mailbox is closed first.
        s.send(r.untagged_status("OK", "previous mailbox is now closed", Code.CLOSED))
    name = store_name(cmd.mailbox)
    # Changes committed before the snapshot below are in it; drop them, or a stale
    # change of a deleted mailbox whose id was reused would reach this view.
    if conn.notify is not None:
        conn.announce_others()  # NOTIFY: other mailboxes' changes are still told
    elif conn.sub is not None:
        conn.sub.pending()
    condstore = s.condstore or cmd.condstore or cmd.qresync is not None
    # CONDSTORE: the mailbox's change log hears from before the read (changelog.py).
    pending = changelog.attach(conn.ctx.store.changes, conn.account_name) if condstore \
        else None
    try:
        mailbox, uids, keywords, unseen_uid = await _selection(conn, name)
        log = pending.attach(str(conn.account.core.root), mailbox.id,
                             mailbox.highestmodseq) if pending is not None else None
    finally:
        if pending is not None:
            pending.close()
    readonly = cmd.readonly
    view = SelectedView(mailbox.id, uids, mailbox.highestmodseq)
    qresync = cmd.qresync is not None or "QRESYNC" in s.enabled_caps
    if condstore:
        s.condstore = True
    s.send(r.flags([*SYSTEM_FLAGS, *keywords]))
    perm = [] if readonly else [*SYSTEM_FLAGS, *keywords, "\\*"]
    s.send(r.untagged_status("OK", "flags that can be changed",
                             r.ResponseCode.permanentflags(perm)))
    s.send(r.exists(len(uids)))
    rev2 = "IMAP4REV2" in s.enabled_caps
    if not rev2:
        s.send(b"* 0 RECENT\r\n")  # RFC 3501 §7.3.2 (no \Recent kept, RFC 9051 App. E)
        # [UNSEEN n] is a message number: none after ENABLE UIDONLY (RFC 9586 §3).
        first_unseen = view.seq_of(unseen_uid) if unseen_uid is not None and \
            not s.uid_only else None
        if first_unseen is not None:
            s.send(r.untagged_status("OK", "first unseen",
                                     r.ResponseCode(Code.UNSEEN, str(first_unseen))))
    s.send(r.untagged_status("OK", "UIDs valid", r.ResponseCode.uidvalidity(mailbox.uidvalidity)))
    s.send(r.untagged_status("OK", "mailbox id", r.ResponseCode(Code.MAILBOXID,
                                                                f"({mailbox_id(mailbox)})")))
    s.send(r.untagged_status("OK", "predicted next UID", r.ResponseCode.uidnext(mailbox.uidnext)))
    # RFC 7162 §3.1.2.1: every SELECT/EXAMINE of a mailbox that keeps mod-sequences.
    s.send(r.untagged_status("OK", "highest", r.ResponseCode.highestmodseq(
        mailbox.highestmodseq)))
    conn.selected = Selected(name, mailbox.id, mailbox.uidvalidity, readonly, view,
                             qresync=qresync, keyword_names={k.lower(): k for k in keywords},
                             changelog=log)
    if cmd.qresync is not None and cmd.qresync.uidvalidity == mailbox.uidvalidity:
        changed = await conn.account.messages(name, cmd.qresync.modseq)
        await _qresync(conn, cmd.qresync, changed, fetch_flags_line)
    return Answer("OK", "EXAMINE completed" if readonly else "SELECT completed",
                   Code.READ_ONLY if readonly else Code.READ_WRITE)


# Mailbox states recently selected: (account dir, mailbox id, uidvalidity, highest
# modseq) -> (UID array, keywords, first unseen UID). Any change to a mailbox raises
# its highest modseq, so an entry is never stale; views share the array (see view).
SELECTIONS: LRU[tuple[str, int, int, int], tuple[array[int], list[str], int | None]] = LRU(256)


async def _selection(conn: IMAPConnection, name: str
                     ) -> tuple[Mailbox, array[int], list[str], int | None]:
    assert conn.account is not None
    mailbox = await conn.account.mailbox(name)
    key = (str(conn.account.core.root), mailbox.id, mailbox.uidvalidity, mailbox.highestmodseq)
    hit = SELECTIONS.get(key)
    if hit is not None:
        return mailbox, *hit
    mailbox, uids, keywords, unseen = await conn.account.selection(name)
    snapshot = (array("I", uids), keywords, unseen)
    SELECTIONS.put((str(conn.account.core.root), mailbox.id, mailbox.uidvalidity,
                    mailbox.highestmodseq), snapshot)
    return mailbox, *snapshot


async def _qresync(conn: IMAPConnection, q: c.QResync, messages: list[Message],
                   fetch_flags_line: Any) -> None:
    """RFC 7162 §3.2.5.1: VANISHED (EARLIER) and the flags changed since the client's modseq."""
    assert conn.account is not None and conn.selected is not None
    top = conn.selected.view.max_uid
    known = q.known_uids
    gone = await conn.account.vanished(conn.selected.name, q.modseq)
    if known is not None and not known.saved:
        gone = [u for u in gone if known.contains(u, max(top, known.max_number()))]
    if gone:
        conn.session.send(r.vanished(uid_set(gone), earlier=True))
    view = conn.selected.view
    for m in messages:  # those changed since the client's modseq
        seq = view.seq_of(m.uid)
        if seq is not None and (known is None or known.saved or known.contains(m.uid, top)):
            conn.session.send(fetch_flags_line(conn, seq, m))


async def _close(conn: IMAPConnection, tag: str, cmd: c.Close) -> Answer:
    """CLOSE (RFC 9051 §6.4.1): expunge silently if read-write, then deselect."""
    sel = conn.selected
    assert conn.account is not None
    if sel is not None and not sel.readonly:
        await conn.account.expunge(sel.name)
    conn.selected = None
    return Answer()


async def _unselect(conn: IMAPConnection, tag: str, cmd: c.Unselect) -> Answer:
    """UNSELECT (RFC 3691): deselect without expunging."""
    conn.selected = None
    return Answer()


# --- LIST / LSUB (RFC 9051 §6.3.9, RFC 5258, RFC 5819, RFC 6154) ------------------

async def _mailbox_map(conn: IMAPConnection) -> dict[str, Mailbox]:
    assert conn.account is not None
    return {imap_name(m.name): m for m in await conn.account.mailboxes()}


async def _list(conn: IMAPConnection, tag: str, cmd: c.List) -> Answer:
    assert conn.account is not None
    boxes = await _mailbox_map(conn)
    subs = await conn.account.subscriptions()
    sel = {x.upper() for x in cmd.selection}
    ret = {x.upper() for x in cmd.returns}
    extended = bool(cmd.selection or cmd.returns or cmd.status is not None)
    opts = ListOptions(
        subscribed="SUBSCRIBED" in sel, recursive_match="RECURSIVEMATCH" in sel,
        special_use="SPECIAL-USE" in sel, return_subscribed="SUBSCRIBED" in ret,
        return_children=True,
        return_special_use=not extended or "SPECIAL-USE" in ret or "SPECIAL-USE" in sel)
    utf8 = conn.session.utf8
    items = list_mailboxes({n: m.special_use for n, m in boxes.items()}, subs,
                           cmd.reference, cmd.patterns, opts)
    for item in items:
        ext: list[tuple[str, Any]] = []
        if item.childinfo:
            ext.append(("CHILDINFO", item.childinfo))
        conn.session.send(r.list_response(item.attributes, SEPARATOR, item.name, utf8=utf8,
                                          extended=ext))
        # RFC 5819: STATUS for each listed, selectable mailbox.
        box = boxes.get(item.name)
        if cmd.status is not None and box is not None and "\\NonExistent" not in item.attributes:
            conn.session.send(r.status_response(item.name, _status_items(conn, box, cmd.status),
                                                utf8=utf8))
    return Answer()


async def _lsub(conn: IMAPConnection, tag: str, cmd: c.Lsub) -> Answer:
    assert conn.account is not None
    boxes = await _mailbox_map(conn)
    for item in lsub(boxes, await conn.account.subscriptions(), cmd.reference, cmd.pattern):
        conn.session.send(r.list_response(item.attributes, SEPARATOR, item.name,
                                          utf8=conn.session.utf8, verb="LSUB"))
    return Answer()


async def _namespace(conn: IMAPConnection, tag: str, cmd: c.Namespace) -> Answer:
    """NAMESPACE (RFC 2342, RFC 9051 §6.3.10): one personal namespace, "/" separated."""
    conn.session.send(r.namespace([("", SEPARATOR)], None, None, utf8=conn.session.utf8))
    return Answer()


# --- STATUS (RFC 9051 §6.3.11, RFC 7162, RFC 8438 STATUS=SIZE, RFC 8474) ---------

def mailbox_id(box: Mailbox) -> str:
    """MAILBOXID (RFC 8474 §4): the UIDVALIDITY, unique per account and kept on RENAME."""
    return f"F{box.uidvalidity}"


def _status_items(conn: IMAPConnection, box: Mailbox, items: tuple[str, ...]
                  ) -> list[tuple[str, int | str]]:
    out: list[tuple[str, int | str]] = []
    for item in items:
        key = item.upper()
        value = {
            "MESSAGES": box.messages, "UIDNEXT": box.uidnext, "UIDVALIDITY": box.uidvalidity,
            "UNSEEN": box.unseen, "DELETED": box.deleted, "SIZE": box.size,
            "HIGHESTMODSEQ": box.highestmodseq, "RECENT": 0,
            "APPENDLIMIT": conn.ctx.limits.max_append,
        }.get(key)
        if value is not None:
            out.append((key, value))
        elif key == "MAILBOXID":
            out.append((key, f"({mailbox_id(box)})"))
    return out


async def _status(conn: IMAPConnection, tag: str, cmd: c.Status) -> Answer:
    assert conn.account is not None
    box = await conn.account.mailbox(store_name(cmd.mailbox))
    conn.session.send(r.status_response(imap_name(box.name), _status_items(conn, box, cmd.items),
                                        utf8=conn.session.utf8))
    return Answer()


# --- CREATE / DELETE / RENAME / SUBSCRIBE (RFC 9051 §6.3.4-§6.3.8, RFC 6154 §3) ----

async def _create(conn: IMAPConnection, tag: str, cmd: c.Create) -> Answer:
    assert conn.account is not None
    name = store_name(cmd.mailbox.rstrip(SEPARATOR))
    use = None
    for attr in cmd.special_use:
        canon = next((u for u in SPECIAL_USES if u.lower() == attr.lower()), None)
        if canon is None:
            raise HandlerError(f"{attr} is not a special use this server knows", Code.USEATTR)
        use = canon
    try:
        box = await conn.account.create_mailbox(name, use)
    except MailboxExists:
        raise HandlerError(f"mailbox {cmd.mailbox} exists already", Code.ALREADYEXISTS) from None
    # RFC 8474 §4.1: the new mailbox's id in the tagged OK.
    return Answer("OK", "CREATE completed", r.ResponseCode(Code.MAILBOXID,
                                                             f"({mailbox_id(box)})"))


async def _delete(conn: IMAPConnection, tag: str, cmd: c.Delete) -> Answer:
    """DELETE (RFC 9051 §6.3.4). Deleting the selected mailbox deselects it: the session
    is back in the authenticated state (as after CLOSE), so a following FETCH gets BAD
    rather than reaching a mailbox that is gone; a refused DELETE keeps the selection."""
    assert conn.account is not None
    name = store_name(cmd.mailbox)
    sel = conn.selected
    deselect = sel is not None and sel.name == name
    if deselect:
        conn.selected = None  # its own removal must not end this session with BYE
    try:
        await conn.account.delete_mailbox(name)
    except BaseException:
        if deselect:
            conn.selected = sel
        raise
    if deselect:
        conn.session.state = State.AUTHENTICATED
    return Answer()


async def _rename(conn: IMAPConnection, tag: str, cmd: c.Rename) -> Answer:
    assert conn.account is not None
    try:
        await conn.account.rename_mailbox(store_name(cmd.mailbox), store_name(cmd.new_name))
    except MailboxExists:
        raise HandlerError(f"mailbox {cmd.new_name} exists already", Code.ALREADYEXISTS) from None
    return Answer()


async def _subscribe(conn: IMAPConnection, tag: str, cmd: c.Subscribe | c.Unsubscribe
                     ) -> Answer:
    assert conn.account is not None
    name = store_name(cmd.mailbox)
    await conn.account.subscribe(name, isinstance(cmd, c.Subscribe))  # tells NOTIFY sessions
    return Answer()


# --- QUOTA (RFC 9208) -------------------------------------------------------------

async def _quota_lines(conn: IMAPConnection) -> bytes | None:
    found = await quota.resources(conn)
    return r.quota("", found) if found else None


async def _getquota(conn: IMAPConnection, tag: str, cmd: c.GetQuota) -> Answer:
    line = await _quota_lines(conn) if cmd.root == "" else None
    if line is None:
        raise HandlerError(f"no quota root {cmd.root!r}", Code.NONEXISTENT)
    conn.session.send(line)
    return Answer()


async def _getquotaroot(conn: IMAPConnection, tag: str, cmd: c.GetQuotaRoot) -> Answer:
    assert conn.account is not None
    await conn.account.mailbox(store_name(cmd.mailbox))
    line = await _quota_lines(conn)
    conn.session.send(r.quotaroot(cmd.mailbox, [""] if line else [], utf8=conn.session.utf8))
    if line:
        conn.session.send(line)
    return Answer()


async def _setquota(conn: IMAPConnection, tag: str, cmd: c.SetQuota) -> Answer:
    raise HandlerError("quotas are set by the administrator (domains.conf quota_bytes, "
                       "quota_messages)",
                       Code.NOPERM)


# --- METADATA (RFC 5464) ----------------------------------------------------------

def _metadata_target(name: str) -> str | None:
    return None if name == "" else store_name(name)


def _check_entry(entry: str, root_ok: bool = False) -> None:
    # RFC 5464 §3.2: entries live below /private or /shared; no "*", "%", "//", or end "/".
    # GETMETADATA may name the roots themselves, with DEPTH, to list what is below.
    low = entry.lower()
    below_root = low.startswith("/private/") or low.startswith("/shared/")
    if not (below_root or (root_ok and low in ("/private", "/shared"))) or "//" in entry \
            or entry.endswith("/") or "*" in entry or "%" in entry:
        raise HandlerError(f"not a metadata entry name: {entry!r}", None, "BAD")


async def _getmetadata(conn: IMAPConnection, tag: str, cmd: c.GetMetadata) -> Answer:
    """GETMETADATA (RFC 5464 §4.2): the values asked for, MAXSIZE and DEPTH applied."""
    assert conn.account is not None
    for entry in cmd.entries:
        _check_entry(entry, root_ok=True)
    found = await conn.account.get_metadata(_metadata_target(cmd.mailbox), cmd.entries,
                                            cmd.depth.lower())
    longest = 0
    if cmd.maxsize is not None:
        longest = max((len(v) for _, v in found if len(v) > cmd.maxsize), default=0)
        found = [(e, v) for e, v in found if len(v) <= cmd.maxsize]
    if found:
        conn.session.send(r.metadata(cmd.mailbox, found, utf8=conn.session.utf8))
    if longest:
        # RFC 5464 §4.2.1: some values were left out for MAXSIZE; the longest's size.
        return Answer("OK", "GETMETADATA completed",
                       r.ResponseCode(Code.METADATA, f"LONGENTRIES {longest}"))
    return Answer()


async def _setmetadata(conn: IMAPConnection, tag: str, cmd: c.SetMetadata) -> Answer:
    """SETMETADATA (RFC 5464 §4.3): all entries or none; NIL removes one."""
    from kittiwake.store.model import MetadataLimit

    assert conn.account is not None
    for entry, _value in cmd.entries:
        _check_entry(entry)
    try:
        await conn.account.set_metadata(_metadata_target(cmd.mailbox), cmd.entries)
    except MetadataLimit as exc:
        detail = "TOOMANY" if exc.too_many else f"MAXSIZE {exc.max_size}"
        return Answer("NO", str(exc), r.ResponseCode(Code.METADATA, detail))
    return Answer()  # the store told NOTIFY sessions (RFC 5465 §5.6, §5.7)


HANDLERS: dict[type[c.Command], Any] = {
    c.Select: _select, c.Close: _close, c.Unselect: _unselect, c.List: _list, c.Lsub: _lsub,
    c.Namespace: _namespace, c.Status: _status, c.Create: _create, c.Delete: _delete,
    c.Rename: _rename, c.Subscribe: _subscribe, c.Unsubscribe: _subscribe,
    c.GetQuota: _getquota, c.GetQuotaRoot: _getquotaroot, c.SetQuota: _setquota,
    c.GetMetadata: _getmetadata, c.SetMetadata: _setmetadata,
}

__all__ = ["HANDLERS", "MailboxNotFound", "uid_set"]
