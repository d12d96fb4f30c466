"""Delivery threads: where callers' file work runs, many at once.

A delivery's own share (write or take its file, summarize its header,
fsync) runs in one of these threads (``Account._deliver``): concurrent
fsyncs merge into few journal commits, so more in flight means fewer,
fuller commits (the event loop's default executor has few threads).

Lighter than :class:`concurrent.futures.ThreadPoolExecutor` on purpose: a
delivery hands over a callable and gets no future (its result comes back by
its own ticket), so a hand-off is one queue put and, when no thread is idle,
a thread start. Threads are started on demand up to a bound and end after
:data:`IDLE_SECONDS` without work. A job must not raise (one that does is
logged); threads are daemons, as nothing they do is acknowledged before the
committer says so.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from kittiwake.log import get_logger

logger = get_logger("store")

# A thread with nothing to do for this long ends (one is started again on demand).
IDLE_SECONDS = 60.0


class Threads:
    """Up to ``size`` threads running submitted callables in submission order."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Callable[..., object], tuple[object, ...]]] = \
            queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0  # running
        self._idle = 0  # waiting for work and not yet claimed by a submit
        self._backlog = 0  # jobs queued for whichever thread is done first
        self._started = 0  # for thread names

    @property
    def running(self) -> int:
        """Threads alive now."""
        return self._threads

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` in one of the threads, as soon as one is free."""
        self._queue.put((fn, args))
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread takes this job
                return
            if self._threads >= self.size:
                self._backlog += 1  # the next thread done with its job takes it
                return
            self._threads += 1
            self._started += 1
            number = self._started
        threading.Thread(target=self._run, name=f"{self.name}_{number}", daemon=True).start()

    def _run(self) -> None:
        get = self._queue.get
        while True:
            try:
                fn, args = get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if not self._idle:
                        continue  # claimed by a submit just now: its job is on its way
                    self._idle -= 1
                    self._threads -= 1
                    return
            try:
                fn(*args)
            except BaseException:  # jobs report their own errors; this is a last resort
                logger.error("a delivery thread's job failed", exc_info=True)
            del fn, args
            with self._lock:
                if self._backlog:
                    self._backlog -= 1  # this thread takes one of them next
                else:
                    self._idle += 1
