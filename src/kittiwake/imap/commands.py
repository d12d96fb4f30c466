"""Typed IMAP commands (RFC 9051 §6, RFC 3501 §6 and extensions).

The parser (``kittiwake.imap.parser``) turns a command's octets into one of
these frozen dataclasses; the server driver acts on them. Mailbox names are
already decoded to Unicode (modified UTF-7 or UTF-8, RFC 9051 §5.1), and
``INBOX`` in any case is ``"INBOX"`` (RFC 9051 §5.1). Flags keep their
spelling (system flags compare case-insensitively; ``norm_flag`` gives the
canonical spelling of a system flag).

Also here: :class:`SequenceSet` (RFC 9051 §9 ``sequence-set`` with ``*`` and
SEARCHRES ``$``, RFC 5182) and the search-key tree (RFC 9051 §6.4.4 plus
CONDSTORE MODSEQ, WITHIN OLDER/YOUNGER, SAVEDATE and OBJECTID keys).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, TypeVar

from kittiwake.imap.section import Partial, Section

__all__ = [
    "Append",
    "AppendMessage",
    "Authenticate",
    "BinarySection",
    "BinarySize",
    "BodySection",
    "Capability",
    "Check",
    "Close",
    "Command",
    "Compress",
    "Copy",
    "Create",
    "DateField",
    "DateOp",
    "Delete",
    "Enable",
    "Examine",
    "Expunge",
    "Fetch",
    "FetchAttr",
    "FetchItem",
    "GetMetadata",
    "GetQuota",
    "GetQuotaRoot",
    "Id",
    "Idle",
    "List",
    "Login",
    "Logout",
    "Lsub",
    "Move",
    "Namespace",
    "Noop",
    "Notify",
    "NotifyEvent",
    "NotifyGroup",
    "Preview",
    "QResync",
    "Rename",
    "Replace",
    "Search",
    "SearchAge",
    "SearchAll",
    "SearchAnd",
    "SearchDate",
    "SearchFlag",
    "SearchHeader",
    "SearchKey",
    "SearchKeyword",
    "SearchModSeq",
    "SearchNot",
    "SearchObjectId",
    "SearchOr",
    "SearchSaveDateSupported",
    "SearchSequence",
    "SearchSize",
    "SearchText",
    "Select",
    "SequenceSet",
    "SetMetadata",
    "SetQuota",
    "Sort",
    "SortCriterion",
    "StartTLS",
    "Status",
    "Store",
    "StoreMode",
    "Subscribe",
    "Thread",
    "Unselect",
    "Unsubscribe",
    "norm_flag",
]


# --- sequence sets ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A ``sequence-set`` (RFC 9051 §9): ranges of numbers, ``None`` for ``*``.

    ``saved`` is SEARCHRES ``$`` (RFC 5182 §2.1): the server's saved search
    result stands in for the set, and ``ranges`` is empty. Ranges keep the
    client's order and direction (``5:2`` is ``(5, 2)``); membership and
    iteration treat them as unordered.
    """

    ranges: tuple[tuple[int | None, int | None], ...] = ()
    saved: bool = False

    @classmethod
    def of(cls, *numbers: int) -> SequenceSet:
        """A set of single numbers (a convenience for drivers and tests)."""
        return cls(tuple((n, n) for n in numbers))

    def bounds(self, top: int) -> Iterator[tuple[int, int]]:
        """Each range as (low, high), ``*`` being ``top`` (RFC 9051 §9)."""
        for a, b in self.ranges:
            lo = top if a is None else a
            hi = top if b is None else b
            if lo > hi:
                lo, hi = hi, lo
            yield lo, hi

    def contains(self, n: int, top: int) -> bool:
        """Whether ``n`` is in the set, ``*`` being ``top`` (the largest in use)."""
        if self.saved:
            raise ValueError("'$' stands for a saved result; resolve it first")
        return any(lo <= n <= hi for lo, hi in self.bounds(top))

    def values(self, top: int) -> list[int]:
        """The distinct numbers of the set, ascending, ``*`` being ``top``.

        Numbers above ``top`` are dropped (RFC 9051 §6.4.8 UID ranges), except
        that ``n:*`` with ``n > top`` still holds ``top`` (RFC 9051 §9:
        ``*:4`` and ``4:*`` are the same). Callers needing the bounded
        form should use :meth:`contains` for sequence numbers; ranges are
        walked, so the cost is the size of the answer.
        """
        if self.saved:
            raise ValueError("'$' stands for a saved result; resolve it first")
        out: set[int] = set()
        for lo, hi in self.bounds(top):
            out.update(range(lo, min(hi, top) + 1))
        return sorted(out)

    def has_star(self) -> bool:
        return any(a is None or b is None for a, b in self.ranges)

    def max_number(self) -> int:
        """The largest explicit number in the set (0 if only ``*`` or ``$``)."""
        return max((x for r in self.ranges for x in r if x is not None), default=0)

    def __str__(self) -> str:
        if self.saved:
            return "$"

        def one(x: int | None) -> str:
            return "*" if x is None else str(x)

        return ",".join(one(a) if a == b else f"{one(a)}:{one(b)}" for a, b in self.ranges)


# --- flags -----------------------------------------------------------------

_SYSTEM_FLAGS = {f.upper(): f for f in (
    "\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")}


def norm_flag(flag: str) -> str:
    """System flags in their RFC 9051 §2.3.2 spelling; keywords unchanged."""
    return _SYSTEM_FLAGS.get(flag.upper(), flag)


# --- the command base ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """Base class of every command; ``name`` is the command verb."""

    NAME: ClassVar[str] = ""

    @property
    def name(self) -> str:
        return self.NAME


_C = TypeVar("_C", bound=type[Command])


def _cmd(name: str) -> Callable[[_C], _C]:
    def deco(cls: _C) -> _C:
        cls.NAME = name
        return cls
    return deco


# Any state (RFC 9051 §6.1)


@_cmd("CAPABILITY")
@dataclass(frozen=True, slots=True)
class Capability(Command):
    """RFC 9051 §6.1.1."""


@_cmd("NOOP")
@dataclass(frozen=True, slots=True)
class Noop(Command):
    """RFC 9051 §6.1.2."""


@_cmd("LOGOUT")
@dataclass(frozen=True, slots=True)
class Logout(Command):
    """RFC 9051 §6.1.3."""


@_cmd("ID")
@dataclass(frozen=True, slots=True)
class Id(Command):
    """ID (RFC 2971 §3.1): the client's field/value pairs, or None for NIL."""

    params: tuple[tuple[str, str | None], ...] | None = None


@_cmd("ENABLE")
@dataclass(frozen=True, slots=True)
class Enable(Command):
    """ENABLE (RFC 5161 §3.1); capability names upper-cased."""

    capabilities: tuple[str, ...] = ()


@_cmd("COMPRESS")
@dataclass(frozen=True, slots=True)
class Compress(Command):
    """COMPRESS (RFC 4978 §3); mechanism upper-cased (``DEFLATE``)."""

    mechanism: str = "DEFLATE"


# Not authenticated (RFC 9051 §6.2)


@_cmd("STARTTLS")
@dataclass(frozen=True, slots=True)
class StartTLS(Command):
    """RFC 9051 §6.2.1."""


@_cmd("AUTHENTICATE")
@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """AUTHENTICATE (RFC 9051 §6.2.2), ``initial_response`` decoded (SASL-IR,
    RFC 4959 §3: ``=`` is an empty response, None means none was sent)."""

    mechanism: str
    initial_response: bytes | None = None


@_cmd("LOGIN")
@dataclass(frozen=True, slots=True)
class Login(Command):
    """RFC 9051 §6.2.3. Credentials as octets (RFC 9051 §6.2.3 / UTF-8)."""

    username: str
    password: bytes = field(repr=False)


# Authenticated (RFC 9051 §6.3)


@dataclass(frozen=True, slots=True)
class QResync:
    """SELECT/EXAMINE (QRESYNC ...) parameters (RFC 7162 §3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None  # (seqs, uids)


@_cmd("SELECT")
@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT (RFC 9051 §6.3.2) with CONDSTORE / QRESYNC (RFC 7162)."""

    mailbox: str
    readonly: bool = False
    condstore: bool = False
    qresync: QResync | None = None

    @property
    def name(self) -> str:
        return "EXAMINE" if self.readonly else "SELECT"


def Examine(mailbox: str, condstore: bool = False,
            qresync: QResync | None = None) -> Select:
    """EXAMINE is a read-only SELECT (RFC 9051 §6.3.3)."""
    return Select(mailbox, True, condstore, qresync)


@_cmd("CREATE")
@dataclass(frozen=True, slots=True)
class Create(Command):
    """CREATE (RFC 9051 §6.3.4), USE attributes (RFC 6154 §3 CREATE-SPECIAL-USE)."""

    mailbox: str
    special_use: tuple[str, ...] = ()


@_cmd("DELETE")
@dataclass(frozen=True, slots=True)
class Delete(Command):
    """RFC 9051 §6.3.5."""

    mailbox: str


@_cmd("RENAME")
@dataclass(frozen=True, slots=True)
class Rename(Command):
    """RFC 9051 §6.3.6."""

    mailbox: str
    new_name: str


@_cmd("SUBSCRIBE")
@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    """RFC 9051 §6.3.7."""

    mailbox: str


@_cmd("UNSUBSCRIBE")
@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    """RFC 9051 §6.3.8."""

    mailbox: str


@_cmd("LIST")
@dataclass(frozen=True, slots=True)
class List(Command):
    """LIST (RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258), LIST-STATUS
    (RFC 5819) and SPECIAL-USE (RFC 6154).

    ``selection`` holds the selection options upper-cased (SUBSCRIBED, REMOTE,
    RECURSIVEMATCH, SPECIAL-USE); ``returns`` the return options (SUBSCRIBED,
    CHILDREN, SPECIAL-USE; STATUS is ``status``, the items asked for, or
    None). The reference and patterns are decoded like mailbox names; the
    wildcards ``*`` and ``%`` are kept.
    """

    reference: str
    patterns: tuple[str, ...]
    selection: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    status: tuple[str, ...] | None = None


@_cmd("LSUB")
@dataclass(frozen=True, slots=True)
class Lsub(Command):
    """LSUB (RFC 3501 §6.3.9, IMAP4rev1 only)."""

    reference: str
    pattern: str


@_cmd("NAMESPACE")
@dataclass(frozen=True, slots=True)
class Namespace(Command):
    """RFC 9051 §6.3.10 (RFC 2342)."""


@_cmd("STATUS")
@dataclass(frozen=True, slots=True)
class Status(Command):
    """STATUS (RFC 9051 §6.3.11); items upper-cased: MESSAGES, UIDNEXT,
    UIDVALIDITY, UNSEEN, DELETED, SIZE (STATUS=SIZE, RFC 8438), RECENT (rev1),
    HIGHESTMODSEQ (RFC 7162), APPENDLIMIT (RFC 7889), MAILBOXID (RFC 8474),
    DELETED-STORAGE (RFC 9208)."""

    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND (RFC 9051 §6.3.12, MULTIAPPEND RFC 3502):
    its flags, internal date, literal size, whether it was a literal8
    (BINARY, RFC 3516 §4.4) and whether it was wrapped in ``UTF8 (...)``
    (RFC 6855 §4). The octets are streamed as ``AppendData`` events."""

    flags: tuple[str, ...] = ()
    internal_date: dt.datetime | None = None
    size: int = 0
    binary: bool = False
    utf8: bool = False


@_cmd("APPEND")
@dataclass(frozen=True, slots=True)
class Append(Command):
    """APPEND, with every message's metadata (the data was streamed)."""

    mailbox: str
    messages: tuple[AppendMessage, ...] = ()


@_cmd("IDLE")
@dataclass(frozen=True, slots=True)
class Idle(Command):
    """IDLE (RFC 2177, RFC 9051 §6.3.13)."""


@_cmd("GETQUOTA")
@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    """GETQUOTA (RFC 9208 §4.2)."""

    root: str


@_cmd("GETQUOTAROOT")
@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    """GETQUOTAROOT (RFC 9208 §4.3)."""

    mailbox: str


@_cmd("SETQUOTA")
@dataclass(frozen=True, slots=True)
class SetQuota(Command):
    """SETQUOTA (RFC 9208 §4.1): (resource, limit) pairs, resources upper-cased."""

    root: str
    limits: tuple[tuple[str, int], ...] = ()


@_cmd("GETMETADATA")
@dataclass(frozen=True, slots=True)
class GetMetadata(Command):
    """GETMETADATA (RFC 5464 §4.2): MAXSIZE and DEPTH options."""

    mailbox: str  # "" is the server
    entries: tuple[str, ...]
    maxsize: int | None = None
    depth: str = "0"  # "0", "1" or "infinity"


@_cmd("SETMETADATA")
@dataclass(frozen=True, slots=True)
class SetMetadata(Command):
    """SETMETADATA (RFC 5464 §4.3): value None removes the entry."""

    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class NotifyEvent:
    """An event of a NOTIFY group (RFC 5465 §5): name upper-cased; MessageNew
    may carry fetch attributes."""

    name: str
    fetch: tuple[FetchItem, ...] = ()


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """A filter and its events (RFC 5465 §6): ``filter`` is SELECTED,
    SELECTED-DELAYED, PERSONAL, INBOXES, SUBSCRIBED, SUBTREE or MAILBOXES;
    ``mailboxes`` is set for the last two; empty ``events`` is NONE."""

    filter: str
    mailboxes: tuple[str, ...] = ()
    events: tuple[NotifyEvent, ...] = ()


@_cmd("NOTIFY")
@dataclass(frozen=True, slots=True)
class Notify(Command):
    """NOTIFY NONE or NOTIFY SET [STATUS] groups (RFC 5465 §3)."""

    groups: tuple[NotifyGroup, ...] | None = None  # None is NOTIFY NONE
    status: bool = False


# Selected (RFC 9051 §6.4)


@_cmd("CHECK")
@dataclass(frozen=True, slots=True)
class Check(Command):
    """CHECK (RFC 3501 §6.4.1; IMAP4rev1 only, a NOOP)."""


@_cmd("CLOSE")
@dataclass(frozen=True, slots=True)
class Close(Command):
    """RFC 9051 §6.4.1."""


@_cmd("UNSELECT")
@dataclass(frozen=True, slots=True)
class Unselect(Command):
    """RFC 9051 §6.4.2 (RFC 3691)."""


@_cmd("EXPUNGE")
@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """EXPUNGE (RFC 9051 §6.4.3) or UID EXPUNGE set (UIDPLUS, §6.4.9)."""

    uids: SequenceSet | None = None


# --- search keys -----------------------------------------------------------


class SearchKey:
    """Base of the search-key tree (RFC 9051 §6.4.4)."""

    __slots__ = ()


def search_keys(key: SearchKey) -> Iterator[SearchKey]:
    """Every key of a search program, ``key`` itself first, depth first."""
    stack = [key]
    while stack:
        k = stack.pop()
        yield k
        if isinstance(k, SearchAnd):
            stack.extend(reversed(k.keys))
        elif isinstance(k, SearchOr):
            stack.extend((k.right, k.left))
        elif isinstance(k, SearchNot):
            stack.append(k.key)


@dataclass(frozen=True, slots=True)
class SearchAll(SearchKey):
    """ALL."""


@dataclass(frozen=True, slots=True)
class SearchAnd(SearchKey):
    """Keys side by side, or a parenthesized list: all must match."""

    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class SearchOr(SearchKey):
    """OR key1 key2."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchNot(SearchKey):
    """NOT key."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchFlag(SearchKey):
    """ANSWERED/DELETED/DRAFT/FLAGGED/SEEN (``present``) and their UN- forms;
    RECENT/NEW/OLD of IMAP4rev1 (``flag`` \\Recent, NEW is RECENT UNSEEN,
    OLD is NOT RECENT: both are expanded by the parser)."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchKeyword(SearchKey):
    """KEYWORD / UNKEYWORD flag-keyword."""

    keyword: str
    present: bool = True


class DateField(StrEnum):
    INTERNAL = "internal"  # BEFORE/ON/SINCE
    SENT = "sent"  # SENTBEFORE/SENTON/SENTSINCE: the Date header
    SAVED = "saved"  # SAVEDBEFORE/SAVEDON/SAVEDSINCE (RFC 8514 §4.3)


class DateOp(StrEnum):
    BEFORE = "before"
    ON = "on"
    SINCE = "since"


@dataclass(frozen=True, slots=True)
class SearchDate(SearchKey):
    """A date comparison (dates without time or zone, RFC 9051 §6.4.4)."""

    field: DateField
    op: DateOp
    date: dt.date


@dataclass(frozen=True, slots=True)
class SearchHeader(SearchKey):
    """HEADER field value; BCC/CC/FROM/SUBJECT/TO become HEADER with that
    field name (upper-cased). Substring match, case-insensitive."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchText(SearchKey):
    """BODY (``body_only``) or TEXT string."""

    value: str
    body_only: bool = False


@dataclass(frozen=True, slots=True)
class SearchSize(SearchKey):
    """LARGER n / SMALLER n (RFC822.SIZE)."""

    size: int
    larger: bool


@dataclass(frozen=True, slots=True)
class SearchSequence(SearchKey):
    """A sequence set (message numbers) or UID set."""

    set: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class SearchAge(SearchKey):
    """OLDER / YOUNGER interval in seconds (RFC 5032 §3)."""

    seconds: int
    older: bool


@dataclass(frozen=True, slots=True)
class SearchModSeq(SearchKey):
    """MODSEQ [entry-name entry-type] mod-sequence (RFC 7162 §3.1.5)."""

    modseq: int
    entry: str | None = None
    entry_type: str | None = None  # "priv", "shared" or "all"


@dataclass(frozen=True, slots=True)
class SearchObjectId(SearchKey):
    """EMAILID / THREADID objectid (RFC 8474 §6)."""

    kind: str  # "EMAILID" or "THREADID"
    id: str


@dataclass(frozen=True, slots=True)
class SearchSaveDateSupported(SearchKey):
    """SAVEDATESUPPORTED (RFC 8514 §4.3)."""


# --- FETCH items -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchAttr:
    """A plain attribute, upper-cased: ENVELOPE, FLAGS, INTERNALDATE,
    RFC822.SIZE, UID, BODY, BODYSTRUCTURE, RFC822, RFC822.HEADER, RFC822.TEXT,
    MODSEQ (RFC 7162), EMAILID, THREADID (RFC 8474), SAVEDATE (RFC 8514)."""

    name: str


@dataclass(frozen=True, slots=True)
class BodySection:
    """BODY[section]<partial> / BODY.PEEK[...] (RFC 9051 §6.4.5)."""

    section: Section
    partial: Partial | None = None
    peek: bool = False


@dataclass(frozen=True, slots=True)
class BinarySection:
    """BINARY[part]<partial> / BINARY.PEEK (RFC 3516 §4.1)."""

    part: tuple[int, ...] = ()
    partial: Partial | None = None
    peek: bool = False


@dataclass(frozen=True, slots=True)
class BinarySize:
    """BINARY.SIZE[part] (RFC 3516 §4.2)."""

    part: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Preview:
    """PREVIEW, optionally (LAZY) (RFC 8970 §3.1)."""

    lazy: bool = False


FetchItem = FetchAttr | BodySection | BinarySection | BinarySize | Preview


@_cmd("FETCH")
@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """FETCH / UID FETCH (RFC 9051 §6.4.5) with CHANGEDSINCE and VANISHED
    (RFC 7162 §3.1.4.1, §3.2.6). Macros ALL/FAST/FULL are expanded; UID
    FETCH does not add UID here (the response writer's job)."""

    uid: bool
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    changed_since: int | None = None
    vanished: bool = False


class StoreMode(StrEnum):
    REPLACE = ""
    ADD = "+"
    REMOVE = "-"


@_cmd("STORE")
@dataclass(frozen=True, slots=True)
class Store(Command):
    """STORE / UID STORE (RFC 9051 §6.4.6), UNCHANGEDSINCE (RFC 7162 §3.1.3)."""

    uid: bool
    sequence: SequenceSet
    mode: StoreMode
    silent: bool
    flags: tuple[str, ...]
    unchanged_since: int | None = None


@_cmd("COPY")
@dataclass(frozen=True, slots=True)
class Copy(Command):
    """COPY / UID COPY (RFC 9051 §6.4.7)."""

    uid: bool
    sequence: SequenceSet
    mailbox: str


@_cmd("MOVE")
@dataclass(frozen=True, slots=True)
class Move(Command):
    """MOVE / UID MOVE (RFC 9051 §6.4.8, RFC 6851)."""

    uid: bool
    sequence: SequenceSet
    mailbox: str


@_cmd("SEARCH")
@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH (RFC 9051 §6.4.4).

    ``returns`` is None for a plain (rev1-style) SEARCH, else the ESEARCH
    return options upper-cased (RFC 4731 §3.1, RFC 9051: MIN MAX ALL COUNT
    SAVE; an empty tuple is ``RETURN ()``, meaning ALL).
    """

    uid: bool
    criteria: SearchKey
    charset: str | None = None
    returns: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """One SORT key (RFC 5256 §3, SORT=DISPLAY RFC 5957): ARRIVAL CC DATE
    FROM SIZE SUBJECT TO DISPLAYFROM DISPLAYTO, maybe reversed."""

    key: str
    reverse: bool = False


@_cmd("SORT")
@dataclass(frozen=True, slots=True)
class Sort(Command):
    """SORT / UID SORT (RFC 5256 §3), ESORT RETURN options (RFC 5267 §3)."""

    uid: bool
    criteria: tuple[SortCriterion, ...]
    charset: str
    search: SearchKey
    returns: tuple[str, ...] | None = None


@_cmd("THREAD")
@dataclass(frozen=True, slots=True)
class Thread(Command):
    """THREAD / UID THREAD (RFC 5256 §3): algorithm upper-cased."""

    uid: bool
    algorithm: str
    charset: str
    search: SearchKey


@_cmd("REPLACE")
@dataclass(frozen=True, slots=True)
class Replace(Command):
    """REPLACE / UID REPLACE (RFC 8508 §3): the message streams like APPEND."""

    uid: bool
    number: int
    mailbox: str
    message: AppendMessage = AppendMessage()
