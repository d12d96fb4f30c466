"""Spool files: a message written as it arrives, before the store takes it.

IMAP APPEND literals (RFC 9051 §6.3.12) and SMTP DATA/BDAT stream into a
spool file chunk by chunk, so a session's memory stays bounded whatever the
message size; the store then takes the file as it is, by rename or hard link
(no copy, ``Account.deliver_spool``, ``Account.append``). An account's spool
(``Account.spool``) is written at the final name of a message id reserved for
it (or in the account's ``tmp/``); the data directory's (``Store.spool``, for
SMTP before the recipients' accounts are known) is in its ``tmp/``, on the
same file system as the message files. :meth:`SpoolFile.finish` flushes and
closes it; the store fsyncs it once it is in place, before it acknowledges.

A spool file not finished is removed by :meth:`SpoolFile.discard`; one left
behind by a crash is removed when the account is next opened (the store
clears its ``tmp/`` and files without a row, the
:class:`~kittiwake.store.store.Store` the data directory's ``tmp/`` when no
other process has it open).
"""

from __future__ import annotations

import os
from pathlib import Path

from kittiwake import durable

__all__ = ["SpoolFile"]


class SpoolFile:
    """A temporary message file being written; not thread-safe."""

    def __init__(self, root: Path, at: Path | None = None) -> None:
        """A spool under ``root/tmp``, or with ``at`` at that name (a message's final
        name in the store, the file then written once where it stays)."""
        if at is not None:
            fd = os.open(at, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            self.path = at
        else:
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
