"""Outgoing DMARC aggregate reports (RFC 7489 §7.2): recording evaluations, the daily run.

**Recording.** The MX path hands every DMARC verdict to
:meth:`EvaluationRecorder.record`, which keeps it in memory only when it
can end in a report: the policy was found (pass or fail), the record has
``rua`` URIs (§7.2: no report to a domain that asked for none), and the
policy domain is not one of ours. Batches go to the database in a worker
thread every :attr:`~EvaluationRecorder.flush_seconds` (or sooner when the
batch is full), so the event loop only builds a small tuple per message. A
crash loses at most the last unflushed batch of counts, never mail.

**Reporting.** Once a day, shortly after UTC midnight (and at start, to
catch up), :meth:`DMARCReporter.run_once` builds, for every earlier day and
policy domain with evaluations and no report yet, the aggregate report of
that UTC day (§7.2.1: date_range begin/end), compresses it, wraps it in the
report message of §7.2.1.1, DKIM-signs it and hands it to the outbox for the
``mailto:`` destinations that pass:

- not one of our own domains ("none to ourselves": a report address in a
  domain we host would only deliver our own report to ourselves; reports
  *about* our domains are not recorded at all, see above);
- external destinations verified (§7.1: TXT
  ``<policy-domain>._report._dmarc.<destination>`` starting ``v=DMARC1``);
- the ``!size`` limit (§6.2) at least the size of the whole message.

The day is then marked done in the database. Report id and Message-ID are
derived from the day and the policy domain: should the process die between
queueing and marking, the next run sends the same report again under the
same id, which receivers discard as a duplicate (§7.2.1.1 report ids are
unique per reporter), rather than skip the day.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kittiwake import dkim, dmarc, spf
from kittiwake.dmarcrpt import (
    AlignmentType,
    AuthResult,
    DateRange,
    DispositionType,
    DKIMAuthResult,
    DKIMResult,
    DMARCResult,
    Feedback,
    Identifiers,
    PolicyEvaluated,
    PolicyOverride,
    PolicyOverrideReason,
    PolicyPublished,
    Record,
    ReportMetadata,
    Row,
    SPFAuthResult,
    SPFDomainScope,
    SPFResult,
    disposition_of,
)
from kittiwake.dmarcrpt.destinations import Verification, verify_destination
from kittiwake.dmarcrpt.message import report_message
from kittiwake.log import get_logger
from kittiwake.metrics import guard
from kittiwake.reports import dmarc_metrics
from kittiwake.reports.dmarcdb import DMARCDatabase, EvaluationRow
from kittiwake.tasks import cancel_and_wait

__all__ = ["DMARCReporter", "EvaluationRecorder", "ReportSettings", "SentReport"]

logger = get_logger("reports")

DAY = 86400
KEEP_DAYS = 7  # evaluations of reported days are kept this long (for `kittiwake dmarc` views)


def _in_domains(domain: str, ours: Collection[str]) -> bool:
    domain = domain.lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in ours)


class EvaluationRecorder:
    """Collects DMARC evaluations of incoming mail in memory; flushes them in batches."""

    def __init__(self, db: DMARCDatabase, own_domains: Callable[[], Collection[str]], *,
                 clock: Callable[[], float] = time.time, flush_seconds: float = 2.0,
                 batch: int = 500, max_buffer: int = 100_000) -> None:
        self.db = db
        self.own_domains = own_domains
        self.clock = clock
        self.flush_seconds = flush_seconds
        self.batch = batch
        self.max_buffer = max_buffer
        self._buffer: list[EvaluationRow] = []
        self._policies: dict[tuple[str, str], str] = {}  # (domain, record text) -> JSON
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    def record(self, result: dmarc.Result, spf_result: spf.Result | None,
               dkim_results: list[dkim.Result], *, ip: str, mailfrom: str,
               recipient_domain: str) -> bool:
        """Note one verdict (cheap, on the event loop); whether it will be reported."""
        policy = result.record
        if policy is None or not result.reportable:
            return False
        if _in_domains(result.policy_domain, self.own_domains()):
            return False
        if len(self._buffer) >= self.max_buffer:
            dmarc_metrics.EVALUATIONS_DROPPED.inc()
            return False
        key = (result.policy_domain, result.record_text or "")
        policy_json = self._policies.get(key)
        if policy_json is None:
            if len(self._policies) > 10_000:
                self._policies.clear()
            policy_json = self._policies[key] = json.dumps({
                "domain": result.policy_domain, "adkim": str(policy.adkim),
                "aspf": str(policy.aspf), "p": str(policy.policy),
                "sp": str(policy.subdomain_policy or policy.policy),
                "pct": policy.percentage, "fo": ":".join(policy.failure_options),
                "rua": [[u.uri, u.max_size] for u in policy.aggregate_uris]})
        if spf_result is not None:
            spf_row = [spf_result.domain, "helo" if spf_result.identity == "helo" else "mfrom",
                       str(spf_result.status)]
        else:
            spf_row = [mailfrom.rpartition("@")[2], "mfrom", "temperror"]  # the check timed out
        rowkey = json.dumps([
            ip, result.domain, recipient_domain.lower(), mailfrom.rpartition("@")[2].lower(),
            str(disposition_of(result.reject, result.quarantine)),
            "pass" if result.dkim_aligned else "fail", "pass" if result.spf_aligned else "fail",
            str(result.override) if result.override else "",
            [[d.domain, d.selector, str(d.status)] for d in dkim_results if d.domain],
            spf_row], separators=(",", ":"))
        self._buffer.append(EvaluationRow(int(self.clock() // DAY), result.policy_domain,
                                          rowkey, policy_json))
        if len(self._buffer) >= self.batch:
            self._wake.set()
        return True

    async def flush(self) -> int:
        """Write what is buffered (in a worker thread); the number written."""
        async with self._flushing:
            rows, self._buffer = self._buffer, []
            if not rows:
                return 0
            try:
                n = await asyncio.to_thread(self.db.add_evaluations, rows)
            except Exception:
                self._buffer = rows + self._buffer  # keep them for the next try
                raise
            dmarc_metrics.EVALUATIONS.inc(n)
            return n

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            with guard("reports", "recording DMARC evaluations failed"):
                await self.flush()

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        with guard("reports", "recording DMARC evaluations failed"):
            await self.flush()


class Outbox(Protocol):
    async def enqueue(self, *, account: str | None, mailfrom: str, recipients: list[str],
                      data: bytes, smtputf8: bool, requiretls: bool | None,
                      **dsn: Any) -> list[int]: ...


@dataclass(frozen=True)
class ReportSettings:
    """Who we are in the reports we send (kittiwake.conf [dmarc_reporting])."""

    hostname: str  # for report ids and Message-IDs
    organization: str  # org_name, Submitter, and the receiver in the file name
    from_address: str  # From, MAIL FROM, and report_metadata email
    signing: tuple[str, str, Any, str, tuple[str, ...] | None] | None = None
    # (domain, selector, private key, canonicalization, h= headers), or None: unsigned


@dataclass(frozen=True)
class SentReport:
    """What one daily run did for one policy domain and day."""

    day: int
    policy_domain: str
    report_id: str
    recipients: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (uri, why)
    size: int
    queue_ids: tuple[int, ...] = ()


def _day_text(day: int) -> str:
    return dt.datetime.fromtimestamp(day * DAY, dt.UTC).strftime("%Y%m%d")


def _enum_or(kind: Any, text: str, default: Any) -> Any:
    try:
        return kind(text)
    except ValueError:
        return default


def report_id_for(day: int, policy_domain: str, hostname: str) -> str:
    """Unique per reporter (§7.2.1.1) and the same on every run for a day and domain.
    No "@": some report parsers take what follows it for a host and drop it."""
    return f"{_day_text(day)}.{policy_domain}.{hostname}"


def build_report(settings: ReportSettings, day: int, policy_json: str,
                 rows: list[tuple[str, int]]) -> Feedback:
    """The aggregate report of one UTC day for one policy domain (RFC 7489 Appendix C)."""
    p = json.loads(policy_json)
    records = []
    for key, count in rows:
        (ip, header_from, env_to, _env_from, disposition, dkim_ok, spf_ok, override,
         dkims, spf_row) = json.loads(key)
        reasons = (PolicyOverrideReason(_enum_or(PolicyOverride, override,
                                                 PolicyOverride.OTHER)),) if override else ()
        records.append(Record(
            row=Row(ip, count, PolicyEvaluated(DispositionType(disposition),
                                               DMARCResult(dkim_ok), DMARCResult(spf_ok),
                                               reasons)),
            identifiers=Identifiers(header_from=header_from, envelope_to=env_to or None),
            auth_results=AuthResult(
                dkim=tuple(DKIMAuthResult(d, _enum_or(DKIMResult, r, DKIMResult.NONE), s or None)
                           for d, s, r in dkims),
                spf=(SPFAuthResult(spf_row[0] or header_from,
                                   _enum_or(SPFResult, spf_row[2], SPFResult.NONE),
                                   SPFDomainScope(spf_row[1])),))))
    begin = day * DAY
    metadata = ReportMetadata(
        org_name=settings.organization, email=settings.from_address,
        report_id=report_id_for(day, p["domain"], settings.hostname),
        date_range=DateRange(begin, begin + DAY - 1))
    policy = PolicyPublished(
        domain=p["domain"], p=DispositionType(p["p"]), adkim=AlignmentType(p["adkim"]),
        aspf=AlignmentType(p["aspf"]), sp=DispositionType(p["sp"]), pct=int(p["pct"]),
        fo=p.get("fo") or "0")
    return Feedback(metadata, policy, tuple(records), version="1.0")


class DMARCReporter:
    """Sends yesterday's (and any earlier unsent day's) aggregate reports, once a day."""

    def __init__(self, db: DMARCDatabase, outbox: Outbox, resolver: Any,
                 settings: Callable[[], ReportSettings],
                 own_domains: Callable[[], Collection[str]], *,
                 clock: Callable[[], float] = time.time, delay_seconds: float = 600.0) -> None:
        self.db = db
        self.outbox = outbox
        self.resolver = resolver
        self.settings = settings
        self.own_domains = own_domains
        self.clock = clock
        self.delay_seconds = delay_seconds  # after midnight: let late evaluations flush
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: float | None = None) -> list[SentReport]:
        """Report every day before today (UTC) that has evaluations and no report yet."""
        now = self.clock() if now is None else now
        today = int(now // DAY)
        done = []
        for day, policy_domain in await asyncio.to_thread(self.db.pending, today):
            with guard("reports", "sending a DMARC report failed", domain=policy_domain,
                       day=_day_text(day)):
                done.append(await self._report(day, policy_domain, now))
        await asyncio.to_thread(self.db.forget_before, today - KEEP_DAYS)
        return done

    async def _destinations(self, policy_domain: str, rua: list[list[Any]], size: int
                            ) -> tuple[list[str], list[tuple[str, str]]]:
        from kittiwake.dmarc import ReportURI

        ours = self.own_domains()
        accepted: list[str] = []
        skipped: list[tuple[str, str]] = []
        for uri_text, max_size in rua:
            uri = ReportURI(uri_text, max_size)
            address = uri.address
            if address is None or "@" not in address:
                skipped.append((uri_text, "unsupported"))  # only mailto: (§6.2 allows others)
                continue
            dest_domain = address.rpartition("@")[2].lower()
            if _in_domains(dest_domain, ours):
                skipped.append((uri_text, "own-domain"))
                continue
            verdict = await verify_destination(self.resolver, policy_domain, dest_domain)
            if verdict is Verification.REFUSED:
                skipped.append((uri_text, "unverified"))
                continue
            if verdict is Verification.TEMPERROR:
                skipped.append((uri_text, "temperror"))
                continue
            if max_size is not None and size > max_size:
                skipped.append((uri_text, "too-large"))  # §6.2 "!size"
                continue
            if address not in accepted:
                accepted.append(address)
        return accepted, skipped

    async def _report(self, day: int, policy_domain: str, now: float) -> SentReport:
        settings = self.settings()
        policy_json, rows = await asyncio.to_thread(self.db.evaluations, day, policy_domain)
        report = build_report(settings, day, policy_json, rows)
        rid = report.report_metadata.report_id
        rua = json.loads(policy_json).get("rua") or []
        # The size a destination sees: the message as sent (with the To it will have).
        probe = await asyncio.to_thread(self._message, settings, report,
                                        [u for u, _ in rua], now)
        recipients, skipped = await self._destinations(policy_domain, rua, len(probe))
        for uri, why in skipped:
            dmarc_metrics.OUTGOING.labels(outcome=why).inc()
            logger.info("dmarc report destination skipped", domain=policy_domain,
                        day=_day_text(day), uri=uri, reason=why, size=len(probe))
        ids: list[int] = []
        data = b""
        if recipients:
            data = await asyncio.to_thread(self._message, settings, report, recipients, now)
            ids = await self.outbox.enqueue(
                account=None, mailfrom=settings.from_address, recipients=recipients,
                data=data, smtputf8=False, requiretls=None)
            dmarc_metrics.OUTGOING.labels(outcome="queued").inc(len(recipients))
            logger.info("dmarc report queued", domain=policy_domain, day=_day_text(day),
                        report_id=rid, recipients=",".join(recipients), size=len(data),
                        records=len(report.records), messages=report.message_count)
        outcome = "queued" if recipients else "skipped"
        detail = ",".join(f"{u}={w}" for u, w in skipped)
        await asyncio.to_thread(self.db.mark_sent, day, policy_domain, rid, outcome, detail,
                                int(now))
        return SentReport(day, policy_domain, rid, tuple(recipients), tuple(skipped),
                          len(data or probe), tuple(ids))

    @staticmethod
    def _message(settings: ReportSettings, report: Feedback, to: list[str],
                 now: float) -> bytes:
        rid = report.report_metadata.report_id
        message = report_message(
            report, from_address=settings.from_address, to_addresses=to,
            receiver=settings.organization, submitter=settings.organization,
            message_id=f"dmarc.{rid.removesuffix('.' + settings.hostname)}@{settings.hostname}",
            date=dt.datetime.fromtimestamp(now, dt.UTC))
        if settings.signing is None:
            return message
        domain, selector, key, canon, headers = settings.signing
        h, b = canon.split("/")
        signature = dkim.sign(message, domain, selector, key, headers=headers,
                              canonicalization=(h, b), now=now)
        return signature + message

    # --- schedule ------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            with guard("reports", "daily DMARC reports failed"):
                await self.run_once()
            now = self.clock()
            next_run = (int(now // DAY) + 1) * DAY + self.delay_seconds
            await asyncio.sleep(max(60.0, next_run - now))

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None


def signing_for(domains: Any, config_dir: Path | None, from_domain: str
                ) -> tuple[str, str, Any, str, tuple[str, ...] | None] | None:
    """A DKIM key to sign reports with: the From domain's first signing selector, else
    any of our domains' (RFC 7489 §7.2.1.1 asks for signed reports)."""
    candidates = [from_domain] + [d for d in domains.domains if d != from_domain]
    for name in candidates:
        conf = domains.domains.get(name)
        if conf is None:
            continue
        for selector in conf.dkim.sign:
            sel = conf.dkim.selectors.get(selector)
            if sel is None:
                continue
            path = Path(sel.private_key_file)
            if config_dir is not None and not path.is_absolute():
                path = Path(config_dir) / path
            try:
                key = dkim.load_private_key(path.read_bytes())
            except (OSError, ValueError) as exc:
                logger.warn("dkim key for dmarc reports not loaded", domain=name,
                            selector=selector, error=exc)
                continue
            return (name, selector, key, sel.canonicalization,
                    tuple(sel.headers) if sel.headers else None)
    return None
