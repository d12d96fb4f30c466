"""Metrics of the outgoing queue, all ``kittiwake_queue_*``.

Counters (attempts, durations, TLS outcomes; DSNs in
``kittiwake.queue.notices``) are counted where the
event happens. The queue's state (messages, recipients, held, oldest) is
read from the queue database at scrape time by :class:`QueueCollector`, so
it is always the truth of the database, also after a restart.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kittiwake import metrics
from kittiwake.queue.model import Batch, DeliveryError, DeliveryResult, Outcome
from kittiwake.tlsrpt import PolicyType, TLSResult

# How a batch was sent: MX delivery (also through SOCKS), a relay (smarthost,
# submission, localserve), or the "fail" transport / a routing error.
TRANSPORTS = ("direct", "relay", "fail")
# Attempt number of a recipient; alerts look at "4+" (failing since the 4th attempt).
ATTEMPT_BUCKETS = ("1", "2", "3", "4+")
RESULTS = tuple(str(o) for o in Outcome)
# TLS of a delivery connection: DANE (RFC 7672), MTA-STS (RFC 8461), opportunistic
# STARTTLS without a policy, or plain text (no STARTTLS offered, no policy).
TLS_POLICIES = ("dane", "mtasts", "opportunistic", "plaintext")

ATTEMPTS = metrics.counter(
    "queue_delivery_attempts",
    "Delivery attempts per recipient, by transport, attempt number and result.",
    {"transport": TRANSPORTS, "attempt": ATTEMPT_BUCKETS, "result": RESULTS})

DELIVERY_SECONDS = metrics.histogram(
    "queue_delivery_duration_seconds",
    "Time of one delivery attempt of a batch (connect, TLS, transaction), by transport.",
    ["transport"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))

TLS_OUTCOMES = metrics.counter(
    "queue_tls_connections",
    "Outgoing connections by TLS policy (dane, mtasts, opportunistic, plaintext) and"
    " result (success, or failure: the connection was not used because TLS did not hold).",
    {"policy": TLS_POLICIES, "result": ("success", "failure")})

# Connections: "new" was opened for a message, "reused" carried one more message of
# the same destination (queue.pool); "retired" were closed after the per-connection
# message limit.
CONNECTIONS = metrics.counter(
    "queue_connections",
    "Outgoing SMTP connections by use: new (opened for a message), reused (a further"
    " message on an open connection), retired (closed at the per-connection message limit).",
    {"use": ("new", "reused", "retired")})

# Pacing (queue.scheduler): a destination that failed is paused; its other due
# recipients are deferred with it (counted as attempts, not sent).
DESTINATION_PAUSES = metrics.counter(
    "queue_destination_pauses",
    "Destinations paused after a failed attempt (connect, DNS, TLS, greeting), with backoff.",
    {})
PACED_DEFERRALS = metrics.counter(
    "queue_paced_deferrals",
    "Recipients deferred without a connection because their destination is paused.", {})

metrics.preinit(DELIVERY_SECONDS, transport=TRANSPORTS)


def attempt_bucket(attempt: int) -> str:
    """``attempt`` is 1 for the first attempt."""
    return str(attempt) if attempt < 4 else "4+"


def attempted(batch: Batch, transport: str, results: list[DeliveryResult],
              started: float) -> list[DeliveryResult]:
    """Count one delivery attempt of ``batch`` and return ``results`` unchanged.

    ``started`` is :func:`time.monotonic` from before the attempt.
    """
    _duration(transport).observe(max(time.monotonic() - started, 0.0))
    attempts = {r.id: r.attempts + 1 for r in batch.recipients}
    for result in results:
        bucket = attempt_bucket(attempts.get(result.recipient_id, 1))
        _attempt_count(transport, bucket, result.outcome).inc()
    return results


# The labelled children, looked up once per label set (the sets are small and fixed;
# prometheus_client's labels() validates and locks on every call).
@functools.cache
def _duration(transport: str) -> Any:
    return DELIVERY_SECONDS.labels(transport=transport)


@functools.cache
def _attempt_count(transport: str, bucket: str, outcome: Outcome) -> Any:
    return ATTEMPTS.labels(transport=transport, attempt=bucket, result=str(outcome))


@functools.cache
def connections(use: str) -> Any:
    """The ``queue_connections`` counter of ``use`` (new, reused, retired)."""
    return CONNECTIONS.labels(use=use)


def tls_policy(result: TLSResult) -> str:
    """The ``policy`` label of a TLS result (RFC 8460 §4.3 policy types, plus plain text)."""
    if result.policy_type is PolicyType.TLSA:
        return "dane"
    if result.policy_type is PolicyType.STS:
        return "mtasts"
    return "opportunistic" if result.success else "plaintext"


def count_tls(results: Iterable[TLSResult]) -> None:
    for result in results:
        policy = tls_policy(result)
        outcome = "success" if result.success or policy == "plaintext" else "failure"
        TLS_OUTCOMES.labels(policy=policy, result=outcome).inc()


@dataclass(frozen=True)
class LastError:
    """A recent delivery error (for ``kittiwake status``, never a metric label)."""

    time: float  # Unix time of the attempt
    address: str
    status: str  # queued (will be retried) or failed
    attempts: int
    error: DeliveryError


@dataclass(frozen=True)
class QueueSummary:
    """The queue at one moment (what the gauges and ``kittiwake status`` show)."""

    messages: int = 0
    recipients: int = 0
    held_messages: int = 0
    oldest: float | None = None  # creation time (Unix seconds) of the oldest queued message
    oldest_held: float | None = None  # same, among messages with a held recipient
    failing_domains: tuple[tuple[str, int], ...] = ()  # (domain, recipients) retried
    last_errors: tuple[LastError, ...] = ()  # newest first
    delivered_since: int = 0  # recipients delivered since midnight UTC
    failed_since: int = 0  # recipients that failed since midnight UTC


class QueueCollector(Collector):
    """Gauges computed from the queue database at each scrape."""

    def __init__(self, summary: Callable[[], QueueSummary],
                 clock: Callable[[], float] = time.time) -> None:
        self.summary = summary
        self.clock = clock

    def describe(self) -> Sequence[GaugeMetricFamily]:
        return list(self._families(QueueSummary()))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families(self.summary())

    def _families(self, s: QueueSummary) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        yield GaugeMetricFamily("kittiwake_queue_messages",
                                "Messages in the queue (with at least one undelivered recipient).",
                                value=s.messages)
        yield GaugeMetricFamily("kittiwake_queue_recipients",
                                "Recipients waiting in the queue.", value=s.recipients)
        yield GaugeMetricFamily("kittiwake_queue_held_messages",
                                "Messages with a recipient on hold.", value=s.held_messages)
        yield GaugeMetricFamily(
            "kittiwake_queue_oldest_message_age_seconds",
            "Age of the oldest message in the queue (0: queue empty).",
            value=0.0 if s.oldest is None else max(now - s.oldest, 0.0))
        yield GaugeMetricFamily(
            "kittiwake_queue_oldest_held_message_age_seconds",
            "Age of the oldest message on hold (0: none held).",
            value=0.0 if s.oldest_held is None else max(now - s.oldest_held, 0.0))


def register_collector(collector: QueueCollector) -> QueueCollector:
    """Add ``collector`` to the kittiwake registry, replacing an earlier one."""
    global _registered
    if _registered is not None:
        metrics.REGISTRY.unregister(_registered)
    metrics.REGISTRY.register(collector)
    _registered = collector
    return collector


def unregister_collector(collector: QueueCollector) -> None:
    global _registered
    if _registered is collector:
        metrics.REGISTRY.unregister(collector)
        _registered = None


_registered: QueueCollector | None = None
