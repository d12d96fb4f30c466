"""IMAP data values (RFC 9051 §4): the typed values responses are made of.

Everything the server says beyond fixed text is built from these, and only
the response writer turns them into bytes (quoting, literals, NIL):

- ``None``: NIL (RFC 9051 §4.5);
- ``int``: a number (RFC 9051 §4.2), never negative;
- ``str``: a string (RFC 9051 §4.3), written quoted when it can be and as a
  literal otherwise (CR, LF, NUL, 8-bit text without UTF8=ACCEPT, length);
- ``bytes``: a string of octets, written the same way;
- :class:`Atom`: written as it is (flags, keywords, status items, ``OK``);
- :class:`Literal`: a string always written as a literal, ``~{n}`` (literal8,
  RFC 3516 §4.2) when ``binary``;
- :class:`FileLiteral`: a literal whose octets are a span of a file, so a
  large body section streams from the message file and is never built in
  memory; the writer emits it as a piece of its own for the driver to copy;
- a ``list`` or ``tuple``: a parenthesized list (RFC 9051 §4.4);
- :class:`Raw`: octets written unchanged (already-formatted syntax such as a
  section spec ``BODY[1.2.HEADER.FIELDS (FROM)]<0>``).

Pure data, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Atom", "FileLiteral", "Literal", "Raw", "Value"]


@dataclass(frozen=True, slots=True)
class Atom:
    """An atom or flag written verbatim (``\\Seen``, ``$Junk``, ``UIDNEXT``)."""

    text: str


@dataclass(frozen=True, slots=True)
class Raw:
    """Octets written unchanged; the caller vouches for their syntax."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Literal:
    """A string always sent as a literal (RFC 9051 §4.3), literal8 if binary."""

    data: bytes
    binary: bool = False


@dataclass(frozen=True, slots=True)
class FileLiteral:
    """A literal of ``length`` octets read from ``path`` at ``offset``.

    ``binary`` makes it a literal8 (RFC 3516). The writer emits the literal
    prefix and then this object as its own output piece; the driver copies
    the span from the file to the socket.
    """

    path: str
    offset: int
    length: int
    binary: bool = False


Value = None | int | str | bytes | Atom | Raw | Literal | FileLiteral | Sequence["Value"]
