"""Importing mbox files, Maildirs and archives of them into an account.

Sources: an mbox file, a Maildir (cur/new/tmp), a directory holding several
of those (each becomes a mailbox below the target, named by its relative
path), or a .zip/.tar/.tar.gz/.tgz archive of the same. Archive members are
read as streams and never extracted, so no member path can reach the file
system; member paths only become mailbox names, after cleaning.

Messages are written in batches: files without individual fsyncs, then one
fsync pass over the batch, then one transaction. A message is reported as
imported only after its batch committed.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kittiwake.store import files
from kittiwake.store.account import SEPARATOR, AccountStore, NewMessage, normalize_mailbox_name
from kittiwake.store.mailfile import MailItem, read_maildir, read_mbox
from kittiwake.store.model import MailboxNotFound, StoreError
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


def sources(path: Path, mailbox: str) -> Iterator[tuple[str, Iterator[MailItem]]]:
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


def _mbox_file(path: Path) -> Iterator[MailItem]:
    with open(path, "rb") as f:
        yield from read_mbox(f, str(path))


def _zip_sources(path: Path, mailbox: str) -> Iterator[tuple[str, Iterator[MailItem]]]:
    with zipfile.ZipFile(path) as archive:
        yield from _archive_sources(
            mailbox,
            [(info.filename, info.file_size) for info in archive.infolist() if not info.is_dir()],
            lambda name: archive.open(name))


def _tar_sources(path: Path, mailbox: str) -> Iterator[tuple[str, Iterator[MailItem]]]:
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
                     ) -> Iterator[tuple[str, Iterator[MailItem]]]:
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
                progress: Progress | None = None) -> ImportResult:
    """Import everything at ``path`` into ``mailbox`` (created if missing)."""
    result = ImportResult()
    mailbox = normalize_mailbox_name(mailbox)
    for target, items in sources(path, mailbox):
        try:
            target = normalize_mailbox_name(target)
            try:
                store.mailbox(target)
            except MailboxNotFound:
                store.create_mailbox(target)
        except StoreError as exc:
            result.skipped.append((target, str(exc)))
            continue
        _import_items(store, target, items, result, progress)
    return result


def _summaries(items: Iterator[MailItem], workers: int) -> Iterator[tuple[MailItem, object]]:
    """Items with their summaries, parsed in worker processes when there are several cores.

    Parsing is CPU-bound Python; writing files is system calls. Running the
    parsing in other processes lets both cores work while this one writes.
    """
    if workers <= 1:
        for item in items:
            yield item, summarize(item.data)
        return
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("fork")
    chunk: list[MailItem] = []
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        window: list[tuple[list[MailItem], concurrent.futures.Future[list[Summary]]]] = []

        def submit() -> None:
            window.append((chunk, pool.submit(_summarize_many, [i.data for i in chunk])))

        for item in items:
            chunk.append(item)
            if len(chunk) >= CHUNK:
                submit()
                chunk = []
            while len(window) > workers * 2:
                done, future = window.pop(0)
                yield from zip(done, future.result(), strict=True)
        if chunk:
            submit()
        for done, future in window:
            yield from zip(done, future.result(), strict=True)


CHUNK = 32


def _summarize_many(datas: list[bytes]) -> list[Summary]:
    return [summarize(d) for d in datas]


def _import_items(store: AccountStore, mailbox: str, items: Iterator[MailItem],
                  result: ImportResult, progress: Progress | None,
                  workers: int | None = None) -> None:
    import os

    batch: list[NewMessage] = []
    batch_bytes = 0
    if workers is None:
        workers = min(4, os.cpu_count() or 1)

    def flush() -> None:
        nonlocal batch, batch_bytes
        if not batch:
            return
        files.sync_files(m.tmp_path for m in batch)
        files.fsync_dir(store.root / "tmp")
        delivered, _changes = store.add(mailbox, batch, sync=True)
        result.imported += len(delivered)
        result.bytes += sum(d.size for d in delivered)
        result.mailboxes[mailbox] = result.mailboxes.get(mailbox, 0) + len(delivered)
        batch, batch_bytes = [], 0
        if progress:
            progress(result.imported, result.bytes)

    def usable(all_items: Iterator[MailItem]) -> Iterator[MailItem]:
        for item in all_items:
            if not item.data.strip():
                result.skipped.append((item.source, "empty or too large message"))
                continue
            yield item

    for item, summary in _summaries(usable(items), workers):
        tmp, size = files.write_temp(store.root, [item.data], sync=False)
        batch.append(NewMessage(tmp, size, summary, item.flags, item.received))  # type: ignore[arg-type]
        batch_bytes += size
        if len(batch) >= BATCH_MESSAGES or batch_bytes >= BATCH_BYTES:
            flush()
    flush()
