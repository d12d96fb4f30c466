"""Metrics of the message store, ``kittiwake_store_*``: account operations and latencies.

Every :class:`kittiwake.store.store.Account` operation runs one transaction in a
worker thread; each is counted by operation (the method name) and result, and
timed. The operations below start at 0; one added later is counted from its
first use (its name is still one of a fixed set: the store's methods).
"""

from __future__ import annotations

from kittiwake import metrics

OPERATIONS = ("mailboxes", "mailbox", "create_mailbox", "ensure_mailboxes", "rename_mailbox",
              "delete_mailbox", "subscribe", "deliver", "deliver_spool", "append", "prepare",
              "prepare_spool", "prepare_appended", "messages", "read",
              "store_flags", "copy", "move", "expunge", "vanished", "search")

OPERATIONS_TOTAL = metrics.counter(
    "store_operations",
    "Account operations by name and result (ok, or error: it raised, e.g. over quota).",
    {"op": OPERATIONS, "result": ("ok", "error")})

OPERATION_SECONDS = metrics.histogram(
    "store_operation_duration_seconds",
    "Time of one account operation (its transaction, fsyncs included), by name.",
    ["op"], buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
metrics.preinit(OPERATION_SECONDS, op=OPERATIONS)

# Group commit (kittiwake.store.groupcommit): deliveries of one account that queued
# while the previous commit ran share one transaction and one WAL fsync.
GROUP_COMMIT_SIZE = metrics.histogram(
    "store_group_commit_deliveries",
    "Deliveries (deliver, deliver_spool, append) committed together in one transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128))

GROUP_COMMIT_SECONDS = metrics.histogram(
    "store_group_commit_duration_seconds",
    "Time of one group commit's transaction, its COMMIT (WAL fsync) included.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
