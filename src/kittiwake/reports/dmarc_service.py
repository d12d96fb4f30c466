"""DMARC reporting of one server process: the database, the collector, the recorder, the
daily reporter, built from the configuration (``server/app.py`` holds one)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kittiwake.config.domains import DomainsConfig
from kittiwake.config.static import StaticConfig
from kittiwake.log import get_logger
from kittiwake.publicsuffix import organizational_domain
from kittiwake.reports.dmarc_incoming import DMARCReportCollector
from kittiwake.reports.dmarc_outgoing import (
    DMARCReporter,
    EvaluationRecorder,
    Outbox,
    ReportSettings,
    signing_for,
)
from kittiwake.reports.dmarcdb import DMARCDatabase, database_path
from kittiwake.store import Store

__all__ = ["DMARCReporting", "report_settings"]

logger = get_logger("reports")


def default_from_address(hostname: str, domains: DomainsConfig) -> str:
    """postmaster@ the host's organizational domain if we host it, else of our first domain."""
    org = organizational_domain(hostname)
    names = list(domains.domains)
    for candidate in [hostname, org]:
        if candidate in domains.domains:
            return f"postmaster@{candidate}"
    return f"postmaster@{names[0]}" if names else f"postmaster@{org}"


def report_settings(static: StaticConfig, domains: DomainsConfig,
                    config_dir: Path | None) -> ReportSettings:
    """Who we are in outgoing reports, from [dmarc_reporting] and domains.conf."""
    conf = static.dmarc_reporting
    hostname = static.hostname.lower().rstrip(".")
    organization = conf.organization or organizational_domain(hostname)
    from_address = conf.from_address or default_from_address(hostname, domains)
    signing = signing_for(domains, config_dir, from_address.rpartition("@")[2].lower())
    if signing is None and conf.enabled and domains.domains:
        logger.warn("dmarc reports will not be DKIM-signed: no domain has a signing key",
                    from_address=from_address)
    return ReportSettings(hostname=hostname, organization=organization,
                          from_address=from_address, signing=signing)


class DMARCReporting:
    """Everything DMARC-report related that runs inside the server."""

    def __init__(self, store: Store, data_dir: Path, static: StaticConfig,
                 domains: Callable[[], DomainsConfig], config_dir: Path | None,
                 resolver: Any, outbox: Callable[[], Outbox | None]) -> None:
        self.store = store
        self.data_dir = data_dir
        self.static = static
        self.domains = domains
        self.config_dir = config_dir
        self.resolver = resolver
        self.outbox = outbox
        self.enabled = static.dmarc_reporting.enabled
        self.db: DMARCDatabase | None = None
        self.collector: DMARCReportCollector | None = None
        self.recorder: EvaluationRecorder | None = None
        self.reporter: DMARCReporter | None = None
        self._settings: ReportSettings | None = None

    def _own_domains(self) -> set[str]:
        return {d.lower() for d in self.domains().domains}

    def open(self) -> None:
        """Open the database and build the recorder (before the SMTP contexts)."""
        if self.db is None:
            self.db = DMARCDatabase(database_path(self.data_dir))
        if self.enabled and self.recorder is None:
            self.recorder = EvaluationRecorder(self.db, self._own_domains)

    def settings(self) -> ReportSettings:
        if self._settings is None:
            self._settings = report_settings(self.static, self.domains(), self.config_dir)
        return self._settings

    def reload(self, domains: DomainsConfig) -> None:
        self._settings = None  # keys and the default From may have changed
        if self.collector is not None:
            self.collector.reload(domains)

    async def start(self) -> None:
        self.open()
        assert self.db is not None
        self.collector = DMARCReportCollector(self.store, self.domains, self.db)
        await self.collector.start()
        if self.recorder is not None:
            self.recorder.start()
        outbox = self.outbox()
        if self.enabled and outbox is not None:
            self.reporter = DMARCReporter(self.db, outbox, self.resolver, self.settings,
                                          self._own_domains)
            self.reporter.start()

    async def close(self) -> None:
        for part in (self.reporter, self.recorder, self.collector):
            if part is not None:
                await part.close()
        if self.db is not None:
            self.db.close()
            self.db = None
