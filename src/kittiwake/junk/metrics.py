"""Metrics of the junk filter, ``kittiwake_junk_*``: verdicts, training, latency."""

from __future__ import annotations

from kittiwake import metrics
from kittiwake.junk.model import ACTIONS, REASONS

VERDICTS = metrics.counter(
    "junk_verdicts",
    "Junk filter decisions by action (accept, junk, reject) and deciding signal.",
    {"action": ACTIONS, "reason": REASONS})

TRAINING_EVENTS = metrics.counter(
    "junk_training_events",
    "Messages trained into (or out of) the word counts, by class and direction"
    " (add: counted as that class; remove: a reclassified message's old count taken back).",
    {"class": ("ham", "junk"), "direction": ("add", "remove")})

CLASSIFY_SECONDS = metrics.histogram(
    "junk_classify_duration_seconds",
    "Time to decide on one message for one account (history, words, score).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

TRAIN_SECONDS = metrics.histogram(
    "junk_train_duration_seconds",
    "Time to train one reclassified message (read, words, counts).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

# Verdicts per action since midnight UTC (``kittiwake status``), counted with VERDICTS.
VERDICTS_TODAY = metrics.DayCounts(ACTIONS)

REJECTS_EXPUNGED = metrics.counter(
    "junk_rejects_expunged",
    "Messages removed from Rejects mailboxes after their retention period.")
