"""The order of the durability steps (DESIGN.md "Durability"), observed system call by call.

A SIGKILL test cannot show a missing fsync (the page cache survives the
process), so these tests record what the store does instead: every
``os.fsync`` (mapped back from its descriptor to the path it was opened
for), every rename into place, every ``syncfs(2)`` and every COMMIT of the
SQLite connection, in the order they happen. Each acknowledged message must
have had

    its data made durable -> its rename into place -> its directory fsynced
    -> the COMMIT of its row

with nothing of that left for after the COMMIT. The queue fsyncs the file
before the rename. Delivery (a group commit) and an import write their files
unsynced, rename them to their final names (which no row names yet) and then
sync them (delivery: an fsync per file and directory, concurrently; import:
one syncfs(2), or an fsync per file for a small batch), still before the
COMMIT.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from kittiwake import durable as files
from kittiwake.queue.model import Envelope, NewRecipient
from kittiwake.queue.store import QueueStore
from kittiwake.store import AccountStore
from kittiwake.store.account import NewMessage
from kittiwake.store.importer import import_path
from kittiwake.store.summary import summarize

MSG = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: order %d\r\n\r\nbody %d\r\n"


@dataclass
class Recorder:
    """Events in order: ("create", path), ("fsync", path), ("rename", src, dst),
    ("syncfs",), ("commit",)."""

    events: list[tuple[str, ...]] = field(default_factory=list)
    fds: dict[int, str] = field(default_factory=dict)

    def os_shim(self) -> SimpleNamespace:
        """A stand-in for the ``os`` module as ``kittiwake.durable`` uses it."""
        real = os

        def open_(path: object, flags: int, *args: object) -> int:
            fd = real.open(path, flags, *args)  # type: ignore[arg-type]
            self.fds[fd] = os.path.abspath(str(path))
            if flags & os.O_CREAT:
                self.events.append(("create", self.fds[fd]))
            return fd

        def fsync(fd: int) -> None:
            real.fsync(fd)
            self.events.append(("fsync", self.fds.get(fd, f"<fd {fd}>")))

        def renamed(src: object, dst: object) -> None:
            old, new = os.path.abspath(str(src)), os.path.abspath(str(dst))
            self.events.append(("rename", old, new))
            for fd, path in self.fds.items():  # a descriptor still open names the file
                if path == old:
                    self.fds[fd] = new

        def replace(src: object, dst: object) -> None:
            real.replace(src, dst)  # type: ignore[arg-type]
            renamed(src, dst)

        def rename(src: object, dst: object) -> None:
            real.rename(src, dst)  # type: ignore[arg-type]
            renamed(src, dst)

        names = {n: getattr(real, n) for n in dir(real) if not n.startswith("__")}
        names.update(open=open_, fsync=fsync, replace=replace, rename=rename)
        return SimpleNamespace(**names)

    def syncfs_shim(self, real: Callable[[int], int] | None) -> Callable[[int], int]:
        def syncfs(fd: int) -> int:
            result = real(fd) if real is not None else (os.sync() or 0)
            self.events.append(("syncfs",))
            return result
        return syncfs

    def watch(self, db: sqlite3.Connection) -> None:
        """Record each COMMIT the connection executes (before SQLite runs it)."""
        def trace(sql: str) -> None:
            if sql.strip().upper().startswith(("COMMIT", "END")):
                self.events.append(("commit",))
        db.set_trace_callback(trace)

    def index(self, predicate: Callable[[tuple[str, ...]], bool], after: int = -1) -> int:
        for i, event in enumerate(self.events):
            if i > after and predicate(event):
                return i
        raise AssertionError(f"no such event after #{after} in {self.events}")

    def check_message(self, final: Path, *, synced_before_rename: bool) -> None:
        """The steps of one message, in the only order that makes a commit a promise."""
        final_s = str(final.resolve())
        rename = self.index(lambda e: e[0] == "rename" and e[2] == final_s)
        tmp = self.events[rename][1]
        commit = self.index(lambda e: e == ("commit",), after=rename)
        if synced_before_rename:
            data = self.index(lambda e: e == ("fsync", tmp))
            assert data < rename, f"{tmp} was fsynced after its rename: {self.events}"
        else:  # a batch: synced under its final name, or by a syncfs, after the rename
            data = self.index(lambda e: e in (("fsync", final_s), ("syncfs",)), after=rename)
        directory = str(final.parent.resolve())
        dir_sync = self.index(lambda e: e in (("fsync", directory), ("syncfs",)), after=rename)
        assert data < commit, f"{final.name}: data not durable before COMMIT: {self.events}"
        assert dir_sync < commit, f"{final.name}: directory not fsynced before COMMIT: " \
                                  f"{self.events}"
        # No earlier COMMIT between the rename and its own: the row is in this one.
        assert ("commit",) not in self.events[rename:commit]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder()
    monkeypatch.setattr(files, "os", rec.os_shim())
    monkeypatch.setattr(files, "_syncfs", rec.syncfs_shim(files._syncfs))
    yield rec


def _account(tmp_path: Path, rec: Recorder) -> AccountStore:
    store = AccountStore("alice", tmp_path / "alice")
    store.create_mailbox("Inbox")
    rec.watch(store.db)
    rec.events.clear()
    return store


def test_sqlite_commits_are_synchronous_full(tmp_path: Path) -> None:
    """A COMMIT is only durable with synchronous=FULL (2); NORMAL loses it on power loss."""
    account = AccountStore("alice", tmp_path / "alice")
    queue = QueueStore(tmp_path / "queue")
    try:
        for db in (account.db, queue.db):
            assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        account.close()
        queue.close()


def test_delivery_fsyncs_file_renames_fsyncs_dir_then_commits(tmp_path: Path,
                                                              recorder: Recorder) -> None:
    account = _account(tmp_path, recorder)
    try:
        for n in (1, 2):  # the first creates the shard directory, the second does not
            delivered, _ = account.deliver("Inbox", MSG % (n, n))
            recorder.check_message(account.path(delivered.message_id),
                                   synced_before_rename=False)
            assert recorder.events[-1] == ("commit",), recorder.events
            recorder.events.clear()
    finally:
        account.close()


def test_append_of_one_message_has_the_delivery_order(tmp_path: Path,
                                                      recorder: Recorder) -> None:
    """What IMAP APPEND will do: stream the literal to an fsynced temporary file, then
    ``AccountStore.add`` it alone; the OK may only follow the commit."""
    account = _account(tmp_path, recorder)
    try:
        data = MSG % (3, 3)
        tmp, size = files.write_temp(account.root, [data[:10], data[10:]], sync=True)
        [delivered], _ = account.add("Inbox", [NewMessage(tmp, size, summarize(data))])
        recorder.check_message(account.path(delivered.message_id), synced_before_rename=False)
        assert recorder.events[-1] == ("commit",), recorder.events
        assert account.read(delivered.message_id) == data
    finally:
        account.close()


@pytest.mark.parametrize("how", ["deliver", "spool"])
def test_async_delivery_is_durable_before_the_answer(tmp_path: Path, recorder: Recorder,
                                                     how: str) -> None:
    """The async face commits a one-message delivery while its fsyncs run: the file's
    fsync, its directory's and the COMMIT may come in any order, but all of them
    before the caller gets its answer (DESIGN.md principle 5). A file made ahead
    (store.readyfiles) had its directory fsynced after it was made, before the
    message came: that fsync counts, the rule being a directory fsync after the
    file's creation and before the answer."""
    import asyncio

    from kittiwake.store import Store

    async def run() -> list[Path]:
        store = Store(tmp_path / "data")
        account = await store.account("alice")
        recorder.watch(account.core.db)
        finals = []
        try:
            for n in (1, 2, 3):
                account.core.ready.wait()  # (a batch being made: its events come first)
                start = len(recorder.events)
                if how == "deliver":
                    delivered = await account.deliver("Inbox", MSG % (n, n))
                else:
                    spool = account.spool()
                    spool.write(MSG % (n, n))
                    delivered = await account.deliver_spool("Inbox", spool, b"X-A: 1\r\n")
                answer = len(recorder.events)
                final = account.core.path(delivered.message_id)
                finals.append(final)
                done = recorder.events[start:answer]
                assert ("fsync", str(final.resolve())) in done, done
                assert ("commit",) in done, done
                name = str(final.resolve())  # its name made: created there, or renamed to
                made = max(i for i, e in enumerate(recorder.events[:answer])
                           if e[0] in ("create", "rename") and e[-1] == name)
                assert ("fsync", str(final.parent.resolve())) in \
                    recorder.events[made:answer], recorder.events[made:answer]
        finally:
            store.close()
        return finals

    assert len(asyncio.run(run())) == 3


@pytest.mark.parametrize("count", [3, files.SYNCFS_THRESHOLD + 4],
                         ids=["fsync-per-file", "syncfs"])
def test_import_syncs_its_batch_before_the_commit(tmp_path: Path, recorder: Recorder,
                                                  count: int) -> None:
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(b"".join(b"From a@example.org Mon Jan  1 00:00:00 2024\n"
                              + (MSG % (n, n)).replace(b"\r\n", b"\n") + b"\n"
                              for n in range(count)))
    account = _account(tmp_path, recorder)
    try:
        result = import_path(account, "Inbox", mbox, workers=1)
        assert result.imported == count
        ids = [m.id for m in account.messages("Inbox")]
        assert len(ids) == count
        for message_id in ids:
            recorder.check_message(account.path(message_id), synced_before_rename=False)
        if count > files.SYNCFS_THRESHOLD and files._syncfs is not None:
            assert ("syncfs",) in recorder.events
    finally:
        account.close()


def test_queue_enqueue_fsyncs_file_renames_fsyncs_dir_then_commits(
        tmp_path: Path, recorder: Recorder) -> None:
    queue = QueueStore(tmp_path / "queue")
    recorder.watch(queue.db)
    recorder.events.clear()
    try:
        for n in (1, 2):
            message = queue.enqueue(Envelope("a@example.org", (NewRecipient("b@example.net"),)),
                                    MSG % (n, n))
            recorder.check_message(queue.path(message.id), synced_before_rename=True)
            assert recorder.events[-1] == ("commit",), recorder.events
            recorder.events.clear()
    finally:
        queue.close()


def test_recorder_sees_a_missing_fsync(tmp_path: Path, recorder: Recorder) -> None:
    """The checker itself: a write without fsync is refused."""
    account = _account(tmp_path, recorder)
    try:
        tmp, size = files.write_temp(account.root, [MSG % (4, 4)], sync=False)
        [delivered], _ = account.add("Inbox", [NewMessage(tmp, size, summarize(MSG % (4, 4)))])
        with pytest.raises(AssertionError):
            recorder.check_message(account.path(delivered.message_id),
                                   synced_before_rename=True)
    finally:
        account.close()
