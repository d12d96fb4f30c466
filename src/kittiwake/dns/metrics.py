"""Metrics of DNS lookups, all ``kittiwake_dns_*``.

Each exchange with a recursive resolver is counted by record type and
result: the response code (RFC 1035 §4.1.1; NOERROR, NXDOMAIN, SERVFAIL,
REFUSED, other), ``timeout`` when no answer came in time, ``error`` for a
network error. Whether the resolver validates DNSSEC (the server probes it
at start and then periodically) is a gauge with one series per status.
"""

from __future__ import annotations

from kittiwake import metrics
from kittiwake.dns.types import RRType

RESULTS = ("NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "other", "timeout", "error")
# The DNSSECSupport values of kittiwake.dns.stub (not imported: stub imports this module).
DNSSEC_STATUSES = ("validates", "not-validating", "unknown", "no-answer")

QUERIES = metrics.counter(
    "dns_queries",
    "DNS queries sent to the recursive resolvers, by record type and result.",
    {"type": tuple(t.value for t in RRType), "result": RESULTS})

QUERY_SECONDS = metrics.histogram(
    "dns_query_duration_seconds",
    "Time until a resolver answered (or the attempt failed), by record type.",
    ["type"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
metrics.preinit(QUERY_SECONDS, type=tuple(t.value for t in RRType))

CACHE_LOOKUPS = metrics.counter(
    "dns_cache_lookups",
    "Lookups answered from the in-process cache (hit), by a query already under way"
    " (shared), or by asking the resolver (miss).",
    {"result": ("hit", "shared", "miss")})

DNSSEC_STATUS = metrics.gauge(
    "dns_resolver_dnssec_status",
    "What the last probe found about the resolver and DNSSEC: 1 for the current status"
    " (validates, not-validating, unknown: an error answer, no-answer), 0 for the others.",
    ["status"])


def set_dnssec_status(status: str) -> None:
    """Make ``status`` (one of :data:`DNSSEC_STATUSES`) the current one."""
    for value in DNSSEC_STATUSES:
        DNSSEC_STATUS.labels(status=value).set(1 if value == status else 0)


def rcode_label(rcode_text: str) -> str:
    return rcode_text if rcode_text in RESULTS[:4] else "other"


set_dnssec_status("unknown")
