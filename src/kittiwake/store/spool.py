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

An account's spool is created only when it first needs its file (its buffer
is full, or it is taken or finished): a message smaller than the buffer is
created by the store's delivery thread that takes it, not on the event loop
that wrote it (creating an inode costs 0.05 ms to over 1 ms of kernel time on
a busy file system, which concurrent sessions would wait for in turn on one
loop).

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
from kittiwake.message.headers import Headers
from kittiwake.store.summary import head_fields

__all__ = ["SpoolFile"]

_FINISHED = -1  # SpoolFile._fd once finished or discarded
_UNOPENED = -2  # ... of a lazy spool whose file is not created yet


class SpoolFile:
    """A temporary message file being written; not thread-safe.

    Writes are gathered in a buffer of its own (no file object per spool: one
    ``os.write`` per :data:`BUFFER` octets, and one for the rest at the end)."""

    BUFFER = 256 * 1024
    HEAD = 32 * 1024

    @property
    def head(self) -> bytes:
        """The first :data:`HEAD` octets written (all of a smaller message): where its
        header section usually is, so the store need not read it back."""
        return bytes(self._head)

    def __init__(self, root: Path, at: Path | None = None, *, lazy: bool = False,
                 made: bool = False) -> None:
        """A spool under ``root/tmp``, or with ``at`` at that name (a message's final
        name in the store, the file then written once where it stays).

        ``lazy`` (with ``at``): the file is created only when the first octets go
        to it, which for a message smaller than :data:`BUFFER` is when it is taken
        (:meth:`take`, in the store's delivery thread): no file creation (an inode
        allocation, up to a millisecond) on the event loop that made the spool.
        The shard directory is made then if this is its first message; should
        the name still not be made, the file goes to ``root/tmp`` and
        :attr:`path` says so.

        ``made`` (with ``lazy``): ``at`` is an empty file made ahead, its name
        durable (:mod:`kittiwake.store.readyfiles`): opened, not created; then
        :attr:`made` says whether it was (the store syncs no directory for it)."""
        self._root = root
        self.made = made
        self.path: Path = at if at is not None else root  # tmp/'s: by _new_in_tmp
        if at is None:
            self._fd = self._new_in_tmp()
        else:
            self._fd = _UNOPENED if lazy else durable.create(at)
        self._buffer = bytearray()
        self.size = 0
        self._head = bytearray()  # the first HEAD octets, for the store's summary

    def _new_in_tmp(self) -> int:
        tmp_dir = self._root / "tmp"
        try:
            fd, name = durable.new_file(tmp_dir)
        except FileNotFoundError:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, name = durable.new_file(tmp_dir)
        self.path = Path(name)
        return fd

    def _open(self) -> None:
        """Create a lazy spool's file at its name (the shard's directory made if this
        is its first message; a file left there by an interrupted delivery, which no
        row names, replaced), or in ``tmp/`` should that fail."""
        if self.made:
            fd = durable.open_made(self.path)
            if fd is not None:
                self._fd = fd
                return
            self.made = False  # gone: made here, as if there were none
        try:
            self._fd = durable.create_message(self.path)
        except OSError:
            self._fd = self._new_in_tmp()

    def head_fields(self) -> Headers | None:
        """The header fields in the octets the spool still holds (:attr:`head`), or None
        when its header section goes on beyond them (the store reads it then)."""
        return head_fields(bytes(self._head), self.size <= self.HEAD)

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` (or :meth:`discard`) closed the file."""
        return self._fd == _FINISHED

    def write(self, chunk: bytes) -> None:
        """Append bytes (buffered; cheap enough for the event loop)."""
        if self._fd == _FINISHED:
            raise ValueError("write to a finished spool file")
        if self.size < self.HEAD:
            self._head += chunk[:self.HEAD - self.size]
        self._buffer += chunk
        self.size += len(chunk)
        if len(self._buffer) >= self.BUFFER:
            self._flush()

    def _flush(self) -> None:
        if self._fd == _UNOPENED:
            self._open()
        durable.write_all(self._fd, self._buffer)
        self._buffer.clear()

    def finish(self, sync: bool = True) -> tuple[Path, int]:
        """Flush and (with ``sync``) fsync the file, close it; blocking, for a worker
        thread. The store's group commit fsyncs what it takes once it is in place,
        so a spool handed to ``Account.deliver_spool`` need not be synced first."""
        fd = self.take(sync)
        os.close(fd)
        return self.path, self.size

    def take(self, sync: bool = False) -> int:
        """Flush (with ``sync`` fsync) the file and hand over its descriptor, still open
        (the store fsyncs through it once the file is in place, with no second open);
        the spool is finished, and the caller closes the descriptor."""
        if self._fd == _FINISHED:
            raise ValueError("spool file already finished")
        try:
            self._flush()  # creates a lazy spool's file, even for no octets
            if sync:
                os.fsync(self._fd)
        except BaseException:
            fd, self._fd = self._fd, _FINISHED
            if fd >= 0:
                os.close(fd)
            raise
        fd, self._fd = self._fd, _FINISHED
        return fd

    def discard(self) -> None:
        """Close and remove the file (the command failed or was cancelled)."""
        fd, self._fd = self._fd, _FINISHED
        self._buffer.clear()
        try:
            if fd >= 0:
                os.close(fd)
        finally:
            self.path.unlink(missing_ok=True)
