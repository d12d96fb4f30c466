"""Message data for sending, described without reading it (sans-I/O).

A :class:`MessageSource` is a prefix in memory (headers added by kittiwake:
Received, DKIM-Signature, ...) followed by a byte range of a file (the
spooled or queued message). The transaction hands it to the driver, which
reads the file in chunks of :data:`CHUNK_SIZE` and writes them, so memory
per delivery stays bounded whatever the message size.

:class:`DotStuffer` does RFC 5321 §4.5.2 transparency ("a line that starts
with a period gets one more") and the §2.3.8 line-end rule (bare CR or LF
becomes CRLF) chunk by chunk: a chunk boundary may fall anywhere, even
between CR and LF.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from kittiwake.smtp import DATA_TERMINATOR

__all__ = ["CHUNK_SIZE", "DotStuffer", "FileRange", "MessageSource"]

CHUNK_SIZE = 256 * 1024

_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_CR = re.compile(rb"\r(?!\n)")


# Byte maps for all_crlf: 1 where the byte is LF (CR), 0 elsewhere.
_LF_MAP = bytes(int(b == 10) for b in range(256))
_CR_MAP = bytes(int(b == 13) for b in range(256))


def all_crlf(data: bytes) -> bool:
    """Whether every CR and LF in ``data`` is part of a CRLF pair (no bare CR or LF).

    The LF map of ``data`` must be its CR map shifted by one: an LF exactly where
    a CR was just before. Two table lookups per byte and one comparison, where
    counting CR, LF and CRLF would take three searches."""
    return data.translate(_LF_MAP) + b"\0" == b"\0" + data.translate(_CR_MAP)


def crlf(data: bytes) -> bytes:
    """RFC 5321 §2.3.8: lines end in CRLF; bare CR and bare LF become CRLF."""
    if all_crlf(data):
        return data
    return _BARE_CR.sub(b"\r\n", _BARE_LF.sub(b"\r\n", data))


@dataclass(frozen=True, slots=True)
class FileRange:
    """``length`` bytes of the file at ``path`` from ``offset`` on."""

    path: str | os.PathLike[str]
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class MessageSource:
    """A message to send: ``prefix`` (in memory) then ``file`` (read while sending)."""

    prefix: bytes = b""
    file: FileRange | None = None

    @property
    def size(self) -> int:
        """Octets of the message as stored (RFC 1870 SIZE; the BDAT chunk size)."""
        return len(self.prefix) + (self.file.length if self.file is not None else 0)

    @classmethod
    def of(cls, data: bytes | MessageSource) -> MessageSource:
        return data if isinstance(data, MessageSource) else cls(bytes(data))


class DotStuffer:
    """DATA transparency for a message fed in chunks (RFC 5321 §4.5.2, §2.3.8).

    ``feed`` returns the bytes to send for a chunk; ``finish`` the rest: a
    CRLF if the message did not end with one, and the ``.`` line.
    """

    def __init__(self) -> None:
        self._line_start = True  # the next byte starts a line
        self._held_cr = False  # the last chunk ended in CR: its LF may come next

    def feed(self, chunk: bytes) -> bytes:
        if self._held_cr:
            chunk = b"\r" + chunk
            self._held_cr = False
        if chunk.endswith(b"\r"):
            self._held_cr = True
            chunk = chunk[:-1]
        if not chunk:
            return b""
        chunk = crlf(chunk)
        out = chunk.replace(b"\r\n.", b"\r\n..")
        if self._line_start and out.startswith(b"."):
            out = b"." + out
        self._line_start = chunk.endswith(b"\r\n")
        return out

    def finish(self) -> bytes:
        tail = b""
        if self._held_cr:
            self._held_cr = False
            tail, self._line_start = b"\r\n", True
        if not self._line_start:
            tail += b"\r\n"
        self._line_start = True
        return tail + DATA_TERMINATOR

    @classmethod
    def stuff(cls, data: bytes) -> bytes:
        """The whole transparent DATA body of ``data``, terminator included."""
        stuffer = cls()
        return stuffer.feed(data) + stuffer.finish()
