"""Metrics of TLS report exchange, ``kittiwake_tlsrpt_*`` (RFC 8460)."""

from __future__ import annotations

from collections.abc import Iterable

from kittiwake import metrics
from kittiwake.tlsrpt.report import PolicyResult
from kittiwake.tlsrpt.results import PolicyType

# Outcomes of an incoming report message: stored and duplicate are good; malformed,
# bad-json, bad-field and no-report are bad; too-large and bad-gzip are hostile
# (oversized input, gzip bombs, corrupt compression).
INCOMING_OUTCOMES = ("stored", "duplicate", "no-report", "malformed", "bad-json", "bad-field",
                     "too-large", "bad-gzip")
HOSTILE = frozenset({"too-large", "bad-gzip"})

INCOMING = metrics.counter(
    "tlsrpt_reports_received",
    "Incoming TLS report messages by outcome (stored, duplicate; bad: no-report, malformed,"
    " bad-json, bad-field; hostile: too-large, bad-gzip).",
    {"outcome": INCOMING_OUTCOMES})

SENT = metrics.counter(
    "tlsrpt_reports_sent",
    "Outgoing TLS reports by method (mailto, https) and result (ok, error).",
    {"method": ("mailto", "https"), "result": ("ok", "error")})

# The sessions other organizations' reports count for mail to us (RFC 8460 §4.4 "summary"),
# by policy type (§4.3): failures under sts or tlsa mean mail to us was not delivered.
RECEIVED_SESSIONS = metrics.counter(
    "tlsrpt_received_sessions",
    "TLS sessions that newly stored incoming reports count for mail to our domains, by"
    " policy type (sts, tlsa, no-policy-found) and result (successful, failed).",
    {"policy_type": tuple(t.value for t in PolicyType), "result": ("successful", "failed")})


def count_sessions(policies: Iterable[PolicyResult]) -> None:
    """Count the summary of each policy of a report stored for the first time."""
    for p in policies:
        RECEIVED_SESSIONS.labels(policy_type=p.policy_type, result="successful").inc(
            p.total_successful)
        RECEIVED_SESSIONS.labels(policy_type=p.policy_type, result="failed").inc(
            p.total_failure)


def outcome_class(outcome: str) -> str:
    if outcome in ("stored", "duplicate"):
        return "good"
    return "hostile" if outcome in HOSTILE else "bad"


def count_incoming(outcome: str) -> None:
    INCOMING.labels(outcome=outcome).inc()
