"""The ``status`` control command: one summary of the running server.

Uptime, listeners, the resolver's DNSSEC status, certificate expiry per
host name, the queue (count, oldest, on hold, failing domains, last errors),
today's messages in and out, and panics since start. The result is plain
JSON; ``kittiwake status`` prints it as one screen or passes it on (``--json``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from kittiwake import metrics
from kittiwake.queue.metrics import QueueSummary
from kittiwake.server.monitor import Monitor
from kittiwake.server.service import Service


def panics() -> dict[str, int]:
    """Panics since start, by origin (only origins with at least one)."""
    out: dict[str, int] = {}
    for family in metrics.PANIC_TOTAL.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value:
                out[sample.labels["origin"]] = int(sample.value)
    return out


def status_report(*, hostname: str, monitor: Monitor, services: Iterable[Service],
                  queue: QueueSummary | None, received_today: dict[str, int],
                  now: float | None = None) -> dict[str, Any]:
    """The ``status`` result (times as Unix seconds, ages and remaining times in seconds)."""
    now = time.time() if now is None else now
    result: dict[str, Any] = {
        "hostname": hostname,
        "pid": os.getpid(),
        "started": monitor.started,
        "uptime_seconds": round(now - monitor.started, 1),
        "listeners": [{"service": s.name, "addresses": s.addresses()} for s in services],
        "dnssec": {"status": monitor.dnssec, "detail": monitor.dnssec_detail},
        "certificates": [
            {"host": c.host, "not_after": c.not_after, "file": c.file,
             "expires_in_seconds": round(c.not_after - now)}
            for c in sorted(monitor.certificates, key=lambda c: (c.not_after, c.host))],
        "certificate_errors": dict(monitor.cert_errors),
        "dnsbl_listed": sorted(f"{ip} in {zone}" for (ip, zone), st in monitor.dnsbl.items()
                               if st == "fail"),
        "messages_today": {"received": received_today.get("smtp", 0),
                           "submitted": received_today.get("submission", 0)
                           + received_today.get("submissions", 0)},
        "panics": panics(),
    }
    if queue is None:
        result["queue"] = None
    else:
        result["messages_today"].update(delivered=queue.delivered_since,
                                        failed=queue.failed_since)
        result["queue"] = {
            "messages": queue.messages, "recipients": queue.recipients,
            "held_messages": queue.held_messages,
            "oldest_age_seconds": None if queue.oldest is None else round(now - queue.oldest),
            "failing_domains": [{"domain": d, "recipients": n}
                                for d, n in queue.failing_domains],
            "last_errors": [
                {"time": e.time, "to": e.address, "status": e.status, "attempts": e.attempts,
                 "code": e.error.code, "enhanced": e.error.enhanced, "text": e.error.text,
                 "host": e.error.host}
                for e in queue.last_errors],
        }
    return result
