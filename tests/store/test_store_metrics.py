"""kittiwake_store_operations_total{op,result} and its latency histogram: every account
operation is counted once, with its result (a refused delivery is an error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kittiwake import metrics
from kittiwake.store import OverQuota, Store
from kittiwake.store import metrics as store_metrics


def count(op: str, result: str) -> float:
    return metrics.REGISTRY.get_sample_value("kittiwake_store_operations_total",
                                             {"op": op, "result": result}) or 0.0


def timed(op: str) -> float:
    return metrics.REGISTRY.get_sample_value("kittiwake_store_operation_duration_seconds_count",
                                             {"op": op}) or 0.0


async def test_operations_counted_with_result(tmp_path: Path) -> None:
    for op in store_metrics.OPERATIONS:  # known before first use
        assert metrics.REGISTRY.get_sample_value(
            "kittiwake_store_operations_total", {"op": op, "result": "ok"}) is not None
    before = {key: count(*key) for key in (("deliver", "ok"), ("deliver", "error"),
                                           ("mailbox", "ok"))}
    timed_before = timed("deliver")
    store = Store(tmp_path)
    try:
        acc = await store.account("bob", quota_bytes=100)
        await acc.deliver("Inbox", b"x" * 60)
        with pytest.raises(OverQuota):
            await acc.deliver("Inbox", b"y" * 60)
        assert (await acc.mailbox("Inbox")).messages == 1
    finally:
        store.close()
    assert {key: count(*key) - v for key, v in before.items()} == {
        ("deliver", "ok"): 1, ("deliver", "error"): 1, ("mailbox", "ok"): 1}
    assert timed("deliver") == timed_before + 2
