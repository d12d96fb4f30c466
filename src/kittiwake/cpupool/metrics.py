"""Metrics of the CPU worker pool, ``kittiwake_cpu_*``: jobs, inline fallbacks, restarts."""

from __future__ import annotations

from kittiwake import metrics

# Where a job ran: in a worker process, or in the calling thread (no pool: one core,
# a CLI, a test; or a fallback, counted apart below).
WHERE = ("worker", "inline")
# Why a job meant for a worker ran inline: the pool lost a worker (it is restarted),
# or the pool was closed (shutting down, restarting the server).
FALLBACK_REASONS = ("worker-died", "closed")

JOBS = metrics.counter(
    "cpu_jobs",
    "CPU-bound jobs (search text extraction, junk words) by where they ran.",
    {"where": WHERE})

INLINE_FALLBACKS = metrics.counter(
    "cpu_inline_fallbacks",
    "Jobs meant for a worker process that ran in the server process instead, by reason.",
    {"reason": FALLBACK_REASONS})

WORKER_RESTARTS = metrics.counter(
    "cpu_worker_restarts",
    "Times the worker pool was started again after a worker process died.")

WORKERS = metrics.gauge(
    "cpu_workers",
    "Worker processes of the CPU pool (0: every job runs in the server process).")

JOB_SECONDS = metrics.histogram(
    "cpu_job_duration_seconds",
    "Time from submitting a job to its result (queueing, transfer and work).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
