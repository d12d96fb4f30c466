"""An incoming message as it arrives: the body to a spool file, the header in memory.

DESIGN.md "The mail path": DATA and BDAT chunks go to a spool file as they
arrive, so memory per connection is bounded whatever the message size: the
header section (up to :data:`MAX_HEADER_SECTION`) and one write buffer. When
the header section is complete it is parsed once (:class:`MessageHead`) and
``on_head`` decides which DKIM body hashes to compute; the body is then
hashed chunk by chunk as it is written (:class:`kittiwake.dkim.BodyHasher`),
so no check reads the body again.

The spool file lives in the data directory (``spool/``), on the file system
of the store and the queue, which take it by link or rename. Files left by a
crash were never acknowledged: :func:`clean_spool` removes them at start.

A spool made with ``open_file=False`` (the SMTP driver's) keeps the first
:data:`WRITE_BUFFER` octets in memory and creates its file only when
:attr:`Spool.needs_file` says so (:meth:`Spool.open`, in a worker thread) or in
:meth:`Spool.finish`: a small message then costs one worker-thread trip (create,
write, close) instead of two, and memory stays bounded by that buffer.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import functools
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from kittiwake import dkim, durable
from kittiwake.message.headers import Headers, scan_header_section

MAX_HEADER_SECTION = 1024 * 1024
"""A header section larger than this is refused (552 5.3.4) rather than kept in memory."""
WRITE_BUFFER = 256 * 1024


@dataclass(frozen=True)
class MessageHead:
    """The header section of a received message, parsed once (RFC 5322 §2.2).

    Pickled (an SMTP worker's ``write`` to the server process) it carries the raw
    section and the parsed fields; the DKIM view, which only the worker's checks and
    signing read, is not sent (:attr:`dkim_fields` would be split again if asked)."""

    raw: bytes                     # the header section, with the empty line ending it
    headers: Headers

    @classmethod
    def parse(cls, raw: bytes) -> MessageHead:
        headers, _, _ = scan_header_section(raw)
        return cls(raw, headers)

    @functools.cached_property
    def dkim_fields(self) -> list[dkim.HeaderField]:
        """The same fields as DKIM sees them (CRLF form, RFC 6376 §3.4)."""
        return dkim.split_message(self.raw)[0]

    def __reduce__(self) -> tuple[type[MessageHead], tuple[bytes, Headers]]:
        return MessageHead, (self.raw, self.headers)


@dataclass
class SpooledMessage:
    """A whole received message: header section in memory, all bytes in ``path``.

    ``prefix`` holds the header fields we add (Received, Authentication-Results,
    DKIM-Signature, ...): the message as stored and sent is ``prefix`` + the
    file, which the store and the queue take by hard link, never by copy."""

    path: Path
    size: int
    head: MessageHead
    body_hashes: dict[dkim.BodyHashKey, tuple[bytes, int]] = field(default_factory=dict)
    eightbit: bool = False  # a byte above 127 anywhere (RFC 6152 8BITMIME is needed)
    prefix: bytes = b""
    # The file's bytes, when the message was small enough to be held in memory until
    # finish (at most WRITE_BUFFER octets and a chunk): read without the file system.
    content: bytes | None = field(default=None, repr=False)

    @property
    def total_size(self) -> int:
        return len(self.prefix) + self.size

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # Across the SMTP workers' channel the message goes by its file: the bytes held
        # in memory stay in the worker (the server reads the file in the rare case it
        # needs the text: the junk filter's words, a DSN), which keeps the frame small.
        return _spooled, (os.fspath(self.path), self.size, self.head, self.body_hashes,
                          self.eightbit, self.prefix)

    @property
    def header_bytes(self) -> bytes:
        """The prefix and the received header section (no body)."""
        return self.prefix + self.head.raw

    def read(self) -> bytes:
        """The whole message, prefix included (blocking: the rare consumers that need
        it all in memory, such as a DSN returning it, run this in a worker thread)."""
        if self.content is not None:
            return self.prefix + self.content
        return self.prefix + self.path.read_bytes()

    @property
    def in_memory(self) -> bool:
        """Whether :meth:`read` and :meth:`read_start` answer from memory (no blocking)."""
        return self.content is not None

    def read_start(self, limit: int) -> bytes:
        """The prefix and the first ``limit`` octets (blocking unless :attr:`in_memory`)."""
        if self.content is not None:
            return self.prefix + self.content[:limit]
        with open(self.path, "rb") as f:
            return self.prefix + f.read(limit)

    def discard(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def discard_soon(self) -> None:
        """Remove the spool file in the background (:func:`unlink_soon`): once the
        store or the queue holds its own link, nobody waits for this name to go."""
        unlink_soon(self.path)


def _spooled(path: str, size: int, head: MessageHead,
             body_hashes: dict[dkim.BodyHashKey, tuple[bytes, int]], eightbit: bool,
             prefix: bytes) -> SpooledMessage:
    return SpooledMessage(Path(path), size, head, body_hashes, eightbit, prefix)


_jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_worker_pid = 0  # the process that started the thread (a forked child starts its own)
_worker_lock = threading.Lock()


def _background() -> None:
    while True:
        job = _jobs.get()
        try:
            job()
        except Exception:  # a failed unlink or refill is retried by clean_spool or later
            pass


def run_in_background(job: Callable[[], None]) -> None:
    """Run ``job`` in the spool's background thread, without waiting for it (a queue
    put: no worker-thread round trip through the event loop)."""
    global _worker_pid
    if _worker_pid != os.getpid():
        with _worker_lock:
            if _worker_pid != os.getpid():
                threading.Thread(target=_background, name="spool-files", daemon=True).start()
                _worker_pid = os.getpid()
    _jobs.put(job)


# Names to unlink, gathered on the event loop for UNLINK_DELAY seconds and then
# removed by one background job: the thread wakes once per batch, not once per
# message (each wake-up is a GIL hand-over both ways: futex calls and switches;
# bench.smtpworker_cpu --strace, futex calls per message 27.7 -> 18.2).
_unlinks: list[Path] = []
_unlinks_lock = threading.Lock()
_due_on: asyncio.AbstractEventLoop | None = None  # the loop whose timer takes the batch
UNLINK_DELAY = 0.02


def unlink_soon(path: Path) -> None:
    """Unlink ``path`` in the background thread, without waiting: within
    :data:`UNLINK_DELAY`, with the other names given meanwhile (at once when not
    called on an event loop). A name still there when the process ends is removed
    by :func:`clean_spool` at the next start."""
    global _due_on
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    with _unlinks_lock:
        _unlinks.append(path)
        if loop is not None and _due_on is loop:
            return  # this loop's timer takes it with the rest
        _due_on = loop  # (a timer of a loop closed since never fires: a new one)
    if loop is None:
        run_in_background(_unlink_gathered)
    else:
        loop.call_later(UNLINK_DELAY, run_in_background, _unlink_gathered)


def _unlink_gathered() -> None:
    global _due_on
    with _unlinks_lock:
        paths = _unlinks[:]
        _unlinks.clear()
        _due_on = None
    for path in paths:
        durable.unlink_quiet(path)


def _forget_gathered() -> None:
    """In a forked child: the parent's names are the parent's to remove."""
    global _unlinks_lock, _due_on
    _unlinks.clear()
    _unlinks_lock = threading.Lock()
    _due_on = None


os.register_at_fork(after_in_child=_forget_gathered)


RESERVE_DIR = "reserve"
RESERVE_LOW = 8
RESERVE_HIGH = 32


class SpoolReserve:
    """Empty spool files made ahead of need, in batches, by the background thread.

    Creating a file can wait for the file system's journal, so it never runs on the
    event loop; with a file from the reserve a small message (held in memory until
    its end) is written and closed on the loop instead, without a worker-thread
    trip per message (:meth:`Spool.finish_in_memory`). The files live in
    ``<spool>/reserve/`` (same file system: the store and the queue link them like
    any spool file); left over by a crash or a stop, they are removed by
    :func:`clean_spool` at the next start, and at the end of the process by an
    exit handler. A forked child drops its parent's reserve and makes its own.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory / RESERVE_DIR
        self._files: collections.deque[Path] = collections.deque()
        self._filling = False
        self._released = False
        self._pid = os.getpid()

    def take(self) -> Path | None:
        """A reserved file (empty) or None; asks for more when low."""
        if self._pid != os.getpid():  # forked: those files are the parent's
            self._files = collections.deque()
            self._filling = False
            self._pid = os.getpid()
        got = self._files.popleft() if self._files else None
        if len(self._files) < RESERVE_LOW and not self._filling and not self._released:
            self._filling = True
            run_in_background(self._fill)
        return got

    def _fill(self) -> None:
        try:
            while len(self._files) < RESERVE_HIGH and self._pid == os.getpid():
                try:
                    fd, path = _create(self.directory)
                except FileNotFoundError:
                    self.directory.mkdir(parents=True, exist_ok=True)
                    fd, path = _create(self.directory)
                os.close(fd)  # held by name: no descriptor per reserved file
                if self._released:
                    durable.unlink_quiet(path)
                    return
                self._files.append(path)
        finally:
            self._filling = False

    def release(self) -> None:
        """Close and remove the files not used (at exit)."""
        if self._pid != os.getpid():
            return
        self._released = True
        while self._files:
            durable.unlink_quiet(self._files.popleft())


_reserves: dict[Path, SpoolReserve] = {}


def reserve_for(directory: Path) -> SpoolReserve:
    """The process's reserve of spool files for ``directory``."""
    found = _reserves.get(directory)
    if found is None:
        if not _reserves:
            atexit.register(_release_reserves)
        found = _reserves[directory] = SpoolReserve(directory)
    return found


def _release_reserves() -> None:
    for reserve in list(_reserves.values()):
        with contextlib.suppress(OSError):
            reserve.release()


class HeaderTooLarge(Exception):
    """The header section did not end within :data:`MAX_HEADER_SECTION`."""


OnHead = Callable[[MessageHead], set[dkim.BodyHashKey]]


class Spool:
    """Receives one message's bytes (already dot-unstuffed) into a file."""

    def __init__(self, directory: Path, on_head: OnHead | None = None,
                 max_header: int = MAX_HEADER_SECTION, *, open_file: bool = True) -> None:
        self.directory = directory
        self.on_head = on_head
        self.max_header = max_header
        self.size = 0
        self._head = bytearray()
        self.head: MessageHead | None = None
        self.too_large_header = False
        self._hashers: dict[dkim.BodyHashKey, dkim.BodyHasher] = {}
        self.eightbit = False
        self.path: Path | None = None
        self._file: BinaryIO | None = None
        self._pending: list[bytes] = []  # bytes written before the file exists
        self._pending_size = 0
        self._closed = False
        if open_file:
            self.open()

    @property
    def needs_file(self) -> bool:
        """More than :data:`WRITE_BUFFER` octets wait in memory: call :meth:`open` (it
        blocks on the file system, so a driver runs it in a worker thread)."""
        return self._file is None and self._pending_size >= WRITE_BUFFER

    def open(self) -> None:
        """Create the spool file and write what is held in memory (blocking)."""
        if self._file is not None or self._closed:
            return
        try:
            fd, self.path = _create(self.directory)
        except FileNotFoundError:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, self.path = _create(self.directory)
        self._file = os.fdopen(fd, "wb", buffering=WRITE_BUFFER)
        pending, self._pending, self._pending_size = self._pending, [], 0
        if len(pending) == 1:
            self._file.write(pending[0])
        elif pending:
            self._file.write(b"".join(pending))

    def write(self, chunk: bytes) -> None:
        """Append message bytes; parse the header once its end has arrived."""
        if not chunk:
            return
        if self._file is None:
            self._pending.append(chunk)
            self._pending_size += len(chunk)
        else:
            self._file.write(chunk)
        self.size += len(chunk)
        if not self.eightbit and not chunk.isascii():
            self.eightbit = True
        if self.head is not None:
            for hasher in self._hashers.values():
                hasher.update(chunk)
            return
        if self.too_large_header:
            return
        start = max(0, len(self._head) - 3)  # the empty line may straddle chunks
        self._head += chunk
        end = _header_end(self._head, start)
        if end < 0:
            if len(self._head) > self.max_header:
                self.too_large_header = True
                self._head = bytearray()
            return
        body_start = bytes(self._head[end:])
        self._head_done(bytes(self._head[:end]))
        if body_start:
            for hasher in self._hashers.values():
                hasher.update(body_start)

    def _head_done(self, raw: bytes) -> None:
        self._head = bytearray()
        self.head = MessageHead.parse(raw)
        keys = self.on_head(self.head) if self.on_head is not None else set()
        self._hashers = {key: dkim.BodyHasher(*key) for key in keys}

    def finish(self) -> SpooledMessage:
        """The message, written to the file (not yet fsynced: the store or queue
        taking it makes it durable). Raises :class:`HeaderTooLarge`. Blocking: it
        creates the file if it does not exist yet."""
        if self.too_large_header:
            self.discard()
            raise HeaderTooLarge(f"header section larger than {self.max_header} octets")
        content = None
        if self._file is None:  # all of it is in memory: keep it for the readers
            content = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending = [content]
        self.open()
        assert self._file is not None and self.path is not None
        self._file.flush()
        self._file.close()
        self._closed = True
        return self._finished(content)

    def finish_in_memory(self, reserve: SpoolReserve) -> SpooledMessage | None:
        """:meth:`finish` without blocking, when the message is all in memory and the
        reserve has a file for it: the bytes are written into that file (the page
        cache; no file is created). None otherwise: then call :meth:`finish` in a
        worker thread."""
        if self._file is not None or self._closed or self.too_large_header:
            return None
        path = reserve.take()
        if path is None:
            return None
        try:  # opening an existing empty file creates nothing: no wait for the journal
            fd = os.open(path, os.O_WRONLY)
        except OSError:  # gone (another process cleaned the spool): the usual way then
            return None
        self.path = path
        content = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        self._closed = True
        try:
            durable.write_all(fd, content)
        except BaseException:
            os.close(fd)
            self.discard()
            raise
        os.close(fd)
        return self._finished(content)

    def _finished(self, content: bytes | None) -> SpooledMessage:
        assert self.path is not None
        if self.head is None:  # no empty line: all header, empty body (RFC 5322 §2.1)
            self._head_done(bytes(self._head))
        assert self.head is not None
        return SpooledMessage(self.path, self.size, self.head,
                              {key: h.digest() for key, h in self._hashers.items()},
                              eightbit=self.eightbit, content=content)

    def discard(self) -> None:
        """Drop the message (rejected, reset, connection lost)."""
        if not self._closed:
            self._closed = True
            self._pending, self._pending_size = [], 0
            if self._file is not None:
                try:
                    self._file.close()
                except OSError:
                    pass
        if self.path is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _header_end(data: bytearray, start: int) -> int:
    """Offset just after the empty line ending the header section, or -1.

    A message starting with an empty line has an empty header section.
    Bare LF line ends count too (as :func:`kittiwake.dkim.split_message` reads them).
    """
    if data[:2] == b"\r\n":
        return 2
    if data[:1] == b"\n":
        return 1
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start)
    candidates = [pos + 4 for pos in (crlf,) if pos >= 0] + [pos + 2 for pos in (lf,) if pos >= 0]
    mixed = data.find(b"\n\r\n", start)
    if mixed >= 0:
        candidates.append(mixed + 3)
    return min(candidates) if candidates else -1


def _create(directory: Path) -> tuple[int, Path]:
    fd, name = durable.new_file(directory)
    return fd, Path(name)


def clean_spool(directory: Path) -> int:
    """Remove spool files a crash left behind (never acknowledged); how many. The
    empty files of a :class:`SpoolReserve` go too (not counted)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in (directory / RESERVE_DIR).iterdir():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        # made again on demand; gone, a stopped SMTP worker's directory can go too
        with contextlib.suppress(OSError):
            (directory / RESERVE_DIR).rmdir()
    count = 0
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.is_file():
            try:
                entry.unlink()
                count += 1
            except FileNotFoundError:
                pass
    return count
