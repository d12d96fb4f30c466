"""The ``status`` control command: one summary of the running server.

Uptime, listeners, the resolver's DNSSEC status, certificate expiry per
host name (configured files, and ACME certificates per name set and key type
with their next renewal and last error), the queue (count, oldest, on hold,
failing domains, last errors), today's messages in and out, the junk filter
(accounts filtered, today's verdicts by action), failed TLS handshakes and
panics since start. The result is plain JSON; ``kittiwake status`` prints it
as one screen or passes it on (``--json``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from kittiwake import metrics, metricsshare
from kittiwake.junk.metrics import VERDICTS_TODAY
from kittiwake.listener import TLS_HANDSHAKE_FAILURES
from kittiwake.queue.metrics import QueueSummary
from kittiwake.server.monitor import Monitor
from kittiwake.server.service import Service


class CertificateStatus(Protocol):
    """What :class:`kittiwake.acme.manager.CertificateManager` tells about its certificates."""

    def status(self) -> list[dict[str, str | int | None]]: ...


def panics() -> dict[str, int]:
    """Panics since start, by origin (only origins with at least one)."""
    out: dict[str, int] = {}
    for family in metricsshare.merged(metrics.PANIC_TOTAL, metricsshare.SHARED).collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value:
                out[sample.labels["origin"]] = int(sample.value)
    return out


def tls_handshake_failures() -> dict[str, dict[str, int]]:
    """Failed TLS handshakes on our listeners since start: service -> reason -> count
    (only those with at least one)."""
    out: dict[str, dict[str, int]] = {}
    for family in metricsshare.merged(TLS_HANDSHAKE_FAILURES, metricsshare.SHARED).collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value:
                out.setdefault(sample.labels["service"], {})[sample.labels["reason"]] = \
                    int(sample.value)
    return out


def _timestamp(iso: str | int | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(str(iso)).timestamp()


def acme_certificates(managers: Mapping[str, CertificateStatus], now: float
                      ) -> list[dict[str, Any]]:
    """One entry per ACME certificate (name set and key type), soonest expiry first;
    ``not_after`` is None before the first certificate, ``renew_at`` is when the next
    order is due (now or earlier: due; after a failure: the retry)."""
    out: list[dict[str, Any]] = []
    for authority, manager in sorted(managers.items()):
        for cert in manager.status():
            not_after = _timestamp(cert["not_after"])
            renew_at = now if cert["renew_at"] == "now" else _timestamp(cert["renew_at"])
            if renew_at is not None and renew_at < 0:  # "due since ever": a new name set
                renew_at = now
            out.append({
                "authority": authority, "names": str(cert["names"]).split(","),
                "key_type": cert["key_type"], "not_after": not_after,
                "expires_in_seconds": None if not_after is None else round(not_after - now),
                "renew_at": renew_at, "failures": cert["failures"],
                "last_error": cert["last_error"]})
    out.sort(key=lambda c: (c["not_after"] is not None, c["not_after"] or 0, c["names"],
                            c["key_type"]))
    return out


def status_report(*, hostname: str, monitor: Monitor, services: Iterable[Service],
                  queue: QueueSummary | None, received_today: dict[str, int],
                  acme: Mapping[str, CertificateStatus] | None = None,
                  junk_accounts: int | None = None,
                  now: float | None = None) -> dict[str, Any]:
    """The ``status`` result (times as Unix seconds, ages and remaining times in seconds).

    ``acme``: the certificate manager of each ACME authority in use; ``junk_accounts``:
    how many accounts the running junk filter judges mail for (None: no junk filter)."""
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
        "acme_certificates": acme_certificates(acme or {}, now),
        "junk": None if junk_accounts is None else {
            "accounts_filtered": junk_accounts, "verdicts_today": VERDICTS_TODAY.today()},
        "tls_handshake_failures": tls_handshake_failures(),
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
