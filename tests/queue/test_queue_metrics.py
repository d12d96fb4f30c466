"""Queue metrics: the gauges read from the queue database at scrape time, the attempt
counters by transport, attempt bucket and result, and TLS outcomes by policy."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from queue_helpers import T0, envelope, message_bytes

from kittiwake import metrics
from kittiwake.queue.metrics import (
    QueueCollector,
    attempt_bucket,
    attempted,
    count_tls,
    tls_policy,
)
from kittiwake.queue.model import DeliveryError, DeliveryResult, Filter, Outcome
from kittiwake.queue.store import QueueStore
from kittiwake.tlsrpt import PolicyType, ResultType, TLSResult


def gauges(collector: QueueCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_gauges_follow_the_database(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "queue")
    now = T0.timestamp() + 3 * 3600
    collector = QueueCollector(store.summary, clock=lambda: now)
    assert gauges(collector) == {
        "kittiwake_queue_messages": 0, "kittiwake_queue_recipients": 0,
        "kittiwake_queue_held_messages": 0, "kittiwake_queue_oldest_message_age_seconds": 0,
        "kittiwake_queue_oldest_held_message_age_seconds": 0}
    first = store.enqueue(envelope("a@one.example", "b@two.example"), message_bytes(1), T0)
    store.enqueue(envelope("c@two.example"), message_bytes(2), T0 + timedelta(hours=1))
    store.hold(Filter(to_domain="two.example", ids=(first.id,)))
    values = gauges(collector)
    assert values["kittiwake_queue_messages"] == 2
    assert values["kittiwake_queue_recipients"] == 3
    assert values["kittiwake_queue_held_messages"] == 1
    assert values["kittiwake_queue_oldest_message_age_seconds"] == 3 * 3600
    assert values["kittiwake_queue_oldest_held_message_age_seconds"] == 3 * 3600
    a, b = store.recipients(first.id)
    store.record_result([a.id], Outcome.OK, now=T0 + timedelta(hours=2))
    store.record_result([b.id], Outcome.PERMANENT, DeliveryError(550, "5.1.1", "no"),
                        now=T0 + timedelta(hours=2))
    values = gauges(collector)
    assert values["kittiwake_queue_messages"] == 1
    assert values["kittiwake_queue_held_messages"] == 0
    assert values["kittiwake_queue_oldest_message_age_seconds"] == 2 * 3600
    summary = store.summary(since=T0)
    assert (summary.delivered_since, summary.failed_since) == (1, 1)
    assert [(e.address, e.status, e.error.code) for e in summary.last_errors] == [
        ("b@two.example", "failed", 550)]
    store.close()


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_attempts_by_transport_bucket_and_result(tmp_path: Path) -> None:
    assert [attempt_bucket(n) for n in (1, 2, 3, 4, 9)] == ["1", "2", "3", "4+", "4+"]
    store = QueueStore(tmp_path / "queue")
    msg = store.enqueue(envelope("a@x.example", "b@x.example"), message_bytes(), T0)
    batch = store.due(T0 + timedelta(minutes=1))[0]
    a, b = (r.id for r in batch.recipients)
    name = "kittiwake_queue_delivery_attempts_total"
    before = (sample(name, transport="relay", attempt="1", result="ok"),
              sample(name, transport="relay", attempt="1", result="temporary"))
    count_before = sample("kittiwake_queue_delivery_duration_seconds_count", transport="relay")
    results = [DeliveryResult(a, Outcome.OK), DeliveryResult(b, Outcome.TEMPORARY)]
    assert attempted(batch, "relay", results, time.monotonic()) is results
    assert (sample(name, transport="relay", attempt="1", result="ok"),
            sample(name, transport="relay", attempt="1", result="temporary")) == (
        before[0] + 1, before[1] + 1)
    assert sample("kittiwake_queue_delivery_duration_seconds_count",
                  transport="relay") == count_before + 1
    assert msg.id == batch.message_id
    store.close()


def test_tls_outcomes_by_policy() -> None:
    def result(policy: PolicyType, outcome: ResultType) -> TLSResult:
        return TLSResult("example.org", policy, outcome)

    cases = [(result(PolicyType.TLSA, ResultType.SUCCESS), ("dane", "success")),
             (result(PolicyType.TLSA, ResultType.VALIDATION_FAILURE), ("dane", "failure")),
             (result(PolicyType.STS, ResultType.CERTIFICATE_EXPIRED), ("mtasts", "failure")),
             (result(PolicyType.NO_POLICY, ResultType.SUCCESS), ("opportunistic", "success")),
             (result(PolicyType.NO_POLICY, ResultType.STARTTLS_NOT_SUPPORTED),
              ("plaintext", "success"))]
    name = "kittiwake_queue_tls_connections_total"
    for tls, (policy, outcome) in cases:
        assert tls_policy(tls) == policy
        before = sample(name, policy=policy, result=outcome)
        count_tls([tls])
        assert sample(name, policy=policy, result=outcome) == before + 1
