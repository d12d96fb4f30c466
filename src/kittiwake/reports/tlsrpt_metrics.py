"""Metrics of TLS report exchange, ``kittiwake_tlsrpt_*`` (RFC 8460)."""

from __future__ import annotations

from kittiwake import metrics

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


def outcome_class(outcome: str) -> str:
    if outcome in ("stored", "duplicate"):
        return "good"
    return "hostile" if outcome in HOSTILE else "bad"


def count_incoming(outcome: str) -> None:
    INCOMING.labels(outcome=outcome).inc()
