"""Header sections (RFC 5322 §2.2, §3.6; RFC 6532 for raw UTF-8): parse, read, fold.

:func:`parse_header_section` splits the header fields at the start of a
message or MIME part and finds where the body starts, tolerating bare LF,
8-bit bytes, NULs and a missing blank line. Each :class:`Header` keeps its
exact raw bytes; values are unfolded (RFC 5322 §2.2.3) and decoded as UTF-8
(RFC 6532 §3.2) with a windows-1252/latin-1 fallback for legacy 8-bit text.
:func:`fold_header` formats a field for sending, folded at 78 characters
where whitespace allows (RFC 5322 §2.1.1, §2.2.3).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import overload

from kittiwake.message.charset import decode_legacy
from kittiwake.message.filebytes import FileBytes
from kittiwake.message.rfc2047 import decode_words

# RFC 5322 §3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126;
# RFC 5322 §4.5 (obsolete syntax) allows white space before the colon.
_FIELD_START = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
# A field line and the continuation lines after it (RFC 5322 §2.2.3), each ending in LF.
_FIELD_LINES = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n)*")


@dataclass(frozen=True, slots=True)
class Header:
    """One header field: its name as written and its exact bytes (with line ending)."""

    name: str
    raw: bytes

    def __reduce__(self) -> tuple[type[Header], tuple[str, bytes]]:
        # The constructor, not dataclasses' generic per-field state (several times
        # cheaper to unpickle: header sections cross the SMTP workers' channel).
        return Header, (self.name, self.raw)

    @property
    def key(self) -> str:
        """The lowercased field name, for comparisons (RFC 5322 §1.2.2)."""
        return self.name.lower()

    @property
    def raw_value(self) -> bytes:
        """The bytes after the colon, unfolded, without the line ending and outer blanks."""
        colon = self.raw.find(b":")
        value = self.raw[colon + 1 :]
        nl = value.find(b"\n")
        if nl >= 0 and nl != len(value) - 1:  # else a one-line field: nothing to unfold
            value = _FOLD.sub(b"", value)
        return value.strip(b" \t\r\n")

    @property
    def value(self) -> str:
        """The unfolded value as text; encoded words are left encoded."""
        return decode_legacy(self.raw_value)

    @property
    def decoded(self) -> str:
        """The value with RFC 2047 encoded words decoded (for unstructured fields)."""
        return decode_words(self.value)


class Headers(Sequence[Header]):
    """The ordered header fields of a message or part; lookups are case-insensitive."""

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: Sequence[Header] = ()) -> None:
        self._fields: tuple[Header, ...] = tuple(fields)
        self._index: dict[str, list[Header]] | None = None

    def _by_key(self) -> dict[str, list[Header]]:
        if self._index is None:
            index: dict[str, list[Header]] = {}
            for h in self._fields:
                index.setdefault(h.key, []).append(h)
            self._index = index
        return self._index

    @overload
    def __getitem__(self, i: int) -> Header: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Header]: ...
    def __getitem__(self, i: int | slice) -> Header | Sequence[Header]:
        return self._fields[i]

    def __len__(self) -> int:
        return len(self._fields)

    def __iter__(self) -> Iterator[Header]:
        return iter(self._fields)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, Header):
            return name in self._fields
        return isinstance(name, str) and name.lower() in self._by_key()

    def __repr__(self) -> str:
        return f"Headers({[h.name for h in self._fields]!r})"

    def __reduce__(self) -> tuple[type[Headers], tuple[tuple[Header, ...]]]:
        return Headers, (self._fields,)  # the index is built again when asked

    def fields(self, name: str) -> list[Header]:
        """All fields called ``name``, in order."""
        return list(self._by_key().get(name.lower(), ()))

    def first(self, name: str) -> Header | None:
        """The first field called ``name``."""
        found = self._by_key().get(name.lower())
        return found[0] if found else None

    def get(self, name: str, default: str | None = None) -> str | None:
        """The unfolded value of the first field called ``name``."""
        h = self.first(name)
        return h.value if h is not None else default

    def get_all(self, name: str) -> list[str]:
        """The unfolded values of every field called ``name``, in order."""
        return [h.value for h in self._by_key().get(name.lower(), ())]

    def decoded(self, name: str, default: str | None = None) -> str | None:
        """The first ``name`` field with RFC 2047 words decoded."""
        h = self.first(name)
        return h.decoded if h is not None else default

    def count(self, name: object) -> int:  # type: ignore[override]
        """How many fields are called ``name`` (e.g. Received, for loop detection)."""
        if isinstance(name, Header):
            return self._fields.count(name)
        if not isinstance(name, str):
            return 0
        return len(self._by_key().get(name.lower(), ()))

    def raw(self) -> bytes:
        """All fields' bytes, in order (without the blank line ending the section)."""
        return b"".join(h.raw for h in self._fields)


def parse_header_section(
    data: bytes, start: int = 0, end: int | None = None
) -> tuple[Headers, int]:
    """Parse header fields in ``data[start:end]``; return them and the body's offset.

    RFC 5322 §2.1: the header section ends at the first empty line, and the
    body starts after it. A line that is neither a field nor a continuation
    ends the section too: the body starts at that line (as Python's email
    package does). Without an empty line (a truncated message) the whole
    range is header and the body offset is ``end``.
    """
    headers, body, _how = scan_header_section(data, start, end)
    return headers, body


def scan_header_section(
    data: bytes | FileBytes, start: int = 0, end: int | None = None
) -> tuple[Headers, int, str]:
    """Like :func:`parse_header_section`, plus how the section ended:
    ``"blank"`` (an empty line), ``"line"`` (a line that is not a field) or
    ``"end"`` (the end of the range). ``data`` may be a
    :class:`~kittiwake.message.filebytes.FileBytes` (a message on disk)."""
    in_memory = isinstance(data, bytes)
    if end is None or end > len(data):
        end = len(data)
    start = max(0, min(start, end))
    fields: list[Header] = []
    cur_start = -1
    cur_name = ""
    pos = start
    while pos < end:
        whole = _FIELD_LINES.match(data, pos, end) if in_memory else None
        if whole is not None:  # a field with its complete continuation lines at once
            if cur_start >= 0:
                fields.append(Header(cur_name, data[cur_start:pos]))
            cur_start = pos
            cur_name = whole.group(1).decode("ascii")
            pos = whole.end()
            continue
        nl = data.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        first = data[pos]
        if first in b"\r\n" and data[pos:line_end].rstrip(b"\r\n") == b"":
            if cur_start >= 0:
                fields.append(Header(cur_name, data[cur_start:pos]))
            return Headers(fields), line_end, "blank"
        if first in b" \t" and cur_start >= 0:
            pos = line_end  # RFC 5322 §2.2.3: a folded continuation line
            continue
        m = _FIELD_START.match(data, pos, line_end) if in_memory else \
            _FIELD_START.match(data[pos:line_end])
        if m is None:
            if cur_start >= 0:
                fields.append(Header(cur_name, data[cur_start:pos]))
            return Headers(fields), pos, "line"
        if cur_start >= 0:
            fields.append(Header(cur_name, data[cur_start:pos]))
        cur_start = pos
        cur_name = m.group(1).decode("ascii")
        pos = line_end
    if cur_start >= 0:
        fields.append(Header(cur_name, data[cur_start:end]))
    return Headers(fields), end, "end"


# A header section of plain field lines (each with its continuation lines), for
# named_fields: what scan_header_section would read as fields, line by line.
_PLAIN_SECTION = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n)*)*")


@lru_cache(maxsize=16)
def _named(names: tuple[str, ...]) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(n.encode("ascii")) for n in names)
    return re.compile(rb"^(" + alternatives + rb")[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n)*",
                      re.IGNORECASE | re.MULTILINE)


def named_fields(data: bytes, names: tuple[str, ...],
                 start: int = 0) -> tuple[Headers, str] | None:
    """The fields called one of ``names`` in the header section at ``data[start:]``,
    as :func:`scan_header_section` finds them, and how the section ended
    (``"blank"``, or ``"end"`` of the data after a complete line), without taking
    the other fields apart (two regular expressions, no loop over lines). None
    when the section is not plainly formed (its field lines are followed by
    something else than an empty line): then :func:`scan_header_section` decides."""
    end = _PLAIN_SECTION.match(data, start).end()  # type: ignore[union-attr]
    if end == len(data):
        how = "end"
    elif data[end:end + 2] == b"\r\n" or data[end:end + 1] == b"\n":
        how = "blank"
    else:
        return None
    return Headers([Header(m.group(1).decode("ascii"), m.group(0))
                    for m in _named(names).finditer(data, start, end)]), how


# Explicit folds in a value: CRLF (or bare LF) before white space (RFC 5322 §2.2.3).
_EXPLICIT_FOLD = re.compile(r"\r?\n(?=[ \t])")


def unfold(value: str) -> str:
    """RFC 5322 §2.2.3: remove CRLF (or bare LF) that precedes white space."""
    return _EXPLICIT_FOLD.sub("", value)


def _explicit_folds(value: str) -> list[str]:
    """``value`` split at its explicit folds; without the regular expression when every
    LF is in a CRLF followed by white space (the folds our own headers have)."""
    if value.count("\n") == value.count("\r\n ") + value.count("\r\n\t"):
        return value.split("\r\n")
    return _EXPLICIT_FOLD.split(value)


def _quoted_end(text: str, start: int) -> int:
    """The index after the quoted string opened at ``text[start]`` (RFC 5322 §3.2.4:
    a backslash quotes the next character), or ``len(text)`` when it is unterminated."""
    pos = start + 1
    while True:
        quote = text.find('"', pos)
        stop = len(text) if quote < 0 else quote
        backslash = text.find("\\", pos, stop)
        if backslash < 0:
            return stop if quote < 0 else quote + 1
        pos = backslash + 2


def _shadow(text: str) -> str:
    """``text`` with every quoted string blanked out (same length, no white space
    inside them), so that only white space outside quoted strings is found."""
    quote = text.find('"')
    if quote < 0:
        return text
    parts: list[str] = []
    pos = 0
    while quote >= 0:
        end = _quoted_end(text, quote)
        parts.append(text[pos:quote])
        parts.append("x" * (end - quote))
        pos = end
        quote = text.find('"', end)
    parts.append(text[pos:])
    return "".join(parts)


def _break_at(shadow: str, start: int, limit: int) -> int:
    """Where the line starting at ``start`` ends: the last fold point (the start of
    a white-space run) in ``(start, limit]``, else the first one after the line's
    first word, else the end of the text."""
    last = -1
    if limit > start:
        last = max(shadow.rfind(" ", start + 1, limit + 1),
                   shadow.rfind("\t", start + 1, limit + 1))
    if last > start:
        while last > start and shadow[last - 1] in " \t":
            last -= 1
        if last > start:
            return last
    word = start
    while word < len(shadow) and shadow[word] in " \t":
        word += 1
    stops = [i for i in (shadow.find(" ", word), shadow.find("\t", word)) if i >= 0]
    return min(stops) if stops else len(shadow)


def _fold_piece(out: list[str], prefix: str, text: str, width: int) -> None:
    """Append the lines of one unfolded piece of a value, the first after ``prefix``."""
    if len(prefix) + len(text) <= width:
        out.append(prefix + text)  # it fits as it is
        return
    shadow = _shadow(text)
    start = 0
    room = width - len(prefix)
    while len(text) - start > room:
        end = _break_at(shadow, start, start + room)
        if end >= len(text):
            break
        out.append(prefix + text[start:end])
        prefix = ""
        room = width
        start = end
    out.append(prefix + text[start:])


def fold_header(name: str, value: str, width: int = 78) -> str:
    """``Name: value\\r\\n`` folded before white space so lines stay within ``width``.

    Explicit folds already in ``value`` (CRLF followed by a space or tab) are
    kept; a continuation that would be empty or blank is dropped, since such a
    line would end the header section (RFC 5322 §2.2.3, §3.2.2). A fold point is
    white space outside quoted strings: folding inside one is legal (RFC 5322
    §3.2.4) but some readers keep the CRLF. A word (or quoted string) longer
    than a line is not broken (RFC 5322 §2.1.1 "where possible"). Any other CR
    or LF is replaced by a space, so a value can never inject another header field.
    """
    value = value.strip(" \t\r\n")
    pieces = _explicit_folds(value) if "\n" in value else (value,)
    out: list[str] = []
    prefix = f"{name}: "
    for text in pieces:
        if "\r" in text or "\n" in text:
            text = text.replace("\r", " ").replace("\n", " ")
        text = text.rstrip(" \t")
        if text or not out:
            _fold_piece(out, prefix, text, width)
        prefix = ""
    return "\r\n".join(out) + "\r\n"
