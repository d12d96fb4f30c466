"""Read IMAP FETCH responses back into plain Python values, for comparisons.

``(NIL "a" {3}\\r\\nabc 12 (x))`` becomes ``[None, b"a", b"abc", 12, [b"x"]]``:
strings (quoted or literal, literal8 too) and atoms are ``bytes``, NIL is
None, numbers are ``int``. Quoted-versus-literal and the exact spacing are
thereby gone: they carry no meaning (RFC 9051 §4.3).
"""

from __future__ import annotations

import re

Parsed = None | int | bytes | list["Parsed"]

_ATOM = re.compile(rb"[^\s()\"{}\[\]]+")
_NUMBER = re.compile(rb"\d+\Z")
_LITERAL = re.compile(rb"~?\{(\d+)\+?\}\r\n")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in b" \r\n":
            self.pos += 1

    def value(self) -> Parsed:
        self.skip_space()
        d = self.data
        c = d[self.pos : self.pos + 1]
        if c == b"(":
            self.pos += 1
            out: list[Parsed] = []
            while True:
                self.skip_space()
                if d[self.pos : self.pos + 1] == b")":
                    self.pos += 1
                    return out
                out.append(self.value())
        if c == b'"':
            i = self.pos + 1
            buf = bytearray()
            while d[i : i + 1] != b'"':
                if d[i : i + 1] == b"\\":
                    i += 1
                buf += d[i : i + 1]
                i += 1
            self.pos = i + 1
            return bytes(buf)
        m = _LITERAL.match(d, self.pos)
        if m:
            n = int(m.group(1))
            start = m.end()
            self.pos = start + n
            return d[start : start + n]
        m = _ATOM.match(d, self.pos)
        if m is None:
            raise ValueError(f"cannot read IMAP value at {d[self.pos:self.pos + 40]!r}")
        self.pos = m.end()
        word = m.group(0)
        if word == b"NIL":
            return None
        if _NUMBER.match(word):
            return int(word)
        return word

    def item_name(self) -> bytes:
        """``BODY[1.HEADER.FIELDS (A B)]<0>`` and plain names like ``ENVELOPE``."""
        self.skip_space()
        d = self.data
        start = self.pos
        while self.pos < len(d) and d[self.pos : self.pos + 1] not in (b" ", b"["):
            self.pos += 1
        if d[self.pos : self.pos + 1] == b"[":
            self.pos = d.index(b"]", self.pos) + 1
            if d[self.pos : self.pos + 1] == b"<":
                self.pos = d.index(b">", self.pos) + 1
        return d[start : self.pos]


def read_value(data: bytes) -> Parsed:
    """One IMAP value serialised as ``data`` (e.g. our encode_bytes output)."""
    return _Reader(data).value()


def read_fetch(response: bytes) -> dict[bytes, Parsed]:
    """The items of one ``* N FETCH (...)`` response, by upper-cased item name."""
    i = response.index(b"FETCH (") + len(b"FETCH (")
    r = _Reader(response)
    r.pos = i
    out: dict[bytes, Parsed] = {}
    while True:
        r.skip_space()
        if response[r.pos : r.pos + 1] == b")":
            return out
        name = r.item_name().upper()
        out[name] = r.value()
