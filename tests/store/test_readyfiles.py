"""Message files made ahead (store.readyfiles): a delivery writes into an empty file
whose name is durable already, and syncs that file only, never its directory;
unused files go at a clean close and, after a crash, at the next open."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kittiwake import durable
from kittiwake.store import AccountStore, Appended, Store
from kittiwake.store import readyfiles as ready_module
from kittiwake.store.check import check
from kittiwake.store.store import Account, account_dir


def msg(n: int) -> bytes:
    return (f"From: carol@example.net\r\nTo: alice@example.org\r\nSubject: made {n}\r\n"
            f"Message-ID: <made{n}@example.net>\r\n\r\nKittiwake {n}.\r\n").encode()


def message_files(root: Path) -> dict[int, int]:
    """id -> size of every file under msg/."""
    return {int(p.name): p.stat().st_size
            for shard in (root / "msg").iterdir() for p in shard.iterdir()}


class DirSyncs:
    """Counts the directory fsyncs of message deliveries (both ways the store has)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[Path] = []
        real = durable.dir_sync

        def spy(path: Path) -> durable.DirSync:
            self.calls.append(path)
            return real(path)

        monkeypatch.setattr(durable, "dir_sync", spy)


async def stocked(tmp_path: Path) -> tuple[Store, Account]:
    """A store whose account got one delivery, and so a stock of made files."""
    store = Store(tmp_path)
    account = await store.account("alice")
    await account.deliver("Inbox", msg(0))
    account.core.ready.wait()
    return store, account


async def test_a_delivery_writes_into_a_made_file_and_syncs_no_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    ready = account.core.ready
    first = await account.deliver("Inbox", msg(0))  # none made yet: made after it
    ready.wait()
    assert len(ready) == ready_module.BATCH
    root = account_dir(tmp_path, "alice")
    files = message_files(root)
    made = [i for i in files if i != first.message_id]
    assert len(made) == ready_module.BATCH and all(files[i] == 0 for i in made)
    assert check(account.core) == []  # made files are not interrupted deliveries

    syncs = DirSyncs(monkeypatch)
    second = await account.deliver("Inbox", msg(1))
    assert second.message_id == min(made)  # the oldest made file, taken
    assert syncs.calls == []  # its name was durable: only the file was synced
    assert account.core.path(second.message_id).read_bytes() == msg(1)

    spool = account.spool()  # an account spool gets a made file too
    spool.write(msg(2))
    third = await account.deliver_spool("Inbox", spool, b"X-Prefix: 1\r\n")
    assert third.message_id == min(made) + 1
    assert syncs.calls == []
    assert await account.read(third.message_id) == b"X-Prefix: 1\r\n" + msg(2)
    assert [m.subject for m in await account.messages("Inbox")] == \
        ["made 0", "made 1", "made 2"]
    store.close()

    # A clean close removes the files not used.
    assert sorted(message_files(root)) == sorted([first.message_id, second.message_id,
                                                   third.message_id])
    reopened = AccountStore("alice", root)
    assert check(reopened) == []
    reopened.close()


async def test_wait_covers_a_batch_claimed_before_the_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delivery thread claims its batch before its answer, so a wait() right after
    the answer waits for a batch that has not begun yet."""
    store = Store(tmp_path)
    account = await store.account("alice")
    ready = account.core.ready
    go = threading.Event()
    real = ready.fill

    def late_fill() -> None:
        go.wait(10)
        real()

    monkeypatch.setattr(ready, "fill", late_fill)
    await account.deliver("Inbox", msg(0))  # answered; its batch not begun
    waiter = asyncio.ensure_future(asyncio.to_thread(ready.wait))
    await asyncio.sleep(0.05)
    assert not waiter.done() and len(ready) == 0
    go.set()
    await asyncio.wait_for(waiter, 10)
    assert len(ready) == ready_module.BATCH
    store.close()


async def test_the_stock_is_refilled_before_it_runs_out(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    ready = account.core.ready
    count = ready_module.BATCH + 40
    delivered = [await account.deliver("Inbox", msg(i)) for i in range(count)]
    ready.wait()
    # Only the first delivery made its own file; every later one found a made one.
    assert ready.made >= 2 * ready_module.BATCH
    assert len(ready) >= ready_module.LOW
    assert len({d.message_id for d in delivered}) == count
    assert [await account.read(d.message_id) for d in delivered[-3:]] == \
        [msg(i) for i in range(count - 3, count)]
    store.close()


async def test_a_made_file_removed_meanwhile_is_made_again_and_its_directory_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, account = await stocked(tmp_path)
    root = account_dir(tmp_path, "alice")
    for shard in (root / "msg").iterdir():  # e.g. another process's check --repair
        for path in shard.iterdir():
            if path.stat().st_size == 0:
                path.unlink()
    syncs = DirSyncs(monkeypatch)
    again = await account.deliver("Inbox", msg(1))
    assert account.core.path(again.message_id).read_bytes() == msg(1)
    assert syncs.calls == [account.core.path(again.message_id).parent]
    store.close()


def test_a_check_from_another_process_leaves_made_files_alone(tmp_path: Path) -> None:
    root = tmp_path / "accounts" / "alice"
    server = AccountStore("alice", root)
    server.ensure_mailboxes(["Inbox"])
    server.deliver("Inbox", msg(0))
    server.ready.fill()
    assert len(server.ready) == ready_module.BATCH
    elsewhere = AccountStore("alice", root)  # as `kittiwake account check` while it runs
    assert not elsewhere.opened_alone
    assert check(elsewhere, repair=True) == []
    assert len(message_files(root)) == ready_module.BATCH + 1  # nothing removed
    elsewhere.close()
    server.close()


CRASHER = """
import os, sys
from pathlib import Path
from kittiwake.store import AccountStore
store = AccountStore("alice", Path(sys.argv[1]))
store.ensure_mailboxes(["Inbox"])
store.deliver("Inbox", b"Subject: kept\\r\\n\\r\\nbody\\r\\n")
store.ready.fill()
print(len(store.ready), flush=True)
os.kill(os.getpid(), 9)
"""


def test_made_files_left_by_a_crash_are_removed_at_the_next_open(tmp_path: Path) -> None:
    root = tmp_path / "accounts" / "alice"
    done = subprocess.run([sys.executable, "-c", CRASHER, str(root)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == -signal.SIGKILL
    assert int(done.stdout) == ready_module.BATCH
    assert len(message_files(root)) == ready_module.BATCH + 1
    store = AccountStore("alice", root)
    assert len(message_files(root)) == 1  # only the delivered message's
    assert [m.subject for m in store.messages("Inbox")] == ["kept"]
    assert check(store) == []
    store.close()


async def test_append_writes_into_made_files_and_syncs_no_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, account = await stocked(tmp_path)
    syncs = DirSyncs(monkeypatch)
    for batch in ([msg(1)], [msg(2), msg(3)]):  # APPEND, then MULTIAPPEND (RFC 3502)
        spools = [account.spool() for _ in batch]
        for spool, data in zip(spools, batch, strict=True):
            spool.write(data)
        delivered = await account.append("Inbox", [Appended(s.path, spool=s) for s in spools])
        assert [await account.read(d.message_id) for d in delivered] == batch
    assert syncs.calls == []
    assert [m.subject for m in await account.messages("Inbox")] == \
        [f"made {i}" for i in range(4)]
    store.close()


async def test_a_failed_batch_is_not_retried_at_once_and_deliveries_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk while making files: logged once, no batch for a while, and every
    delivery still stored with a file of its own (its directory synced)."""
    store = Store(tmp_path)
    account = await store.account("alice")
    ready = account.core.ready
    made_by_fill = 0

    class FullDisk:  # readyfiles' view of durable: its file creation fails
        def __getattr__(self, name: str) -> object:
            return getattr(durable, name)

        @staticmethod
        def create_message(path: Path) -> int:
            nonlocal made_by_fill
            made_by_fill += 1
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(ready_module, "durable", FullDisk())
    delivered = [await account.deliver("Inbox", msg(i)) for i in range(5)]
    ready.wait()
    assert made_by_fill == 1  # one failed batch, not one per delivery
    assert len(ready) == 0 and not ready.low
    assert [await account.read(d.message_id) for d in delivered] == [msg(i) for i in range(5)]
    assert check(account.core) == []
    store.close()
