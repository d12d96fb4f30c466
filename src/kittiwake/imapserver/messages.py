"""Selected-state commands: FETCH, STORE, COPY, MOVE, EXPUNGE, SEARCH, SORT, THREAD.

FETCH answers are built in a worker thread from the stored part tree (no
re-parse) in batches, and body sections stream from the message file
(FileLiteral), so neither a huge message nor a huge mailbox is held in
memory. The items most clients ask for take :mod:`fastfetch` (octets written
straight from the rows and cached facts, the next batch built while this one
is written); the general path below answers every other item and is the
reference the fast one is tested against. Numbers: message sequence numbers come from the session's
:class:`~kittiwake.imapserver.view.SelectedView`, never from the store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from kittiwake.imap import bodystructure as bs
from kittiwake.imap import commands as c
from kittiwake.imap import envelope as env
from kittiwake.imap import responses as r
from kittiwake.imap.binary import UnknownCTE, binary_size, binary_value
from kittiwake.imap.codes import Code
from kittiwake.imap.commands import SequenceSet
from kittiwake.imap.encode import Piece, encode_bytes
from kittiwake.imap.parser import SEARCH_CHARSETS
from kittiwake.imap.preview import preview
from kittiwake.imap.section import Section, SectionText
from kittiwake.imap.sections import Span, fetch_value, literal_safe
from kittiwake.imap.values import Atom, FileLiteral, Literal, Raw, Value
from kittiwake.imapserver import changelog, fastfetch, quota, sorting
from kittiwake.imapserver import metrics as imap_metrics
from kittiwake.imapserver import search as srch
from kittiwake.imapserver.cache import LRU, MessageKey, read_head
from kittiwake.imapserver.listing import store_name
from kittiwake.imapserver.mailboxes import SYSTEM_FLAGS, uid_set
from kittiwake.imapserver.state import Answer, HandlerError
from kittiwake.imapserver.view import Exists, Expunge, FlagsChanged, Update, Vanished
from kittiwake.message.part import Part
from kittiwake.message.searchtext import fold
from kittiwake.store.account import AccountStore
from kittiwake.store.messagefile import MessageFile
from kittiwake.store.model import FetchRow, Flags, MailboxNotFound, Message

if TYPE_CHECKING:
    from kittiwake.imapserver.connection import IMAPConnection

BATCH = 200
SEARCH_SLICE = 500
PROGRESS_EVERY = 2.0  # seconds between INPROGRESS responses (RFC 9585)


class Progress:
    """``* OK [INPROGRESS ("tag" done total)]`` during a long command (RFC 9585 §3)."""

    def __init__(self, conn: IMAPConnection, tag: str, total: int) -> None:
        self.conn = conn
        self.tag = tag
        self.total = total
        self.last = time.monotonic()

    def tell(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY and done:
            self.last = now
            self.conn.session.send(r.untagged_status(
                "OK", "still working", r.ResponseCode.inprogress(self.tag, done, self.total)))
_SEEN = Flags.parse(["\\Seen"])


# Serialised ENVELOPE/BODYSTRUCTURE/BODY by (message key, UTF-8 on, item).
STRUCTURES: LRU[tuple[MessageKey, bool, str], bytes] = LRU(50_000, 16 * 1024 * 1024, len)

_STRUCTURE_ITEMS = frozenset({"ENVELOPE", "BODYSTRUCTURE", "BODY"})




# --- numbers -------------------------------------------------------------------

class Chosen:
    """The messages a sequence set names in the selected view, as sorted spans of
    positions in its UID array (``[start, end)``, not overlapping, not touching):
    a range of a big mailbox costs two bisections, not a pair per message.

    Valid while the command runs (the view changes only between commands,
    ``view.py`` invariant 1), so a worker thread may use it too.
    """

    __slots__ = ("_starts", "spans", "uids")

    def __init__(self, uids: Sequence[int], spans: Iterable[tuple[int, int]]) -> None:
        self.uids = uids
        merged: list[tuple[int, int]] = []
        for a, b in sorted(sp for sp in spans if sp[0] < sp[1]):
            if merged and a <= merged[-1][1]:
                if b > merged[-1][1]:
                    merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        self.spans = merged
        self._starts = [a for a, _ in merged]

    def __len__(self) -> int:
        return sum(b - a for a, b in self.spans)

    def pairs(self) -> list[tuple[int, int]]:
        """(sequence number, UID) of each message, ascending."""
        uids = self.uids
        return [pair for a, b in self.spans
                for pair in zip(range(a + 1, b + 1), uids[a:b], strict=True)]

    def slice(self, start: int, count: int) -> list[tuple[int, int]]:
        """``pairs()[start:start + count]``, without making the others."""
        uids = self.uids
        out: list[tuple[int, int]] = []
        for a, b in self.spans:
            if start >= b - a:
                start -= b - a
                continue
            lo = a + start
            hi = min(b, lo + count - len(out))
            out.extend(zip(range(lo + 1, hi + 1), uids[lo:hi], strict=True))
            start = 0
            if len(out) >= count:
                break
        return out

    def uid_range(self) -> tuple[int, int] | None:
        """The lowest and highest UID named, None when none is."""
        if not self.spans:
            return None
        return self.uids[self.spans[0][0]], self.uids[self.spans[-1][1] - 1]

    def seq_of(self, uid: int) -> int | None:
        """The sequence number of ``uid`` when the set names it, else None."""
        uids = self.uids
        i = bisect_left(uids, uid)
        if i == len(uids) or uids[i] != uid:
            return None
        j = bisect_right(self._starts, i) - 1
        return i + 1 if j >= 0 and i < self.spans[j][1] else None


def choose(conn: IMAPConnection, numbers: SequenceSet, uid: bool) -> Chosen:
    """The messages a set names (:class:`Chosen`).

    Sequence numbers beyond the mailbox are a client error (RFC 9051 §9
    ``seq-number``: BAD); UIDs that do not exist are simply not there. Ranges
    are cut out of the view's sorted UIDs by bisection, so ``1:*`` of a big
    mailbox costs its answer, not a test per message.
    """
    sel = conn.selected
    assert sel is not None
    view = sel.view
    uids = view.uids
    if numbers.saved:
        wanted = set(conn.saved_uids)
        return Chosen(uids, ((i, i + 1) for i, u in enumerate(uids) if u in wanted))
    if uid:
        top = view.max_uid
        return Chosen(uids, ((bisect_left(uids, lo), bisect_right(uids, hi))
                             for lo, hi in numbers.bounds(top)))
    top = len(view)
    if numbers.max_number() > top or (numbers.has_star() and top == 0):
        raise HandlerError("no such message sequence number", Code.CLIENTBUG, "BAD") \
            if numbers.max_number() > top else HandlerError("the mailbox is empty", None, "BAD")
    return Chosen(uids, ((lo - 1, min(hi, top)) for lo, hi in numbers.bounds(top)))


def resolve(conn: IMAPConnection, numbers: SequenceSet, uid: bool) -> list[tuple[int, int]]:
    """(sequence number, UID) of the messages a set names, in sequence order
    (:func:`choose`, spelt out)."""
    return choose(conn, numbers, uid).pairs()


# --- untagged updates ---------------------------------------------------------------

def note_keywords(conn: IMAPConnection, flags: Iterable[Flags]) -> None:
    """Send ``* FLAGS`` again when a keyword appears that the client was not told of
    (RFC 9051 §7.3.5: FLAGS lists the flags applicable in the mailbox)."""
    sel = conn.selected
    if sel is None:
        return
    new = {k.lower(): k for f in flags for k in f.keywords
           if k.lower() not in sel.keyword_names}
    if not new:
        return
    sel.keyword_names.update(new)
    conn.session.send(r.flags([*SYSTEM_FLAGS, *sorted(sel.keyword_names.values(),
                                                        key=str.lower)]))


def send_updates(conn: IMAPConnection, updates: Sequence[Update]) -> None:
    if not updates:
        return
    s = conn.session
    note_keywords(conn, [u.flags for u in updates if isinstance(u, FlagsChanged)])
    for u in updates:
        if isinstance(u, Expunge):
            s.send(r.expunge(u.seq))
        elif isinstance(u, Vanished):
            s.send(r.vanished(uid_set(list(u.uids))))
        elif isinstance(u, Exists):
            s.send(r.exists(u.count))
        elif isinstance(u, FlagsChanged):
            items: list[tuple[str, Value]] = [("FLAGS", _flags(u.flags))]
            if s.condstore:
                items.append(("MODSEQ", [u.modseq]))
            s.send(fetch_line(conn, u.seq, u.uid, items))


def fetch_line(conn: IMAPConnection, seq: int, uid: int, items: list[tuple[str, Value]],
               ) -> list[Piece]:
    """An unsolicited ``* seq FETCH (UID uid ...)``, or ``* uid UIDFETCH (...)``
    after ENABLE UIDONLY (RFC 9586 §3.3; the UID is the response's number there)."""
    s = conn.session
    if s.uid_only:
        return r.fetch(uid, items, utf8=s.utf8, uidfetch=True)
    return r.fetch(seq, [("UID", uid), *items], utf8=s.utf8)


def fetch_flags_line(conn: IMAPConnection, seq: int, m: Message) -> list[Piece]:
    items: list[tuple[str, Value]] = [("FLAGS", _flags(m.flags))]
    if conn.session.condstore:
        items.append(("MODSEQ", [m.modseq]))
    return fetch_line(conn, seq, m.uid, items)


def _flags(flags: Flags) -> list[Value]:
    return [Atom(n) for n in flags.names()]


# --- FETCH (RFC 9051 §6.4.5, §7.5.2; RFC 3516; RFC 7162; RFC 8474; RFC 8514; RFC 8970) ---

def _imap_date(ms: int) -> str:
    """date-time (RFC 9051 §9): ``"01-Dec-2026 13:30:05 +0000"``."""
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return t.strftime("%d-%b-%Y %H:%M:%S +0000")


_PEEK_SAFE = {"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE",
              "BODY", "MODSEQ", "EMAILID", "THREADID", "SAVEDATE", "RFC822.HEADER"}


def _sets_seen(item: c.FetchItem) -> bool:
    """RFC 9051 §6.4.5: BODY[...] (not PEEK), BINARY[...] and RFC822(.TEXT) set \\Seen."""
    if isinstance(item, c.BodySection | c.BinarySection):
        return not item.peek
    if isinstance(item, c.FetchAttr):
        return item.name in ("RFC822", "RFC822.TEXT")
    return False


def _item_values(conn_utf8: bool, condstore: bool, m: Message, seq: int,
                 tree: Callable[[], Part], file: MessageFile, items: Sequence[c.FetchItem],
                 uid_first: bool, account: str = "") -> list[tuple[str, Value]] | UnknownCTE:
    """The (name, value) pairs of one FETCH response; runs in a worker thread.

    File literals are spans of the whole message (``file``: the store's
    prefix, then the file); :func:`_file_pieces` maps them onto the file.

    ``tree`` gives the message's part tree (parsed on first call only);
    structures come from :data:`STRUCTURES` when they were built before.
    """
    out: list[tuple[str, Value]] = []
    parsed: list[Part] = []
    key: MessageKey = (account, m.id, m.saved, m.size)
    path = str(file.path)

    def root_() -> Part:
        if not parsed:
            parsed.append(tree())
        return parsed[0]

    def structure(name: str) -> Value:
        skey = (key, conn_utf8, name)
        cached = STRUCTURES.get(skey)
        if cached is None:
            root = root_()
            value: Value = env.envelope_of_part(root, conn_utf8) if name == "ENVELOPE" else \
                bs.bodystructure(root, conn_utf8) if name == "BODYSTRUCTURE" else \
                bs.body(root, conn_utf8)
            cached = encode_bytes(value, conn_utf8)
            STRUCTURES.put(skey, cached)
        return Raw(cached)

    seen_names: set[str] = set()

    def read(span: Span) -> bytes:
        # Spans from the file's start (the message header) come from the head cache.
        if span.offset == 0:
            return read_head(key, file, span.length)
        return file.read(span.offset, span.length)

    def add(name: str, value: Value) -> None:
        if name not in seen_names:
            seen_names.add(name)
            out.append((name, value))

    if uid_first:
        add("UID", m.uid)
    for item in items:
        if isinstance(item, c.FetchAttr):
            name = item.name
            if name == "UID":
                add("UID", m.uid)
            elif name == "FLAGS":
                add("FLAGS", _flags(m.flags))
            elif name == "INTERNALDATE":
                add("INTERNALDATE", _imap_date(m.received))
            elif name == "RFC822.SIZE":
                add("RFC822.SIZE", m.size)
            elif name == "MODSEQ":
                add("MODSEQ", [m.modseq])
            elif name == "EMAILID":
                add("EMAILID", [Atom(srch.email_id(m))])
            elif name == "THREADID":
                add("THREADID", [Atom(srch.thread_id(m))])
            elif name == "SAVEDATE":
                add("SAVEDATE", _imap_date(m.saved) if m.saved else None)
            elif name in _STRUCTURE_ITEMS:
                add(name, structure(name))
            elif name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
                root = root_()
                section = Section() if name == "RFC822" else Section(
                    (), SectionText.HEADER if name == "RFC822.HEADER" else SectionText.TEXT)
                add(name, fetch_value(root, section, path, None, read))
        elif isinstance(item, c.BodySection):
            add(r.fetch_name(item), fetch_value(root_(), item.section, path, item.partial, read))
        elif isinstance(item, c.BinarySection):
            value = binary_value(root_(), item.part, path, item.partial, read)
            if isinstance(value, UnknownCTE):
                return value
            add(r.fetch_name(item), value)
        elif isinstance(item, c.BinarySize):
            size = binary_size(root_(), item.part, read)
            if isinstance(size, UnknownCTE):
                return size
            add(r.fetch_name(item), size)
        elif isinstance(item, c.Preview):
            add("PREVIEW", preview(root_(), read))
    if condstore:
        add("MODSEQ", [m.modseq])
    return out


def _build(utf8: bool, condstore: bool, batch: list[tuple[int, Message]],
           summaries: Callable[[], dict[int, str]],
           message_files: Callable[[], dict[int, MessageFile]],
           items: Sequence[c.FetchItem], uid_first: bool, account: str,
           uidfetch: bool = False) -> tuple[list[Piece], UnknownCTE | None]:
    """FETCH responses of one batch; with ``uidfetch`` (RFC 9586 §3.3) they are
    ``* uid UIDFETCH``, and UID is there only when the client asked for it."""
    pieces: list[Piece] = []
    loaded: list[dict[int, str]] = []
    files = message_files()

    def tree_of(m: Message) -> Part:
        if not loaded:
            loaded.append(summaries())
        try:
            return Part.from_dict(json.loads(loaded[0].get(m.id) or "{}")["part"])
        except (KeyError, ValueError, TypeError):
            from kittiwake.message import parse

            return parse(files[m.id].read())

    budget = [PREREAD_BUDGET]
    for seq, m in batch:
        file = files[m.id]
        values = _item_values(utf8, condstore, m, seq, partial(tree_of, m), file, items,
                              uid_first and not uidfetch, account)
        if isinstance(values, UnknownCTE):
            return _coalesce(pieces), values
        pieces.extend(_file_pieces(
            r.fetch(m.uid if uidfetch else seq,
                    [(n, _preread(v, budget, file)) for n, v in values], utf8=utf8,
                    uidfetch=uidfetch), file))
    return _coalesce(pieces), None


def _coalesce(pieces: list[Piece]) -> list[Piece]:
    """Runs of octets joined once (not appended one by one: that copies quadratically)."""
    out: list[Piece] = []
    run: list[bytes] = []
    for p in pieces:
        if isinstance(p, bytes):
            run.append(p)
        else:
            if run:
                out.append(b"".join(run))
                run = []
            out.append(p)
    if run:
        out.append(b"".join(run))
    return out


def _file_pieces(pieces: list[Piece], file: MessageFile) -> list[Piece]:
    """Map file literals (spans of the whole message) onto the message file: the
    part in the store's prefix is sent as octets, the rest copied from the file."""
    if not file.prefix:
        return pieces
    out: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, FileLiteral):
            head, offset, length = file.file_spans(piece.offset, piece.length)
            if head:
                out.append(head if piece.binary else literal_safe(head))
            if length:
                out.append(FileLiteral(piece.path, offset, length, piece.binary))
        else:
            out.append(piece)
    return out


# Small file spans are read here, in the worker thread, rather than one thread hop
# each by the driver; at most this many octets per batch, so memory stays bounded.
PREREAD_BUDGET = 2 * 1024 * 1024
PREREAD_MAX = 64 * 1024


def _preread(value: Value, budget: list[int], file: MessageFile) -> Value:
    if not isinstance(value, FileLiteral) or value.length > PREREAD_MAX \
            or value.length > budget[0]:
        return value
    try:
        data = file.read(value.offset, value.length)
    except OSError:
        return value  # the driver copes (the message went away meanwhile)
    if len(data) != value.length:
        return value
    budget[0] -= value.length
    return Literal(data if value.binary else literal_safe(data), binary=value.binary)


async def _fetch(conn: IMAPConnection, tag: str, cmd: c.Fetch) -> Answer:
    assert conn.account is not None and conn.selected is not None
    sel = conn.selected
    s = conn.session
    chosen = choose(conn, cmd.sequence, cmd.uid)
    if cmd.changed_since is not None:
        s.condstore = True
    rows: list[Message] | None = None
    by_uid: dict[int, Message] = {}
    if cmd.vanished and cmd.changed_since is not None:
        # RFC 7162 §3.2.6: expunged UIDs of the set since the given modseq.
        top = sel.view.max_uid
        gone = [u for u in await conn.account.vanished(sel.name, cmd.changed_since)
                if cmd.sequence.saved or cmd.sequence.contains(u, top)]
        if gone:
            s.send(r.vanished(uid_set(gone), earlier=True))
    # Setting \Seen (RFC 9051 §6.4.5) before the data, so FLAGS in the answer is right.
    sets_seen = not sel.readonly and any(_sets_seen(i) for i in cmd.items)
    if cmd.changed_since and not sets_seen:
        fast = fastfetch.plan(cmd.items, uid_first=cmd.uid, condstore=True,
                              uidfetch=s.uid_only, utf8=s.utf8,
                              account=str(conn.account.core.root))
        log = sel.changelog
        if fast is not None and log is not None and changelog.flags_only(fast.names):
            # Flags of the messages changed since, from the mailbox's change log.
            numbered = log.changed(cmd.changed_since, chosen.seq_of)
            if numbered is not None:
                s.send(fastfetch.write_rows(fast, numbered))
                return Answer()
        if fast is not None:
            # The usual resynchronisation (RFC 7162 §3.1.4): the changed few of a big range.
            await _send_changed(conn, tag, chosen, fast, cmd.changed_since, cmd.items,
                                cmd.uid)
            return Answer()
    if sets_seen:
        uids = [u for _, u in chosen.pairs()]
        rows = await conn.account.messages(sel.name, cmd.changed_since or 0, uids) \
            if uids else []
        by_uid = {m.uid: m for m in rows}
        unseen = [m.uid for m in rows if not m.flags.system & _SEEN.system]
        if unseen:
            changed, _ = await conn.account.store_flags(sel.name, unseen, "add", _SEEN)
            for m in changed:
                sel.view.note_own_modseq(m.modseq)
                by_uid[m.uid] = m
            items = (*cmd.items, c.FetchAttr("FLAGS"))
        else:
            items = tuple(cmd.items)
    else:
        items = tuple(cmd.items)
    fast = fastfetch.plan(items, uid_first=cmd.uid, condstore=s.condstore,
                          uidfetch=s.uid_only, utf8=s.utf8, account=str(conn.account.core.root))
    if fast is not None:
        since = cmd.changed_since or 0
        wanted: Chosen | list[tuple[int, int]] = chosen  # spelt out batch by batch
        if rows is not None and since:
            # The messages that had changed before \Seen was set here, as the general path.
            wanted, since = [p for p in chosen.pairs() if p[1] in by_uid], 0
        found = await _send_fast(conn, tag, wanted, items, fast, since, cmd.uid)
        missing = cmd.changed_since is None and found < len(chosen)
    else:
        pairs = chosen.pairs()
        uids = [u for _, u in pairs]
        if rows is None:
            rows = await conn.account.messages(sel.name, cmd.changed_since or 0, uids) \
                if uids else []
            by_uid = {m.uid: m for m in rows}
        todo = [(seq, by_uid[u]) for seq, u in pairs if u in by_uid]
        missing = cmd.changed_since is None and len(todo) < len(pairs)
        unknown = await _send_fetched(conn, tag, todo, items, cmd.uid)
        if unknown:
            raise HandlerError("a part has an unknown Content-Transfer-Encoding",
                               Code.UNKNOWN_CTE)
    if missing:
        # RFC 9051 §7.5.1 / RFC 5530: some were expunged by another session meanwhile.
        return Answer("NO", "some messages were expunged meanwhile", Code.EXPUNGEISSUED)
    return Answer()


async def _send_fetched(conn: IMAPConnection, tag: str | None, todo: list[tuple[int, Message]],
                        items: Sequence[c.FetchItem], uid_first: bool) -> bool:
    """Send the FETCH responses of ``todo`` in batches; True if a part had an unknown
    Content-Transfer-Encoding (the responses before it were sent)."""
    assert conn.account is not None
    s = conn.session
    core = conn.account.core
    progress = Progress(conn, tag, len(todo)) if tag is not None else None
    for i in range(0, len(todo), BATCH):
        if progress is not None:
            progress.tell(i)
        batch = todo[i:i + BATCH]
        ids = [m.id for _, m in batch]
        pieces, unknown = await asyncio.to_thread(
            _build, s.utf8, s.condstore, batch, partial(core.summaries, ids),
            partial(core.message_files, ids), items, uid_first, str(core.root), s.uid_only)
        s.send(pieces)
        imap_metrics.FETCHED.labels(path="general").inc(len(batch))
        await conn.flush()
        if unknown is not None:
            return True
    return False


FIRST_BATCH = 25  # messages in the first batch of the fast path (the answer starts soon)
AHEAD_OCTETS = 512 * 1024  # after a batch smaller than this, the next is built meanwhile


def _octets(pieces: Sequence[Piece]) -> int:
    """The octets a batch's pieces send (file literals by their length)."""
    return sum(p.length if isinstance(p, FileLiteral) else len(p) for p in pieces)


async def _send_changed(conn: IMAPConnection, tag: str, chosen: Chosen,
                        fast: fastfetch.FastPlan, changed_since: int,
                        items: Sequence[c.FetchItem], uid_first: bool) -> None:
    """FETCH ... (CHANGEDSINCE m) by the fast path (:func:`fastfetch.build_changed`):
    batches of at most BATCH_MAX changed messages over the UID range of the set, the
    next one built while this one is written."""
    assert conn.account is not None and conn.selected is not None
    bounds = chosen.uid_range()
    if bounds is None:
        return
    s = conn.session
    core = conn.account.core
    mailbox = conn.selected.name
    high = bounds[1]
    general = partial(_general_one, core, s.utf8, s.condstore, items, uid_first, s.uid_only)

    def work(low: int) -> fastfetch.ChangedBatch:
        return fastfetch.build_changed(fast, core, mailbox, low, high, changed_since,
                                       chosen.seq_of, general)

    pending: asyncio.Future[fastfetch.ChangedBatch] | None = \
        asyncio.ensure_future(asyncio.to_thread(work, bounds[0]))
    try:
        while pending is not None:
            batch = await pending
            pending = None
            if batch.next_uid is not None:
                pending = asyncio.ensure_future(asyncio.to_thread(work, batch.next_uid))
            s.send(batch.pieces)
            await conn.flush()
    finally:
        if pending is not None:
            pending.cancel()


async def _send_fast(conn: IMAPConnection, tag: str, pairs: Chosen | list[tuple[int, int]],
                     items: Sequence[c.FetchItem], fast: fastfetch.FastPlan,
                     changed_since: int, uid_first: bool) -> int:
    """Send the FETCH responses of ``pairs`` by the fast path (:mod:`fastfetch`);
    the number of messages found. Batches are built in a worker thread; after a
    small one (under :data:`AHEAD_OCTETS`) the next is built while it is written, after
    a big one once it is handed to the socket, whose buffer the client reads meanwhile:
    building beside the writes would give the server two busy threads, which on a
    machine of few cores take turns with the client (its reading bounds a FETCH of
    many bodies). At most two batches are held."""
    assert conn.account is not None and conn.selected is not None
    s = conn.session
    core = conn.account.core
    mailbox = conn.selected.name
    general = partial(_general_one, core, s.utf8, s.condstore, items, uid_first, s.uid_only)

    def work(start: int, count: int) -> fastfetch.Batch:
        # CHANGEDSINCE: the rest of the range, of which ``count`` changed messages.
        # A Chosen set is spelt out here, in the worker, one batch at a time.
        if isinstance(pairs, Chosen):
            chunk = pairs.slice(start, len(pairs) if changed_since else count)
        else:
            chunk = pairs[start:] if changed_since else pairs[start:start + count]
        return fastfetch.build_batch(fast, core, mailbox, chunk, changed_since, general,
                                     limit=count)

    progress = Progress(conn, tag, len(pairs))
    done = found = 0
    count = fastfetch.BATCH_MAX if changed_since else FIRST_BATCH
    by_octets = False  # a batch was ended by the octets it read (its rows beyond, wasted)
    pending = asyncio.ensure_future(asyncio.to_thread(work, 0, count)) if pairs else None
    try:
        while pending is not None:
            batch = await pending
            pending = None
            progress.tell(done)
            done += batch.consumed
            found += batch.found
            # Grow while batches are done whole (octets read did not end them); once
            # the octets have ended one, about as many as it took (a quarter more).
            if changed_since:
                count = fastfetch.BATCH_MAX
            elif batch.consumed < count:
                by_octets = True
                count = max(batch.consumed + 16, FIRST_BATCH)
            else:
                count = min(fastfetch.BATCH_MAX,
                            count + count // 4 + 1 if by_octets else count * 4)
            more = done < len(pairs)
            # A small batch is read by the client sooner than the next is built: build
            # ahead. After a big one, build once it is written (the socket holds the
            # rest): the two threads would only take turns with the client for cores.
            ahead = more and _octets(batch.pieces) < AHEAD_OCTETS
            if ahead:
                pending = asyncio.ensure_future(asyncio.to_thread(work, done, count))
            s.send(batch.pieces)
            await conn.flush()
            if more and not ahead:
                pending = asyncio.ensure_future(asyncio.to_thread(work, done, count))
    finally:
        if pending is not None:
            pending.cancel()
    return found


def _general_one(core: AccountStore, utf8: bool, condstore: bool,
                 items: Sequence[c.FetchItem], uid_first: bool, uidfetch: bool,
                 row: FetchRow, seq: int) -> list[Piece]:
    """One message's response by the general path (the fast path's fallback)."""
    m = row.message()
    file = MessageFile(core.path(m.id), row.prefix)
    pieces, _ = _build(utf8, condstore, [(seq, m)], partial(core.summaries, [m.id]),
                       lambda: {m.id: file}, items, uid_first, str(core.root), uidfetch)
    return pieces


async def fetch_unsolicited(conn: IMAPConnection, uids: Sequence[int],
                            items: Sequence[c.FetchItem]) -> None:
    """FETCH responses for new messages of the selected mailbox, with the items a
    NOTIFY MessageNew asked for (RFC 5465 §5.2): UID first, and \\Seen never set
    (every section is read as its .PEEK form)."""
    assert conn.account is not None and conn.selected is not None
    sel = conn.selected
    pairs = [(seq, u) for u in uids if (seq := sel.view.seq_of(u)) is not None]
    if not pairs:
        return
    rows = await conn.account.messages(sel.name, 0, [u for _, u in pairs])
    by_uid = {m.uid: m for m in rows}
    todo = [(seq, by_uid[u]) for seq, u in pairs if u in by_uid]
    await _send_fetched(conn, None, todo, [_peek(i) for i in items], True)


def _peek(item: c.FetchItem) -> c.FetchItem:
    if isinstance(item, c.BodySection | c.BinarySection) and not item.peek:
        return replace(item, peek=True)
    return item


# --- STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3) -----------------------------------------

async def _store(conn: IMAPConnection, tag: str, cmd: c.Store) -> Answer:
    assert conn.account is not None and conn.selected is not None
    sel = conn.selected
    if sel.readonly:
        raise HandlerError("the mailbox is read-only (EXAMINE)", Code.READ_ONLY)
    pairs = resolve(conn, cmd.sequence, cmd.uid)
    s = conn.session
    if cmd.unchanged_since is not None:
        s.condstore = True
    mode = {"+": "add", "-": "remove"}.get(str(cmd.mode.value), "replace")
    flags = Flags.parse([f for f in cmd.flags if f.lower() != "\\recent"])
    stored = await conn.account.update_flags(sel.name, [u for _, u in pairs], mode, flags,
                                             cmd.unchanged_since)
    for modseq in {m.modseq for m in stored.changed}:
        sel.view.note_own_modseq(modseq)
    note_keywords(conn, [flags])
    seq_of = {u: q for q, u in pairs}
    if not cmd.silent or s.condstore:
        # .SILENT: only the changed messages, for their MODSEQ (RFC 7162 §3.1.3).
        shown = stored.changed if cmd.silent else stored.messages
        if shown:
            s.send(flags_fetch_lines(conn, [(seq_of[m.uid], m) for m in shown], uid=cmd.uid,
                                     flags=not cmd.silent))
    if stored.failed:
        numbers = sorted(stored.failed) if cmd.uid else sorted(seq_of[u] for u in stored.failed)
        return Answer("OK", "some messages were modified meanwhile",
                       r.ResponseCode.modified(uid_set(numbers)))
    return Answer()


def flags_fetch_lines(conn: IMAPConnection, todo: Sequence[tuple[int, Message]], *,
                      uid: bool, flags: bool = True) -> bytes:
    """The FETCH responses of a STORE (RFC 9051 §7.5.2), one per (seq, message):
    ``* seq FETCH (UID u FLAGS (...) MODSEQ (m))``, UID for UID STORE, MODSEQ under
    CONDSTORE (RFC 7162 §3.1.3), ``* uid UIDFETCH (...)`` after ENABLE UIDONLY
    (RFC 9586 §3.3).

    The octets :func:`fetch_line` / ``responses.fetch`` give for these items
    (flags are atoms, written as they are), formatted directly: a STORE on a
    big mailbox answers thousands of lines, and most share a few flag values.
    """
    s = conn.session
    modseq = s.condstore
    uidfetch = uid and s.uid_only
    verb = b"UIDFETCH" if uidfetch else b"FETCH"
    flag_items: dict[Flags, bytes] = {}
    out = []
    for seq, m in todo:
        parts = []
        if uid and not uidfetch:
            parts.append(b"UID %d" % m.uid)
        if flags:
            item = flag_items.get(m.flags)
            if item is None:
                item = flag_items[m.flags] = \
                    b"FLAGS (" + " ".join(m.flags.names()).encode("utf-8") + b")"
            parts.append(item)
        if modseq:
            parts.append(b"MODSEQ (%d)" % m.modseq)
        out.append(b"* %d %s (%s)\r\n" % (m.uid if uidfetch else seq, verb, b" ".join(parts)))
    return b"".join(out)


# --- COPY / MOVE (RFC 9051 §6.4.7-§6.4.8, RFC 6851, RFC 4315) ---------------------------

async def _copy(conn: IMAPConnection, tag: str, cmd: c.Copy | c.Move) -> Answer:
    assert conn.account is not None and conn.selected is not None
    sel = conn.selected
    move = isinstance(cmd, c.Move)
    if move and sel.readonly:
        raise HandlerError("the mailbox is read-only (EXAMINE)", Code.READ_ONLY)
    pairs = resolve(conn, cmd.sequence, cmd.uid)
    target = store_name(cmd.mailbox)
    try:
        target_box = await conn.account.mailbox(target)
    except MailboxNotFound:
        raise HandlerError(f"no mailbox {cmd.mailbox}", Code.TRYCREATE) from None
    uids = [u for _, u in pairs]
    if not uids:
        return Answer("OK", "nothing to do")
    if not move:
        await quota.check_messages(conn, len(uids))
    result = await (conn.account.move if move else conn.account.copy)(sel.name, uids, target)
    if not result:
        return Answer()
    code = r.ResponseCode.copyuid(target_box.uidvalidity, uid_set([a for a, _ in result]),
                                  uid_set([b for _, b in result]))
    if not move:
        return Answer("OK", "COPY completed", code)
    # RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges, then the tagged OK.
    conn.session.send(r.untagged_status("OK", "moved", code))
    send_own_expunges(conn, [a for a, _ in result])
    return Answer("OK", "MOVE completed")


def send_own_expunges(conn: IMAPConnection, uids: list[int]) -> None:
    sel = conn.selected
    assert sel is not None
    if sel.qresync or conn.session.uid_only:  # RFC 7162 §3.2.10, RFC 9586 §3.2
        present = [u for u in uids if sel.view.seq_of(u) is not None]
        sel.view.forget_own_expunge(present)
        if present:
            conn.session.send(r.vanished(uid_set(present)))
        return
    for seq in sel.view.forget_own_expunge(uids):
        conn.session.send(r.expunge(seq))


# --- EXPUNGE (RFC 9051 §6.4.3, UID EXPUNGE RFC 4315 §2.1) -------------------------------

async def _expunge(conn: IMAPConnection, tag: str, cmd: c.Expunge) -> Answer:
    assert conn.account is not None and conn.selected is not None
    sel = conn.selected
    if sel.readonly:
        raise HandlerError("the mailbox is read-only (EXAMINE)", Code.READ_ONLY)
    limit = None
    if cmd.uids is not None:
        limit = [u for _, u in resolve(conn, cmd.uids, True)]
    gone = await conn.account.expunge(sel.name, limit)
    send_own_expunges(conn, gone)
    return Answer()


# --- SEARCH (RFC 9051 §6.4.4, ESEARCH RFC 4731, SEARCHRES RFC 5182) ---------------------

async def _candidates(conn: IMAPConnection, key: c.SearchKey | None = None
                      ) -> list[srch.Candidate]:
    """Every message of the view that still exists, with lazy access to its text.

    When ``key`` reads message text, the stored summaries are fetched in one
    query up front rather than one per message.
    """
    assert conn.account is not None and conn.selected is not None
    sel = conn.selected
    rows = await conn.account.messages(sel.name)
    by_uid = {m.uid: m for m in rows}
    account = conn.account
    summaries: dict[int, str] = {}
    text_index = None
    if key is not None and srch.needs_text(key):
        # Text keys: the store's substring index answers for the messages in it
        # (header keys use it to rule messages out; the field itself is checked).
        answers: dict[tuple[str, str | None], tuple[set[int], set[int]]] = {}
        for k in c.search_keys(key):
            if isinstance(k, c.SearchText):
                spec = (fold(k.value), "body" if k.body_only else None)
            elif isinstance(k, c.SearchHeader) and k.value:
                spec = (fold(k.value), "headers")
            else:
                continue
            if spec not in answers:
                answers[spec] = await account.text_search(sel.name, *spec)
        text_index = srch.TextIndex(answers)
        if srch.needs_body(key):
            unindexed = [m.id for m in rows
                         if not any(m.id in got[0] for got in answers.values())]
            summaries = await account.summaries(unindexed)
    saved = frozenset(conn.saved_uids)
    now = time.time()
    out = []
    max_seq = len(sel.view)
    max_uid = sel.view.max_uid
    for seq, uid in enumerate(sel.view.uids, 1):
        m = by_uid.get(uid)
        if m is None:
            continue  # expunged by another session, not yet announced
        summary = summaries.get(m.id)
        getter = (lambda s=summary: s) if summary is not None else \
            partial(account.core.summary_json, m.id)
        out.append(srch.Candidate(m, seq, partial(account.core.message_file, m.id), getter,
                                  saved, now,
                                  max_seq, max_uid, str(account.core.root), text_index))
    return out


def _check_charset(charset: str | None) -> None:
    """RFC 9051 §6.4.4: the parser refuses other charsets already; kept as a guard."""
    if charset is not None and charset.upper() not in SEARCH_CHARSETS:
        raise HandlerError(f"charset {charset} is not supported",
                           r.ResponseCode(Code.BADCHARSET, "(" + " ".join(SEARCH_CHARSETS) + ")"))


async def _matching(conn: IMAPConnection, tag: str, key: c.SearchKey,
                    cands: list[srch.Candidate]) -> list[srch.Candidate]:
    """The candidates that match, evaluated in a worker thread in slices, so a long
    search (message text) can report its progress (RFC 9585 INPROGRESS)."""
    if not srch.needs_text(key):
        return await asyncio.to_thread(lambda: [m for m in cands if srch.matches(key, m)])
    progress = Progress(conn, tag, len(cands))
    hits: list[srch.Candidate] = []
    for i in range(0, len(cands), SEARCH_SLICE):
        progress.tell(i)
        part = cands[i:i + SEARCH_SLICE]
        hits += await asyncio.to_thread(lambda p=part: [m for m in p if srch.matches(key, m)])
        await conn.flush()
    return hits


async def _indexed_text_search(conn: IMAPConnection, key: c.SearchKey
                               ) -> list[tuple[int, int]] | None:
    """The (seq, UID) hits of a lone text key from the substring index, in one step
    in a worker thread; None when more messages of the mailbox than one slice
    (:data:`SEARCH_SLICE`) are not in the index (then the sliced search decodes
    them, telling its progress).

    BODY/TEXT: the index holds exactly the text they match. A header key
    (SUBJECT, FROM, TO, CC, BCC, HEADER; RFC 9051 §6.4.4): the index finds the
    messages whose header section holds the string, and the field itself is
    checked on those few (its decoded values, cached). Messages not indexed yet
    (just delivered) are decoded.
    """
    query = srch.index_query(key)
    if query is None:
        return None
    needle, column = query
    assert conn.account is not None and conn.selected is not None
    sel = conn.selected
    core = conn.account.core
    root = str(core.root)

    def candidate(m: Message) -> srch.Candidate:
        return srch.Candidate(m, 0, partial(core.message_file, m.id),
                              partial(core.summary_json, m.id), account=root)

    def decide(hits: list[Message], unindexed: list[Message]) -> list[int] | None:
        if len(unindexed) > SEARCH_SLICE:
            return None
        return srch.indexed_hits(key, hits, unindexed, candidate)

    uids = await conn.account.text_matches(sel.name, needle, column, decide)
    if uids is None:
        return None
    view = sel.view
    # Messages not in the view (new, not announced yet) are left out.
    return [(seq, uid) for uid in uids if (seq := view.seq_of(uid)) is not None]


async def _search(conn: IMAPConnection, tag: str, cmd: c.Search) -> Answer:
    _check_charset(cmd.charset)
    direct = await _indexed_text_search(conn, cmd.criteria)
    if direct is not None:
        numbers = [uid if cmd.uid else seq for seq, uid in direct]
        modseq = None
    else:
        cands = await _candidates(conn, cmd.criteria)
        hits = await _matching(conn, tag, cmd.criteria, cands)
        numbers = [m.message.uid if cmd.uid else m.seq for m in hits]
        modseq = max((m.message.modseq for m in hits), default=None) \
            if _uses_modseq(cmd.criteria) else None
        direct = [(m.seq, m.message.uid) for m in hits]
    s = conn.session
    if cmd.returns is None:
        s.send(r.search(numbers, modseq))
        return Answer()
    returns = {x.upper() for x in cmd.returns} or {"ALL"}
    if "SAVE" in returns:
        conn.saved_uids = [uid for _seq, uid in direct]
        returns.discard("SAVE")
        if not returns:
            return Answer()
    results: list[tuple[str, Any]] = []
    if numbers:
        if "MIN" in returns:
            results.append(("MIN", min(numbers)))
        if "MAX" in returns:
            results.append(("MAX", max(numbers)))
        if "ALL" in returns:
            results.append(("ALL", uid_set(numbers)))
    if "COUNT" in returns:
        results.append(("COUNT", len(numbers)))
    if modseq is not None and numbers:
        results.append(("MODSEQ", modseq))
    s.send(r.esearch(tag, cmd.uid, results))
    return Answer()


def _uses_modseq(key: c.SearchKey) -> bool:
    return any(isinstance(k, c.SearchModSeq) for k in c.search_keys(key))


# --- SORT / THREAD (RFC 5256, RFC 5957, ESORT RFC 5267) ---------------------------------

def _sort_info(cand: srch.Candidate, uid: bool) -> sorting.SortInfo:
    from kittiwake.message.address import Group, parse_address_list
    from kittiwake.message.envelope import parse_date, parse_msgids

    t = cand.text
    h = t.root.headers

    def first(field: str) -> tuple[tuple[str, str], str]:
        for item in parse_address_list(h.get(field) or ""):
            members = item.members if isinstance(item, Group) else (item,)
            for a in members:
                local = a.addr.rpartition("@")[0] or a.addr
                return (a.name or "", local), a.addr
        return ("", ""), ""

    from_, from_addr = first("From")
    to, to_addr = first("To")
    cc, _ = first("Cc")
    subjects = t.header_values("Subject")
    m = cand.message
    ids = parse_msgids(h.get("Message-ID"))
    return sorting.SortInfo(
        m.uid if uid else cand.seq, subjects[0] if subjects else "",
        parse_date(h.get("Date")), dt.datetime.fromtimestamp(m.received / 1000, tz=dt.UTC),
        m.size, from_, from_addr, to, to_addr, cc, ids[0] if ids else "",
        tuple(parse_msgids(h.get("References"))), tuple(parse_msgids(h.get("In-Reply-To"))))


async def _sort(conn: IMAPConnection, tag: str, cmd: c.Sort) -> Answer:
    _check_charset(cmd.charset)
    cands = await _candidates(conn)
    keys = [sorting.SortKey(k.key.upper(), k.reverse) for k in cmd.criteria]

    def work() -> list[int]:
        hits = [m for m in cands if srch.matches(cmd.search, m)]
        return sorting.sort([_sort_info(m, cmd.uid) for m in hits], keys)

    numbers = await asyncio.to_thread(work)
    if cmd.returns is None:
        conn.session.send(r.sort(numbers))
    else:
        returns = {x.upper() for x in cmd.returns} or {"ALL"}
        results: list[tuple[str, Any]] = []
        if numbers and "MIN" in returns:
            results.append(("MIN", min(numbers)))
        if numbers and "MAX" in returns:
            results.append(("MAX", max(numbers)))
        if numbers and "ALL" in returns:
            # ESORT (RFC 5267 §3.2): ALL keeps the sort order, as a sequence-set.
            results.append(("ALL", SequenceSet(tuple((n, n) for n in numbers))))
        if "COUNT" in returns:
            results.append(("COUNT", len(numbers)))
        conn.session.send(r.esearch(tag, cmd.uid, results))
    return Answer()


async def _thread(conn: IMAPConnection, tag: str, cmd: c.Thread) -> Answer:
    _check_charset(cmd.charset)
    cands = await _candidates(conn)
    algorithm = cmd.algorithm.upper()
    if algorithm not in ("REFERENCES", "ORDEREDSUBJECT"):
        raise HandlerError(f"threading algorithm {cmd.algorithm} is not supported", None, "BAD")

    def work() -> list[Any]:
        infos = [_sort_info(m, cmd.uid) for m in cands if srch.matches(cmd.search, m)]
        if algorithm == "REFERENCES":
            return sorting.thread_references(infos)
        return sorting.thread_orderedsubject(infos)

    conn.session.send(r.thread(await asyncio.to_thread(work)))
    return Answer()


HANDLERS: dict[type[c.Command], Any] = {
    c.Fetch: _fetch, c.Store: _store, c.Copy: _copy, c.Move: _copy, c.Expunge: _expunge,
    c.Search: _search, c.Sort: _sort, c.Thread: _thread,
}
