"""Message files made ahead: a delivery's file name durable before the message comes.

A new message is durable when its octets are (the file's fsync) and its name
is (the directory's fsync). On ext4 and XFS the second is a journal commit
and a device flush of its own, and with the WAL's flush of the COMMIT that
makes three flushes per delivery where a plain writer pays two (a
single-writer delivery measured 0.81 ms against 0.57 ms for write + fsync +
rename + directory fsync; a loop of the three flushes alone, 0.52 ms).

So an account keeps a small stock of empty message files at the final names
of ids reserved for them (:meth:`AccountStore._reserve_ids`), made a batch at
a time with one fsync per directory for the whole batch, by a delivery
thread after its own delivery is answered. A delivery that takes one writes
its message into the existing file and fsyncs only that file: its name was
durable before the message arrived (POSIX: fsync of a file makes its data and
metadata durable; the directory entry was made durable by the batch's
directory fsync). The directory is not touched again, so nothing about it
needs syncing.

Crash safety is the store's rule for files at final names: no row names a
made file until the COMMIT of a delivery that wrote into it, and a file
without a row is removed at the next open (``AccountStore._remove_interrupted``).
At a clean close the unused files are removed here. ``account check`` leaves
an empty file without a row alone while another process has the account open
(it may be one of these).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from kittiwake import durable
from kittiwake.log import get_logger

logger = get_logger("store")

# Files made per batch, and the stock below which a delivery thread makes more.
BATCH = 128
LOW = 48
# After a failed batch (a full disk, say), deliveries make their own files this long.
RETRY_SECONDS = 60.0


class ReadyFiles:
    """One account's stock of empty message files whose names are durable."""

    def __init__(self, root: Path, reserve: Callable[[int], int]) -> None:
        """``reserve(n)``: the first of ``n`` new message ids, never used before."""
        self._root = root
        self._reserve = reserve
        self._ids: deque[int] = deque()
        self._filling = threading.Lock()
        self._claims = 0  # delivery threads that will call fill (claimed before answering)
        self._claimed = threading.Condition()
        self._making = range(0)  # the ids of the batch being made now
        self._closed = False
        self._retry_at = 0.0  # (monotonic) no batch before this, after a failure
        self.made = 0  # files made so far (for tests and metrics)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, message_id: object) -> bool:
        """Whether ``message_id`` is one of the files in stock (``account check``)."""
        return message_id in self._making or message_id in self._ids

    def take(self) -> int | None:
        """The id of a made file, now the caller's; None when the stock is empty.
        Thread-safe (and cheap enough for the event loop)."""
        try:
            return self._ids.popleft()
        except IndexError:
            return None

    @property
    def low(self) -> bool:
        """Whether the stock should be filled (:meth:`fill`)."""
        return len(self._ids) < LOW and not self._closed and \
            (not self._retry_at or time.monotonic() >= self._retry_at)

    def claim(self) -> bool:
        """Whether the calling delivery thread should fill the stock once its delivery
        is answered; if so the claim is counted until :meth:`end_claim`, so that
        :meth:`wait` (called after the answer) cannot miss a batch about to start."""
        if not self.low:
            return False
        with self._claimed:
            self._claims += 1
        return True

    def end_claim(self, fill: bool) -> None:
        """End a :meth:`claim`: first :meth:`fill` the stock, unless ``fill`` is False
        (the delivery failed: it makes no files)."""
        try:
            if fill:
                self.fill()
        finally:
            with self._claimed:
                self._claims -= 1
                self._claimed.notify_all()

    def fill(self) -> None:
        """Make a batch of files and sync their directories (blocking: a delivery
        thread's, after its delivery is answered). One filler at a time; another
        caller meanwhile returns at once. A failure (a full disk, say) is logged, and
        deliveries make their own files as before for :data:`RETRY_SECONDS`."""
        if not self._filling.acquire(blocking=False):
            return
        try:
            if not self.low:
                return
            first = self._reserve(BATCH)
            self._making = range(first, first + BATCH)
            made: list[int] = []
            directories: set[Path] = set()
            try:
                for message_id in range(first, first + BATCH):
                    path = durable.message_path(self._root, message_id)
                    os.close(durable.create_message(path))
                    made.append(message_id)
                    directories.add(path.parent)
                for directory in directories:
                    durable.fsync_dir(directory)
            except OSError as exc:
                logger.warning("could not make message files ahead", reason=str(exc),
                               retry_seconds=RETRY_SECONDS)
                self._remove(made)
                self._retry_at = time.monotonic() + RETRY_SECONDS
                return
            self._retry_at = 0.0
            if self._closed:
                self._remove(made)
                return
            self._ids.extend(made)
            self.made += len(made)
        finally:
            self._making = range(0)
            self._filling.release()

    def wait(self) -> None:
        """Wait for the batches claimed or being made now (tests: the files on disk
        are settled)."""
        with self._claimed:
            self._claimed.wait_for(lambda: self._claims == 0)
        with self._filling:
            pass

    def close(self) -> None:
        """Remove the files not taken (after a filler in progress is done)."""
        self._closed = True
        with self._filling:
            left = []
            while (message_id := self.take()) is not None:
                left.append(message_id)
            self._remove(left)

    def _remove(self, ids: list[int]) -> None:
        for message_id in ids:
            durable.unlink_quiet(durable.message_path(self._root, message_id))
