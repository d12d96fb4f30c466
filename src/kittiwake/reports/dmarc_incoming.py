"""Collecting the DMARC aggregate reports that arrive for our domains (RFC 7489 §7.2).

Every domain with ``[domains.D.dmarc_reports]`` names the account and
mailbox its reports are delivered to. The collector follows those
accounts' changes in the store (like :mod:`kittiwake.junk`): each message
added to a reports mailbox is read, its report extracted and parsed in a
worker thread (:mod:`kittiwake.dmarcrpt`: gzip/zip/XML, bomb limits, no
entities) and stored in the reports database, once per reporter and
report id. Refused messages stay in the mailbox for the user to look at;
they are logged with why and counted as bad or hostile. Which messages were
looked at is remembered, so that at start the collector catches up with
what arrived while it was not running (a crash between delivery and
collection), and never looks at a message twice.
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
from kittiwake.store import Store, StoreError
from kittiwake.store.changes import AccountFollowers, Subscription
from kittiwake.tasks import cancel_and_wait

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
        self._followers = AccountFollowers(store.changes, self._follow)
        self._busy = 0
        self._catch_up: asyncio.Task[None] | None = None

    def watched(self, domains: DomainsConfig) -> dict[str, dict[str, str]]:
        """account -> {mailbox: our domain} of every dmarc_reports setting."""
        out: dict[str, dict[str, str]] = {}
        for name, domain in domains.domains.items():
            r = domain.dmarc_reports
            if r is not None:
                out.setdefault(r.account, {})[r.mailbox] = name
        return out

    async def start(self) -> None:
        """Follow the reports mailboxes, and collect (in the background) what arrived in
        them while the collector was not running."""
        self.reload(self.domains())
        self._busy += 1  # until the scan is done (settled() waits for it)
        self._catch_up = asyncio.get_running_loop().create_task(self._scan())

    async def _scan(self) -> None:
        try:
            for account, boxes in self.watched(self.domains()).items():
                for mailbox in boxes:
                    with guard("reports", "collecting DMARC reports failed", account=account):
                        await self._collect(account, mailbox, None)
        finally:
            self._busy -= 1

    def reload(self, domains: DomainsConfig) -> None:
        """Follow the accounts domains.conf names now (after a reload, too)."""
        self._followers.follow_only(self.watched(domains))

    async def _follow(self, account: str, sub: Subscription) -> None:
        try:
            while True:
                change = await sub.get()
                self._busy += 1
                try:
                    with guard("reports", "collecting a DMARC report failed",
                               account=account):
                        if change.kind == "added" and change.uids:
                            await self._collect(account, change.mailbox, change.uids)
                finally:
                    self._busy -= 1
        finally:
            sub.close()

    async def _collect(self, account: str, mailbox: str,
                       uids: tuple[int, ...] | None) -> None:
        """Import the reports among ``uids`` (all when None) not looked at before."""
        our_domain = self.watched(self.domains()).get(account, {}).get(mailbox)
        if our_domain is None:
            return
        conf = self.domains().accounts.get(account)
        acc = await self.store.account(account, conf.quota_bytes if conf else 0,
                                       conf.mailboxes if conf else ())
        try:
            messages = await acc.messages(mailbox, uids=None if uids is None else list(uids))
        except StoreError:
            return  # no such mailbox (yet): nothing arrived
        done = await asyncio.to_thread(self.db.collected, account, [m.id for m in messages])
        for m in messages:
            if m.id in done:
                continue
            data = await acc.read(m.id)
            outcome = await asyncio.to_thread(import_report, self.db, data, our_domain,
                                              int(self.clock()))
            await asyncio.to_thread(self.db.mark_collected, account, m.id, outcome.result)
            log = logger.info if outcome.result in ("good", "duplicate") else logger.warn
            log("dmarc report " + outcome.result, account=account, mailbox=mailbox,
                uid=m.uid, domain=our_domain, detail=outcome.detail)

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until every change published so far has been handled (tests, CLI)."""
        deadline = time.monotonic() + timeout
        while self._busy or self._followers.queued():
            if time.monotonic() > deadline:
                raise TimeoutError("DMARC report collector still busy")
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        await cancel_and_wait(self._catch_up)
        await self._followers.close()
