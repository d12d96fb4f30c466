"""Importing mbox files, Maildirs and archives of them into an account.

Sources: an mbox file, a Maildir (cur/new/tmp), a directory holding several
of those (each becomes a mailbox below the target, named by its relative
path), or a .zip/.tar/.tar.gz/.tgz archive of the same. Archive members are
read as streams and never extracted, so no member path can reach the file
system; member paths only become mailbox names, after cleaning.

Worker processes (one per core) read each message from the mbox (by offset:
the data is not sent between processes), parse and summarize it and write it
to a temporary file without fsync. This process adds them in batches: one
transaction per batch in which the rows are inserted and the files renamed
into place and made durable with one syncfs(2); then the commit. A message
is reported as imported only after its batch committed; a crash before
leaves only temporary files and files above the highest committed id, both
removed at the next exclusive open.

Search text is not part of the import: the rows are marked pending for the
index, as deliveries' are, and :func:`index_pending` (``kittiwake import``
runs it next, with its own progress line) or the server's background
indexer (when it opens the account) fills the full-text and substring
indexes. So the messages are in their mailboxes, durable and readable by
IMAP, at the rate of parsing and writing; the index (3-4 ms per message of
SQLite FTS5 inserts for the varied benchmark corpus, one writer) follows.
Until then IMAP SEARCH decodes the messages not yet indexed, so its answers
are the same, only slower.
"""

from __future__ import annotations

import collections
import concurrent.futures
import mmap
import multiprocessing
import os
import tarfile
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kittiwake import durable
from kittiwake.cpupool import INLINE, CpuRunner
from kittiwake.store.account import SEPARATOR, AccountStore, NewMessage, normalize_mailbox_name
from kittiwake.store.mailfile import MailItem, mbox_item, mbox_spans, read_maildir, read_mbox
from kittiwake.store.model import Delivered, Flags, MailboxNotFound, StoreError
from kittiwake.store.summary import Summary, summarize

BATCH_MESSAGES = 500
BATCH_BYTES = 64 << 20
MAX_MESSAGE = 256 << 20


@dataclass
class ImportResult:
    """What an import did; shown to the user at the end."""

    imported: int = 0
    bytes: int = 0
    mailboxes: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)


Progress = Callable[[int, int], None]  # (messages imported so far, bytes)


def clean_mailbox_path(parts: list[str]) -> str:
    """Mailbox name from path components: no '.', '..', empty or hidden parts."""
    kept = [p.strip("/\\") for p in parts]
    kept = [p for p in kept if p not in ("", ".", "..")]
    kept = [p.lstrip(".") or "_" for p in kept]
    return SEPARATOR.join(kept)


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def sources(path: Path, mailbox: str) -> Iterator[tuple[str, Iterator[Unit]]]:
    """(mailbox name, messages) for everything under ``path``."""
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".zip"):
            yield from _zip_sources(path, mailbox)
        elif name.endswith((".tar", ".tar.gz", ".tgz")):
            yield from _tar_sources(path, mailbox)
        else:
            yield mailbox, _mbox_file(path)
        return
    if _is_maildir(path):
        yield mailbox, read_maildir(path)
    if not path.is_dir():
        raise StoreError(f"{path}: no such file or directory")
    for child in sorted(path.rglob("*")):
        rel = child.relative_to(path)
        if any(p in ("cur", "new", "tmp") for p in rel.parts):
            continue
        target = _join(mailbox, clean_mailbox_path(list(rel.parts)))
        if child.is_dir() and _is_maildir(child):
            yield target, read_maildir(child)
        elif child.is_file() and child.name != "dovecot-keywords" and _looks_like_mbox(child):
            yield target, _mbox_file(child)


def _join(mailbox: str, sub: str) -> str:
    return f"{mailbox}{SEPARATOR}{sub}" if sub else mailbox


def _looks_like_mbox(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(5) == b"From "
    except OSError:
        return False


@dataclass(frozen=True)
class MboxSpan:
    """Where one message of a regular mbox file is; read by the worker that parses it."""

    path: str
    span: tuple[int, int, int]
    source: str


Unit = MailItem | MboxSpan


def _mbox_file(path: Path) -> Iterator[Unit]:
    """The messages of an mbox file as spans (cheap to hand to worker processes)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            for index, span in enumerate(mbox_spans(mapped), 1):
                yield MboxSpan(str(path), span, f"{path} #{index}")


def _zip_sources(path: Path, mailbox: str) -> Iterator[tuple[str, Iterator[Unit]]]:
    with zipfile.ZipFile(path) as archive:
        yield from _archive_sources(
            mailbox,
            [(info.filename, info.file_size) for info in archive.infolist() if not info.is_dir()],
            lambda name: archive.open(name))


def _tar_sources(path: Path, mailbox: str) -> Iterator[tuple[str, Iterator[Unit]]]:
    with tarfile.open(path) as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}

        def opener(name: str):  # type: ignore[no-untyped-def]
            stream = archive.extractfile(members[name])
            assert stream is not None
            return stream

        yield from _archive_sources(mailbox, [(m.name, m.size) for m in members.values()],
                                    opener)


def _archive_sources(mailbox: str, members: list[tuple[str, int]],
                     opener: Callable[[str], object]
                     ) -> Iterator[tuple[str, Iterator[Unit]]]:
    """Group archive members into mbox files and Maildirs (by their cur/new parent)."""
    maildirs: dict[str, list[tuple[str, int]]] = {}
    mboxes: list[str] = []
    for name, size in members:
        parts = PurePosixPath(name).parts
        if len(parts) >= 2 and parts[-2] in ("cur", "new"):
            maildirs.setdefault("/".join(parts[:-2]), []).append((name, size))
        elif (len(parts) >= 2 and parts[-2] == "tmp") or parts[-1] == "dovecot-keywords":
            continue
        else:
            mboxes.append(name)
    for name in sorted(mboxes):
        target = _join(mailbox, clean_mailbox_path(list(PurePosixPath(name).parts)))

        def items(name: str = name) -> Iterator[MailItem]:
            with opener(name) as stream:  # type: ignore[attr-defined]
                yield from read_mbox(stream, name)

        yield target, items()
    for directory, entries in sorted(maildirs.items()):
        target = _join(mailbox, clean_mailbox_path(directory.split("/")))

        def maildir_items(entries: list[tuple[str, int]] = entries) -> Iterator[MailItem]:
            from kittiwake.store.mailfile import MAILDIR_FLAGS, to_crlf
            from kittiwake.store.model import Flags

            for name, size in sorted(entries):
                base = PurePosixPath(name).name
                stamp, _, info = base.partition(":2,")
                seconds = stamp.split(".", 1)[0]
                if size > MAX_MESSAGE:
                    yield MailItem(b"", source=name)
                    continue
                with opener(name) as stream:  # type: ignore[attr-defined]
                    data = stream.read()
                flags = Flags.parse([MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS])
                yield MailItem(to_crlf(data), flags,
                               int(seconds) * 1000 if seconds.isdigit() else 0, name)

        yield target, maildir_items()


def import_path(store: AccountStore, mailbox: str, path: Path,
                progress: Progress | None = None, workers: int | None = None) -> ImportResult:
    """Import everything at ``path`` into ``mailbox`` (created if missing).

    ``workers``: processes that parse and write messages (default: one per
    core, none on a single core).
    """
    result = ImportResult()
    mailbox = normalize_mailbox_name(mailbox)
    # Each batch commit puts hundreds of messages' pages in the log: a checkpoint after
    # each (the store's checkpoint thread, beside the next batch), and the last one
    # awaited, so the import leaves no large log behind.
    checkpointer = store.checkpointer
    try:
        _import_all(store, mailbox, path, progress, workers, result, checkpointer.request)
    finally:
        checkpointer.drain()
    return result


def _import_all(store: AccountStore, mailbox: str, path: Path, progress: Progress | None,
                workers: int | None, result: ImportResult,
                committed: Callable[[], None]) -> None:
    with _Preparer(store.root, _worker_count(workers)) as preparer:
        for target, units in sources(path, mailbox):
            try:
                target = normalize_mailbox_name(target)
                try:
                    store.mailbox(target)
                except MailboxNotFound:
                    store.create_mailbox(target)
            except StoreError as exc:
                result.skipped.append((target, str(exc)))
                continue
            prepared = preparer.prepared(units)
            try:
                _import_units(store, target, prepared, result, progress, committed)
            finally:
                prepared.close()  # on an error: the workers' files not yet added are removed


WORKERS = 0  # 0: one per core (at most 4); 1: parse in this process
CHUNK = 64  # messages per task sent to a worker
WINDOW = 2 * BATCH_MESSAGES  # messages prepared ahead of the batch being committed


def _worker_count(workers: int | None) -> int:
    if workers is None:
        workers = WORKERS or min(4, os.cpu_count() or 1)
    return 1 if workers <= 1 else workers


@dataclass
class _Prepared:
    """A message written to a temporary file and summarized, or why it was skipped."""

    source: str
    tmp: str = ""
    size: int = 0
    summary: Summary | None = None
    flags: Flags = field(default_factory=Flags)
    received: int = 0
    skipped: str = ""


# Each worker process maps the mbox file it reads once.
_mapped: dict[str, mmap.mmap] = {}


def _unit_item(unit: Unit) -> MailItem:
    if isinstance(unit, MailItem):
        return unit
    mapped = _mapped.get(unit.path)
    if mapped is None:
        for old in _mapped.values():
            old.close()
        _mapped.clear()
        with open(unit.path, "rb") as f:
            mapped = _mapped[unit.path] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return mbox_item(mapped, unit.span, unit.source)


def _prepare(root: Path, units: list[Unit]) -> list[_Prepared]:
    """Parse, summarize and write messages to temporary files (no fsync: the batch syncs).

    Runs in a worker process: everything here but the writes is CPU-bound
    Python, so with several processes all cores work.
    """
    out: list[_Prepared] = []
    try:
        for unit in units:
            item = _unit_item(unit)
            if not item.data.strip():
                out.append(_Prepared(item.source, skipped="empty or too large message"))
                continue
            summary = summarize(item.data)  # indexed afterwards
            tmp, size = durable.write_temp(root, [item.data], sync=False,
                                         subdir=f"import-{os.getpid()}")
            out.append(_Prepared(item.source, str(tmp), size, summary, item.flags,
                                 item.received))
    except BaseException:
        _discard(out)
        raise
    return out


def _discard(prepared: Iterable[_Prepared]) -> None:
    """Remove temporary files that will not be committed."""
    for p in prepared:
        if p.tmp:
            Path(p.tmp).unlink(missing_ok=True)


class _Preparer:
    """Runs :func:`_prepare` in this process or in a pool of forked workers, in order."""

    def __init__(self, root: Path, workers: int) -> None:
        self.root = root
        self.workers = workers
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> _Preparer:
        if self.workers > 1:
            self.pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("fork"))
            # The first task forks all workers: now, before this import starts threads.
            self.pool.submit(os.getpid).result()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        for directory in (self.root / "tmp").glob("import-*"):
            try:
                directory.rmdir()  # the workers' directories, once empty
            except OSError:
                pass
        for mapped in _mapped.values():  # mapped here when there is no pool
            mapped.close()
        _mapped.clear()

    def prepared(self, units: Iterator[Unit]) -> Generator[_Prepared, None, None]:
        if self.pool is None:
            for unit in units:
                yield from _prepare(self.root, [unit])
            return
        window: collections.deque[concurrent.futures.Future[list[_Prepared]]] = \
            collections.deque()
        ready: collections.deque[_Prepared] = collections.deque()
        try:
            for chunk in _chunks(units, CHUNK):
                window.append(self.pool.submit(_prepare, self.root, chunk))
                while len(window) * CHUNK > WINDOW:
                    ready.extend(window.popleft().result())
                    while ready:
                        yield ready.popleft()
            while window:
                ready.extend(window.popleft().result())
                while ready:
                    yield ready.popleft()
        finally:
            # Abandoned (error or early stop): remove the files not handed out, after
            # waiting for the workers still writing them.
            _discard(ready)
            for future in window:
                if not future.cancel():
                    try:
                        _discard(future.result())
                    except BaseException:
                        pass


def _chunks(units: Iterator[Unit], size: int) -> Iterator[list[Unit]]:
    chunk: list[Unit] = []
    for unit in units:
        chunk.append(unit)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _import_units(store: AccountStore, mailbox: str, prepared: Iterator[_Prepared],
                  result: ImportResult, progress: Progress | None,
                  committed: Callable[[], None]) -> None:
    batch: list[NewMessage] = []
    batch_bytes = 0

    def flush() -> None:
        nonlocal batch, batch_bytes
        if not batch:
            return
        delivered = _add_batch(store, mailbox, batch)
        committed()
        result.imported += len(delivered)
        result.bytes += sum(d.size for d in delivered)
        result.mailboxes[mailbox] = result.mailboxes.get(mailbox, 0) + len(delivered)
        batch, batch_bytes = [], 0
        if progress:
            progress(result.imported, result.bytes)

    try:
        for p in prepared:
            if p.skipped:
                result.skipped.append((p.source, p.skipped))
                continue
            assert p.summary is not None
            batch.append(NewMessage(Path(p.tmp), p.size, p.summary, p.flags, p.received))
            batch_bytes += p.size
            if len(batch) >= BATCH_MESSAGES or batch_bytes >= BATCH_BYTES:
                flush()
        flush()
    except BaseException:
        for new in batch:
            new.tmp_path.unlink(missing_ok=True)
        raise


def _add_batch(store: AccountStore, mailbox: str, batch: list[NewMessage]) -> list[Delivered]:
    """One batch in one transaction, its rows pending for the search index.

    The files (written without fsync by the workers) are renamed into place
    in the transaction, then one syncfs(2) makes their data and names durable
    before the COMMIT (DESIGN.md "Durability"). On any failure nothing is
    committed and no new file stays visible.
    """
    placed: list[Path] = []
    try:
        with store._write() as (db, modseq):
            delivered, _changes, _removed = store._insert(db, modseq, mailbox, batch, None,
                                                          indexed_now=False)
            for new, d in zip(batch, delivered, strict=True):
                placed.append(durable.move_into_place(store.root, new.tmp_path, d.message_id,
                                                      sync=False))
            durable.sync_files(placed)
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        for new in batch:
            new.tmp_path.unlink(missing_ok=True)
        raise
    return delivered


IndexProgress = Callable[[int, int], None]  # (messages indexed so far, of how many)


def index_pending(store: AccountStore, runner: CpuRunner = INLINE,
                  progress: IndexProgress | None = None) -> int:
    """Put every message of the account not yet in the search indexes into them
    (what an import left, or deliveries before a crash); how many there were.

    ``runner`` extracts the text (:mod:`kittiwake.cpupool`: worker processes);
    the rows are inserted here, a batch per transaction, so an interruption
    keeps what was done and leaves the rest pending for the next run or the
    server's background indexer.
    """
    total = store.find_unindexed()
    if total:
        store.index_all_pending(runner, None if progress is None else
                                lambda done: progress(done, total))
    return total
