"""Durable files: written so that no acknowledged message is ever lost.

Shared by the store and the queue (DESIGN.md layout: ``durable``).

DESIGN.md "Storage": a message is written to a temporary file, fsynced,
renamed into place, and its directory fsynced; only then is the database row
committed. Files live at ``msg/<shard>/<id>`` where the shard groups 4096 ids,
so no directory grows without bound.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, overload

SHARD_SIZE = 4096


_shards: dict[tuple[Path, int], Path] = {}


def message_path(root: Path, message_id: int) -> Path:
    """Where message ``message_id`` of an account is stored."""
    shard = message_id // SHARD_SIZE
    directory = _shards.get((root, shard))
    if directory is None:  # (paths are built often: one join per call, not three)
        if len(_shards) > 4096:
            _shards.clear()
        directory = _shards[(root, shard)] = root / "msg" / f"{shard:x}"
    return directory / str(message_id)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_dir(path: Path) -> bool:
    """Create ``path`` (and its parent) if needed; True when it was created."""
    if path.is_dir():
        return False
    path.mkdir(parents=True, exist_ok=True)
    fsync_dir(path.parent)
    return True


def write_temp(root: Path, chunks: Iterable[bytes], sync: bool = True,
               subdir: str = "") -> tuple[Path, int]:
    """Write data to a new temporary file under ``root/tmp``; (path, size).

    With ``sync`` the file is fsynced before returning (delivery); imports
    pass False and sync a whole batch with :func:`sync_files`. ``subdir``
    (below tmp/) lets parallel writers each use a directory of their own, so
    they do not wait for each other's directory lock.
    """
    tmp_dir = root / "tmp" / subdir if subdir else root / "tmp"
    try:
        fd, name = new_file(tmp_dir)
    except FileNotFoundError:  # the first write (no stat per message otherwise)
        _ensure_dir(tmp_dir)
        fd, name = new_file(tmp_dir)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                size += len(chunk)
            f.flush()
            if sync:
                os.fsync(f.fileno())
    except BaseException:
        unlink_quiet(Path(name))
        raise
    return Path(name), size


def create(path: Path) -> int:
    """A new file at ``path`` (O_EXCL, mode 0640), open for writing: its descriptor."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)


def create_message(path: Path) -> int:
    """A new message file at its final name ``path`` (:func:`message_path`), open for
    writing: its directory made first if it is the shard's first message, and a file
    left at that name by an interrupted delivery (no row names it) replaced."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(path, flags, 0o640)
    except FileNotFoundError:  # the shard's first message (no stat per message otherwise)
        _ensure_dir(path.parent)
    except FileExistsError:
        os.unlink(path)
    return os.open(path, flags, 0o640)


def open_made(path: Path) -> int | None:
    """Open an empty message file made ahead (``kittiwake.store.readyfiles``) for
    writing; None if it is gone (removed by hand, or by another process's ``account
    check --repair``): the caller then makes its file as if it had none, and syncs
    its directory."""
    try:
        return os.open(path, os.O_WRONLY | os.O_TRUNC)
    except FileNotFoundError:
        return None


_counter = 0


def new_file(directory: Path) -> tuple[int, str]:
    """A new file of our own in ``directory`` (O_EXCL, mode 0640): its descriptor and name."""
    global _counter
    while True:
        _counter += 1
        name = f"{directory}/{os.getpid()}.{_counter}.{os.urandom(4).hex()}"
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640), str(name)
        except FileExistsError:
            continue


@overload
def write_new(root: Path, message_id: int, data: bytes,
              keep_open: Literal[False] = False) -> Path: ...


@overload
def write_new(root: Path, message_id: int, data: bytes,
              keep_open: Literal[True]) -> tuple[Path, int]: ...


def write_new(root: Path, message_id: int, data: bytes,
              keep_open: bool = False) -> Path | tuple[Path, int]:
    """Write a message straight to its final name (not fsynced: the caller syncs it).

    For a store whose rows name only files it made durable, and that removes
    files without a row at its next open: no temporary file, no rename. A file
    left at that name by an interrupted delivery is replaced. With ``keep_open``
    the descriptor is returned too, still open (for the caller's fsync).
    """
    final = message_path(root, message_id)
    fd = create_message(final)
    try:
        write_all(fd, data)
    except BaseException:
        os.close(fd)
        unlink_quiet(final)
        raise
    if keep_open:
        return final, fd
    os.close(fd)
    return final


def move_into_place(root: Path, tmp: Path, message_id: int, sync: bool = True) -> Path:
    """Rename a temporary file to its final name; fsync the directory when ``sync``."""
    final = message_path(root, message_id)
    try:
        os.replace(tmp, final)
    except FileNotFoundError:  # the shard's first message (no stat per message otherwise)
        if not os.path.exists(tmp):
            raise
        _ensure_dir(final.parent)
        os.replace(tmp, final)
    if sync:
        fsync_dir(final.parent)
    return final


def link_into_place(root: Path, source: Path, message_id: int, sync: bool = True) -> Path:
    """Give a spooled file (kept by its owner) its final name by hard link, no copy.

    The spool stays where it is (the SMTP server hands one spool to several
    accounts and removes it after the last); only a link is added here.
    """
    final = message_path(root, message_id)
    try:
        os.link(source, final)
    except FileNotFoundError:  # the shard's first message
        if not os.path.exists(source):
            raise
        _ensure_dir(final.parent)
        os.link(source, final)
    except FileExistsError:  # left by a delivery that crashed before its commit
        os.unlink(final)
        os.link(source, final)
    if sync:
        fsync_dir(final.parent)
    return final


def fsync_file(path: Path) -> None:
    """Make a file's data durable (for a file written by someone else, e.g. a spool)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_close(fd: int) -> None:
    """fsync an open file (one written here, :func:`write_new`) and close it."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_fsync_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def fsync_placed(paths: Iterable[Path]) -> None:
    """Make files just moved into place durable: each file and each directory once.

    The fsyncs run concurrently (all done when this returns): a journaling
    file system (ext4's jbd2, XFS) merges concurrent fsyncs into one journal
    commit, where one after the other would cost a commit each. A directory's
    fsync covers the entries made before it, whatever the files' state.
    """
    paths = list(paths)
    jobs: list[tuple[Callable[[Path], None], Path]] = [(fsync_file, p) for p in paths]
    jobs += [(fsync_dir, d) for d in {p.parent for p in paths}]
    if len(jobs) <= 2:  # one file and its directory: no thread hand-off
        for fn, path in jobs:
            fn(path)
        return
    for _ in _pool().map(lambda job: job[0](job[1]), jobs):
        pass


def _pool() -> ThreadPoolExecutor:
    """The threads that run fsyncs for others (made on first use)."""
    global _fsync_pool
    pool = _fsync_pool
    if pool is None:
        with _pool_lock:
            if _fsync_pool is None:
                _fsync_pool = ThreadPoolExecutor(32, thread_name_prefix="kittiwake-fsync")
            pool = _fsync_pool
    return pool


class DirSyncRound:
    """One fsync of a directory and the callers it covers (:meth:`DirSync.ask`)."""

    __slots__ = ("done", "error", "sync")

    def __init__(self, sync: DirSync) -> None:
        self.sync = sync
        self.done = False
        self.error: OSError | None = None

    def wait(self) -> None:
        """Block until this fsync has run; its error, if it failed."""
        if not self.done:
            sync = self.sync
            with sync.lock:
                while not self.done:
                    sync.finished.wait()
        if self.error is not None:
            raise self.error


class DirSync:
    """fsyncs of one directory, shared by concurrent callers and run in the background.

    A caller that has made its entries in the directory (created, renamed or
    linked a file there) asks (:meth:`ask`) and gets the *round* that covers
    them: the next fsync of the directory to start. It starts at once in the
    directory's own thread if none is running, else as soon as the running
    one ends (an fsync that started before an entry was made need not cover
    it); every caller who asks meanwhile joins that same round. Asking does
    not block, so a caller fsyncs its file while its directory is fsynced: on
    a journaling file system (ext4's jbd2, XFS) both wait for the same journal
    commit, where one after the other costs two. :meth:`DirSyncRound.wait`
    then blocks until the round has run.

    The thread is the directory's (one wake-up per round, no pool's futures
    and queues); it ends after :data:`IDLE_SECONDS` without a round and the
    next :meth:`ask` starts another. A caller alone (no fsync of the directory
    running or asked for) may instead run it in its own thread after its file's
    (:meth:`sync_here`).
    """

    IDLE_SECONDS = 10.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.work = threading.Condition(self.lock)  # the thread waits here for a round
        self.finished = threading.Condition(self.lock)  # callers wait here for theirs
        self._next: DirSyncRound | None = None  # the round callers join now
        self._alive = False  # the thread runs
        self._idle = False  # the thread waits for a round
        self._running = 0  # fsyncs of the directory running now (the thread's, a caller's)

    def ask(self) -> DirSyncRound:
        """The fsync round that covers the caller's entries (made before this call)."""
        with self.lock:
            joined = self._next
            if joined is None:
                joined = self._next = DirSyncRound(self)
                if self._idle:
                    self._idle = False
                    self.work.notify()
                elif not self._alive:
                    self._alive = True
                    threading.Thread(target=self._run, daemon=True,
                                     name=f"kittiwake-dirsync-{self.path.name}").start()
            return joined

    def sync_here(self) -> bool:
        """fsync the directory in the calling thread if no other fsync of it runs or
        waits to start (True: done; its error raised), else leave it (False: the
        caller asks for a round, :meth:`ask`). For a caller whose file's own fsync is
        done: alone, it does not hand the directory's to the thread and wait to be
        woken (two thread switches, each waiting for the GIL) for an fsync that,
        its entry's journal commit done already, costs a cache flush; with company,
        one round covers them all."""
        with self.lock:
            if self._running or self._next is not None:
                return False
            self._running += 1
        try:
            fsync_dir(self.path)
        finally:
            with self.lock:
                self._running -= 1
        return True

    @property
    def busy(self) -> bool:
        """Whether an fsync of the directory runs or waits to start (a hint: no lock)."""
        return bool(self._running) or self._next is not None

    @property
    def asked(self) -> bool:
        """Whether a round waits for its fsync to start (for tests)."""
        with self.lock:
            return self._next is not None

    def _run(self) -> None:
        """Run rounds as they are asked for (the directory's thread)."""
        lock = self.lock
        lock.acquire()
        try:
            while True:
                while self._next is None:
                    self._idle = True
                    if not self.work.wait(self.IDLE_SECONDS) and self._next is None:
                        self._idle = self._alive = False  # the next ask starts another
                        return
                self._idle = False
                current, self._next = self._next, None
                self._running += 1
                lock.release()
                error: OSError | None = None
                try:
                    fsync_dir(self.path)
                except OSError as exc:
                    error = exc
                finally:
                    lock.acquire()
                    self._running -= 1
                current.error = error
                current.done = True
                self.finished.notify_all()
        finally:
            lock.release()


_dir_syncs: dict[Path, DirSync] = {}


def dir_sync(path: Path) -> DirSync:
    """The shared, background fsyncs of a directory (:class:`DirSync`)."""
    shared = _dir_syncs.get(path)
    if shared is None:
        with _pool_lock:
            shared = _dir_syncs.get(path)
            if shared is None:
                if len(_dir_syncs) > 4096:
                    _dir_syncs.clear()  # (a caller holding one may go on using it)
                shared = _dir_syncs[path] = DirSync(path)
    return shared



def link_copy(root: Path, source_id: int, target_id: int, sync: bool = True) -> Path:
    """Give a copied message its own name by hard link (same bytes, no copy)."""
    source = message_path(root, source_id)
    target = message_path(root, target_id)
    _ensure_dir(target.parent)
    try:
        os.link(source, target)
    except FileExistsError:
        os.unlink(target)
        os.link(source, target)
    if sync:
        fsync_dir(target.parent)
    return target


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's syncfs(2) (Linux), or None where it is not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_syncfs = _load_syncfs()
SYNCFS_THRESHOLD = 16


def sync_files(paths: Iterable[Path]) -> None:
    """Make many files and their directories durable (batched import).

    For more than a few files one syncfs(2) of their file system is far
    cheaper than an fsync per file (one journal commit instead of many);
    it flushes every file written before it, these included.
    """
    paths = list(paths)
    if not paths:
        return
    dirs = {path.parent for path in paths}
    if _syncfs is not None and len(paths) > SYNCFS_THRESHOLD:
        fd = os.open(next(iter(dirs)), os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for directory in dirs:
        fsync_dir(directory)


def remove(root: Path, message_ids: Iterable[int]) -> None:
    """Remove message files (after their rows are gone)."""
    for message_id in message_ids:
        unlink_quiet(message_path(root, message_id))


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may take less than it is given);
    a ``bytearray`` may be resized again once this returns."""
    with memoryview(data) as whole:
        view = whole
        while view:
            view = view[os.write(fd, view):]
        del view


def unlink_quiet(path: Path) -> None:
    """Unlink ``path``; already gone is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def clean_tmp(root: Path) -> int:
    """Remove leftovers of interrupted writes; they were never acknowledged."""
    tmp_dir = root / "tmp"
    count = 0
    if tmp_dir.is_dir():
        for entry in tmp_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                for inner in entry.iterdir():
                    unlink_quiet(inner)
                    count += 1
                try:
                    entry.rmdir()
                except OSError:
                    pass
                continue
            unlink_quiet(entry)
            count += 1
    return count
