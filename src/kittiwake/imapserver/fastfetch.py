"""FETCH responses written straight to octets for the items most clients ask for.

The general path (:func:`kittiwake.imapserver.messages._item_values`) builds a
tree of IMAP values per message and serialises it; that costs tens of
microseconds a message, most of a FETCH of a whole mailbox. Here a command's
items are compiled once into a :class:`FastPlan` of small writers, and each
message's response line is joined from its row (UID, FLAGS, INTERNALDATE,
RFC822.SIZE, MODSEQ, EMAILID, THREADID, SAVEDATE) and its
:class:`~kittiwake.imapserver.fetchcache.Derived` facts (ENVELOPE,
BODYSTRUCTURE, BODY, and the sections of the whole message: ``BODY[]``,
``HEADER``, ``HEADER.FIELDS (...)``, ``HEADER.FIELDS.NOT``, ``TEXT``, with
``<partial>``; RFC822, RFC822.HEADER, RFC822.TEXT). Any other item (part
numbers, BINARY, PREVIEW) leaves the whole command to the general path.

Same octets as the general path, always (tests/imapserver/test_fastfetch.py
compares them): the same item names in the same order (UID first for UID
FETCH, a name answered once, MODSEQ last with CONDSTORE; RFC 9051 §7.5.2,
RFC 7162 §3.1.4), the same quoting, the same literals. A message whose facts
cannot be made (a header section over
:data:`~kittiwake.imapserver.fetchcache.MAX_HEADER`) is written by the general
path, passed in as ``general``.

A batch (:func:`build_batch`, in a worker thread) is one query for its rows
and their cached facts; facts missing (first FETCH of a message) are made
from the stored part tree and kept in the store for the next time. Message
octets (``BODY[]``, ``TEXT``) of messages up to :data:`READ_MAX` are read
here, at most :data:`READ_BUDGET` per batch (the batch ends there, so memory
stays bounded); larger ones become
:class:`~kittiwake.imap.values.FileLiteral` pieces the driver streams.
"""

from __future__ import annotations

import datetime as dt
import os
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kittiwake.imap import commands as c
from kittiwake.imap import responses as r
from kittiwake.imap.encode import Piece
from kittiwake.imap.section import Partial, Section, SectionText
from kittiwake.imap.sections import (
    FieldPicker,
    Span,
    header_fields,
    literal_safe,
    partial_bytes,
    partial_span,
)
from kittiwake.imap.values import FileLiteral
from kittiwake.imapserver import fetchcache
from kittiwake.imapserver import metrics as imap_metrics
from kittiwake.imapserver.fetchcache import Derived
from kittiwake.message import parse
from kittiwake.store.account import AccountStore
from kittiwake.store.model import FetchRow, FileRow, FlagRow, Flags, IdRow

__all__ = ["READ_BUDGET", "READ_MAX", "Batch", "ChangedBatch", "FastPlan", "build_batch",
           "build_changed", "plan"]

READ_MAX = 256 * 1024  # message octets read in the worker, per section
READ_BUDGET = 2 * 1024 * 1024  # message octets read per batch
BATCH_MAX = 1000  # messages per batch
BIG = 4096  # message octets at least this long are a piece of their own (_Out.octets)


class _Out:
    """The pieces of one batch: runs of octets, and file literals the driver copies.

    Message files are opened relative to their directory (:meth:`read`), whose
    descriptor is kept for the batch (:meth:`close`): one path component to look
    up per file, not the whole path, for each of a FETCH's many messages.
    """

    __slots__ = ("budget", "dirs", "file_name", "parts", "pieces")

    def __init__(self, budget: int, file_name: Callable[[int], str]) -> None:
        self.parts: list[bytes] = []
        self.pieces: list[Piece] = []
        self.budget = budget
        self.file_name = file_name
        self.dirs: dict[str, int] = {}

    def read(self, row: FetchRow | FileRow, offset: int, length: int) -> bytes | None:
        """``length`` octets of the row's message from ``offset``, as :func:`_read`."""
        if row.prefix:
            return _read(self.file_name(row.id), row.prefix, offset, length)
        directory, _, name = self.file_name(row.id).rpartition("/")
        dir_fd = self.dirs.get(directory)
        try:
            if dir_fd is None:
                dir_fd = self.dirs[directory] = os.open(directory,
                                                        os.O_RDONLY | os.O_DIRECTORY)
            fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
        except OSError:
            return None
        try:
            return _pread_all(fd, length, offset)
        except OSError:
            return None
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close the directories :meth:`read` opened."""
        for fd in self.dirs.values():
            os.close(fd)
        self.dirs.clear()

    def file(self, literal: FileLiteral) -> None:
        self.pieces = self.take()
        self.parts = []
        self.pieces.append(literal)

    def octets(self, data: bytes) -> None:
        """Message octets: a piece of their own when large (the driver writes the
        pieces together, so they are not copied into one), else joined."""
        if len(data) < BIG:
            self.parts.append(data)
            return
        if self.parts:
            self.pieces.append(b"".join(self.parts))
            self.parts = []
        self.pieces.append(data)

    def take(self) -> list[Piece]:
        if self.parts:
            self.pieces.append(b"".join(self.parts))
        return [p for p in self.pieces if p]


# The row a plan's writers read: the narrowest that has their columns (FastPlan.row).
Row = FetchRow | IdRow | FlagRow | FileRow
Writer = Callable[[Row, "Derived | None", _Out], None]


@dataclass
class FastPlan:
    """The writers of one FETCH command's items, in answer order. ``row``: the
    narrowest row type with the columns they read (:meth:`AccountStore.fetch_narrow`;
    a FETCH of many messages makes fewer values); ``narrow``: that is id and UID only."""

    writers: list[Writer]
    uidfetch: bool
    needs_derived: bool
    narrow: bool
    names: list[str] = field(default_factory=list)
    row: type[Row] = FetchRow


# --- values of the row -------------------------------------------------------------

_FLAG_TEXT: dict[tuple[int, str], bytes] = {}


def _flags(bits: int, keywords: str) -> bytes:
    key = (bits, keywords)
    text = _FLAG_TEXT.get(key)
    if text is None:
        text = b"(" + " ".join(Flags.from_row(bits, keywords).names()).encode("utf-8") + b")"
        if len(_FLAG_TEXT) > 4096:
            _FLAG_TEXT.clear()
        _FLAG_TEXT[key] = text
    return text


def _date(ms: int) -> bytes:
    """date-time (RFC 9051 §9), quoted: ``"01-Dec-2026 13:30:05 +0000"``."""
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return t.strftime('"%d-%b-%Y %H:%M:%S +0000"').encode("ascii")


# The narrow row that has the columns of each row attribute (see FastPlan.row).
_ATTR_ROW: dict[str, type[Row]] = {"UID": IdRow, "EMAILID": IdRow, "FLAGS": FlagRow,
                                   "MODSEQ": FlagRow}


def _wider(a: type[Row], b: type[Row]) -> type[Row]:
    """The narrowest row type with the columns of both."""
    if a is b or b is IdRow:
        return a
    return b if a is IdRow else FetchRow


def _row_writer(name: str, pre: bytes) -> Writer | None:
    if name == "UID":
        fmt = pre + b"%d"

        def w(row: Row, d: Derived | None, out: _Out) -> None:
            out.parts.append(fmt % row.uid)
    elif name == "FLAGS":
        def w(row: Row, d: Derived | None, out: _Out) -> None:
            out.parts.append(pre)
            out.parts.append(_flags(row.flags, row.keywords))
    elif name == "INTERNALDATE":
        def w(row: Row, d: Derived | None, out: _Out) -> None:
            out.parts.append(pre)
            out.parts.append(_date(row.received))
    elif name == "RFC822.SIZE":
        fmt = pre + b"%d"

        def w(row: Row, d: Derived | None, out: _Out) -> None:
            out.parts.append(fmt % row.size)
    elif name == "MODSEQ":
        fmt = pre + b"(%d)"

        def w(row: Row, d: Derived | None, out: _Out) -> None:
            out.parts.append(fmt % row.modseq)
    elif name == "EMAILID":  # RFC 8474 §5.1 (kittiwake.imapserver.search.email_id)
        fmt = pre + b"(M%d)"

        def w(row: Row, d: Derived | None, out: _Out) -> None:
            out.parts.append(fmt % row.id)
    elif name == "THREADID":  # RFC 8474 §5.2
        fmt = pre + b"(T%d)"

        def w(row: Row, d: Derived | None, out: _Out) -> None:
            out.parts.append(fmt % row.thread_id)
    elif name == "SAVEDATE":  # RFC 8514 §4.3: NIL when the server has none
        def w(row: Row, d: Derived | None, out: _Out) -> None:
            out.parts.append(pre)
            out.parts.append(_date(row.saved) if row.saved else b"NIL")
    else:
        return None
    return w


def _structure_writer(name: str, pre: bytes, utf8: bool) -> Writer:
    index = {"ENVELOPE": 7 if utf8 else 6, "BODYSTRUCTURE": 9 if utf8 else 8,
             "BODY": 11 if utf8 else 10}[name]

    def w(row: Row, d: Derived | None, out: _Out) -> None:
        assert d is not None
        out.parts.append(pre)
        out.parts.append(d[index])
    return w


# --- sections of the whole message (RFC 9051 §6.4.5) ----------------------------------

def _literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def _read(path: str, prefix: bytes, offset: int, length: int) -> bytes | None:
    """``length`` octets of the message (prefix, then file) from ``offset``; None if
    the file is shorter (gone meanwhile: the driver keeps the framing)."""
    p = len(prefix)
    head = b""
    if offset < p:
        head = prefix[offset:offset + length]
        if len(head) == length:
            return head
        length -= len(head)
        offset = p
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            data = _pread_all(fd, length, offset - p)
        finally:
            os.close(fd)
    except OSError:
        return None
    if data is None:
        return None
    return head + data if head else data


def _pread_all(fd: int, length: int, offset: int) -> bytes | None:
    """``length`` octets of ``fd`` from ``offset`` (after short reads, rare, the
    rest); None when the file is shorter."""
    data = os.pread(fd, length, offset)
    while len(data) < length:
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            return None
        data += more
    return data


def _span_value(row: FetchRow | FileRow, span: Span, out: _Out) -> bool:
    """A span of the message as a literal, read here when small; False when it is to
    be streamed (see :func:`_stream`)."""
    if span.length == 0:
        out.parts.append(b"{0}\r\n")
        return True
    if span.length <= READ_MAX:
        data = out.read(row, span.offset, span.length)
        if data is not None:
            out.budget -= span.length
            out.parts.append(b"{%d}\r\n" % span.length)
            out.octets(literal_safe(data))
            return True
    return False


def _stream(row: FetchRow | FileRow, span: Span, out: _Out) -> None:
    """The literal's octets as pieces: the part in the prefix, then the file span."""
    p = len(row.prefix)
    out.parts.append(b"{%d}\r\n" % span.length)
    head = row.prefix[span.offset:span.offset + span.length] if span.offset < p else b""
    if head:
        out.parts.append(literal_safe(head))
    if span.length > len(head):
        out.file(FileLiteral(out.file_name(row.id), max(span.offset - p, 0),
                             span.length - len(head)))


def _whole_writer(pre: bytes) -> Writer:
    """``BODY[]`` (RFC 9051 §6.4.5) without <partial>: :func:`_span_writer`'s octets for
    the whole message, in fewer steps (a FETCH of many messages' bodies does this for
    each)."""
    def w(row: Row, d: Derived | None, out: _Out) -> None:
        assert d is not None
        start = d.header_start
        length = d.end - start
        if length <= 0:
            out.parts.append(pre + b"{0}\r\n")
            return
        if length <= READ_MAX:
            data = out.read(row, start, length)
            if data is not None:
                out.budget -= length
                out.parts.append(pre + b"{%d}\r\n" % length)
                out.octets(data.replace(b"\0", b"\x80") if b"\0" in data else data)
                return
        out.parts.append(pre)
        _stream(row, Span(start, length), out)
    return w


def _span_writer(text: SectionText | None, partial: Partial | None, pre: bytes) -> Writer:
    if text is None and partial is None:
        return _whole_writer(pre)

    def w(row: Row, d: Derived | None, out: _Out) -> None:
        assert d is not None
        if text is None:
            span = Span(d.header_start, max(0, d.end - d.header_start))
        elif text is SectionText.TEXT:
            span = Span(d.body_start, max(0, d.end - d.body_start))
        else:  # HEADER: the octets are in the facts
            span = partial_span(Span(d.header_start, d.body_start - d.header_start), partial)
            start = span.offset - d.header_start
            out.parts.append(pre + (_literal(literal_safe(d.header[start:start + span.length]))
                                    if span.length else b"{0}\r\n"))
            return
        span = partial_span(span, partial)
        out.parts.append(pre)
        if not _span_value(row, span, out):
            _stream(row, span, out)
    return w


FIELDS = fetchcache.FIELDS  # HEADER.FIELDS answers of recently fetched messages


def _fields_writer(section: Section, partial: Partial | None, pre: bytes, account: str
                   ) -> Writer:
    exclude = section.text is SectionText.HEADER_FIELDS_NOT
    picker = None if exclude else FieldPicker(section.fields)
    fields = section.fields
    key = (account, section.text.value if section.text else "",
           *sorted({f.lower() for f in fields}))
    known = FIELDS.space(key)

    def w(row: Row, d: Derived | None, out: _Out) -> None:
        assert d is not None
        literal = known.get(row.id)
        if literal is None:
            blank = not d.truncated
            if picker is not None and d.regular:
                data = picker.pick(d.header, blank)
            else:
                data = header_fields(d.header, fields, exclude, blank)
            # NUL made 0x80 octet by octet, so before or after <partial> is the same.
            literal = _literal(literal_safe(data))
            FIELDS.put(key, row.id, literal)
        out.parts.append(pre)
        if partial is None:
            out.parts.append(literal)
        else:
            out.parts.append(_literal(partial_bytes(literal[literal.index(b"\n") + 1:],
                                                    partial)))
    return w


_ATTR_SECTIONS = {"RFC822": Section(), "RFC822.HEADER": Section((), SectionText.HEADER),
                  "RFC822.TEXT": Section((), SectionText.TEXT)}


def plan(items: Sequence[c.FetchItem], *, uid_first: bool, condstore: bool, uidfetch: bool,
         utf8: bool, account: str = "") -> FastPlan | None:
    """The fast plan of a FETCH command's items, or None when one of them needs the
    general path. ``uid_first``: UID FETCH (UID is the first item, RFC 9051 §6.4.9,
    except in a UIDFETCH response, RFC 9586 §3.3); ``account``: the account's
    directory (names its cached answers)."""
    names: list[str] = []
    writers: list[Writer] = []
    needs_derived = False
    row: type[Row] = IdRow
    wanted: list[tuple[str, c.FetchItem | None]] = []
    if uid_first and not uidfetch:
        wanted.append(("UID", None))
    for item in items:
        if isinstance(item, c.FetchAttr):
            wanted.append((item.name, item))
        elif isinstance(item, c.BodySection):
            wanted.append((r.fetch_name(item), item))
        else:
            return None
    if condstore:
        wanted.append(("MODSEQ", None))
    for name, item in wanted:
        if name in names:
            continue  # answered once, the first time (as the general path does)
        if not name.isascii():
            return None
        pre = (b" " if names else b"") + name.encode("ascii") + b" "
        names.append(name)
        w = _row_writer(name, pre)
        if w is not None:
            writers.append(w)
            row = _wider(row, _ATTR_ROW.get(name, FetchRow))
            continue
        needs_derived = True
        if name in ("ENVELOPE", "BODYSTRUCTURE", "BODY"):
            writers.append(_structure_writer(name, pre, utf8))
            continue
        if isinstance(item, c.FetchAttr) and item.name in _ATTR_SECTIONS:
            section, partial = _ATTR_SECTIONS[item.name], None
        elif isinstance(item, c.BodySection):
            section, partial = item.section, item.partial
        else:
            return None
        if section.part or section.text is SectionText.MIME:
            return None
        if section.text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
            writers.append(_fields_writer(section, partial, pre, account))
        elif section.text is SectionText.HEADER:  # from the facts
            writers.append(_span_writer(section.text, partial, pre))
        else:  # octets of the file
            writers.append(_span_writer(section.text, partial, pre))
            row = _wider(row, FileRow)
    return FastPlan(writers, uidfetch, needs_derived, row is IdRow, names, row)


# --- one batch ----------------------------------------------------------------------------

@dataclass
class Batch:
    """The responses of a batch: ``consumed`` of the (seq, UID) pairs given were
    done, ``found`` of them still exist (the rest were expunged meanwhile)."""

    pieces: list[Piece]
    consumed: int
    found: int


def _facts(core: AccountStore, mailbox: str, rows: Sequence[Row]
           ) -> dict[int, Derived | None]:
    """The facts of each row's message: from memory, else from the store, else made
    from the stored part tree (and kept in both for next time)."""
    root = str(core.root)
    get = fetchcache.FACTS.space(root).get
    out: dict[int, Derived | None] = {}
    missing: list[Row] = []
    for row in rows:
        d = get(row.id)
        if d is None:
            missing.append(row)
        out[row.id] = d
    imap_metrics.FETCH_FACTS.labels(source="memory").inc(len(rows) - len(missing))
    if not missing:
        return out
    blobs = core.cached([row.id for row in missing])
    unmade = []
    for row in missing:
        d = fetchcache.from_blob(blobs.get(row.id))
        if d is None:
            unmade.append(row)
        else:
            out[row.id] = d
            fetchcache.FACTS.put(root, row.id, d)
    imap_metrics.FETCH_FACTS.labels(source="store").inc(len(missing) - len(unmade))
    if unmade:
        imap_metrics.FETCH_FACTS.labels(source="made").inc(len(unmade))
        # The whole rows (prefix, size) of the messages whose facts are to be made.
        full = [r for r in unmade if isinstance(r, FetchRow)]
        if len(full) < len(unmade):  # narrow rows
            full = core.fetch_rows(mailbox, [row.uid for row in unmade])
        out.update(_derive(core, full))
    return out


def _derive(core: AccountStore, rows: list[FetchRow]) -> dict[int, Derived | None]:
    """Facts of messages that have none in the store yet, kept there for next time."""
    summaries = core.summaries([row.id for row in rows])
    root = str(core.root)
    made: dict[int, Derived | None] = {}
    keep: list[tuple[int, bytes]] = []
    for row in rows:
        path = core.file_name(row.id)
        tree = fetchcache.part_tree(summaries.get(row.id))
        if tree is None:  # no stored tree (as the general path: parse the file)
            data = _read(path, row.prefix, 0, row.size)
            if data is None:
                made[row.id] = None
                continue
            tree = parse(data)
        header = None
        if tree.body_start - tree.header_start <= fetchcache.MAX_HEADER:
            header = _read(path, row.prefix, tree.header_start,
                           tree.body_start - tree.header_start)
        d = fetchcache.derive(tree, header) if header is not None else None
        made[row.id] = d
        if d is not None:
            keep.append((row.id, d.to_blob()))
            fetchcache.FACTS.put(root, row.id, d)
    core.put_cache(keep)
    return made


def build_batch(fast: FastPlan, core: AccountStore, mailbox: str,
                pairs: Sequence[tuple[int, int]], changed_since: int,
                general: Callable[[FetchRow, int], list[Piece]],
                budget: int = READ_BUDGET, limit: int = BATCH_MAX) -> Batch:
    """The responses for ``pairs`` (seq, UID; UIDs ascending), in a worker thread;
    it may stop early when ``budget`` octets of messages were read, or (with
    ``changed_since``) after ``limit`` messages."""
    uids = [u for _, u in pairs]
    rows: Sequence[Row]
    through = len(pairs)  # the pairs the rows answer for
    if fast.row is IdRow and not changed_since:
        rows = core.fetch_ids(mailbox, uids)
    elif fast.row is not FetchRow and not changed_since:
        rows = core.fetch_narrow(mailbox, uids, fast.row)
    elif changed_since:
        # RFC 7162 CHANGEDSINCE: few rows of a long range, usually; ``limit`` of them.
        rows = core.fetch_rows(mailbox, uids, changed_since, limit)
        if len(rows) == limit:
            through = bisect_right(uids, rows[-1].uid)
    else:
        rows = core.fetch_rows(mailbox, uids)
    # Few rows of many pairs (CHANGEDSINCE): find each one's number by bisection
    # rather than a map of every pair; pairs and uids are both in UID order.
    if len(rows) * 8 < len(pairs):
        numbered = [(pairs[bisect_left(uids, row.uid)][0], row) for row in rows]
    else:
        seq_of = dict((u, q) for q, u in pairs)
        numbered = [(seq_of[row.uid], row) for row in rows]
    out, found, last_uid = _write(fast, core, mailbox, numbered, general, budget)
    consumed = through
    if out.budget <= 0 and last_uid is not None:
        consumed = min(through, bisect_right(uids, last_uid))
    return Batch(out.take(), consumed, found)


@dataclass
class ChangedBatch:
    """The responses of a CHANGEDSINCE batch (:func:`build_changed`); ``next_uid``: where
    the next batch of the range starts, None when the range is done."""

    pieces: list[Piece]
    next_uid: int | None


def build_changed(fast: FastPlan, core: AccountStore, mailbox: str, low: int, high: int,
                  changed_since: int, seq_of: Callable[[int], int | None],
                  general: Callable[[FetchRow, int], list[Piece]],
                  budget: int = READ_BUDGET, limit: int = BATCH_MAX) -> ChangedBatch:
    """The responses for the messages of UIDs ``low..high`` with a modseq above
    ``changed_since`` (RFC 7162 §3.1.4 CHANGEDSINCE), at most ``limit`` of them, in a
    worker thread. ``seq_of`` gives a UID's sequence number when the command's set
    names it (the session's view, which no one changes while a command runs), else
    None: the set is never spelt out UID by UID, so the cost is that of the changed
    messages, not of the range (``1:*`` of a big mailbox)."""
    rows = core.fetch_rows(mailbox, range(low, high + 1), changed_since, limit)
    next_uid = rows[-1].uid + 1 if len(rows) == limit and rows[-1].uid < high else None
    numbered = [(seq, row) for row in rows if (seq := seq_of(row.uid)) is not None]
    out, _found, last_uid = _write(fast, core, mailbox, numbered, general, budget)
    if out.budget <= 0 and last_uid is not None and last_uid < high:
        next_uid = last_uid + 1
    return ChangedBatch(out.take(), next_uid)


def write_rows(fast: FastPlan, numbered: Sequence[tuple[int, FetchRow]]) -> bytes:
    """The responses of (seq, row) pairs for a plan that reads only the row's UID,
    FLAGS and MODSEQ (kittiwake.imapserver.changelog), on the event loop."""
    out = _Out(0, str)
    head = b"* %d UIDFETCH (" if fast.uidfetch else b"* %d FETCH ("
    parts = out.parts
    for seq, row in numbered:
        parts.append(head % (row.uid if fast.uidfetch else seq))
        for w in fast.writers:
            w(row, None, out)
        parts.append(b")\r\n")
    imap_metrics.FETCHED.labels(path="fast").inc(len(numbered))
    return b"".join(parts)


def _write(fast: FastPlan, core: AccountStore, mailbox: str,
           numbered: Sequence[tuple[int, Row]],
           general: Callable[[FetchRow, int], list[Piece]], budget: int
           ) -> tuple[_Out, int, int | None]:
    """The responses of (seq, row) pairs, until ``budget`` octets were read: the
    output, how many were found (not expunged meanwhile), and the last UID written."""
    rows = [row for _, row in numbered]
    facts = _facts(core, mailbox, rows) if fast.needs_derived else {}
    out = _Out(budget, core.file_name)
    try:
        found, general_count, last_uid = _write_each(fast, core, mailbox, numbered, facts,
                                                     general, out)
    finally:
        out.close()
    imap_metrics.FETCHED.labels(path="fast").inc(found - general_count)
    imap_metrics.FETCHED.labels(path="general").inc(general_count)
    return out, found, last_uid


def _write_each(fast: FastPlan, core: AccountStore, mailbox: str,
                numbered: Sequence[tuple[int, Row]], facts: dict[int, Derived | None],
                general: Callable[[FetchRow, int], list[Piece]], out: _Out
                ) -> tuple[int, int, int | None]:
    """:func:`_write`'s loop: found, of which by the general path, and the last UID."""
    writers = fast.writers
    head = b"* %d UIDFETCH (" if fast.uidfetch else b"* %d FETCH ("
    uidfetch = fast.uidfetch
    needs_derived = fast.needs_derived
    found = general_count = 0
    last_uid = None
    for seq, row in numbered:
        d = facts.get(row.id)
        found += 1
        last_uid = row.uid
        if d is None and needs_derived:
            whole = core.fetch_rows(mailbox, [row.uid]) if not isinstance(row, FetchRow) \
                else [row]
            if not whole:  # expunged meanwhile
                found -= 1
                continue
            general_count += 1
            for p in general(whole[0], seq):
                if isinstance(p, FileLiteral):
                    out.file(p)
                else:
                    out.parts.append(p)
        else:
            out.parts.append(head % (row.uid if uidfetch else seq))
            for w in writers:
                w(row, d, out)
            out.parts.append(b")\r\n")
        if out.budget <= 0:
            break
    return found, general_count, last_uid
