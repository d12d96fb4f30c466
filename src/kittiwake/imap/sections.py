"""FETCH BODY[section]<partial> (RFC 9051 §6.4.5) resolved against a part tree.

:func:`locate` maps a :class:`~kittiwake.imap.section.Section` to what to
send, without reading the message:

- a :class:`Span` of the message file for byte-exact sections (``BODY[]``,
  ``HEADER``, ``TEXT``, ``MIME``, ``BODY[1.2]``), so a large part streams
  from the file (:class:`~kittiwake.imap.values.FileLiteral`);
- a :class:`FieldsOf` (a header span plus the field names) for
  ``HEADER.FIELDS`` / ``HEADER.FIELDS.NOT``, which are built from the
  header bytes by :func:`header_fields`.

Part numbering (RFC 9051 §6.4.5): parts of a multipart are numbered from
1; a non-multipart message has one part, 1, its body; a message/rfc822
(or message/global) part followed by more numbers continues in the
encapsulated message. ``HEADER``, ``HEADER.FIELDS(.NOT)`` and ``TEXT``
after part numbers need a message/rfc822 part (then they are the
encapsulated message's header and body); ``MIME`` is a part's own MIME
header, which for part 1 of a non-multipart message is the message header.

A section that does not exist is the empty string, not an error: RFC 9051
defines no error for it, and Dovecot (compared in
tests/imap/test_fetch_dovecot.py) answers ``{0}`` too. One difference is
kept on purpose: Dovecot also answers ``BODY[2.1.1]`` for a text part 2.1
with the part itself; RFC 9051 §6.4.5 gives part numbers below a
non-multipart part only to a message, so ours is empty.

``HEADER.FIELDS`` keeps the original field lines (all occurrences, in
message order, folding intact) and ends with the empty line, as
``BODY[HEADER]`` does (with the message's own line ends: CRLF, or LF in a
file stored with bare LF); field names match case-insensitively (RFC 5322
§1.2.2).

``<origin.count>`` (:func:`partial_span`, :func:`partial_bytes`): the octets
from ``origin``, at most ``count`` of them; an origin past the end gives the
empty string.

NUL octets: a literal is ``*CHAR8`` and CHAR8 excludes NUL (RFC 9051 §4.3,
§9), so BODY[] data cannot carry one; only BINARY's literal8 can (RFC 3516
§4.3). Built values (:class:`~kittiwake.imap.values.Literal`) have NUL
replaced by 0x80 here (:func:`literal_safe`, what Dovecot does too); for a
streamed :class:`~kittiwake.imap.values.FileLiteral` that is not binary the
driver applies :func:`literal_safe` to each chunk it copies (same length,
so the announced size stays right).

Everything here is pure except :func:`read_span`, the one helper that
reads a file (callers pass it, or their own reader, to :func:`fetch_value`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from kittiwake.imap.section import Partial, Section, SectionText
from kittiwake.imap.values import FileLiteral, Literal
from kittiwake.message.headers import parse_header_section
from kittiwake.message.part import Defect, Part

__all__ = ["EMPTY", "FieldPicker", "FieldsOf", "Span", "fetch_value", "header_fields",
           "literal_safe", "locate", "partial_bytes", "partial_span", "read_span",
           "regular_header", "section_bytes", "section_part"]


@dataclass(frozen=True, slots=True)
class Span:
    """``length`` octets of the message at ``offset``."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


EMPTY = Span(0, 0)


@dataclass(frozen=True, slots=True)
class FieldsOf:
    """HEADER.FIELDS(.NOT): the fields named (upper case) of the header at ``span``."""

    span: Span
    fields: tuple[str, ...]
    exclude: bool
    blank_line: bool = True


def literal_safe(data: bytes) -> bytes:
    """``data`` with NUL octets (not allowed in a literal, RFC 9051 §4.3) made 0x80."""
    return data.replace(b"\0", b"\x80") if b"\0" in data else data


def _span(start: int, end: int) -> Span:
    return Span(start, max(0, end - start))


def section_part(root: Part, nums: tuple[int, ...]) -> Part | None:
    """The part ``nums`` names (RFC 9051 §6.4.5), the message itself for ``()``."""
    if not nums:
        return root
    return root.section(list(nums))


def locate(root: Part, section: Section) -> Span | FieldsOf:
    """Where the octets of ``section`` are; :data:`EMPTY` if it does not exist."""
    part = section_part(root, section.part)
    if part is None:
        return EMPTY
    text = section.text
    if text is None:
        if not section.part:  # BODY[]: the whole message
            return _span(root.header_start, root.end)
        return _span(part.body_start, part.end)
    if text is SectionText.MIME:
        if not section.part:
            return EMPTY  # RFC 9051 §6.4.5: MIME must follow a part number
        return _span(part.header_start, part.body_start)
    if section.part:
        # HEADER/TEXT after part numbers: only of an encapsulated message.
        if part.message is None:
            return EMPTY
        part = part.message
    if text is SectionText.TEXT:
        return _span(part.body_start, part.end)
    header = _span(part.header_start, part.body_start)
    if text is SectionText.HEADER:
        return header
    # RFC 9051 §6.4.5: no blank line for "a message which has no body and no blank line".
    return FieldsOf(header, section.fields, text is SectionText.HEADER_FIELDS_NOT,
                    Defect.TRUNCATED_HEADER not in part.defects)


def header_fields(header: bytes, fields: tuple[str, ...], exclude: bool,
                  blank_line: bool = True) -> bytes:
    """The field lines of ``header`` named in ``fields`` (or all others when
    ``exclude``), as written, in order, followed by the empty line (unless
    ``blank_line`` is false: a message without body and blank line)."""
    wanted = {f.lower() for f in fields}
    headers, _ = parse_header_section(header)
    out = [h.raw for h in headers if (h.key in wanted) != exclude]
    return _field_lines(b"".join(out), header, blank_line)


def _field_lines(lines: bytes, header: bytes, blank_line: bool) -> bytes:
    # The message's own line end: a bare-LF message stays bare LF, as BODY[HEADER] does.
    eol = b"\n" if header.endswith(b"\n") and not header.endswith(b"\r\n") else b"\r\n"
    if lines and not lines.endswith(b"\n"):  # a last field without its line end
        lines += eol
    return lines + eol if blank_line else lines


def regular_header(header: bytes) -> bool:
    """Whether ``header`` (a header section's octets) is field lines, their
    continuations and at most a final empty line, all of it read as header by
    :func:`parse_header_section`: then :class:`FieldPicker` answers for it."""
    _, body = parse_header_section(header)
    return body == len(header)


_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")


class FieldPicker:
    """:func:`header_fields` for one list of field names (not ``.NOT``), by one
    regular expression over the header octets instead of a parse per message.

    For a :func:`regular_header` it gives the same octets: a field starts a line
    with its name (RFC 5322 §2.2: printable US-ASCII but colon), optional white
    space and a colon, and runs to the next line that does not start with white
    space (§2.2.3 folding); names compare ASCII-case-insensitively (§1.2.2).
    """

    __slots__ = ("_after_newline", "_pattern")

    def __init__(self, fields: tuple[str, ...]) -> None:
        # Lowered as header_fields does; a name no field can have never matches.
        names = sorted(n for n in {f.lower() for f in fields}
                       if n.isascii() and _FIELD_NAME.fullmatch(n))
        alternatives = b"|".join(re.escape(n.encode("ascii")) for n in names)
        field = rb"(?:" + alternatives + rb")[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*"
        self._pattern = re.compile(rb"^" + field + rb"(?:\n|\Z)",
                                   re.IGNORECASE | re.MULTILINE) if names else None
        # The same fields without their last LF, each after an LF: a search for
        # that literal first is much faster than trying "^" at every octet.
        self._after_newline = re.compile(rb"\n(" + field + rb")", re.IGNORECASE) \
            if names else None

    def pick(self, header: bytes, blank_line: bool = True) -> bytes:
        if self._pattern is None or self._after_newline is None:
            lines = b""
        elif header.endswith(b"\n"):  # so every field line ends with LF
            found = self._after_newline.findall(b"\n" + header)
            lines = b"\n".join(found) + b"\n" if found else b""
        else:
            lines = b"".join(self._pattern.findall(header))
        return _field_lines(lines, header, blank_line)


def partial_span(span: Span, part: Partial | None) -> Span:
    """Apply ``<origin.count>`` (RFC 9051 §6.4.5) to a span; past the end is empty."""
    if part is None:
        return span
    origin = max(0, part.origin)
    if origin >= span.length:
        return Span(span.end, 0)
    return Span(span.offset + origin, min(max(0, part.count), span.length - origin))


def partial_bytes(data: bytes, part: Partial | None) -> bytes:
    """Apply ``<origin.count>`` (RFC 9051 §6.4.5) to octets built in memory."""
    if part is None:
        return data
    origin = max(0, part.origin)
    return data[origin : origin + max(0, part.count)]


def section_bytes(root: Part, section: Section, data: bytes,
                  part: Partial | None = None) -> bytes:
    """The octets of ``section`` of the message held in ``data`` (in memory), as
    stored (apply :func:`literal_safe` before sending them in a literal)."""
    where = locate(root, section)
    if isinstance(where, FieldsOf):
        header = data[where.span.offset : where.span.end]
        out = header_fields(header, where.fields, where.exclude, where.blank_line)
        return partial_bytes(out, part)
    span = partial_span(where, part)
    return data[span.offset : span.end]


def read_span(path: str | os.PathLike[str], span: Span) -> bytes:
    """Read ``span`` of the message file at ``path`` (the only I/O here)."""
    with open(path, "rb") as f:
        f.seek(span.offset)
        return f.read(span.length)


def fetch_value(root: Part, section: Section, path: str, part: Partial | None,
                read: Callable[[Span], bytes]) -> FileLiteral | Literal:
    """The value of a BODY[section]<partial> item for the message file ``path``.

    Byte-exact sections become a :class:`FileLiteral` of the file (streamed
    by the driver). HEADER.FIELDS(.NOT) need the header octets: they come
    from ``read`` (e.g. ``functools.partial(read_span, path)``, run in a
    worker thread, or a slice of bytes already in memory).
    """
    where = locate(root, section)
    if isinstance(where, FieldsOf):
        out = header_fields(read(where.span), where.fields, where.exclude, where.blank_line)
        return Literal(literal_safe(partial_bytes(out, part)))
    span = partial_span(where, part)
    if span.length == 0:
        return Literal(b"")
    return FileLiteral(path, span.offset, span.length)
