"""A message on disk read as if it were ``bytes``, a window at a time.

The MIME parser (:func:`kittiwake.message.part.parse`) needs only a few
operations of its data: ``len``, an octet by index, a slice, ``find``,
``count`` and ``startswith``. :class:`FileBytes` offers them over a prefix
(the headers the store keeps beside the file) followed by a file, reading
with ``pread`` through one window of at most ``window`` octets. Parsing a
90 MiB message so holds about one window in memory instead of the message:
the part tree of a large delivery is built without reading the file whole
(issue 11: memory per delivery bounded whatever the message size).

Slices are real reads, so a caller asking for a huge slice gets a huge
``bytes``; the parser asks only for header sections and delimiter tails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import overload

DEFAULT_WINDOW = 1024 * 1024


class FileBytes:
    """``prefix`` followed by the file at ``path``, read-only, bytes-like enough for
    the MIME parser. Use as a context manager (or call :meth:`close`)."""

    def __init__(self, path: Path | str, prefix: bytes = b"",
                 window: int = DEFAULT_WINDOW) -> None:
        self.prefix = prefix
        self.window = max(16, window)
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            self._file_size = os.fstat(self._fd).st_size
        except OSError:
            os.close(self._fd)
            raise
        self._size = len(prefix) + self._file_size
        self._win_start = 0
        self._win = b""

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._win = b""

    def __enter__(self) -> FileBytes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self._size

    # --- reading ------------------------------------------------------------------

    def _read(self, start: int, end: int) -> bytes:
        """Octets ``[start, end)`` of prefix + file (clipped to the data)."""
        start, end = max(0, start), min(end, self._size)
        if end <= start:
            return b""
        w0 = self._win_start
        if w0 <= start and end <= w0 + len(self._win):
            return self._win[start - w0:end - w0]
        head = b""
        p = len(self.prefix)
        if start < p:
            head = self.prefix[start:min(end, p)]
            if end <= p:
                return head
            start = p
        out = bytearray(head)
        offset, want = start - p, end - start
        while want > 0:
            chunk = os.pread(self._fd, want, offset)
            if not chunk:  # the file shrank under us: what is there
                break
            out += chunk
            offset += len(chunk)
            want -= len(chunk)
        return bytes(out)

    def _window_at(self, pos: int) -> tuple[int, bytes]:
        """The cached window, moved to start at ``pos`` unless it holds ``pos``."""
        w0 = self._win_start
        if not (w0 <= pos < w0 + len(self._win)):
            self._win = b""
            self._win = self._read(pos, pos + self.window)
            self._win_start = pos
        return self._win_start, self._win

    @overload
    def __getitem__(self, key: int) -> int: ...

    @overload
    def __getitem__(self, key: slice) -> bytes: ...

    def __getitem__(self, key: int | slice) -> int | bytes:
        if isinstance(key, slice):
            start, stop, step = key.indices(self._size)
            if step != 1:
                raise ValueError("FileBytes slices take no step")
            return self._read(start, stop)
        if key < 0:
            key += self._size
        if not 0 <= key < self._size:
            raise IndexError("FileBytes index out of range")
        w0, win = self._window_at(key)
        return win[key - w0]

    def _range(self, start: int | None, end: int | None) -> tuple[int, int]:
        start = 0 if start is None else (start + self._size if start < 0 else start)
        end = self._size if end is None else (end + self._size if end < 0 else end)
        return max(0, start), min(end, self._size)

    def find(self, sub: bytes, start: int | None = None, end: int | None = None) -> int:
        """Like ``bytes.find``: the first offset of ``sub`` in ``[start, end)``, or -1."""
        start, end = self._range(start, end)
        if not sub:
            return start if start <= end else -1
        step = max(self.window - len(sub) + 1, 1)
        pos = start
        while pos + len(sub) <= end:
            chunk = self._read(pos, min(end, pos + step + len(sub) - 1))
            i = chunk.find(sub)
            if i >= 0:
                return pos + i
            pos += step
        return -1

    def count(self, sub: bytes, start: int | None = None, end: int | None = None) -> int:
        """Like ``bytes.count`` (non-overlapping occurrences in ``[start, end)``)."""
        start, end = self._range(start, end)
        if not sub:
            return max(0, end - start) + 1
        if len(sub) == 1:
            total, pos = 0, start
            while pos < end:
                upto = min(end, pos + self.window)
                total += self._read(pos, upto).count(sub)
                pos = upto
            return total
        total, pos = 0, start
        while (i := self.find(sub, pos, end)) >= 0:
            total += 1
            pos = i + len(sub)
        return total

    def startswith(self, prefix: bytes) -> bool:
        return self._read(0, len(prefix)) == prefix
