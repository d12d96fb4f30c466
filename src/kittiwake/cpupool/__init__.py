"""CPU-bound work of the mail path in worker processes: the server's other cores.

One Python process runs Python code on one core at a time (the GIL). The
server's event loop, its SMTP and IMAP sessions and the checks of every
message (SPF, DKIM, DMARC, iprev) share that core; SQLite (inside
``sqlite3_step``), fsync and hashlib on large buffers release the GIL, so
the store's writes and the DKIM body hashes already overlap with it. What
is left is pure-Python CPU work that holds the GIL for milliseconds per
message: that goes to this pool, so it runs on another core and the event
loop does not wait for it.

What runs here (each a module-level function taking paths or bytes and
returning plain data, so that a job is cheap to send and its result cheap to
send back):

- the background indexer's text extraction: decoding a stored message's
  header fields and text parts, HTML to text, Unicode folding
  (:func:`kittiwake.message.searchtext.index_texts`); the rows are inserted
  by the indexer thread of the server process, so the store keeps its one
  writer per account;
- the junk filter's words of an incoming message
  (:func:`kittiwake.junk.tokens.message_words`) when the account's filter is
  trained (0.7 ms for a 10 KiB text message, 10 ms for the 43 KiB average
  of ``bench.corpus.varied``).

Measured (``bench.smtp_inbound --quick --mx`` on 2 shared cores, 10 KiB
messages; py-spy ``--gil`` on the server, and the server's CPU time): the
server process spends 3-6.5 ms of CPU per message on the full MX path and
2-2.5 ms in ``localserve``. Of the time it holds the GIL, SMTP session and
event-loop work and the DNS client are over half, the checks (SPF, DKIM,
DMARC, iprev) about a fifth; the store's summary parse of such a message
takes 0.04 ms and its search text extraction 0.04 ms (1.5 ms for the 43 KiB
average of the varied corpus), and the junk filter (untrained there) does
SQLite work, which releases the GIL. The index's own cost after a delivery,
0.5-1 ms per message, is SQLite's FTS5 inserts (C, GIL released) and stays
in the indexer thread. With the pool the workers do 0.07-0.13 ms per
benchmark message. So a pool takes little from the 10 KiB benchmark; it
takes the work that grows with the message (text extraction of large and
HTML mail, junk words of a trained filter) off the event loop's core. The
bigger share, per-session protocol work, runs in the SMTP worker processes
(:mod:`kittiwake.server.smtpworkers`), which share the listening sockets and
hand the account writes to the server process. The
pool costs about 60 MiB (PSS; 118 MiB summed VmHWM) for its fork server,
resource tracker and one worker.

Choices:

- ``forkserver`` start method: workers fork from a small server process
  started once (before the first job), so they do not inherit the server's
  listening sockets, TLS keys, SQLite connections or threads, and a
  ``kittiwake restart`` (exec with the listening sockets) leaves no worker
  holding a socket. Modules named in ``preload`` are imported once in the
  fork server, so a new worker is ready in milliseconds.
- Size: one worker per core beyond the first (:func:`default_workers`, at
  most :data:`MAX_WORKERS`); 0 runs every job inline in the caller, which is
  what one core, the CLIs and tests get (:data:`INLINE`).
- At most ``max_in_flight`` jobs are queued or running; a caller past that
  waits (callers are worker threads, never the event loop).
- A worker that dies (killed, out of memory) breaks the executor: its jobs
  run inline in their callers (counted), and a new pool is started, at most
  once per :data:`RESTART_INTERVAL` seconds; in between, jobs run inline.
- :meth:`CpuPool.close` waits for running jobs and stops the workers;
  after it, jobs run inline (the server's last index batch at a stop).

Invariants: a job's own exception (a bug or bad input inside ``fn``) is
raised to its caller as if it ran inline; only the loss of a worker makes a
job run again, inline. Jobs must be pure: running one twice is harmless.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol, TypeVar

from kittiwake.cpupool import metrics as cpu_metrics
from kittiwake.log import get_logger

logger = get_logger("cpupool")

T = TypeVar("T")
A = TypeVar("A")

MAX_WORKERS = 4
# Seconds between two restarts of a pool that lost a worker (a job that kills its
# worker every time must not cost a new process per message).
RESTART_INTERVAL = 30.0
# Jobs queued or running per worker before callers wait.
IN_FLIGHT_PER_WORKER = 4
# Environment override of the worker count (benchmarks, debugging): an integer >= 0.
WORKERS_ENV = "KITTIWAKE_CPU_WORKERS"


def _follow_owner(owner: int, interval: float = 1.0) -> None:
    """In each worker: end it when the server that started the pool is gone.

    A worker is the fork server's child, and both hold ends of the pool's pipes, so
    neither notices by itself when the server dies without closing the pool (SIGKILL,
    the OOM killer): without this, the fork server, its workers and the resource
    tracker would live on as orphans. Once the workers exit, the fork server and the
    resource tracker see their pipes close and exit too."""

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # another user's process has that pid now
                os._exit(0)
            if os.getppid() == 1:  # the fork server itself is an orphan
                os._exit(0)

    threading.Thread(target=watch, name="kittiwake-cpu-owner", daemon=True).start()


class CpuRunner(Protocol):
    """Runs pure CPU-bound functions: in worker processes, or inline.

    Both methods block; call them from a worker thread, never the event loop.
    """

    def call(self, fn: Callable[..., T], *args: object) -> T: ...

    def map(self, fn: Callable[[A], T], items: Sequence[A]) -> list[T]: ...


class Inline:
    """The runner without processes: every job in the caller's thread."""

    def call(self, fn: Callable[..., T], *args: object) -> T:
        cpu_metrics.JOBS.labels(where="inline").inc()
        return fn(*args)

    def map(self, fn: Callable[[A], T], items: Sequence[A]) -> list[T]:
        cpu_metrics.JOBS.labels(where="inline").inc(len(items))
        return [fn(item) for item in items]


INLINE = Inline()


def default_workers() -> int:
    """Worker processes for this machine: one per usable core beyond the first.

    ``KITTIWAKE_CPU_WORKERS`` overrides (0: none). A value that is not a
    non-negative integer is ignored with a warning.
    """
    text = os.environ.get(WORKERS_ENV, "").strip()
    if text:
        if text.isdigit():
            return int(text)
        logger.warning("ignoring invalid worker count", variable=WORKERS_ENV, value=text,
                       expected="an integer >= 0")
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(0, min(MAX_WORKERS, cores - 1))


def _ready() -> int:
    """A no-op job: makes a worker start; its pid."""
    return os.getpid()


class CpuPool:
    """A pool of worker processes for :class:`CpuRunner` jobs (see the module docstring)."""

    def __init__(self, workers: int, preload: Iterable[str] = (),
                 max_in_flight: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.workers = max(0, workers)
        self.preload = list(preload)
        self.clock = clock
        self._slots = threading.BoundedSemaphore(
            max_in_flight or max(1, self.workers) * IN_FLIGHT_PER_WORKER)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = self.workers == 0
        self._last_start = float("-inf")
        self._started_once = False

    # --- life cycle --------------------------------------------------------------

    def start(self) -> None:
        """Start the fork server and every worker now (not at the first message)."""
        if self._closed:
            cpu_metrics.WORKERS.set(0)
            return
        with self._lock:
            executor = self._executor or self._new_executor()
        # Each submission finding no idle worker starts one, up to the pool's size.
        for future in [executor.submit(_ready) for _ in range(self.workers)]:
            future.result()
        logger.info("cpu workers started", workers=self.workers, pids=self.worker_pids())

    def _new_executor(self) -> ProcessPoolExecutor:
        """A fresh executor (the caller holds the lock)."""
        context = multiprocessing.get_context("forkserver")
        if self.preload:
            context.set_forkserver_preload(self.preload)
        self._executor = ProcessPoolExecutor(self.workers, mp_context=context,
                                             initializer=_follow_owner, initargs=(os.getpid(),))
        self._last_start = self.clock()
        if self._started_once:
            cpu_metrics.WORKER_RESTARTS.inc()
            logger.warning("cpu workers restarted after a worker died", workers=self.workers)
        self._started_once = True
        cpu_metrics.WORKERS.set(self.workers)
        return self._executor

    def close(self) -> None:
        """Wait for running jobs, stop the workers; later jobs run inline."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        cpu_metrics.WORKERS.set(0)

    def worker_pids(self) -> list[int]:
        """Pids of the running worker processes (for status and benchmarks)."""
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return sorted(processes)

    # --- running jobs --------------------------------------------------------------

    def _current(self) -> ProcessPoolExecutor | None:
        """The executor to submit to, or None: run inline (closed, or waiting to restart)."""
        with self._lock:
            if self._closed:
                return None
            if self._executor is None:
                if self.clock() - self._last_start < RESTART_INTERVAL:
                    return None
                return self._new_executor()
            return self._executor

    def _lost(self, executor: ProcessPoolExecutor) -> None:
        """A worker of ``executor`` died: drop it; the next job after the interval restarts."""
        with self._lock:
            if self._executor is not executor:
                return  # another caller noticed first
            self._executor = None
            cpu_metrics.WORKERS.set(0)
        logger.error("cpu worker died; its jobs run in the server process meanwhile")
        executor.shutdown(wait=False, cancel_futures=True)

    def _submit(self, fn: Callable[..., T], args: tuple[object, ...]
                ) -> tuple[ProcessPoolExecutor, Future[T]] | None:
        executor = self._current()
        if executor is None:
            return None
        self._slots.acquire()
        try:
            future = executor.submit(fn, *args)
        except BrokenProcessPool:
            self._slots.release()
            self._lost(executor)
            return None
        except RuntimeError:  # shut down meanwhile (close)
            self._slots.release()
            return None
        future.add_done_callback(lambda _f: self._slots.release())
        return executor, future

    def _result(self, submitted: tuple[ProcessPoolExecutor, Future[T]] | None,
                fn: Callable[..., T], args: tuple[object, ...], started: float) -> T:
        if submitted is None:
            reason = "closed" if self._closed else "worker-died"
            return self._inline(fn, args, reason if self.workers else None)
        executor, future = submitted
        try:
            result = future.result()
        except BrokenProcessPool:
            self._lost(executor)
            return self._inline(fn, args, "worker-died")
        except CancelledError:
            return self._inline(fn, args, "closed" if self._closed else "worker-died")
        cpu_metrics.JOBS.labels(where="worker").inc()
        cpu_metrics.JOB_SECONDS.observe(time.monotonic() - started)
        return result

    @staticmethod
    def _inline(fn: Callable[..., T], args: tuple[object, ...], reason: str | None) -> T:
        if reason is not None:
            cpu_metrics.INLINE_FALLBACKS.labels(reason=reason).inc()
        cpu_metrics.JOBS.labels(where="inline").inc()
        return fn(*args)

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker process (inline when there is none); blocks."""
        started = time.monotonic()
        return self._result(self._submit(fn, args), fn, args, started)

    def map(self, fn: Callable[[A], T], items: Sequence[A]) -> list[T]:
        """``[fn(item) for item in items]``, the items spread over the workers; blocks.

        Results are in the order of ``items``. Submission waits while
        ``max_in_flight`` jobs are out, so a long list never queues whole.
        """
        started = time.monotonic()
        pending: list[tuple[tuple[ProcessPoolExecutor, Future[T]] | None, A]] = []
        results: list[T] = []
        for item in items:
            pending.append((self._submit(fn, (item,)), item))
        for submitted, item in pending:
            results.append(self._result(submitted, fn, (item,), started))
        return results


__all__ = ["INLINE", "CpuPool", "CpuRunner", "Inline", "default_workers"]
