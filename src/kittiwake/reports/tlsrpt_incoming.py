"""Incoming TLS reports (RFC 8460 §5.3): read them from the report mailboxes.

Mail to a domain's ``tlsrpt_reports`` address is delivered like any other
mail (into its account's mailbox); this collector follows the store's
changes of those accounts (as the junk filter does), and for every new
message in a report mailbox extracts, parses and stores the report, once
per (organization, report-id). Parsing and SQLite run in worker threads.
Each message's outcome is counted (``kittiwake_tlsrpt_reports_received_total``);
a bad or hostile report is logged and left in the mailbox for a person.

Invariant: a mailbox's ``last_uid`` advances only after its messages were
looked at, so messages that arrive while the server is down are read at the
next start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from kittiwake.config.domains import DomainsConfig
from kittiwake.log import get_logger
from kittiwake.metrics import guard
from kittiwake.reports.tlsrpt_metrics import count_incoming, count_sessions
from kittiwake.reports.tlsrptdb import TLSRPTDatabase
from kittiwake.store import MailboxNotFound, Store, normalize_mailbox_name
from kittiwake.store.changes import AccountFollowers, Subscription
from kittiwake.tlsrpt.mail import report_from_message
from kittiwake.tlsrpt.report import ReportError

logger = get_logger("reports")


def report_mailboxes(domains: DomainsConfig) -> dict[str, set[str]]:
    """Account -> the mailboxes TLS reports are delivered to (domains.conf)."""
    out: dict[str, set[str]] = {}
    for settings in domains.domains.values():
        r = settings.tlsrpt_reports
        if r is not None and r.account in domains.accounts:
            out.setdefault(r.account, set()).add(normalize_mailbox_name(r.mailbox))
    return out


class TLSRPTCollector:
    """Follows the report mailboxes and stores the reports that arrive in them."""

    def __init__(self, store: Store, db: TLSRPTDatabase,
                 domains: Callable[[], DomainsConfig]) -> None:
        self.store = store
        self.db = db
        self.domains = domains
        self._followers = AccountFollowers(store.changes, self._follow)
        self._locks: dict[str, asyncio.Lock] = {}
        self._busy = 0
        self._scans: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.reload(self.domains())

    def reload(self, domains: DomainsConfig) -> None:
        """Follow the accounts that receive reports after a domains.conf (re)load, and
        read what arrived meanwhile."""
        wanted = report_mailboxes(domains)
        self._followers.follow_only(wanted)
        loop = asyncio.get_running_loop()
        for name in wanted:
            for mailbox in wanted[name]:
                self._busy += 1
                task = loop.create_task(self._scan_guarded(name, mailbox))
                self._scans.add(task)
                task.add_done_callback(self._scans.discard)

    async def _scan_guarded(self, account: str, mailbox: str) -> None:
        try:
            with guard("reports", "reading tls reports failed", account=account):
                await self.scan(account, mailbox)
        finally:
            self._busy -= 1

    async def _follow(self, account: str, sub: Subscription) -> None:
        try:
            while True:
                change = await sub.get()
                if change.kind != "added" or not change.uids:
                    continue
                if change.mailbox not in report_mailboxes(self.domains()).get(account, set()):
                    continue
                self._busy += 1
                await self._scan_guarded(account, change.mailbox)
        finally:
            sub.close()

    async def scan(self, account: str, mailbox: str) -> int:
        """Read the messages of ``mailbox`` not read before; returns how many."""
        async with self._locks.setdefault(f"{account}\0{mailbox}", asyncio.Lock()):
            conf = self.domains().accounts.get(account)
            acc = await self.store.account(account, conf.quota_bytes if conf else 0,
                                           conf.mailboxes if conf else ())
            try:
                uids = await acc.uid_ids(mailbox)
            except MailboxNotFound:
                return 0
            last = await asyncio.to_thread(self.db.last_uid, account, mailbox)
            new = sorted(uid for uid in uids if uid > last)
            for uid in new:
                data = await acc.read(uids[uid])
                await self.collect(account, data, where=f"{mailbox}/{uid}")
                await asyncio.to_thread(self.db.set_last_uid, account, mailbox, uid)
            return len(new)

    async def collect(self, account: str, data: bytes, where: str = "") -> str:
        """Parse and store the report in one message; returns the outcome (metrics label)."""
        try:
            report = await asyncio.to_thread(report_from_message, data)
        except ReportError as exc:
            count_incoming(exc.kind)
            logger.warning("tls report rejected", account=account, message=where,
                           problem=exc.kind, error=str(exc))
            return exc.kind
        stored = await asyncio.to_thread(self.db.add_report, report, account)
        outcome = "stored" if stored else "duplicate"
        count_incoming(outcome)
        if stored:
            count_sessions(report.policies)
        logger.info("tls report received", account=account, message=where, outcome=outcome,
                    organization=report.organization_name, report_id=report.report_id,
                    successful=report.total_successful, failed=report.total_failure)
        return outcome

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until every change published so far has been read (tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._busy or self._followers.queued():
            if loop.time() > deadline:
                raise TimeoutError("tls report collector still busy")
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        scans = list(self._scans)
        for task in scans:
            task.cancel()
        await asyncio.gather(*scans, return_exceptions=True)
        await self._followers.close()
