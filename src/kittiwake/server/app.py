"""The server process: start services from the config, serve the control socket,
reload domains.conf, and shut down gracefully on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kittiwake.config import Config, enabled_services
from kittiwake.config.limits import LimitsConfig
from kittiwake.config.reload import DomainsWatcher
from kittiwake.limits import ConnectionSlots, LoginLimiter, LoginPolicy
from kittiwake.log import get_logger
from kittiwake.server.control import SOCKET_NAME, ControlError, ControlServer, Progress
from kittiwake.server.service import Service

if TYPE_CHECKING:
    from kittiwake.junk import JunkFilter
    from kittiwake.queue.metrics import QueueCollector
    from kittiwake.reports.tlsrpt_incoming import TLSRPTCollector
    from kittiwake.reports.tlsrpt_outgoing import TLSRPTSender
    from kittiwake.reports.tlsrptdb import TLSRPTDatabase
    from kittiwake.server.acmewiring import ContentFactory
    from kittiwake.server.monitor import Monitor
    from kittiwake.server.smtpworkers import SMTPWorkers
    from kittiwake.server.tls import ServerTLS

logger = get_logger("server")

# Modules the CPU workers import once, in their fork server (kittiwake.cpupool): those
# of the jobs the server sends them.
CPU_PRELOAD = ("kittiwake.message.searchtext", "kittiwake.junk.tokens")


def _shared_limits(limits: LimitsConfig) -> tuple[ConnectionSlots, LoginLimiter]:
    """The connection slots and login limiter every listener of the process shares."""
    login = limits.login
    policy = LoginPolicy(
        window=login.window_minutes * 60, ip_failures_before_delay=login.ip_failures_before_delay,
        ip_max_failures=login.ip_max_failures, network_max_failures=login.network_max_failures,
        account_failures_before_delay=login.account_failures_before_delay,
        max_delay=login.max_delay_seconds, trust=login.trust_days * 86400)
    return (ConnectionSlots(max_total=limits.max_connections,
                            max_per_ip=limits.max_connections_per_ip),
            LoginLimiter(policy))


class StartupError(Exception):
    """The server could not start (port taken, data directory unusable, ...)."""


class Server:
    """One kittiwake process."""

    def __init__(self, config: Config, resolver: Any = None, localserve: bool = False,
                 web_content: ContentFactory | None = None, cpu_workers: int = 0,
                 smtp_processes: int = 1) -> None:
        from kittiwake.cpupool import CpuPool
        from kittiwake.server.acmewiring import ACMEServices
        from kittiwake.store import Store

        self.config = config
        self.data_dir = config.data_dir
        self.resolver = resolver
        self.localserve = localserve
        # Worker processes for the CPU-bound work of the mail path (kittiwake.cpupool):
        # search text extraction and junk words; 0 (tests, one core): inline.
        self.cpu = CpuPool(cpu_workers, preload=CPU_PRELOAD)
        self.store = Store(self.data_dir, cpu=self.cpu)
        # SMTP worker processes serving the smtp listeners (kittiwake.server.smtpworkers);
        # 1 (tests, one core): every session in this process.
        self.smtp_workers = self._smtp_workers(smtp_processes) if smtp_processes > 1 else None
        self.junk = self._junk_filter()
        self.dmarc_reports = self._dmarc_reporting()
        self.queue: Any = None
        self.outbox: Any = None
        self.scheduler: Any = None
        self.services: list[Service] = []
        self.smtp_contexts: list[Any] = []
        self.imap_contexts: list[Any] = []
        self.tls_by_listener: dict[str, ServerTLS | None] = {}
        self.restart_requested = False
        self._reloading: asyncio.Task[None] | None = None
        self.connection_slots, self.login_limiter = _shared_limits(config.static.limits)
        self.control = ControlServer(self.data_dir / SOCKET_NAME)
        self.watcher = DomainsWatcher(config.config_dir, config.domains, static=config.static)
        self._stopping = asyncio.Event()
        self.started_at = time.time()
        self.control.register("loglevels", self._loglevels)
        self.control.register("ping", self._ping)
        self.control.register("status", self._status)
        self.control.register("stop", self._stop)
        self.control.register("restart", self._restart)
        self.monitor = self._monitor()
        self._monitor_task: asyncio.Task[None] | None = None
        self.queue_collector: QueueCollector | None = None
        self.tlsrpt_db: TLSRPTDatabase | None = None
        self.tlsrpt_collector: TLSRPTCollector | None = None
        self.tlsrpt_sender: TLSRPTSender | None = None
        self.watcher.subscribe(self._domains_reloaded)
        # ACME certificates and the http/https listeners (kittiwake.server.acmewiring);
        # web_content builds the HTTPS content app of a listener (kittiwake.http).
        self.acme = ACMEServices(config, resolver,
                                 content=web_content or self._web_content)

    def _web_content(self, listener_name: str) -> Any:
        """The HTTPS content (MTA-STS policy, autoconfig, autodiscover, profiles) of a
        listener, reading the current domains.conf on each request."""
        from kittiwake.http import HTTPContext, content_app

        return content_app(HTTPContext.from_config(self.config, listener_name,
                                                   domains=lambda: self.watcher.current))

    def _domains_reloaded(self, domains: Any) -> None:
        from kittiwake.config.lookup import AddressIndex

        self.address_index = AddressIndex(domains)
        for ctx in self.smtp_contexts:
            ctx.reload(domains)
        for imap_ctx in self.imap_contexts:
            imap_ctx.reload(domains)
        if self.smtp_workers is not None:
            self.smtp_workers.broadcast("domains", domains)
        if self._junk_started:
            self.junk.reload(domains)
        if self.tlsrpt_collector is not None:
            self.tlsrpt_collector.reload(domains)
        self.dmarc_reports.reload(domains)
        self.acme.domains_changed([str(d) for d in domains.domains])

    def _smtp_workers(self, count: int) -> SMTPWorkers:
        from kittiwake.server.smtpworkers import SMTPWorkers

        return SMTPWorkers(count, data_dir=self.data_dir, config_dir=self.config.config_dir,
                           static=self.config.static, domains=lambda: self.watcher.current,
                           localserve=self.localserve, tls=self.listener_tls)

    def _dmarc_reporting(self) -> Any:
        """DMARC aggregate reports: collecting those we receive, recording evaluations
        and sending ours daily (kittiwake.reports, RFC 7489 §7.2)."""
        from kittiwake.reports.dmarc_service import DMARCReporting

        return DMARCReporting(self.store, self.data_dir, self.config.static,
                              lambda: self.watcher.current, self.config.config_dir,
                              self.resolver, lambda: self.outbox)

    def _junk_filter(self) -> JunkFilter:
        """The junk filter of every account, judging MX mail (smtpserver) and learning
        from the store's changes; its SQLite files are named by the store."""
        from kittiwake.junk import JunkFilter

        self._junk_started = False
        return JunkFilter(self.store, lambda: self.watcher.current, self.resolver,
                          cpu=self.cpu)

    def listener_tls(self, name: str) -> ServerTLS | None:
        """The reloadable TLS of listener ``name`` (None: no certificates, no ACME).

        The ACME client calls ``.update(certificates)`` on it after each renewal;
        see :mod:`kittiwake.server.tls`.
        """
        from kittiwake.server.tls import CertificateFiles, ServerTLS

        if name not in self.tls_by_listener:
            listener = self.config.static.listeners[name]
            tls = None
            if listener.tls and (listener.tls.certificates or listener.tls.acme):
                certs = [CertificateFiles(self.config.path(c.cert_file),
                                          self.config.path(c.key_file))
                         for c in listener.tls.certificates]
                tls = ServerTLS(certs, listener.tls.min_version, name=name)
            self.tls_by_listener[name] = tls
        return self.tls_by_listener[name]

    def _listener_name(self, listener: Any) -> str:
        for name, candidate in self.config.static.listeners.items():
            if candidate is listener:
                return name
        raise KeyError("listener not in the config")

    def _imap_context(self, listener: Any) -> Any:
        """Shared state for the IMAP services of one listener."""
        from kittiwake.imapserver import fetchcache
        from kittiwake.imapserver.context import IMAPContext

        tls = self.listener_tls(self._listener_name(listener))
        ctx = IMAPContext(
            hostname=listener.hostname or self.config.static.hostname, store=self.store,
            domains=self.watcher.current, tls_context=tls.context if tls else None,
            tls_ready=tls.has_certificates if tls else lambda: True,
            served_certificate=tls.served_certificate if tls else None,
            localserve=self.localserve,
            plaintext_login=self.localserve or listener.imap.no_require_starttls,
            connections=self.connection_slots, login_limiter=self.login_limiter)
        ctx.limits.max_per_account = self.config.static.limits.max_imap_sessions_per_account
        fetchcache.set_memory(self.config.static.limits.imap_fetch_cache_mib * 1024 * 1024)
        self.imap_contexts.append(ctx)
        return ctx

    def _smtp_context(self, listener: Any) -> Any:
        """Shared state for the SMTP services of one listener (TLS from its certificates)."""
        from kittiwake.smtpserver.context import Limits, ServerContext

        tls = self.listener_tls(self._listener_name(listener))
        limits = self.config.static.limits
        ctx = ServerContext(
            limits=Limits(listen_backlog=limits.listen_backlog,
                          connections_per_minute=_three(limits.smtp_connections_per_minute),
                          messages_per_minute=_three(limits.smtp_messages_per_minute)),
            hostname=listener.hostname or self.config.static.hostname, store=self.store,
            domains=self.watcher.current, resolver=self.resolver, outbox=self.outbox,
            tls_context=tls.context if tls else None,
            tls_ready=tls.has_certificates if tls else lambda: True,
            served_certificate=tls.served_certificate if tls else None,
            localserve=self.localserve,
            postmaster_account=self.config.static.postmaster_account,
            config_dir=self.config.config_dir, listener=listener,
            connections=self.connection_slots, login_limiter=self.login_limiter,
            junk=None if self.localserve else self.junk, spool_dir=self.spool_dir)
        if not self.localserve:
            self.dmarc_reports.open()
            ctx.dmarc_recorder = self.dmarc_reports.recorder
        from kittiwake.smtpserver.metrics import preinit_zones

        preinit_zones(list(listener.smtp.dnsbl_zones))
        self.smtp_contexts.append(ctx)
        return ctx

    def _web_service(self, name: str, listener: Any, service: str, port: int) -> Any:
        """Port 80 (http-01, redirects) or 443 (tls-alpn-01, content): kittiwake.http.listener."""
        if service == "http":
            https_port = listener.https.port or 443
            return self.acme.http_service(name, listener, port, self.connection_slots,
                                          https_port)
        return self.acme.https_service(name, listener, port, self.listener_tls(name),
                                       self.connection_slots)

    @property
    def spool_dir(self) -> Path:
        """Incoming messages are spooled here, beside the store and the queue."""
        return self.data_dir / "spool"

    def add_service(self, service: Service) -> None:
        self.services.append(service)

    def open_queue(self) -> None:
        """Open the outgoing queue and its control commands (queue-list, ...)."""
        from kittiwake.config.lookup import AddressIndex
        from kittiwake.queue import Queue
        from kittiwake.queue.notices import DSNSender
        from kittiwake.server.outbox import JunkNotingOutbox, QueueOutbox
        from kittiwake.server.queuecontrol import register_control

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.queue = Queue.from_config(self.data_dir, self.config.static.queue)
        self.outbox = JunkNotingOutbox(QueueOutbox(self.queue), self.junk)
        self.address_index = AddressIndex(self.watcher.current)
        self.dsn = DSNSender(hostname=self.config.static.hostname, store=self.store,
                             queue=self.queue, index=lambda: self.address_index)
        register_control(self.control, self.queue, on_dropped=self.dsn.on_dropped)
        from kittiwake.queue.metrics import QueueCollector, register_collector

        store = self.queue.store
        self.queue_collector = register_collector(QueueCollector(
            lambda: store.summary(failing_domains=0, last_errors=0)))

    def start_delivery(self) -> None:
        """Run the queue scheduler with the SMTP delivery callback."""
        if self.queue is None:
            return
        from kittiwake.mtasts import PolicyCache
        from kittiwake.queue import Scheduler
        from kittiwake.queue.deliver import Deliverer, Relay, make_selector
        from kittiwake.smtpclient import TLSMode
        from kittiwake.tlsrpt import TLSResults

        relay = None
        if self.localserve:
            # localserve: the queue delivers everything to localserve's own SMTP port.
            for listener in self.config.static.listeners.values():
                if listener.smtp.enabled:
                    relay = Relay(listener.ips[0], listener.smtp.port or 25, TLSMode.NONE)
                    break
        self.tls_results = TLSResults(self.data_dir)
        self.sts_cache = PolicyCache(self.data_dir)
        select = make_selector(self.config.static, lambda: self.watcher.current,
                               self.config.config_dir, self.config.static.hostname)
        deliverer = Deliverer(resolver=self.resolver, hostname=self.config.static.hostname,
                              tls_results=self.tls_results, sts_cache=self.sts_cache,
                              localserve_relay=relay, select=select,
                              strict=self.config.static.pedantic)
        self.deliverer = deliverer
        self.scheduler = Scheduler(self.queue, deliverer,
                                   concurrency=self.config.static.queue.concurrency,
                                   on_recorded=self.dsn.on_recorded)
        self.scheduler.start()
        loop = asyncio.get_running_loop()
        self._pending_dsns = loop.create_task(self.dsn.send_pending_delays())
        self._sts_refresher = loop.create_task(self._refresh_sts_policies())

    async def start_tls_reports(self) -> None:
        """TLS reports (RFC 8460): read those arriving at our report addresses
        (kittiwake.reports.tlsrpt_incoming); send ours daily, except in localserve."""
        from kittiwake.reports.tlsrpt_incoming import TLSRPTCollector
        from kittiwake.reports.tlsrptdb import TLSRPTDatabase

        self.tlsrpt_db = await asyncio.to_thread(TLSRPTDatabase, self.data_dir)
        self.tlsrpt_collector = TLSRPTCollector(self.store, self.tlsrpt_db,
                                                lambda: self.watcher.current)
        await self.tlsrpt_collector.start()
        if self.localserve or self.outbox is None or self.resolver is None or \
                getattr(self, "tls_results", None) is None:
            return
        from kittiwake.reports.tlsrpt_outgoing import TLSRPTSender

        self.tlsrpt_sender = TLSRPTSender(
            results=self.tls_results, db=self.tlsrpt_db, resolver=self.resolver,
            outbox=self.outbox, hostname=self.config.static.hostname,
            settings=self.config.static.reports.tlsrpt, domains=lambda: self.watcher.current,
            key_path=self.config.path)
        if self.config.static.reports.tlsrpt.send:
            self.tlsrpt_sender.start()

    async def _refresh_sts_policies(self, interval: float = 3600.0) -> None:
        """Refresh cached MTA-STS policies before they expire (RFC 8461 §5.1)."""
        while True:
            await asyncio.sleep(interval)
            try:
                for domain in await self.sts_cache.refresh_due():
                    await self.sts_cache.refresh(self.resolver, domain)
            except Exception as exc:
                from kittiwake.metrics import panic

                panic("queue", exc)

    def services_from_config(self) -> list[Service]:
        """Instantiate the services the static config enables."""
        if self.queue is None:
            self.open_queue()
        from kittiwake.server.acmewiring import ACMESetupError
        from kittiwake.smtpserver.service import SMTPService

        try:
            self.acme.setup(self.listener_tls)
        except ACMESetupError as exc:
            raise StartupError(str(exc)) from None
        out: list[Service] = []
        for name, listener in self.config.static.listeners.items():
            smtp_ctx = None
            imap_ctx = None
            for service, port in enabled_services(listener):
                if service == "metrics":
                    # aiohttp (about 10 MiB resident) only for a server that serves HTTP.
                    from kittiwake.server.metrics_http import MetricsService

                    out.append(MetricsService(list(listener.ips), port))
                elif service in ("smtp", "submission", "submissions") and \
                        self.smtp_workers is not None:
                    smtp_ctx = smtp_ctx or self._smtp_context(listener)
                    out.append(self.smtp_workers.listener(smtp_ctx, name, service,
                                                          list(listener.ips), port))
                elif service in ("smtp", "submission", "submissions"):
                    smtp_ctx = smtp_ctx or self._smtp_context(listener)
                    out.append(SMTPService(smtp_ctx, service, list(listener.ips), port))
                elif service in ("imap", "imaps"):
                    from kittiwake.imapserver.service import IMAPService

                    imap_ctx = imap_ctx or self._imap_context(listener)
                    out.append(IMAPService(imap_ctx, service, list(listener.ips), port,
                                           backlog=self.config.static.limits.listen_backlog))
                elif service in ("http", "https"):
                    out.append(self._web_service(name, listener, service, port))
                else:
                    logger.warning("service not available in this version", listener=name,
                                   service=service)
        return out

    async def start(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.data_dir, 0o750)
        except OSError as exc:
            raise StartupError(f"data directory {self.data_dir}: {exc.strerror}") from None
        from kittiwake.server.smtpworkers import clean_worker_spools
        from kittiwake.smtpserver.spool import clean_spool

        if removed := clean_spool(self.spool_dir) + clean_worker_spools(self.spool_dir):
            logger.info("removed unacknowledged spool files", count=removed)
        await self._start_cpu_workers()
        try:
            await self.control.start()
        except ControlError as exc:
            raise StartupError(str(exc)) from None
        for service in self.services:
            try:
                await service.start()
            except OSError as exc:
                await self.close(0)
                raise StartupError(f"{service.name}: cannot listen: {exc.strerror or exc}"
                                   ) from None
            logger.info("listening", service=service.name,
                        addresses=",".join(service.addresses()))
        from kittiwake.listener import SOCKETS

        SOCKETS.close_unclaimed()
        # The SMTP workers start (import, load certificates) while the rest starts here:
        # the smtp sockets are bound, connections wait in their queues meanwhile.
        workers = None if self.smtp_workers is None else \
            asyncio.get_running_loop().create_task(self.smtp_workers.start())
        try:
            await self._start_rest()
        except BaseException:
            if workers is not None:
                workers.cancel()
            raise
        if workers is not None:
            try:
                await workers
            except (OSError, RuntimeError) as exc:
                await self.close(0)
                raise StartupError(f"smtp workers: {exc}") from None

    async def _start_rest(self) -> None:
        """What starts after the listeners: reload watcher, junk filter, reports, ACME,
        delivery, the monitor."""
        self.watcher.start()
        if not self.localserve:
            await self.junk.start()
            self._junk_started = True
            await self.dmarc_reports.start()
        await self.acme.start()
        self.start_delivery()
        await self.start_tls_reports()
        self._log_config_warnings()
        self.monitor.check_certificates()
        await self._log_dnssec()
        self._monitor_task = asyncio.get_running_loop().create_task(self._run_monitor())

    def _monitor(self) -> Monitor:
        """What :mod:`kittiwake.server.monitor` watches: certificates, DNSSEC, own IPs."""
        from kittiwake.server.monitor import Monitor, own_ips

        static = self.config.static
        listeners = list(static.listeners.values())
        certs = [self.config.path(c.cert_file) for listener in listeners if listener.tls
                 for c in listener.tls.certificates]
        zones = list(dict.fromkeys([*(str(z) for z in static.dns.monitor_dnsbl_zones),
                                    *(str(z) for listener in listeners
                                      for z in listener.smtp.dnsbl_zones)]))
        return Monitor(cert_files=list(dict.fromkeys(certs)), ips=own_ips(listeners),
                       zones=zones, resolver=self.resolver, dnssec_probe=static.dns.dnssec_probe,
                       dns_timeout=min(2.0, static.dns.timeout_seconds))

    async def _run_monitor(self) -> None:
        from kittiwake.metrics import guard

        with guard("serve", "monitor check failed"):
            await self.monitor.check_dnsbl()
        await self.monitor.run()

    def _log_config_warnings(self) -> None:
        """Say what the configuration leaves off (e.g. no certificate: no STARTTLS, no AUTH)."""
        if self.localserve:
            return  # localserve makes its own certificate and allows AUTH without TLS
        from kittiwake import log
        from kittiwake.config.warnings import config_warnings

        startup = log.get_logger("server")
        for warning in config_warnings(self.config.static):
            startup.warning("config warning", where=warning.where, off=warning.off,
                            consequence=warning.consequence, fix=warning.fix)

    async def _log_dnssec(self) -> None:
        """Say whether the resolver validates DNSSEC, answers without validating, or is silent."""
        if self.resolver is None or not hasattr(self.resolver, "nameservers"):
            return
        from kittiwake import log
        from kittiwake.dns import DNSSECSupport

        startup = log.get_logger("server")
        probe = self.config.static.dns.dnssec_probe
        result = await self.monitor.check_dnssec()
        servers = ", ".join(str(s) for s in self.resolver.nameservers)
        match result.support:
            case DNSSECSupport.VALIDATES:
                startup.info("DNS resolver validates DNSSEC", resolvers=servers, probe=probe)
            case DNSSECSupport.NOT_VALIDATING:
                startup.warning(
                    "DNS resolver answers but does not validate DNSSEC", resolvers=servers,
                    probe=probe, answer=result.detail,
                    consequence="DANE and DNSSEC-backed results are off",
                    fix="use a validating resolver (e.g. unbound) in dns.resolvers or"
                        " /etc/resolv.conf")
            case DNSSECSupport.UNKNOWN:
                startup.warning(
                    "DNS resolver answered with an error; DNSSEC status unknown",
                    resolvers=servers, probe=probe, answer=result.detail,
                    fix="set dns.dnssec_probe to a signed name the resolver can look up")
            case DNSSECSupport.NO_ANSWER:
                startup.warning(
                    "DNS resolver did not answer; DNSSEC status unknown", resolvers=servers,
                    probe=probe, reason=result.detail,
                    consequence="DNS lookups fail until it answers",
                    fix="check dns.resolvers, KITTIWAKE_DNS or /etc/resolv.conf")

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self, on_started: Any = None) -> None:
        """Start, wait for SIGTERM/SIGINT (or :meth:`request_stop`), shut down.

        Tells systemd (``$NOTIFY_SOCKET``, Type=notify) READY=1 once every
        listener is bound, RELOADING=1/READY=1 around a SIGHUP reload, and
        STOPPING=1 when shutting down.
        """
        from kittiwake.listener import SOCKETS
        from kittiwake.server import sdnotify

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self._on_hangup)
        await self.start()
        from kittiwake.server import heap

        frozen = heap.settle()  # start-up state out of the collector's way
        logger.info("kittiwake started", pid=os.getpid(), data_dir=self.data_dir,
                    event_loop=type(loop).__module__.split(".")[0], frozen_objects=frozen)
        sdnotify.notify(sdnotify.ready(f"serving as pid {os.getpid()}"))
        if on_started is not None:
            on_started(self)
        await self._stopping.wait()
        grace = self.config.static.shutdown_grace_seconds
        if self.restart_requested:
            # The listening sockets stay open for the next program (kittiwake restart):
            # connections wait in the kernel's queue instead of being refused.
            SOCKETS.holding = True
            sdnotify.notify(sdnotify.reloading("restarting"))
        else:
            sdnotify.notify(sdnotify.stopping())
        logger.info("shutting down", grace_seconds=grace, restart=self.restart_requested)
        await self.close(grace)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        logger.info("kittiwake stopped")

    def _on_hangup(self) -> None:
        logger.info("signal received", signal="SIGHUP")
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> None:
        """SIGHUP: read the certificate files of every listener again, and the DKIM
        private keys at their next use (here and in the SMTP workers).

        A listener whose files fail to load keeps serving its previous
        certificates (the error is logged). domains.conf reloads on its own.
        """
        from kittiwake.server import sdnotify
        from kittiwake.server.tls import TLSConfigError

        sdnotify.notify(sdnotify.reloading("reloading certificates"))
        for ctx in self.smtp_contexts:
            ctx.dkim_keys.clear()
        if self.smtp_workers is not None:
            self.smtp_workers.broadcast("dkimkeys")
        for name, tls in self.tls_by_listener.items():
            if tls is None:
                continue
            try:
                await asyncio.to_thread(tls.reload)
            except TLSConfigError as exc:
                logger.error("certificates not reloaded, keeping the previous ones",
                             listener=name, error=str(exc))
        self.monitor.check_certificates()
        sdnotify.notify(sdnotify.ready("reloaded"))

    def _on_signal(self, sig: signal.Signals) -> None:
        logger.info("signal received", signal=sig.name)
        self._stopping.set()

    async def close(self, grace: float) -> None:
        await self.watcher.stop()
        await self.acme.close()
        refresher = getattr(self, "_sts_refresher", None)
        if refresher is not None:
            refresher.cancel()
        if self._monitor_task is not None:
            self._monitor_task.cancel()
        if self.queue_collector is not None:
            from kittiwake.queue.metrics import unregister_collector

            unregister_collector(self.queue_collector)
        if self.scheduler is not None:
            await self.scheduler.close(grace)
            await self.deliverer.close()
        await asyncio.gather(*(s.close(grace) for s in self.services), return_exceptions=True)
        await self.junk.close()
        if self.tlsrpt_sender is not None:
            await self.tlsrpt_sender.close()
        if self.tlsrpt_collector is not None:
            await self.tlsrpt_collector.close()
        if self.tlsrpt_db is not None:
            self.tlsrpt_db.close()
        await self.dmarc_reports.close()
        await self.control.close()
        if self.queue is not None:
            self.queue.close()
        for closable in (getattr(self, "tls_results", None), getattr(self, "sts_cache", None)):
            if closable is not None:
                closable.close()
        self.store.close()
        await asyncio.to_thread(self.cpu.close)

    async def _start_cpu_workers(self) -> None:
        """Start the CPU worker processes; without them (cannot fork) work runs inline."""
        try:
            await asyncio.to_thread(self.cpu.start)
        except Exception as exc:  # the mail path works without them, slower
            logger.error("cpu workers did not start; their work runs in this process",
                         error=str(exc) or type(exc).__name__)
            await asyncio.to_thread(self.cpu.close)

    async def _ping(self, args: dict[str, Any], progress: Progress) -> Any:
        return {"pid": os.getpid(), "started": self.started_at}

    async def _stop(self, args: dict[str, Any], progress: Progress) -> Any:
        """``kittiwake stop``: a graceful shutdown, as on SIGTERM."""
        logger.info("stop requested")
        asyncio.get_running_loop().call_soon(self._stopping.set)
        return {"pid": os.getpid()}

    async def _restart(self, args: dict[str, Any], progress: Progress) -> Any:
        """``kittiwake restart``: shut down gracefully, then exec a new program (cli/serve)."""
        if self.localserve:
            raise ControlError("localserve does not restart itself; stop it and start it again")
        logger.info("restart requested")
        self.restart_requested = True
        asyncio.get_running_loop().call_soon(self._stopping.set)
        return {"pid": os.getpid(), "started": self.started_at}

    async def _status(self, args: dict[str, Any], progress: Progress) -> Any:
        """``kittiwake status``: see :mod:`kittiwake.server.status`."""
        from kittiwake.server.status import status_report
        from kittiwake.smtpserver.metrics import TODAY

        summary = await self.queue.summary() if self.queue is not None else None
        received = TODAY.today()
        if self.smtp_workers is not None:
            await self.smtp_workers.refresh_metrics()  # their counts as of now
            for service, n in self.smtp_workers.received_today().items():
                received[service] = received.get(service, 0) + n
        junk_accounts = sum(1 for a in self.watcher.current.accounts.values()
                            if a.junk.enabled) if self._junk_started else None
        return status_report(hostname=self.config.static.hostname, monitor=self.monitor,
                             services=self.services, queue=summary,
                             received_today=received, acme=self.acme.managers,
                             junk_accounts=junk_accounts)

    async def _loglevels(self, args: dict[str, Any], progress: Progress) -> Any:
        from kittiwake import log

        levels = args.get("set") or {}
        if levels:
            try:
                log.set_levels(levels, replace=False)
            except ValueError as exc:
                raise ControlError(str(exc)) from None
            if self.smtp_workers is not None:
                self.smtp_workers.broadcast("loglevels", log.current_levels())
        return log.current_levels()


def _three(rates: list[int]) -> tuple[int, int, int]:
    """A validated [limits] rate list (three numbers) as the SMTP limiter takes it."""
    first, second, third = rates
    return first, second, third
