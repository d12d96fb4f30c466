"""IMAP server responses (RFC 9051 §7) as octets and output pieces.

Status responses (tagged and untagged OK/NO/BAD, PREAUTH, BYE) with their
response codes (:class:`~kittiwake.imap.codes.Code`, RFC 9051 §7.1, RFC
5530), continuation requests (RFC 9051 §7.5), and the untagged data the
server sends: CAPABILITY, ENABLED, EXISTS, EXPUNGE, FLAGS, LIST, LSUB,
STATUS, SEARCH, ESEARCH (RFC 4731), VANISHED (RFC 7162 §3.2.10), FETCH,
NAMESPACE, ID, QUOTA/QUOTAROOT (RFC 9208), METADATA (RFC 5464), SORT,
THREAD (RFC 5256).

Functions return ``bytes`` or, where a value may hold a
:class:`~kittiwake.imap.values.FileLiteral` (FETCH), a list of pieces (see
``encode``). Mailbox names are written in modified UTF-7 unless UTF-8 is
on (RFC 9051 §5.1, RFC 6855 §3). Pure functions, no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kittiwake.imap import mutf7
from kittiwake.imap.codes import Code
from kittiwake.imap.commands import (
    BinarySize,
    BodySection,
    FetchAttr,
    FetchItem,
    Preview,
    SequenceSet,
)
from kittiwake.imap.encode import Piece, encode, encode_bytes, quote_or_literal
from kittiwake.imap.values import Raw, Value

__all__ = [
    "ResponseCode",
    "bye",
    "capability",
    "continuation",
    "enabled",
    "esearch",
    "exists",
    "expunge",
    "fetch",
    "fetch_name",
    "flags",
    "greeting",
    "id_response",
    "list_response",
    "mailbox_name",
    "metadata",
    "metadata_changed",
    "namespace",
    "quota",
    "quotaroot",
    "search",
    "sort",
    "status",
    "status_response",
    "tagged",
    "thread",
    "untagged",
    "untagged_status",
    "vanished",
]


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """A response code and its arguments, already formatted: ``[UIDNEXT 4392]``
    is ``ResponseCode(Code.UIDNEXT, "4392")``."""

    code: Code
    args: str | None = None

    def to_bytes(self) -> bytes:
        if self.args is None:
            return b"[" + self.code.value.encode() + b"]"
        return b"[" + self.code.value.encode() + b" " + self.args.encode("utf-8") + b"]"

    @classmethod
    def uidnext(cls, n: int) -> ResponseCode:
        return cls(Code.UIDNEXT, str(n))

    @classmethod
    def uidvalidity(cls, n: int) -> ResponseCode:
        return cls(Code.UIDVALIDITY, str(n))

    @classmethod
    def highestmodseq(cls, n: int) -> ResponseCode:
        return cls(Code.HIGHESTMODSEQ, str(n))

    @classmethod
    def appenduid(cls, uidvalidity: int, uids: SequenceSet) -> ResponseCode:
        """RFC 4315 §3: ``[APPENDUID uidvalidity uid-set]``."""
        return cls(Code.APPENDUID, f"{uidvalidity} {uids}")

    @classmethod
    def copyuid(cls, uidvalidity: int, source: SequenceSet, dest: SequenceSet) -> ResponseCode:
        """RFC 4315 §3: ``[COPYUID uidvalidity source-set dest-set]``."""
        return cls(Code.COPYUID, f"{uidvalidity} {source} {dest}")

    @classmethod
    def modified(cls, numbers: SequenceSet) -> ResponseCode:
        """RFC 7162 §3.1.3: ``[MODIFIED set]`` of a conditional STORE."""
        return cls(Code.MODIFIED, str(numbers))

    @classmethod
    def capability(cls, caps: Iterable[str]) -> ResponseCode:
        return cls(Code.CAPABILITY, " ".join(caps))

    @classmethod
    def permanentflags(cls, flag_names: Iterable[str]) -> ResponseCode:
        return cls(Code.PERMANENTFLAGS, "(" + " ".join(flag_names) + ")")

    @classmethod
    def inprogress(cls, tag: str, done: int | None = None,
                   total: int | None = None) -> ResponseCode:
        """RFC 9585: ``[INPROGRESS ("tag" done total)]`` (NIL when unknown)."""
        def n(x: int | None) -> str:
            return "NIL" if x is None else str(x)
        return cls(Code.INPROGRESS, f'({_quote(tag)} {n(done)} {n(total)})')


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _code(code: Code | ResponseCode | None) -> bytes:
    if code is None:
        return b""
    if isinstance(code, Code):
        code = ResponseCode(code)
    return code.to_bytes() + b" "


def _text(text: str) -> bytes:
    """resp-text (RFC 9051 §9): no CR/LF, no leading "[" (it would read as a
    response code), and US-ASCII so IMAP4rev1 clients can show it (RFC
    sections are spelt out, anything else 8-bit is escaped)."""
    t = text.replace("\r", " ").replace("\n", " ").replace("§", "section ")
    if t.startswith("["):
        t = " " + t
    return t.encode("ascii", "backslashreplace")


def tagged(tag: str, status: str, text: str, code: Code | ResponseCode | None = None) -> bytes:
    """``tag OK/NO/BAD [code] text`` (RFC 9051 §7.1)."""
    return tag.encode("ascii") + b" " + status.encode("ascii") + b" " + _code(code) + \
        _text(text or "completed") + b"\r\n"


def untagged_status(status: str, text: str, code: Code | ResponseCode | None = None) -> bytes:
    """``* OK/NO/BAD/PREAUTH/BYE [code] text``."""
    return b"* " + status.encode("ascii") + b" " + _code(code) + _text(text) + b"\r\n"


def greeting(caps: Sequence[str], text: str, preauth: bool = False) -> bytes:
    """``* OK [CAPABILITY ...] text`` or ``* PREAUTH`` (RFC 9051 §7.1.4)."""
    return untagged_status("PREAUTH" if preauth else "OK", text, ResponseCode.capability(caps))


def bye(text: str, code: Code | ResponseCode | None = None) -> bytes:
    """``* BYE text`` (RFC 9051 §7.1.5)."""
    return untagged_status("BYE", text, code)


def continuation(text: str = "", data: bytes | None = None) -> bytes:
    """``+ text`` or ``+ base64`` for a SASL challenge (RFC 9051 §7.6)."""
    if data is not None:
        return b"+ " + base64.b64encode(data) + b"\r\n"
    return b"+ " + _text(text or "Ready") + b"\r\n"


def untagged(*items: Value, utf8: bool = False) -> list[Piece]:
    """``* item item ...`` with each item serialised by ``encode``."""
    out: list[Piece] = [b"* "]
    for i, item in enumerate(items):
        if i:
            out.append(b" ")
        out.extend(encode(item, utf8))
    out.append(b"\r\n")
    return _join(out)


def _join(pieces: list[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for p in pieces:
        if isinstance(p, bytes) and out and isinstance(out[-1], bytes):
            out[-1] = out[-1] + p
        else:
            out.append(p)
    return out


def _line(*parts: bytes) -> bytes:
    return b"* " + b" ".join(parts) + b"\r\n"


def capability(caps: Sequence[str]) -> bytes:
    return _line(b"CAPABILITY", *(c.encode() for c in caps))


def enabled(caps: Sequence[str]) -> bytes:
    """``* ENABLED ...`` (RFC 5161 §3.2)."""
    return _line(b"ENABLED", *(c.encode() for c in caps))


def exists(n: int) -> bytes:
    return b"* %d EXISTS\r\n" % n


def expunge(n: int) -> bytes:
    return b"* %d EXPUNGE\r\n" % n


def flags(names: Sequence[str]) -> bytes:
    return b"* FLAGS (" + " ".join(names).encode() + b")\r\n"


def mailbox_name(name: str, utf8: bool) -> bytes:
    """A mailbox name as a string: UTF-8 when on, else modified UTF-7."""
    if not utf8:
        name = mutf7.encode(name)
    return quote_or_literal(name.encode("utf-8"), utf8)


def list_response(attributes: Sequence[str], delimiter: str | None, name: str, *,
                  utf8: bool = False, extended: Sequence[tuple[str, Value]] = (),
                  verb: str = "LIST") -> bytes:
    """``* LIST (attrs) "/" name [(ext-items)]`` (RFC 9051 §7.3.1, RFC 5258
    §6 ``mbox-list-extended``: e.g. ``("CHILDINFO", ["SUBSCRIBED"])`` or
    ``("OLDNAME", [name])`` as (tag, value) pairs)."""
    delim = b"NIL" if delimiter is None else quote_or_literal(delimiter.encode(), False)
    out = b"* " + verb.encode() + b" (" + " ".join(attributes).encode() + b") " + delim + \
        b" " + mailbox_name(name, utf8)
    if extended:
        items = b" ".join(quote_or_literal(k.encode(), False) + b" " + encode_bytes(v, utf8)
                          for k, v in extended)
        out += b" (" + items + b")"
    return out + b"\r\n"


def status_response(mailbox: str, items: Sequence[tuple[str, int | str]], *,
                    utf8: bool = False) -> bytes:
    """``* STATUS name (MESSAGES 3 UIDNEXT 5)`` (RFC 9051 §7.3.3); a ``str`` value is
    written as it is (``MAILBOXID (F12)``, RFC 8474 §4.3)."""
    att = " ".join(f"{k} {v}" for k, v in items).encode()
    return b"* STATUS " + mailbox_name(mailbox, utf8) + b" (" + att + b")\r\n"


status = status_response


def search(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """``* SEARCH 2 3 6`` (RFC 3501 §7.2.5), with ``(MODSEQ n)`` (RFC 7162)."""
    out = b"* SEARCH" + b"".join(b" %d" % n for n in numbers)
    if modseq is not None:
        out += b" (MODSEQ %d)" % modseq
    return out + b"\r\n"


def esearch(tag: str | None, uid: bool, results: Sequence[tuple[str, int | SequenceSet]]) -> bytes:
    """``* ESEARCH (TAG "a1") UID MIN 2 COUNT 3 ALL 2:4`` (RFC 9051 §7.3.4,
    RFC 4731). ``results`` pairs a return item with a number or set."""
    out = b"* ESEARCH"
    if tag is not None:
        out += b" (TAG " + quote_or_literal(tag.encode(), False) + b")"
    if uid:
        out += b" UID"
    for name, value in results:
        out += b" " + name.encode() + b" " + str(value).encode()
    return out + b"\r\n"


def vanished(uids: SequenceSet, earlier: bool = False) -> bytes:
    """``* VANISHED [(EARLIER)] uid-set`` (RFC 7162 §3.2.10)."""
    return b"* VANISHED " + (b"(EARLIER) " if earlier else b"") + str(uids).encode() + b"\r\n"


def fetch_name(item: FetchItem) -> str:
    """The name a FETCH response gives an item (RFC 9051 §7.5.2): BODY.PEEK
    answers as BODY, a partial shows its origin only (``BODY[1]<0>``),
    BINARY.PEEK as BINARY (RFC 3516 §4.2)."""
    if isinstance(item, FetchAttr):
        return item.name
    if isinstance(item, Preview):
        return "PREVIEW"
    if isinstance(item, BinarySize):
        return "BINARY.SIZE[" + ".".join(map(str, item.part)) + "]"
    if isinstance(item, BodySection):
        name = "BODY[" + item.section.spec() + "]"
    else:
        name = "BINARY[" + ".".join(map(str, item.part)) + "]"
    if item.partial is not None:
        name += f"<{item.partial.origin}>"
    return name


def fetch(number: int, items: Sequence[tuple[str, Value]], *,
          utf8: bool = False, uidfetch: bool = False) -> list[Piece]:
    """``* n FETCH (name value ...)`` (RFC 9051 §7.5.2). Names are written
    as they are (``BODY[1.2]<0>``, ``UID``); values are serialised, and a
    :class:`FileLiteral` becomes its own piece for the driver to stream.

    With ``uidfetch``, ``number`` is the UID and the response is
    ``* uid UIDFETCH (...)`` (RFC 9586 §3.3, after ENABLE UIDONLY)."""
    flat: list[Value] = []
    for name, value in items:
        flat.append(Raw(name.encode("ascii")))
        flat.append(value)
    out: list[Piece] = [b"* %d %s " % (number, b"UIDFETCH" if uidfetch else b"FETCH")]
    out.extend(encode(flat, utf8))
    out.append(b"\r\n")
    return _join(out)


def namespace(personal: Sequence[tuple[str, str | None]] | None,
              other: Sequence[tuple[str, str | None]] | None = None,
              shared: Sequence[tuple[str, str | None]] | None = None, *,
              utf8: bool = False) -> bytes:
    """``* NAMESPACE (("" "/")) NIL NIL`` (RFC 9051 §7.3.2)."""
    def one(ns: Sequence[tuple[str, str | None]] | None) -> bytes:
        if not ns:
            return b"NIL"
        return b"(" + b"".join(
            b"(" + mailbox_name(prefix, utf8) + b" " +
            (b"NIL" if d is None else quote_or_literal(d.encode(), False)) + b")"
            for prefix, d in ns) + b")"
    return b"* NAMESPACE " + one(personal) + b" " + one(other) + b" " + one(shared) + b"\r\n"


def id_response(params: Sequence[tuple[str, str | None]] | None) -> bytes:
    """``* ID ("name" "kittiwake")`` or ``* ID NIL`` (RFC 2971 §3.2)."""
    if params is None:
        return b"* ID NIL\r\n"
    flat: list[Value] = []
    for k, v in params:
        flat += [k, v]
    return b"* ID " + encode_bytes(flat) + b"\r\n"


def quota(root: str, resources: Sequence[tuple[str, int, int]]) -> bytes:
    """``* QUOTA root (STORAGE used limit ...)`` (RFC 9208 §5.1)."""
    res = " ".join(f"{n} {u} {lim}" for n, u, lim in resources).encode()
    return b"* QUOTA " + quote_or_literal(root.encode(), True) + b" (" + res + b")\r\n"


def quotaroot(mailbox: str, roots: Sequence[str], *, utf8: bool = False) -> bytes:
    """``* QUOTAROOT mailbox root ...`` (RFC 9208 §5.2)."""
    return b"* QUOTAROOT " + mailbox_name(mailbox, utf8) + b"".join(
        b" " + quote_or_literal(r.encode(), True) for r in roots) + b"\r\n"


def metadata(mailbox: str, entries: Sequence[tuple[str, bytes | None]], *,
             utf8: bool = False) -> bytes:
    """``* METADATA mailbox (entry value ...)`` (RFC 5464 §4.4)."""
    flat: list[Value] = []
    for e, v in entries:
        flat += [e, v]
    name = b'""' if mailbox == "" else mailbox_name(mailbox, utf8)
    return b"* METADATA " + name + b" " + encode_bytes(flat, utf8) + b"\r\n"


def metadata_changed(mailbox: str, entries: Sequence[str], *, utf8: bool = False) -> bytes:
    """``* METADATA mailbox entry ...``, unsolicited: these entries changed (RFC
    5464 §4.4.2 ``entry-list``, no parentheses; sent for NOTIFY's metadata
    events, RFC 5465 §5.6-§5.7)."""
    name = b'""' if mailbox == "" else mailbox_name(mailbox, utf8)
    return b"* METADATA " + name + b"".join(b" " + encode_bytes(e, utf8) for e in entries) \
        + b"\r\n"


def sort(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """``* SORT 5 3 4`` (RFC 5256 §4)."""
    out = b"* SORT" + b"".join(b" %d" % n for n in numbers)
    if modseq is not None:
        out += b" (MODSEQ %d)" % modseq
    return out + b"\r\n"


Thread = int | Sequence["Thread"]


def thread(threads: Sequence[Sequence[Thread]]) -> bytes:
    """``* THREAD (2)(3 6 (4 23)(44 7 96))`` (RFC 5256 §4): each thread is a
    sequence of numbers, a nested sequence being a set of sibling branches."""
    def one(t: Sequence[Thread]) -> bytes:
        nums = [x for x in t if isinstance(x, int)]
        subs = [x for x in t if not isinstance(x, int)]
        head = b" ".join(b"%d" % n for n in nums)
        tail = b"".join(one(s) for s in subs)
        return b"(" + head + (b" " if head and tail else b"") + tail + b")"
    return b"* THREAD " + b"".join(one(t) for t in threads) + b"\r\n" if threads else \
        b"* THREAD\r\n"

