"""Collecting the DMARC aggregate reports that arrive for our domains (RFC 7489 §7.2).

Every domain with ``[domains.D.dmarc_reports]`` names the account and
mailbox its reports are delivered to. The collector follows those
accounts' changes in the store (like :mod:`kittiwake.junk`): each message
added to a reports mailbox is read, its report extracted and parsed in a
worker thread (:mod:`kittiwake.dmarcrpt`: gzip/zip/XML, bomb limits, no
entities) and stored in the reports database, once per reporter and
report id. Refused messages stay in the mailbox for the user to look at;
they are logged with why and counted as bad or hostile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from kittiwake.config.domains import DomainsConfig
from kittiwake.dmarcrpt import ReportError, report_from_message
from kittiwake.log import get_logger
from kittiwake.metrics import guard
from kittiwake.reports import dmarc_metrics
from kittiwake.reports.dmarcdb import DMARCDatabase
from kittiwake.store import Store
from kittiwake.store.changes import Subscription

__all__ = ["DMARCReportCollector", "ImportOutcome", "import_report"]

logger = get_logger("reports")


@dataclass(frozen=True)
class ImportOutcome:
    """What became of one report message."""

    result: str  # good, duplicate, bad or hostile (dmarc_metrics.RESULTS)
    report_key: int | None = None
    detail: str = ""


def import_report(db: DMARCDatabase, message: bytes, our_domain: str,
                  received: int) -> ImportOutcome:
    """Extract, parse and store one report message, and count it. Blocking."""
    try:
        report = report_from_message(message)
    except ReportError as exc:
        result = "hostile" if exc.problem.hostile else "bad"
        dmarc_metrics.INCOMING.labels(result=result).inc()
        dmarc_metrics.INCOMING_PROBLEMS.labels(problem=str(exc.problem)).inc()
        return ImportOutcome(result, detail=str(exc))
    key = db.add_report(report, our_domain, received)
    result = "good" if key is not None else "duplicate"
    dmarc_metrics.INCOMING.labels(result=result).inc()
    m = report.report_metadata
    return ImportOutcome(result, key, f"{m.org_name} {m.report_id}")


class DMARCReportCollector:
    """Follows the reports mailboxes of domains.conf and stores what arrives."""

    def __init__(self, store: Store, domains: Callable[[], DomainsConfig],
                 db: DMARCDatabase, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.domains = domains
        self.db = db
        self.clock = clock
        self._subscriptions: dict[str, Subscription] = {}
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._busy = 0

    def watched(self, domains: DomainsConfig) -> dict[str, dict[str, str]]:
        """account -> {mailbox: our domain} of every dmarc_reports setting."""
        out: dict[str, dict[str, str]] = {}
        for name, domain in domains.domains.items():
            r = domain.dmarc_reports
            if r is not None:
                out.setdefault(r.account, {})[r.mailbox] = name
        return out

    async def start(self) -> None:
        self.reload(self.domains())

    def reload(self, domains: DomainsConfig) -> None:
        """Follow the accounts domains.conf names now (after a reload, too)."""
        wanted = set(self.watched(domains))
        for name in list(self._followers):
            if name not in wanted:
                self._followers.pop(name).cancel()
                self._subscriptions.pop(name).close()
        for name in wanted - set(self._followers):
            sub = self.store.changes.subscribe(name)
            self._subscriptions[name] = sub
            self._followers[name] = asyncio.get_running_loop().create_task(
                self._follow(name, sub))

    async def _follow(self, account: str, sub: Subscription) -> None:
        try:
            while True:
                change = await sub.get()
                self._busy += 1
                try:
                    with guard("reports", "collecting a DMARC report failed",
                               account=account):
                        if change.kind == "added" and change.uids:
                            await self._added(account, change.mailbox, change.uids)
                finally:
                    self._busy -= 1
        finally:
            sub.close()

    async def _added(self, account: str, mailbox: str, uids: tuple[int, ...]) -> None:
        our_domain = self.watched(self.domains()).get(account, {}).get(mailbox)
        if our_domain is None:
            return
        conf = self.domains().accounts.get(account)
        acc = await self.store.account(account, conf.quota_bytes if conf else 0,
                                       conf.mailboxes if conf else ())
        for m in await acc.messages(mailbox, uids=list(uids)):
            data = await acc.read(m.id)
            outcome = await asyncio.to_thread(import_report, self.db, data, our_domain,
                                              int(self.clock()))
            log = logger.info if outcome.result in ("good", "duplicate") else logger.warn
            log("dmarc report " + outcome.result, account=account, mailbox=mailbox,
                uid=m.uid, domain=our_domain, detail=outcome.detail)

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until every change published so far has been handled (tests, CLI)."""
        deadline = time.monotonic() + timeout
        while self._busy or any(not s.queue.empty() for s in self._subscriptions.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("DMARC report collector still busy")
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        for task in self._followers.values():
            task.cancel()
        for task in self._followers.values():
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._followers.clear()
        for sub in self._subscriptions.values():
            sub.close()
        self._subscriptions.clear()
