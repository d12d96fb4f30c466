"""The CPU worker pool: jobs run in worker processes, and survive a worker's death."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from kittiwake import metrics
from kittiwake.cpupool import INLINE, RESTART_INTERVAL, CpuPool, default_workers


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(f"kittiwake_{name}", labels) or 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pool(clock: Clock) -> Iterator[CpuPool]:
    pool = CpuPool(1, clock=clock)
    pool.start()
    yield pool
    pool.close()


def wait_dead(pid: int) -> None:
    """Until ``pid`` is gone or a zombie (its parent, the fork server, reaps it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not die")


def test_jobs_run_in_a_worker_process(pool: CpuPool) -> None:
    before = sample("cpu_jobs_total", where="worker")
    worker = pool.call(os.getpid)
    assert worker != os.getpid()
    assert pool.worker_pids() == [worker]
    assert pool.map(abs, [-3, 2, -1]) == [3, 2, 1]  # in the order of the items
    assert sample("cpu_jobs_total", where="worker") == before + 4


def test_a_jobs_own_error_reaches_the_caller_and_is_not_retried(pool: CpuPool) -> None:
    fallbacks = sample("cpu_inline_fallbacks_total", reason="worker-died")
    with pytest.raises(ValueError, match="invalid literal"):
        pool.call(int, "puffin")
    assert sample("cpu_inline_fallbacks_total", reason="worker-died") == fallbacks
    assert pool.call(int, "12") == 12


def test_a_killed_worker_falls_back_inline_then_the_pool_restarts(
        pool: CpuPool, clock: Clock) -> None:
    fallbacks = sample("cpu_inline_fallbacks_total", reason="worker-died")
    restarts = sample("cpu_worker_restarts_total")
    worker = pool.call(os.getpid)
    os.kill(worker, signal.SIGKILL)
    wait_dead(worker)
    # The job meant for the dead worker runs in this process; so does the next one
    # until the restart interval has passed (a job that kills workers costs no storm).
    assert pool.call(os.getpid) == os.getpid()
    assert pool.map(abs, [-5]) == [5]
    assert pool.call(os.getpid) == os.getpid()
    assert sample("cpu_inline_fallbacks_total", reason="worker-died") == fallbacks + 3
    assert sample("cpu_worker_restarts_total") == restarts
    clock.now += RESTART_INTERVAL + 1
    fresh = pool.call(os.getpid)
    assert fresh not in (worker, os.getpid())
    assert sample("cpu_worker_restarts_total") == restarts + 1


def test_close_stops_the_workers_and_later_jobs_run_inline(clock: Clock) -> None:
    pool = CpuPool(2, clock=clock)
    pool.start()
    workers = pool.worker_pids()
    assert len(workers) == 2
    closed = sample("cpu_inline_fallbacks_total", reason="closed")
    pool.close()
    for pid in workers:
        wait_dead(pid)
    assert pool.call(os.getpid) == os.getpid()
    assert sample("cpu_inline_fallbacks_total", reason="closed") == closed + 1
    assert sample("cpu_workers") == 0


def test_no_workers_runs_inline_without_counting_a_fallback() -> None:
    pool = CpuPool(0)
    pool.start()
    fallbacks = sum(sample("cpu_inline_fallbacks_total", reason=r)
                    for r in ("worker-died", "closed"))
    assert pool.call(os.getpid) == os.getpid()
    assert INLINE.map(abs, [-1]) == [1]
    assert sum(sample("cpu_inline_fallbacks_total", reason=r)
               for r in ("worker-died", "closed")) == fallbacks


def test_worker_count_follows_the_cores_or_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    monkeypatch.delenv("KITTIWAKE_CPU_WORKERS", raising=False)
    assert default_workers() == 2  # the first core is the event loop's
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert default_workers() == 0
    monkeypatch.setenv("KITTIWAKE_CPU_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("KITTIWAKE_CPU_WORKERS", "many")
    assert default_workers() == 0  # ignored (with a warning): the cores decide
