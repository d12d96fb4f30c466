"""Serialise IMAP data values (RFC 9051 §4) to octets.

:func:`encode` turns a :data:`~kittiwake.imap.values.Value` into output
pieces: ``bytes`` runs, and :class:`~kittiwake.imap.values.FileLiteral`
objects whose literal prefix (``{n}\\r\\n``) is already in the preceding run
and whose octets the driver copies from the file. Strings are quoted when
RFC 9051 §4.3 allows it and sent as literals otherwise:

- CR, LF and NUL can only be in a literal (``TEXT-CHAR`` excludes them);
- 8-bit text is a quoted ``UTF8-2/3/4`` only when UTF-8 is on (IMAP4rev2,
  RFC 9051 §4.3, or ``ENABLE UTF8=ACCEPT``, RFC 6855 §3); else a literal;
- long strings are literals (easier for clients than kilobytes of quoting).

Pure functions, no I/O.
"""

from __future__ import annotations

import re

from kittiwake.imap.values import Atom, FileLiteral, Literal, Raw, Value

__all__ = ["Piece", "encode", "encode_bytes", "quote_or_literal"]

Piece = bytes | FileLiteral

# Longer strings go out as literals even when they could be quoted.
MAX_QUOTED = 1024
_NEEDS_LITERAL = re.compile(rb"[\r\n\0]")


def quote_or_literal(data: bytes, utf8: bool) -> bytes:
    """One IMAP string (RFC 9051 §4.3): quoted if allowed, else a literal."""
    if len(data) <= MAX_QUOTED and not _NEEDS_LITERAL.search(data) \
            and (data.isascii() or (utf8 and _is_utf8(data))):
        if b"\\" in data or b'"' in data:
            data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + data + b'"'
    return b"{%d}\r\n" % len(data) + data


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def encode(value: Value, utf8: bool = False) -> list[Piece]:
    """Serialise ``value``; see the module docstring for the pieces."""
    out: list[Piece] = []
    buf = bytearray()
    _encode(value, utf8, buf, out)
    if buf:
        out.append(bytes(buf))
    return out


def encode_bytes(value: Value, utf8: bool = False) -> bytes:
    """Serialise a value that holds no :class:`FileLiteral`."""
    pieces = encode(value, utf8)
    if any(isinstance(p, FileLiteral) for p in pieces):
        raise ValueError("value holds a FileLiteral; use encode()")
    return b"".join(pieces)  # type: ignore[arg-type]


def _encode(value: Value, utf8: bool, buf: bytearray, out: list[Piece]) -> None:
    # Dispatch on the exact type first (the common cases of a FETCH response);
    # subclasses fall through to the isinstance chain below.
    t = type(value)
    if t is str:
        buf += quote_or_literal(value.encode("utf-8"), utf8)  # type: ignore[union-attr]
    elif t is tuple or t is list:
        buf += b"("
        first = True
        for item in value:  # type: ignore[union-attr]
            if not first:
                buf += b" "
            first = False
            _encode(item, utf8, buf, out)
        buf += b")"
    elif value is None:
        buf += b"NIL"
    elif t is int:
        if value < 0:  # type: ignore[operator]
            raise ValueError(f"IMAP numbers are not negative: {value}")
        buf += b"%d" % value  # type: ignore[str-format]
    elif t is Atom:
        buf += value.text.encode("utf-8")  # type: ignore[union-attr]
    elif t is Raw:
        buf += value.data  # type: ignore[union-attr]
    elif t is bytes:
        buf += quote_or_literal(value, utf8)  # type: ignore[arg-type]
    else:
        _encode_other(value, utf8, buf, out)


def _encode_other(value: Value, utf8: bool, buf: bytearray, out: list[Piece]) -> None:
    if isinstance(value, bool):
        raise TypeError("IMAP has no boolean value")
    elif isinstance(value, int):
        if value < 0:
            raise ValueError(f"IMAP numbers are not negative: {value}")
        buf += b"%d" % value
    elif isinstance(value, str):
        buf += quote_or_literal(value.encode("utf-8"), utf8)
    elif isinstance(value, bytes):
        buf += quote_or_literal(value, utf8)
    elif isinstance(value, Atom):
        buf += value.text.encode("utf-8")
    elif isinstance(value, Raw):
        buf += value.data
    elif isinstance(value, Literal):
        buf += (b"~{%d}\r\n" if value.binary else b"{%d}\r\n") % len(value.data)
        buf += value.data
    elif isinstance(value, FileLiteral):
        buf += (b"~{%d}\r\n" if value.binary else b"{%d}\r\n") % value.length
        out.append(bytes(buf))
        buf.clear()
        out.append(value)
    elif isinstance(value, list | tuple):
        buf += b"("
        for i, item in enumerate(value):
            if i:
                buf += b" "
            _encode(item, utf8, buf, out)
        buf += b")"
    else:
        raise TypeError(f"not an IMAP value: {type(value).__name__}")
