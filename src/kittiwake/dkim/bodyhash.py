"""The DKIM body hash computed while the body arrives (RFC 6376 §3.4.3, §3.4.4, §3.7).

:func:`kittiwake.dkim.canon.body_hash` needs the whole body in memory. A
:class:`BodyHasher` takes it in chunks of any size (as an SMTP server
receives them) and gives the same digest: complete lines are canonicalized
and hashed at once, a partial line waits for the next chunk, and empty lines
are only counted until a non-empty line shows they are not at the end (both
canonicalizations drop empty lines at the end of the body). Memory is one
partial line plus a counter, whatever the body's size.

Bare LF line ends count as CRLF, as :func:`~kittiwake.dkim.canon.split_message`
treats them.
"""

from __future__ import annotations

import hashlib

from kittiwake.dkim.canon import _BARE_LF, _TRAILING_WSP, _WSP_RUN, CRLF, Canon


class BodyHasher:
    """SHA-256 of a body's canonical form, fed in chunks; ``length`` is l= (§3.5)."""

    def __init__(self, canon: Canon, length: int | None = None) -> None:
        self.canon = canon
        self.length = length
        self._sha = hashlib.sha256()
        self._partial = b""        # the start of a line whose end has not arrived
        self._empty_lines = 0      # empty lines held back: they may be the body's end
        self._size = 0             # canonical octets so far (emitted)
        self._done: tuple[bytes, int] | None = None

    def update(self, chunk: bytes) -> None:
        if self._done is not None:
            raise ValueError("update after digest")
        if not chunk:
            return
        data = self._partial + chunk if self._partial else chunk
        end = data.rfind(b"\n")
        if end < 0:
            self._partial = data
            return
        self._partial = data[end + 1:]
        self._lines(data[:end + 1])

    def _lines(self, block: bytes) -> None:
        """Canonicalize and hash complete lines (``block`` ends with a line end)."""
        # The substitutions only where they would change something: the searches
        # are much cheaper than the regular expressions on typical text.
        if block.count(b"\n") != block.count(CRLF):
            block = _BARE_LF.sub(CRLF, block)
        if self.canon is Canon.RELAXED:
            # §3.4.4: delete WSP at line ends, reduce WSP runs to one SP.
            if b" \r\n" in block or b"\t\r\n" in block:
                block = _TRAILING_WSP.sub(b"", block)
            if b"\t" in block or b"  " in block:
                block = _WSP_RUN.sub(b" ", block)
        end = len(block)
        while end >= 2 and block[end - 2:end] == CRLF:
            end -= 2
        trailing = (len(block) - end) // 2   # line ends after the last non-empty line
        if end == 0:                         # only empty lines: hold them all back
            self._empty_lines += trailing
            return
        if self._empty_lines:
            self._emit(CRLF * self._empty_lines)
        self._emit(block[:end + 2])          # up to and including the last non-empty line
        self._empty_lines = trailing - 1

    def _emit(self, data: bytes) -> None:
        if self.length is None:
            self._sha.update(data)
        elif self._size < self.length:
            self._sha.update(data[:self.length - self._size])
        self._size += len(data)

    def digest(self) -> tuple[bytes, int]:
        """The digest and the canonical body's full length (as ``body_hash`` returns)."""
        if self._done is None:
            if self._partial:                # §3.4.3/§3.4.4: a last line without CRLF gets one
                partial, self._partial = self._partial, b""
                self._lines(partial + CRLF)
            if self.canon is Canon.SIMPLE and self._size == 0:
                self._emit(CRLF)             # §3.4.3: an empty body is one CRLF
            self._done = (self._sha.digest(), self._size)
        return self._done
