"""SORT and THREAD (RFC 5256) with DISPLAYFROM/DISPLAYTO (RFC 5957).

Pure functions over :class:`SortInfo` records (the facts of one message the
store already keeps in its summary); the session maps numbers (sequence or
UID) in and out. Strings compare with the ``i;unicode-casemap`` comparator
(RFC 5051), approximated here by Unicode NFKD normalisation plus case
folding, which orders ASCII exactly as the RFC does.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["SortInfo", "SortKey", "base_subject", "sort", "thread_orderedsubject",
           "thread_references"]

Thread = list  # nested: [n, [child...], ...] rendered by the session


@dataclass(frozen=True)
class SortInfo:
    """What SORT and THREAD look at in one message."""

    number: int  # sequence number or UID, whichever the command uses
    subject: str = ""  # decoded (RFC 2047) Subject
    date: dt.datetime | None = None  # Date header, parsed; None if missing/invalid
    internal: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # INTERNALDATE
    size: int = 0
    from_: tuple[str, str] = ("", "")  # first From: (display name, addr-mailbox)
    from_addr: str = ""  # first From addr-spec (for DISPLAYFROM without a name)
    to: tuple[str, str] = ("", "")
    to_addr: str = ""
    cc: tuple[str, str] = ("", "")
    message_id: str = ""
    references: tuple[str, ...] = ()
    in_reply_to: tuple[str, ...] = ()

    @property
    def sent(self) -> dt.datetime:
        """RFC 5256 §2.2: the Date header in UTC, else INTERNALDATE."""
        d = self.date or self.internal
        return d if d.tzinfo else d.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class SortKey:
    """One sort criterion (RFC 5256 §3 ``sort-key``, RFC 5957)."""

    name: str  # ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM DISPLAYTO
    reverse: bool = False


def casemap(text: str) -> str:
    """i;unicode-casemap (RFC 5051 §2), approximately: NFKD + case folding."""
    return unicodedata.normalize("NFKD", text).casefold()


# RFC 5256 §5 ABNF: subj-blob, subj-refwd, subj-trailer, subj-fwd-hdr/-trl.
_BLOB = r"\[[^\[\]]*\][ \t]*"
_REFWD = re.compile(r"(?:re|fwd?)[ \t]*(?:" + _BLOB + r")?:", re.IGNORECASE)
_LEADER = re.compile(r"(?:(?:" + _BLOB + r")*" + _REFWD.pattern + r"|[ \t]+)", re.IGNORECASE)
_BLOB_RE = re.compile(_BLOB)
_TRAILER = re.compile(r"(?:\(fwd\)|[ \t])\Z", re.IGNORECASE)


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 §2.1: the base subject, and whether it looked like a reply/forward."""
    # (1) white space: tabs and continuations to SP, runs collapsed.
    s = re.sub(r"[ \t\r\n]+", " ", subject)
    is_reply = False
    while True:
        # (2) trailers: "(fwd)" and white space at the end.
        while True:
            m = _TRAILER.search(s)
            if not m:
                break
            if m.group(0) != " " and m.group(0) != "\t":
                is_reply = True
            s = s[: m.start()]
        # (3)-(5) leaders and blobs, until neither matches.
        while True:
            m = _LEADER.match(s)
            if m and m.end() > 0:
                if m.group(0).strip():
                    is_reply = True
                s = s[m.end():]
                continue
            m = _BLOB_RE.match(s)
            if m and s[m.end():].strip():
                s = s[m.end():]
                continue
            break
        # (6) "[fwd: ... ]" wrapping.
        if s[:5].lower() == "[fwd:" and s.endswith("]"):
            s = s[5:-1]
            is_reply = True
            continue
        return casemap(s), is_reply


def _local(addr: tuple[str, str]) -> str:
    return casemap(addr[1])


def _display(addr: tuple[str, str], spec: str) -> str:
    # RFC 5957 §3: the display name if there is one, else the addr-spec.
    return casemap(addr[0] or spec)


def _key_value(info: SortInfo, name: str) -> object:
    if name == "ARRIVAL":
        return info.internal
    if name == "DATE":
        return info.sent
    if name == "SIZE":
        return info.size
    if name == "SUBJECT":
        return base_subject(info.subject)[0]
    if name == "FROM":
        return _local(info.from_)
    if name == "TO":
        return _local(info.to)
    if name == "CC":
        return _local(info.cc)
    if name == "DISPLAYFROM":
        return _display(info.from_, info.from_addr)
    if name == "DISPLAYTO":
        return _display(info.to, info.to_addr)
    raise ValueError(f"unknown sort key {name}")


def sort(infos: Iterable[SortInfo], keys: Sequence[SortKey]) -> list[int]:
    """RFC 5256 §3 SORT: numbers in order; ties by ascending number."""
    items = sorted(infos, key=lambda i: i.number)
    for key in reversed(keys):  # stable sorts, least significant first
        items.sort(key=lambda i, n=key.name: _key_value(i, n), reverse=key.reverse)  # type: ignore[misc]
    return [i.number for i in items]


def thread_orderedsubject(infos: Iterable[SortInfo]) -> list[Thread]:
    """RFC 5256 §3 ORDEREDSUBJECT: by base subject, then sent date; flat threads."""
    ordered = sorted(infos, key=lambda i: (base_subject(i.subject)[0], i.sent, i.number))
    groups: list[list[SortInfo]] = []
    for info in ordered:
        if groups and base_subject(groups[-1][0].subject)[0] == base_subject(info.subject)[0]:
            groups[-1].append(info)
        else:
            groups.append([info])
    groups.sort(key=lambda g: (g[0].sent, g[0].number))
    # The first message is the parent of all the others, each a child of its own.
    return [[g[0].number, *[[i.number] for i in g[1:]]] if len(g) > 1 else [g[0].number]
            for g in groups]


@dataclass(eq=False)
class _Container:
    info: SortInfo | None = None
    parent: _Container | None = None
    children: list[_Container] = field(default_factory=list)

    def is_ancestor_of(self, other: _Container) -> bool:
        node: _Container | None = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False

    def link(self, child: _Container) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def date(self) -> tuple[dt.datetime, int]:
        """A dummy sorts by its first child (RFC 5256 §3 REFERENCES step 6)."""
        if self.info is not None:
            return self.info.sent, self.info.number
        return self.children[0].date() if self.children else (dt.datetime.max.replace(
            tzinfo=dt.UTC), 0)


def thread_references(infos: Iterable[SortInfo]) -> list[Thread]:
    """RFC 5256 §3 REFERENCES: threads from References/In-Reply-To, then subjects."""
    table: dict[str, _Container] = {}
    order = sorted(infos, key=lambda i: i.number)
    for n, info in enumerate(order):
        mid = info.message_id
        # (1A) a message without (or with a duplicate) Message-ID gets a unique one.
        if not mid or (mid in table and table[mid].info is not None):
            mid = f"\0unique-{n}"
        container = table.setdefault(mid, _Container())
        container.info = info
        refs = list(info.references) or list(info.in_reply_to[:1])
        # (1B) link the references in order, never making a loop.
        prev: _Container | None = None
        for ref in refs:
            node = table.setdefault(ref, _Container())
            if prev is not None and node.parent is None and not node.is_ancestor_of(prev) \
                    and node is not prev:
                prev.link(node)
            prev = node
        # (1C) the last reference is the parent of this message (replacing any other).
        if prev is not None and prev is not container and not container.is_ancestor_of(prev):
            prev.link(container)
        elif prev is None and container.parent is not None:
            container.parent.children.remove(container)
            container.parent = None
    # (2) the root set.
    roots = _Container()
    for c in list(table.values()):
        if c.parent is None:
            roots.link(c)
    # (4) prune dummies.
    _prune(roots)
    # (5) gather roots with the same base subject.
    _gather_subjects(roots)
    # (6) sort siblings by sent date, depth first.
    _sort_tree(roots)
    return [_render(c) for c in roots.children]


def _prune(parent: _Container) -> None:
    i = 0
    while i < len(parent.children):
        c = parent.children[i]
        _prune(c)
        if c.info is None and not c.children:
            parent.children.pop(i)
            continue
        if c.info is None and (parent.parent is not None or len(c.children) == 1):
            # Promote the children of a dummy (not at the root unless it has one child).
            kids = c.children
            parent.children[i:i + 1] = kids
            for k in kids:
                k.parent = parent
            continue
        i += 1


def _subject_of(c: _Container) -> tuple[str, bool]:
    info = c.info if c.info is not None else (c.children[0].info if c.children else None)
    return base_subject(info.subject) if info is not None else ("", False)


def _gather_subjects(roots: _Container) -> None:
    subjects: dict[str, _Container] = {}
    for c in roots.children:
        subj, reply = _subject_of(c)
        if not subj:
            continue
        old = subjects.get(subj)
        if old is None or (c.info is None and old.info is not None) or (
                _subject_of(old)[1] and not reply and old.info is not None and c.info is not None):
            subjects[subj] = c
    for c in list(roots.children):
        subj, reply = _subject_of(c)
        if not subj:
            continue
        old = subjects[subj]
        if old is c:
            continue
        if old.info is None and c.info is None:
            for k in list(c.children):
                old.link(k)
            roots.children.remove(c)
        elif old.info is None or (c.info is not None and reply and not _subject_of(old)[1]):
            old.link(c)
        else:
            dummy = _Container()
            idx = roots.children.index(old)
            roots.children[idx] = dummy
            dummy.parent = roots
            old.parent = None
            dummy.link(old)
            dummy.link(c)
            subjects[subj] = dummy


def _sort_tree(c: _Container) -> None:
    for k in c.children:
        _sort_tree(k)
    c.children.sort(key=lambda k: k.date())


def _render(c: _Container) -> Thread:
    """A thread as nested lists: a chain is flat, siblings are sublists."""
    out: Thread = []
    node = c
    while True:
        if node.info is not None:
            out.append(node.info.number)
        if len(node.children) == 1:
            node = node.children[0]
            continue
        out.extend(_render(k) for k in node.children)
        return out
