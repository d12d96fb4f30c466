"""Group commit: concurrent deliveries into one account share one transaction.

The committer is held inside its first commit (a gate in ``commit_placed``)
while more deliveries queue; they must then go in together, as one COMMIT,
each caller woken only after it, each failure its own. Concurrent callers
share their directory fsyncs.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from kittiwake import durable, metrics
from kittiwake.store import Appended, MailboxNotFound, OverQuota, Store
from kittiwake.store.account import AccountStore, Delivery
from kittiwake.store.check import check

MSG = (b"From: a@example.org\r\nSubject: group %d\r\nMessage-ID: <g%d@example.org>\r\n\r\n"
       b"body %d\r\n")


def msg(n: int) -> bytes:
    return MSG % (n, n, n)


class Gate:
    """Wraps the committer's transaction (``commit_placed``): records each group and
    holds the first one until opened."""

    def __init__(self, core: AccountStore, hold_first: bool = True) -> None:
        self.core = core
        self.real = core.commit_placed
        self.groups: list[list[Delivery]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.commits = 0
        self.dir_syncs: list[int] = []
        core.db.set_trace_callback(self._trace)
        core.commit_placed = self  # type: ignore[method-assign]

    def _trace(self, sql: str) -> None:
        if sql.strip().upper().startswith("COMMIT"):
            self.commits += 1

    def __call__(self, group: list[Delivery]) -> None:
        self.groups.append(list(group))
        self.entered.set()
        self.release.wait(10)
        self.real(group)

    def sizes(self) -> list[int]:
        return [len(g) for g in self.groups]


async def _held(gate: Gate) -> None:
    """Wait until the committer is inside its first (held) commit."""
    await asyncio.to_thread(gate.entered.wait, 10)
    assert gate.entered.is_set()


async def test_concurrent_deliveries_share_one_commit(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    await account.deliver("Inbox", msg(0))  # the shard directory exists from here on
    gate = Gate(account.core)
    first = asyncio.create_task(account.deliver("Inbox", msg(1)))
    await _held(gate)
    spools = []
    for n in range(10, 13):
        spool = account.spool()
        spool.write(msg(n))
        spools.append(spool)
    more = [asyncio.create_task(account.deliver("Inbox", msg(n))) for n in range(2, 10)]
    more += [asyncio.create_task(account.deliver_spool("Inbox", s, b"X-Prefix: %d\r\n" % i))
             for i, s in enumerate(spools)]
    appended = account.spool()
    appended.write(msg(13))
    path, _ = await asyncio.to_thread(appended.finish)
    more.append(asyncio.create_task(account.append("Inbox", [Appended(path)])))
    # Every caller's own share (write, fsync, summary) is done before it queues.
    while account.core.committer.queued() < len(more):
        await asyncio.sleep(0.005)
    assert not first.done()
    gate.release.set()
    results = await asyncio.gather(first, *more)
    assert gate.sizes() == [1, len(more)]
    assert gate.commits == 2  # one COMMIT (one WAL fsync) for the whole second group
    uids = sorted(r.uid if not isinstance(r, list) else r[0].uid for r in results)
    assert uids == list(range(2, 2 + 1 + len(more)))
    mailbox = await account.mailbox("Inbox")
    assert mailbox.messages == 1 + 1 + len(more)
    assert check(account.core) == []
    assert list((account.core.root / "tmp").glob("*")) == []
    store.close()


def test_concurrent_callers_share_a_directory_fsync(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """While one fsync of a directory runs, callers that come meanwhile share the next."""
    synced: list[Path] = []
    running = threading.Event()
    release = threading.Event()
    real = durable.fsync_dir

    def fsync_dir(path: Path) -> None:
        synced.append(path)
        if len(synced) == 1:
            running.set()
            release.wait(10)
        real(path)

    monkeypatch.setattr(durable, "fsync_dir", fsync_dir)
    first = threading.Thread(target=lambda: durable.dir_sync(tmp_path).ask().wait())
    first.start()
    assert running.wait(10)
    rounds = [durable.dir_sync(tmp_path).ask() for _ in range(5)]  # asking does not block
    assert all(r is rounds[0] for r in rounds)  # one round for the five
    assert not rounds[0].done
    release.set()
    first.join(10)
    for r in rounds:
        r.wait()
    assert synced == [tmp_path, tmp_path]  # the held one, and one for the five


def test_a_directory_fsync_runs_beside_the_callers_own(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller asks for its directory's fsync, fsyncs its file meanwhile, then waits:
    the directory's runs in another thread at the same time; its error reaches the
    callers it covered, and the next round is a new fsync."""
    started = threading.Event()
    release = threading.Event()
    real = durable.fsync_dir
    calls: list[str] = []

    def fsync_dir(path: Path) -> None:
        calls.append(threading.current_thread().name)
        started.set()
        release.wait(10)
        if len(calls) == 1:
            raise OSError(5, "I/O error")
        real(path)

    monkeypatch.setattr(durable, "fsync_dir", fsync_dir)
    first = durable.dir_sync(tmp_path).ask()
    assert started.wait(10)  # running already, in a thread of the pool
    assert calls[0] != threading.current_thread().name
    release.set()
    with pytest.raises(OSError):
        first.wait()
    second = durable.dir_sync(tmp_path).ask()
    assert second is not first
    second.wait()
    assert len(calls) == 2


def test_a_lone_caller_fsyncs_its_directory_itself(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With no other fsync of the directory running or asked for, a caller runs it in
    its own thread (no hand-off); while one runs, it is told to ask for a round."""
    calls: list[str] = []
    started = threading.Event()
    release = threading.Event()
    real = durable.fsync_dir

    def fsync_dir(path: Path) -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 2:  # the round's: held while the caller tries
            started.set()
            release.wait(10)
        real(path)

    monkeypatch.setattr(durable, "fsync_dir", fsync_dir)
    sync = durable.dir_sync(tmp_path)
    assert not sync.busy
    assert sync.sync_here()
    assert calls == [threading.current_thread().name]
    round_ = sync.ask()
    assert started.wait(10)
    assert sync.busy
    assert not sync.sync_here()  # one runs: not a second beside it
    assert len(calls) == 2
    release.set()
    round_.wait()
    assert not sync.busy
    assert sync.sync_here() and len(calls) == 3


async def test_a_lone_delivery_syncs_in_its_own_thread(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone delivery's directory fsync runs in its delivery thread, after its file's,
    and the answer comes after both and the COMMIT. (Without files made ahead: a
    delivery that makes its own file; the stock's batches fsync the directory in a
    delivery thread after its answer, which would race with the events here.)"""
    store = Store(tmp_path)
    account = await store.account("alice")
    account.core.ready.close()
    events: list[tuple[str, str]] = []
    real_dir, real_close = durable.fsync_dir, durable.fsync_close

    def fsync_dir(path: Path) -> None:
        real_dir(path)
        events.append(("dir", threading.current_thread().name))

    def fsync_close(fd: int) -> None:
        real_close(fd)
        events.append(("file", threading.current_thread().name))

    monkeypatch.setattr(durable, "fsync_dir", fsync_dir)
    monkeypatch.setattr(durable, "fsync_close", fsync_close)
    await account.deliver("Inbox", msg(0))  # the shard directory made
    events.clear()
    await account.deliver("Inbox", msg(1))
    assert [e for e, _ in events] == ["file", "dir"]
    assert events[0][1] == events[1][1]  # one thread: the delivery's
    store.close()


async def test_a_lone_delivery_is_committed_alone_at_once(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    gate = Gate(account.core, hold_first=False)
    for n in range(3):
        await account.deliver("Inbox", msg(n))
    assert gate.sizes() == [1, 1, 1]  # nobody waited for company
    store.close()


async def test_a_failing_delivery_fails_alone(tmp_path: Path) -> None:
    """Over quota and a missing mailbox fail only their own callers in the group."""
    store = Store(tmp_path)
    account = await store.account("alice", quota_bytes=2000)
    gate = Gate(account.core)
    first = asyncio.create_task(account.deliver("Inbox", msg(1)))
    await _held(gate)
    big = asyncio.create_task(account.deliver("Inbox", b"Subject: big\r\n\r\n" + b"x" * 3000))
    lost = asyncio.create_task(account.deliver("Nowhere", msg(2)))
    spool = account.spool()
    spool.write(msg(3))
    lost_spool = asyncio.create_task(account.deliver_spool("Nowhere", spool))
    fine = [asyncio.create_task(account.deliver("Inbox", msg(n))) for n in (4, 5)]
    while account.core.committer.queued() < 5:
        await asyncio.sleep(0.005)
    gate.release.set()
    results = await asyncio.gather(first, big, lost, lost_spool, *fine,
                                   return_exceptions=True)
    assert gate.sizes() == [1, 5]
    assert isinstance(results[1], OverQuota)
    assert isinstance(results[2], MailboxNotFound)
    assert isinstance(results[3], MailboxNotFound)
    assert sorted(r.uid for r in results[4:]) == [2, 3]  # type: ignore[union-attr]
    assert (await account.mailbox("Inbox")).messages == 3
    assert list((account.core.root / "tmp").glob("*")) == []  # the failed ones' files too
    assert check(account.core) == []
    store.close()


async def test_changes_are_published_only_after_the_commit(tmp_path: Path) -> None:
    store = Store(tmp_path)
    account = await store.account("alice")
    with store.changes.subscribe("alice") as sub:
        gate = Gate(account.core)
        seen_before_commit: list[int] = []
        real = gate.real

        def commit_then_look(group: list[Delivery]) -> None:
            seen_before_commit.append(sub.queue.qsize())
            real(group)
            seen_before_commit.append(sub.queue.qsize())

        gate.real = commit_then_look  # type: ignore[method-assign]
        first = asyncio.create_task(account.deliver("Inbox", msg(1)))
        await _held(gate)
        second = asyncio.create_task(account.deliver("Inbox", msg(2)))
        while not account.core.committer.queued():
            await asyncio.sleep(0.005)
        gate.release.set()
        await asyncio.gather(first, second)
        # Around each commit (before it, and when it has just returned in its thread)
        # subscribers have heard at most of earlier groups: a group's change comes
        # after its commit (and its fsyncs, test_early_commit.py), never before.
        assert seen_before_commit[:2] == [0, 0]
        assert seen_before_commit[2] <= 1 and seen_before_commit[3] <= 1
        changes = sub.pending()
        assert [(c.kind, c.uids) for c in changes] == [("added", (1,)), ("added", (2,))]
    store.close()


async def test_group_commit_metrics(tmp_path: Path) -> None:
    def sample(name: str) -> float:
        return metrics.REGISTRY.get_sample_value(name) or 0.0

    before = (sample("kittiwake_store_group_commit_deliveries_count"),
              sample("kittiwake_store_group_commit_deliveries_sum"),
              sample("kittiwake_store_group_commit_duration_seconds_count"))
    store = Store(tmp_path)
    account = await store.account("alice")
    gate = Gate(account.core)
    first = asyncio.create_task(account.deliver("Inbox", msg(1)))
    await _held(gate)
    rest = [asyncio.create_task(account.deliver("Inbox", msg(n))) for n in range(2, 6)]
    while account.core.committer.queued() < 4:
        await asyncio.sleep(0.005)
    gate.release.set()
    await asyncio.gather(first, *rest)
    after = (sample("kittiwake_store_group_commit_deliveries_count"),
             sample("kittiwake_store_group_commit_deliveries_sum"),
             sample("kittiwake_store_group_commit_duration_seconds_count"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 5, 2]
    store.close()


async def test_a_caller_gone_before_the_commit_leaves_no_file(tmp_path: Path) -> None:
    """A delivery cancelled (its connection dropped) while its file is being placed is
    not committed, and the file it placed goes when that work ends."""
    store = Store(tmp_path)
    account = await store.account("alice")
    placing = threading.Event()
    release = threading.Event()
    done = threading.Event()
    real = account.core.stage_bytes

    def slow_prepared(*args, **kwargs):  # type: ignore[no-untyped-def]
        delivery = real(*args, **kwargs)  # the file is written at its final name
        placing.set()
        release.wait(10)
        done.set()
        return delivery

    account.core.stage_bytes = slow_prepared  # type: ignore[method-assign]
    task = asyncio.create_task(account.deliver("Inbox", msg(1)))
    assert await asyncio.to_thread(placing.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await asyncio.to_thread(done.wait, 10)
    shard = durable.message_path(account.core.root, 1).parent
    for _ in range(1000):  # the clean-up runs when the worker's result arrives
        if not any(shard.iterdir()):
            break
        await asyncio.sleep(0.01)
    assert list(shard.iterdir()) == []
    assert (await account.mailbox("Inbox")).messages == 0
    assert check(account.core) == []
    store.close()


async def test_an_idle_committer_thread_ends_and_comes_back_for_the_next_delivery(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kittiwake.store import groupcommit

    monkeypatch.setattr(groupcommit, "IDLE_SECONDS", 0.05)
    store = Store(tmp_path)
    account = await store.account("alice")
    await account.deliver("Inbox", msg(1))
    committer = account.core.committer
    # This committer's thread (other tests' stores have threads of the same name).
    thread = committer._thread  # (None if it ended already)

    def alive() -> bool:
        return thread is not None and thread.is_alive()

    for _ in range(200):  # no mail for a while: the thread is gone (it may take a
        if not committer.running and not alive():  # moment to end once it said so)
            break
        await asyncio.sleep(0.01)
    assert not committer.running
    assert not alive()
    second = await account.deliver("Inbox", msg(2))  # started again for it
    assert committer.started == 2
    assert [m.uid for m in await account.messages("Inbox")] == [1, second.uid]
    store.close()
    assert not committer.running
