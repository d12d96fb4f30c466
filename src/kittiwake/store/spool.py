"""Spool files: a message written as it arrives, before the store takes it.

IMAP APPEND literals (RFC 9051 §6.3.12) and SMTP DATA/BDAT stream into a
spool file chunk by chunk, so a session's memory stays bounded whatever the
message size; the store then takes the file by rename or hard link (no copy,
``Account.deliver_spool``). The file lives in the account's ``tmp/``
directory (``Account.spool``) or the data directory's ``tmp/``
(``Store.spool``, for SMTP before the recipients' accounts are known), on
the same filesystem as the message files, and is fsynced by
:meth:`SpoolFile.finish` (run that in a worker thread) before the store
moves it into place and commits.

A spool file not finished is removed by :meth:`SpoolFile.discard`; one left
behind by a crash is removed when the account is next opened (the store
clears its ``tmp/``, the :class:`~kittiwake.store.store.Store` the data
directory's when no other process has it open).
"""

from __future__ import annotations

import os
from pathlib import Path

from kittiwake import durable

__all__ = ["SpoolFile"]


class SpoolFile:
    """A temporary message file being written; not thread-safe."""

    def __init__(self, root: Path) -> None:
        tmp_dir = root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = durable.new_file(tmp_dir)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb", buffering=256 * 1024)
        self.size = 0

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` (or :meth:`discard`) closed the file."""
        return self._file.closed

    def write(self, chunk: bytes) -> None:
        """Append bytes (buffered; cheap enough for the event loop)."""
        self._file.write(chunk)
        self.size += len(chunk)

    def finish(self, sync: bool = True) -> tuple[Path, int]:
        """Flush and (with ``sync``) fsync the file, close it; blocking, for a worker
        thread. The store's group commit fsyncs what it takes once it is in place,
        so a spool handed to ``Account.deliver_spool`` need not be synced first."""
        try:
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())
        finally:
            self._file.close()
        return self.path, self.size

    def discard(self) -> None:
        """Close and remove the file (the command failed or was cancelled)."""
        try:
            self._file.close()
        finally:
            self.path.unlink(missing_ok=True)
