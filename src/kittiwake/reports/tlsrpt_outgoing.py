"""Outgoing TLS reports (RFC 8460 §4, §5): once a day, about the previous UTC day.

From the TLS results the queue recorded per delivery attempt
(:class:`kittiwake.tlsrpt.TLSResults`), one report per recipient policy
domain, and one per MX host with DANE results (RFC 8460 §3: a DANE policy
belongs to the MX host name), each sent to the ``rua`` URIs of that name's
``_smtp._tls`` TXT record: ``mailto:`` as the §5.3 multipart/report message,
DKIM-signed, through the outbox (the queue); ``https:`` POSTed as
``application/tlsrpt+gzip`` (§5.4, gzipped per §5.2).

Invariants (the state lives in :class:`~kittiwake.reports.tlsrptdb.TLSRPTDatabase`):

- A day is *planned* once: its list of reports is committed in one
  transaction with the day, so a restart neither plans it again nor skips it.
- A URI is marked sent only after the queue accepted the message (durably) or
  the POST got a 2xx; a restart retries only URIs not marked. An https failure
  leaves the report pending, tried again at the next run (up to
  :data:`MAX_ATTEMPTS` runs).
- No report about our own domains or host name, none to a name without
  exactly one TLSRPT record (§3).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kittiwake.config.domains import DomainsConfig
from kittiwake.config.reports import TLSRPTSending
from kittiwake.dns import DNSError
from kittiwake.log import get_logger
from kittiwake.reports.tlsrpt_metrics import SENT
from kittiwake.reports.tlsrptdb import Pending, TLSRPTDatabase
from kittiwake.smtpserver.context import Outbox
from kittiwake.tasks import cancel_and_wait
from kittiwake.tlsrpt.aggregate import build_report, by_dane_host, by_domain, day_range
from kittiwake.tlsrpt.mail import compose_message
from kittiwake.tlsrpt.record import RecordError, TLSRPTRecord, is_tlsrpt_record, parse_record
from kittiwake.tlsrpt.report import GZIP_TYPE, Report, compose_gzip
from kittiwake.tlsrpt.results import PolicyType, TLSResult, TLSResults

logger = get_logger("reports")

MAX_ATTEMPTS = 3  # daily runs a report is tried before it is given up
MAX_BACKLOG_DAYS = 7  # after a long stop, days older than this are not reported
KEEP_RESULTS_DAYS = MAX_BACKLOG_DAYS + MAX_ATTEMPTS + 1  # recorded results kept this long
RUN_AT = dt.timedelta(minutes=15)  # after 00:00 UTC, when the day's results are complete


@dataclass(frozen=True)
class Signer:
    """The domain whose DKIM keys sign the reports, and its From address."""

    domain: str
    keys: tuple[tuple[str, Path, tuple[str, str], int], ...]
    # (selector, key file, canonicalization, expiration seconds or 0)

    @property
    def address(self) -> str:
        return f"postmaster@{self.domain}"


@dataclass
class RunSummary:
    """What one run did (for logs and tests)."""

    planned_days: list[str] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)  # (policy domain, uri)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (domain, uri, error)
    no_record: list[str] = field(default_factory=list)


def find_signer(domains: DomainsConfig, hostname: str, settings: TLSRPTSending,
                key_path: Callable[[str], Path]) -> Signer | None:
    """The configured from_domain, else the host name's domain, else the first domain
    with DKIM signing; None when no domain signs (reports are not sent unsigned)."""
    candidates: list[str] = []
    if settings.from_domain:
        candidates = [str(settings.from_domain)]
    else:
        host = hostname.lower().rstrip(".")
        parts = host.split(".")
        candidates = [".".join(parts[i:]) for i in range(len(parts) - 1)]
        candidates += [str(d) for d in domains.domains]
    for name in candidates:
        conf = domains.domains.get(name)
        if conf is None or not conf.dkim.sign:
            continue
        keys = []
        for selector in conf.dkim.sign:
            sel = conf.dkim.selectors[selector]
            header_canon, body_canon = sel.canonicalization.split("/")
            keys.append((selector, key_path(sel.private_key_file),
                         (header_canon, body_canon), sel.expiration_seconds))
        return Signer(name, tuple(keys))
    return None


def _sign(message: bytes, signer: Signer) -> bytes:
    """DKIM-sign with every signing selector of the domain (RFC 6376 §5). Blocking."""
    from kittiwake import dkim

    signatures = b""
    for selector, path, canon, expiration in signer.keys:
        key = dkim.load_private_key(path.read_bytes())
        signatures += dkim.sign(message, signer.domain, selector, key, canonicalization=canon,
                                expiration=expiration or None)
    return signatures + message


def mailto_address(uri: str) -> str:
    """The address of a ``mailto:`` URI (RFC 6068), without query, percent-decoded."""
    return urllib.parse.unquote(uri.split(":", 1)[1].split("?", 1)[0]).strip()


class TLSRPTSender:
    """Makes and sends the daily reports."""

    def __init__(self, *, results: TLSResults, db: TLSRPTDatabase, resolver: object,
                 outbox: Outbox, hostname: str, settings: TLSRPTSending,
                 domains: Callable[[], DomainsConfig], key_path: Callable[[str], Path],
                 clock: Callable[[], float] = time.time,
                 ssl_context: ssl.SSLContext | None = None,
                 internal_addresses: bool = False) -> None:
        self.results = results
        self.db = db
        self.resolver = resolver
        self.outbox = outbox
        self.hostname = hostname.lower().rstrip(".")
        self.settings = settings
        self.domains = domains
        self.key_path = key_path
        self.clock = clock
        self.ssl_context = ssl_context
        # POSTs to internal addresses are refused (see _post); tests on loopback allow them.
        self.internal_addresses = internal_addresses
        self._task: asyncio.Task[None] | None = None

    # --- planning -------------------------------------------------------------------

    def _own(self) -> set[str]:
        return {str(d).lower() for d in self.domains().domains} | {self.hostname}

    def _days_to_plan(self, today: dt.date) -> list[dt.date]:
        yesterday = today - dt.timedelta(days=1)
        last = self.db.last_planned_day()
        if last is None:
            return [yesterday]
        first = dt.date.fromisoformat(last) + dt.timedelta(days=1)
        first = max(first, today - dt.timedelta(days=MAX_BACKLOG_DAYS))
        return [first + dt.timedelta(days=i) for i in range((yesterday - first).days + 1)]

    def _targets(self, day: dt.date) -> list[tuple[str, str]]:
        """(kind, policy domain) of every report about ``day``. Blocking."""
        start, end = day_range(day)
        results = self.results.between(start.timestamp(), end.timestamp())
        own = self._own()
        targets = [("domain", d) for d in by_domain(results) if d not in own]
        targets += [("host", h) for h in by_dane_host(results) if h not in own]
        return targets

    def _plan(self, today: dt.date, summary: RunSummary) -> None:
        """Blocking: plan every day not planned yet (each in one transaction)."""
        for day in self._days_to_plan(today):
            self.db.plan_day(day.isoformat(), self._targets(day))
            summary.planned_days.append(day.isoformat())

    # --- one run --------------------------------------------------------------------

    async def run_once(self) -> RunSummary:
        """Plan the days up to yesterday and send every pending report."""
        summary = RunSummary()
        if not self.settings.send:
            return summary
        signer = find_signer(self.domains(), self.hostname, self.settings, self.key_path)
        if signer is None:
            logger.warning("tls reports not sent: no domain signs with DKIM",
                           fix="configure dkim.sign for a domain (or reports.tlsrpt.from_domain)")
            return summary
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()
        await asyncio.to_thread(self._plan, today, summary)
        for item in await asyncio.to_thread(self.db.pending):
            await self._send_pending(item, signer, summary)
        # Results older than any report still to be made or retried are not needed.
        keep = dt.datetime.combine(today - dt.timedelta(days=KEEP_RESULTS_DAYS), dt.time(),
                                   dt.UTC)
        await asyncio.to_thread(self.results.prune, keep.timestamp())
        if summary.planned_days or summary.sent or summary.errors:
            logger.info("tls reports run", days=",".join(summary.planned_days),
                        sent=len(summary.sent), errors=len(summary.errors))
        return summary

    async def _record(self, name: str) -> tuple[TLSRPTRecord | None, str, bool]:
        """The TLSRPT record of ``name`` (§3), why there is none, and whether to retry."""
        try:
            answer = await self.resolver.txt(f"_smtp._tls.{name}")  # type: ignore[attr-defined]
        except DNSError as exc:
            return None, str(exc), True
        records = [t for t in answer.records if is_tlsrpt_record(t)]
        if len(records) != 1:
            # §3: anything but exactly one record means no TLSRPT for the domain.
            return None, f"{len(records)} TLSRPT records at _smtp._tls.{name}", False
        try:
            return parse_record(records[0]), "", False
        except RecordError as exc:
            return None, str(exc), False

    def _report(self, item: Pending, signer: Signer) -> Report:
        """Blocking: the report of a pending item, rebuilt from the recorded results."""
        day = dt.date.fromisoformat(item.day)
        start, end = day_range(day)
        results: list[TLSResult] = self.results.between(start.timestamp(), end.timestamp())
        if item.kind == "host":
            selected = by_dane_host(results).get(item.policy_domain, [])
            types: list[PolicyType] | None = [PolicyType.TLSA]
        else:
            selected = by_domain(results).get(item.policy_domain, [])
            types = None
        return build_report(item.policy_domain, selected, day=day,
                            organization=self.settings.organization or self.hostname,
                            contact=signer.address, submitter=self.hostname,
                            policy_types=types)

    async def _send_pending(self, item: Pending, signer: Signer, summary: RunSummary) -> None:
        record, why, retry = await self._record(item.policy_domain)
        if record is None:
            if retry and item.attempts + 1 < MAX_ATTEMPTS:
                await asyncio.to_thread(self.db.finish, item, "pending", why)
            else:
                summary.no_record.append(item.policy_domain)
                await asyncio.to_thread(self.db.finish, item, "no-record", why)
            return
        report = await asyncio.to_thread(self._report, item, signer)
        errors: list[str] = []
        for uri in record.rua:
            if await asyncio.to_thread(self.db.uri_sent, item, uri):
                continue
            method = "https" if uri.lower().startswith("https:") else "mailto"
            try:
                if method == "https":
                    await self._post(uri, report)
                else:
                    await self._mail(mailto_address(uri), report, item.policy_domain, signer)
            except Exception as exc:  # each URI on its own; logged, retried next run
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                SENT.labels(method=method, result="error").inc()
                logger.warning("tls report not sent", policy_domain=item.policy_domain,
                               uri=uri, day=item.day, error=error)
                errors.append(f"{uri}: {error}")
                summary.errors.append((item.policy_domain, uri, error))
                continue
            SENT.labels(method=method, result="ok").inc()
            await asyncio.to_thread(self.db.mark_uri_sent, item, uri)
            summary.sent.append((item.policy_domain, uri))
            logger.info("tls report sent", policy_domain=item.policy_domain, uri=uri,
                        day=item.day, report_id=report.report_id)
        if not errors:
            state = "sent"
        else:
            state = "pending" if item.attempts + 1 < MAX_ATTEMPTS else "failed"
        await asyncio.to_thread(self.db.finish, item, state, "; ".join(errors))

    async def _mail(self, address: str, report: Report, policy_domain: str,
                    signer: Signer) -> None:
        """§5.3: the multipart/report message, DKIM-signed, into the queue."""
        if "@" not in address:
            raise ValueError(f"mailto address {address!r} has no domain")
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)

        def make() -> bytes:
            message = compose_message(report, policy_domain=policy_domain,
                                      submitter=self.hostname, mail_from=signer.address,
                                      to=[address], now=now)
            return _sign(message, signer)

        data = await asyncio.to_thread(make)
        await self.outbox.enqueue(account=None, mailfrom=signer.address, recipients=[address],
                                  data=data, smtputf8=False, requiretls=None)

    async def _post(self, uri: str, report: Report) -> None:
        """§5.4: POST the gzipped report; a 2xx status is success. The host name is
        resolved by kittiwake's resolver (as for MTA-STS fetches), PKIX-verified.

        The URI comes from another domain's DNS, so it must not reach into our own
        network (server-side request forgery): an IP-literal host and names that
        resolve to addresses that are not globally routable are refused."""
        import aiohttp

        from kittiwake.mtasts.https import DNSResolver

        host = urllib.parse.urlsplit(uri).hostname or ""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and not self.internal_addresses:
            raise RuntimeError(f"rua host {host} is an IP address, not a name: refused")
        body = await asyncio.to_thread(compose_gzip, report)
        timeout = aiohttp.ClientTimeout(total=self.settings.https_timeout_seconds)
        connector = aiohttp.TCPConnector(
            ssl=self.ssl_context or ssl.create_default_context(),
            resolver=DNSResolver(self.resolver,  # type: ignore[arg-type]
                                 public_only=not self.internal_addresses),
            use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session, \
                session.post(uri, data=body, headers={"Content-Type": GZIP_TYPE},
                             allow_redirects=False) as response:
            if not 200 <= response.status < 300:
                raise RuntimeError(f"HTTP status {response.status}")

    # --- schedule -------------------------------------------------------------------

    def seconds_until_next_run(self) -> float:
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        midnight = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
        next_run = midnight + RUN_AT
        if next_run <= now:
            next_run += dt.timedelta(days=1)
        return (next_run - now).total_seconds()

    async def run_forever(self) -> None:
        """Run at start (catching up a day missed while stopped), then daily."""
        from kittiwake.metrics import guard

        while True:
            with guard("reports", "tls report run failed"):
                await self.run_once()
            await asyncio.sleep(self.seconds_until_next_run())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run_forever())

    async def close(self) -> None:
        await cancel_and_wait(self._task)
