"""Picking the next due messages costs the same with 1,000 or 100,000 queued.

The cost is measured as SQLite virtual-machine steps (a progress handler
called every step), which is exact and does not depend on the machine's
load, and the query plans must walk an index without sorting the queue.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from queue_helpers import T0

from kittiwake.queue import QueueStore
from kittiwake.queue.store import to_ms


def fill(store: QueueStore, count: int, domains: int = 50) -> None:
    """``count`` queued one-recipient messages, all due, as enqueue would leave them
    (rows only: picking never opens the files)."""
    db = store.db
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT INTO message (id, account, mail_from, from_domain, smtputf8, eightbit,"
        " requiretls, tls_required_no, size, created) VALUES (?, NULL, 'a@src.test',"
        " 'src.test', 0, 0, NULL, 0, 100, ?)",
        ((i, to_ms(T0)) for i in range(1, count + 1)))
    rng = random.Random(3)
    db.executemany(
        "INSERT INTO recipient (message_id, address, domain, next_attempt) VALUES (?, ?, ?, ?)",
        ((i, f"u{i}@d{i % domains}.test", f"d{i % domains}.test",
          to_ms(T0 - timedelta(seconds=rng.randrange(3600)))) for i in range(1, count + 1)))
    db.execute("COMMIT")


def steps(store: QueueStore, fn: object) -> int:
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    store.db.set_progress_handler(tick, 1)
    try:
        fn()  # type: ignore[operator]
    finally:
        store.db.set_progress_handler(None, 1)
    return counted[0]


def measure(tmp_path: Path, count: int) -> dict[str, int]:
    store = QueueStore(tmp_path / f"q{count}")
    try:
        fill(store, count)
        now = T0
        busy = [f"d{i}.test" for i in range(5)]
        batches = store.due(now, 100)
        assert len(batches) == 100
        assert store.due_for_domain("d7.test", now, 100)
        return {
            "due": steps(store, lambda: store.due(now, 100)),
            "due_busy": steps(store, lambda: store.due(now, 100, busy)),
            "domain": steps(store, lambda: store.due_for_domain("d7.test", now, 10)),
            "next_due": steps(store, lambda: store.next_due()),
            "next_due_busy": steps(store, lambda: store.next_due(busy)),
        }
    finally:
        store.close()


def test_pick_cost_does_not_grow_with_the_queue(tmp_path: Path) -> None:
    small = measure(tmp_path, 1_000)
    large = measure(tmp_path, 100_000)
    for what in small:
        # O(log n) index seeks: a few more b-tree levels at most, never 100x.
        assert large[what] <= small[what] * 1.5, (what, small[what], large[what])


def test_pick_queries_walk_an_index(store: QueueStore) -> None:
    for plan in (store.pick_plan(), store.pick_plan(3), store.pick_plan(domain=True)):
        text = " ".join(plan)
        assert "USING INDEX recipient_due" in text or "USING INDEX recipient_domain_due" \
            in text, plan
        assert "TEMP B-TREE" not in text, plan  # no sort or GROUP BY over the queue
