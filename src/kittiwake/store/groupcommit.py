"""The group committer of one account: many callers' deliveries, one COMMIT per group.

Callers (deliveries from any number of sessions, each in a worker thread of
its own) stage their files (:meth:`AccountStore.stage`: written or taken,
summarized, at their final names) and :meth:`GroupCommitter.submit` them.
This thread commits everything submitted while its previous COMMIT ran in
one transaction (:meth:`AccountStore.commit_placed`: one WAL fsync for the
group). A lone delivery does not wait for company: an idle committer starts
at once.

The fsyncs overlap. A one-message delivery that replaces nothing is
submitted *early*, before its file is durable; its caller fsyncs the file and
the directory while the transaction runs (the file's fsync, the directory's
and the WAL's proceed at the same time, where one after the other would cost
three device flushes) and then says so (:meth:`synced`). Its transaction
lists it in the store's row of such deliveries (one row per store, rewritten
once per group), so that if the machine goes down before the file is durable,
the next open removes its rows (``AccountStore._recover_unsynced``): that
delivery was never acknowledged. The first transaction after it settles drops
it from the list. Deliveries of several messages
(MULTIAPPEND: all or nothing) and replacements (IMAP REPLACE: the old
message's removal must not outlive a new message that is lost) are synced
before they are submitted.

Invariants (easy to break, so here in one place):

- a delivery is *settled*, and its ``on_done`` called, only when its rows are
  committed and its files durable (or it failed: then nothing of it stays);
- groups settle in commit order, so changes reach the change hub in UID
  order, and only settled deliveries' changes go out: no session hears of a
  message before it is durable;
- a committed delivery whose fsync failed is taken back (its rows removed in
  a transaction of this thread, :meth:`AccountStore.undo_committed`) before
  its group settles, with an error for its caller;
- ``on_done`` runs on this thread or a caller's, under the committer's lock:
  it must not block (the async face only schedules a callback on its loop);
- the thread ends after :data:`IDLE_SECONDS` with nothing queued or waiting
  (an account that gets no mail holds no thread), and :meth:`submit` starts
  it again, both under the lock, so no submitted delivery finds it gone.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from kittiwake.log import get_logger
from kittiwake.store import metrics as store_metrics
from kittiwake.store.model import StoreError

if TYPE_CHECKING:
    from kittiwake.store.account import AccountStore, Delivery

logger = get_logger("store")

# The committer's thread ends after this long with nothing to do (restarted on demand).
IDLE_SECONDS = 60.0


class GroupCommitter:
    """One thread per account that commits submitted deliveries in groups."""

    def __init__(self, store: AccountStore) -> None:
        self.store = store
        self._cond = threading.Condition()
        self._queued: list[Delivery] = []
        self._waiting: deque[list[Delivery]] = deque()  # committed groups, not settled
        self._closing = False
        self._thread: threading.Thread | None = None  # None: not running (idle, or new)
        self.started = 0  # threads started so far

    def queued(self) -> int:
        """Deliveries submitted and not yet in a transaction."""
        with self._cond:
            return len(self._queued)

    def submit(self, delivery: Delivery, early: bool = False) -> None:
        """Queue a staged delivery for the next group. ``early``: its files are not
        durable yet; its caller syncs them now and then calls :meth:`synced`."""
        delivery.early = early
        delivery.synced = not early
        with self._cond:
            if self._closing:
                raise StoreError("the store is closing")
            self._queued.append(delivery)
            if self._thread is None:
                self._start()
            self._cond.notify_all()

    @property
    def running(self) -> bool:
        """Whether the committer's thread is running (it ends when idle)."""
        with self._cond:
            return self._thread is not None

    def _start(self) -> None:
        """Start the thread (under the lock)."""
        self.started += 1
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"kittiwake-commit-{self.store.name}")
        self._thread.start()

    def synced(self, delivery: Delivery, error: Exception | None = None) -> None:
        """An early delivery's files are durable now (or their fsync failed)."""
        with self._cond:
            delivery.sync_error = error
            delivery.synced = True
            if not self._settle() or self._closing:
                self._cond.notify_all()  # a delivery to take back, or a close waiting

    def close(self) -> None:
        """Commit and settle what is submitted, then stop the thread."""
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join()

    # --- the committer's thread ---------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                idle_since = time.monotonic()
                while not self._queued and not self._undo_due():
                    if not self._waiting and (
                            self._closing or time.monotonic() - idle_since >= IDLE_SECONDS):
                        self._thread = None  # a submit starts another
                        return
                    self._cond.wait(IDLE_SECONDS)
                group, self._queued = self._queued, []
                undo = self._undo_due()
            if undo:
                self.store.undo_committed(undo)
                with self._cond:
                    for delivery in undo:
                        delivery.sync_error = None
                    self._settle()
            if group:
                self._commit(group)

    def _commit(self, group: list[Delivery]) -> None:
        started = time.monotonic()
        try:
            self.store.commit_placed(group)
        except BaseException as exc:  # commit_placed sets errors; this is a last resort
            logger.error("group commit failed", exc_info=True)
            for delivery in group:
                if not delivery.committed and delivery.error is None:
                    delivery.error = StoreError(f"delivery interrupted: {exc!r}")
        finally:
            store_metrics.GROUP_COMMIT_SECONDS.observe(time.monotonic() - started)
            store_metrics.GROUP_COMMIT_SIZE.observe(len(group))
        with self._cond:
            self._waiting.append(group)
            self._settle()

    def _undo_due(self) -> list[Delivery]:
        """Committed deliveries of the oldest waiting group whose fsync failed."""
        if not self._waiting:
            return []
        return [d for d in self._waiting[0] if d.committed and d.synced and d.sync_error]

    def _settle(self) -> bool:
        """Settle the waiting groups that are done, oldest first (under the lock);
        False when the oldest waits for a delivery to be taken back."""
        while self._waiting:
            group = self._waiting[0]
            if not all(d.synced for d in group):
                return True
            if any(d.committed and d.sync_error for d in group):
                return False
            self._waiting.popleft()
            synced = [d.ids[0] for d in group if d.early and d.committed]
            if synced:
                self.store.markers_synced(synced)
            callbacks: dict[Callable[[list[Delivery]], None], list[Delivery]] = {}
            for delivery in group:
                if delivery.on_done is not None:
                    callbacks.setdefault(delivery.on_done, []).append(delivery)
            for on_done, deliveries in callbacks.items():
                try:
                    on_done(deliveries)
                except Exception:  # e.g. its event loop is gone
                    logger.error("a delivery's completion callback failed", exc_info=True)
        return True
