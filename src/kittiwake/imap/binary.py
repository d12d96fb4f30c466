"""FETCH BINARY[section]<partial> and BINARY.SIZE[section] (RFC 3516 §4).

BINARY is a part's body with its Content-Transfer-Encoding undone
(RFC 2045 §6): base64 and quoted-printable are decoded (tolerantly, as
:func:`kittiwake.message.body.decode_transfer` does: damaged base64
yields what it can, never an error), 7bit/8bit/binary bodies are sent as
stored, straight from the message file. ``BINARY[]`` is the whole message.
A part whose encoding we do not know gets :class:`UnknownCTE`: the
command then fails with ``NO [UNKNOWN-CTE]`` (RFC 3516 §4; the response
code is also listed in RFC 9051 §7.1). A section that does not exist is the
empty string (as for BODY[], see :mod:`kittiwake.imap.sections`).

BINARY.SIZE is the length of that decoded content. The data goes out as
literal8 (``~{n}``) only when it may hold NUL octets: decoded content with
a NUL in it, or a body declared ``binary``; other 8-bit data "SHOULD" be
a plain string (RFC 3516 §4.3, as corrected by erratum 3978).

Pure functions; the caller gives the body octets of encoded parts (see
:func:`locate_binary`) or reads them with :func:`kittiwake.imap.sections.read_span`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kittiwake.imap.section import Partial
from kittiwake.imap.sections import Span, partial_bytes, partial_span, section_part
from kittiwake.imap.values import FileLiteral, Literal
from kittiwake.message.body import decode_transfer
from kittiwake.message.part import Part

__all__ = ["DECODED_ENCODINGS", "IDENTITY_ENCODINGS", "Decode", "UnknownCTE",
           "binary_bytes", "binary_size", "binary_value", "locate_binary"]

IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})
DECODED_ENCODINGS = frozenset({"base64", "quoted-printable"})


@dataclass(frozen=True, slots=True)
class UnknownCTE:
    """The part's transfer encoding is not one we can decode (``[UNKNOWN-CTE]``)."""

    encoding: str


@dataclass(frozen=True, slots=True)
class Decode:
    """The body at ``span`` must be decoded from ``encoding`` first."""

    span: Span
    encoding: str


def locate_binary(root: Part, nums: tuple[int, ...]) -> Span | Decode | UnknownCTE:
    """What BINARY[nums] is made of: a span sent as stored, a span to decode, or the error."""
    if not nums:
        return Span(root.header_start, max(0, root.end - root.header_start))
    part = section_part(root, nums)
    if part is None:
        return Span(0, 0)
    span = Span(part.body_start, max(0, part.end - part.body_start))
    enc = part.encoding.lower()
    if enc in IDENTITY_ENCODINGS:
        return span
    if enc in DECODED_ENCODINGS:
        return Decode(span, enc)
    return UnknownCTE(part.encoding)


def binary_bytes(root: Part, nums: tuple[int, ...], data: bytes,
                 part: Partial | None = None) -> bytes | UnknownCTE:
    """The decoded content of BINARY[nums]<part> of the message in ``data``."""
    where = locate_binary(root, nums)
    if isinstance(where, UnknownCTE):
        return where
    if isinstance(where, Decode):
        body = data[where.span.offset : where.span.end]
        return partial_bytes(decode_transfer(body, where.encoding), part)
    span = partial_span(where, part)
    return data[span.offset : span.end]


def binary_size(root: Part, nums: tuple[int, ...],
                read: Callable[[Span], bytes]) -> int | UnknownCTE:
    """BINARY.SIZE[nums]: octets of the decoded content. ``read`` gives the body
    octets of an encoded part (identity parts need no reading)."""
    where = locate_binary(root, nums)
    if isinstance(where, UnknownCTE):
        return where
    if isinstance(where, Decode):
        return len(decode_transfer(read(where.span), where.encoding))
    return where.length


def binary_value(root: Part, nums: tuple[int, ...], path: str, part: Partial | None,
                 read: Callable[[Span], bytes]) -> FileLiteral | Literal | UnknownCTE:
    """The value of a BINARY[nums]<part> item for the message file ``path``.

    Parts sent as stored stream from the file; decoded content is built in
    memory from the body octets ``read`` returns.
    """
    where = locate_binary(root, nums)
    if isinstance(where, UnknownCTE):
        return where
    if isinstance(where, Decode):
        out = partial_bytes(decode_transfer(read(where.span), where.encoding), part)
        return Literal(out, binary=b"\0" in out)
    span = partial_span(where, part)
    if span.length == 0:
        return Literal(b"", binary=False)
    target = section_part(root, nums) if nums else None
    declared_binary = target is not None and target.encoding.lower() == "binary"
    return FileLiteral(path, span.offset, span.length, binary=declared_binary)
