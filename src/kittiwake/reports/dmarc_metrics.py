"""Metrics of DMARC aggregate reporting, ``kittiwake_dmarc_reports_*``."""

from __future__ import annotations

from kittiwake import metrics
from kittiwake.dmarcrpt import Problem

RESULTS = ("good", "duplicate", "bad", "hostile")

INCOMING = metrics.counter(
    "dmarc_reports_received",
    "DMARC aggregate report messages seen in a dmarc_reports mailbox, by result"
    " (good: stored; duplicate: already stored; bad: malformed or not a report;"
    " hostile: entities, bombs, archive tricks, oversized).",
    {"result": RESULTS})

INCOMING_PROBLEMS = metrics.counter(
    "dmarc_reports_refused",
    "Refused incoming DMARC reports by problem.",
    {"problem": tuple(str(p) for p in Problem)})

EVALUATIONS = metrics.counter(
    "dmarc_reports_evaluations_recorded",
    "DMARC evaluations of incoming mail written to the reports database (for rua reports).")

EVALUATIONS_DROPPED = metrics.counter(
    "dmarc_reports_evaluations_dropped",
    "DMARC evaluations not recorded because the recording buffer was full.")

OUTGOING = metrics.counter(
    "dmarc_reports_sent",
    "Outgoing DMARC aggregate reports per destination, by outcome.",
    {"outcome": ("queued", "too-large", "unverified", "temperror", "own-domain",
                 "unsupported", "error")})
