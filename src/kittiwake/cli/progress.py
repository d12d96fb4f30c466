"""Progress display for long CLI operations (imports, exports, queue operations).

On a terminal, one status line rewritten in place; otherwise (logs, CI) a
line every few seconds, so long runs always show they are alive. The first
line comes after one interval (not at the first item), and :meth:`Progress.done`
writes the final line once: a run shorter than the interval shows one line.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts items and bytes and shows the rate."""

    def __init__(self, what: str, total_bytes: int = 0, interval: float = 5.0) -> None:
        self.what = what
        self.total_bytes = total_bytes
        self.start = time.monotonic()
        self.last = self.start  # the first line after one interval, not at the first item
        self.shown: tuple[int, int] | None = None  # count and bytes of the last line written
        self.tty = sys.stderr.isatty()
        self.interval = 0.2 if self.tty else interval
        self.count = 0
        self.bytes = 0

    def update(self, count: int, nbytes: int = 0) -> None:
        self.count, self.bytes = count, nbytes
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._show(final=False)

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        text = f"{self.what} {self.count:,} messages"
        if self.bytes:
            text += f" ({human_bytes(self.bytes)}"
            if self.total_bytes:
                text += f" of {human_bytes(self.total_bytes)},"
                text += f" {min(100, 100 * self.bytes // max(self.total_bytes, 1))}%"
            text += ")"
        return text + f", {self.count / elapsed:,.0f}/s"

    def _show(self, final: bool) -> None:
        self.shown = (self.count, self.bytes)
        if self.tty:
            sys.stderr.write("\r\x1b[K" + self._line() + ("\n" if final else ""))
        else:
            sys.stderr.write(self._line() + "\n")
        sys.stderr.flush()

    def done(self) -> float:
        """Print the final line (unless the last line said the same); returns elapsed seconds."""
        if self.tty or self.shown != (self.count, self.bytes):
            self._show(final=True)
        return time.monotonic() - self.start


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
