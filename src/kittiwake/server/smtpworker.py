"""One SMTP worker process: SMTP sessions on listening sockets of the server process.

Started by :mod:`kittiwake.server.smtpworkers` as ``python -m
kittiwake.server.smtpworker FD`` (a fresh interpreter, never a fork of the
threaded server), with the listening sockets the server bound (as root,
before it dropped its privileges) and one end of a socket pair, the channel
(:mod:`kittiwake.server.workerrpc`), at fd ``FD``. The server's first note
(``init``) says what to serve: a :class:`WorkerSpec`.

What runs here, per connection: the SMTP session (:mod:`kittiwake.smtpserver.
connection`), STARTTLS and implicit TLS, spooling into this worker's own
spool directory, the DNSBL check and the MX checks (iprev, SPF, DKIM,
DMARC); for submission the sender checks and the DKIM signing, with the
keys this process reads from the config directory (as the server would).
What the server process does, asked over the channel:

- ``open``/``close``: the connection slot (per-IP and total limits, shared
  with every other listener and process), the connection rate and, on port
  25, a message-rate token for the connection's first message (used at its
  first MAIL FROM; ``close`` gives back one that was never used);
- ``rate``: the message rate at MAIL FROM (the messages after the first);
- ``write``: the account writes of a checked message
  (:func:`kittiwake.smtpserver.pipeline.write_accounts`: queue, mailboxes
  with the junk decision, DSNs); its answer is the reply to the data, sent
  only after the server committed. The message goes by its spool file, the
  parsed header section and our prefix (:meth:`kittiwake.smtpserver.spool.
  SpooledMessage.__reduce__`: 3.6 KB for a 10 KiB message, 16 KB when it
  carried the text too); the server reads the text only when the junk
  filter judges its words;
- ``dmarc`` (a note): the DMARC verdict for the aggregate reports, only when
  the sender's record asks for them (``rua``, :attr:`kittiwake.dmarc.Result.
  reportable`);
- ``auth``/``auth_step`` and the note ``auth_end``: an AUTH exchange
  (:mod:`kittiwake.smtpserver.auth`): the credentials are the server's
  store's and the failed-login limiter is the server's, shared with IMAP
  and every other worker; nothing here reads credentials.

The server tells this process: ``domains`` (domains.conf reloaded),
``tls`` (certificates renewed or reloaded: read the files again),
``dkimkeys`` (SIGHUP: read the DKIM private keys again at their next use),
``loglevels``, ``stop`` (graceful, with the grace time). Counters go to the
server as ``metrics`` snapshots every few seconds and when asked (:mod:`kittiwake.metricsshare`).
Log lines go to the standard error the server gave us, as the server's do.

When the channel ends the server is gone (killed, crashed): this process
exits at once; its open sessions end without a reply, which is what a
client of a crashed server sees, and nothing it acknowledged is lost, since
a 250 was only ever sent after the server's commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kittiwake import log
from kittiwake.limits import Refusal
from kittiwake.server.workerrpc import Channel, ChannelClosed, RemoteError
from kittiwake.smtp import Reply
from kittiwake.smtpserver.auth import AuthStep
from kittiwake.smtpserver.service import Held, SMTPService

logger = log.get_logger("server")

# Seconds between two unasked metrics snapshots to the server (each scrape of /metrics
# asks anyway): a snapshot of the whole registry costs ~11 ms, 1 % of a core at 1 s.
METRICS_INTERVAL = 5.0

# Whether the connection rate admitted the connection of this task: the server
# decides it together with the connection slot (one round trip, see ``open``).
_RATE_ADMITTED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "kittiwake_rate_admitted", default=True)


@dataclass
class ListenerSpec:
    """One listener's SMTP as the server set it up."""

    name: str
    kind: str                       # "smtp", "submission" or "submissions"
    sockets: list[tuple[str, int]]  # (ip, port) of the listening sockets we inherited
    hostname: str
    listener: Any                   # the listener's config (kittiwake.config.static)
    limits: Any                     # kittiwake.smtpserver.context.Limits
    certificates: list[Any] | None  # kittiwake.server.tls.CertificateFiles; None: no TLS
    min_version: str = "TLSv1.2"


@dataclass
class WorkerSpec:
    """What the server sends a new worker (pickled): enough to build its contexts."""

    index: int
    listeners: list[ListenerSpec]
    domains: Any                    # kittiwake.config.domains.DomainsConfig
    data_dir: Path
    config_dir: Path
    spool_dir: Path
    postmaster_account: str
    localserve: bool
    resolvers: list[str] = field(default_factory=list)
    log_levels: dict[str, str] = field(default_factory=dict)
    log_format: str = "logfmt"


class _Token:
    """Whether this connection holds a message-rate token the server counted at open."""

    __slots__ = ("held",)

    def __init__(self, held: bool) -> None:
        self.held = held


# The connection's token (None: it has none, as under localserve).
_MESSAGE_TOKEN: contextvars.ContextVar[_Token | None] = contextvars.ContextVar(
    "kittiwake_message_token", default=None)


class _AdmittedRate:
    """The connection rate as the server decided it for this connection."""

    def take(self, ip: str, n: int = 1) -> bool:
        return _RATE_ADMITTED.get()


class _RemoteRate:
    """The message rate of a listener, kept by the server."""

    def __init__(self, channel: Channel, listener: str) -> None:
        self.channel = channel
        self.listener = listener

    async def take(self, ip: str) -> bool:
        token = _MESSAGE_TOKEN.get()
        if token is not None and token.held:  # counted by the server at open
            token.held = False
            return True
        try:
            return bool(await self.channel.call("rate", self.listener, ip))
        except (ChannelClosed, RemoteError):
            return False  # a 452: the client tries again (the server is going away)


class _RemoteWriter:
    """The account writes of a message, done by the server (``write``)."""

    def __init__(self, channel: Channel, listener: str) -> None:
        self.channel = channel
        self.listener = listener

    async def write(self, writes: Any) -> Reply:
        try:
            # The session's service (smtp, submission, submissions) for the server's log.
            service = log.context_fields().get("service", "smtp")
            reply = await self.channel.call("write", self.listener, writes, service)
        except (ChannelClosed, RemoteError) as exc:
            log.get_logger("smtpserver").error("delivery through the server failed",
                                               error=str(exc))
            return Reply(451, "4.3.0", ["local delivery failed, try again"])
        assert isinstance(reply, Reply)
        return reply


class _RemoteRecorder:
    """DMARC verdicts for the server's aggregate-report recorder (a note, no answer)."""

    def __init__(self, channel: Channel, listener: str) -> None:
        self.channel = channel
        self.listener = listener

    def record(self, result: Any, spf_result: Any, dkim_results: list[Any], *, ip: str,
               mailfrom: str, recipient_domain: str) -> bool:
        if not result.reportable:  # no report asked for: nothing to tell the server
            return False
        try:
            self.channel.note("dmarc", self.listener, result, spf_result, dkim_results, ip,
                              mailfrom, recipient_domain)
        except ChannelClosed:
            return False
        return True


class _RemoteExchange:
    """An AUTH exchange run by the server process (``auth``, ``auth_step``,
    ``auth_end``): the credentials and the login limiter are the server's."""

    def __init__(self, channel: Channel, listener: str, ip: str, mechanism: str,
                 channel_bindings: tuple[Any, ...]) -> None:
        self.channel = channel
        self.listener = listener
        self.ip = ip
        self.mechanism = mechanism
        self.channel_bindings = channel_bindings
        self.ident: int | None = None  # the server's name for it, while it goes on

    async def start(self, initial: bytes | None) -> AuthStep:
        try:
            self.ident, step = await self.channel.call(
                "auth", self.listener, self.ip, self.mechanism, self.channel_bindings,
                initial)
        except (ChannelClosed, RemoteError):
            return AuthStep("unavailable")
        return self._seen(step)

    async def step(self, data: bytes) -> AuthStep:
        if self.ident is None:
            return AuthStep("malformed")
        try:
            step = await self.channel.call("auth_step", self.ident, data)
        except (ChannelClosed, RemoteError):
            self.ident = None
            return AuthStep("unavailable")
        return self._seen(step)

    def _seen(self, step: AuthStep) -> AuthStep:
        if step.final:
            self.ident = None  # the server forgot it
        return step

    def close(self) -> None:
        if self.ident is not None:
            with contextlib.suppress(ChannelClosed):
                self.channel.note("auth_end", self.ident)
            self.ident = None


class _RemoteAuthenticator:
    def __init__(self, channel: Channel, listener: str) -> None:
        self.channel = channel
        self.listener = listener

    def exchange(self, ip: str, mechanism: str,
                 channel_bindings: tuple[Any, ...]) -> _RemoteExchange:
        return _RemoteExchange(self.channel, self.listener, ip, mechanism, channel_bindings)


class _RemoteSlot:
    def __init__(self, channel: Channel, ident: int, token: _Token) -> None:
        self.channel = channel
        self.ident = ident
        self.token = token

    def release(self) -> None:
        with contextlib.suppress(ChannelClosed):
            self.channel.note("close", self.ident, self.token.held)


class WorkerSMTPService(SMTPService):
    """An SMTP listener whose connection slots and rates are the server's."""

    def __init__(self, ctx: Any, kind: str, ip: str, port: int, channel: Channel,
                 listener: str) -> None:
        super().__init__(ctx, kind, [ip], port)
        self.channel = channel
        self.listener_name = listener

    async def admit(self, ip: str) -> Held | Refusal | None:
        if self.ctx.localserve:
            return None
        try:
            ident, refusal, rate_ok, token = await self.channel.call(
                "open", self.listener_name, ip, self.kind)
        except (ChannelClosed, RemoteError):
            return Refusal.TOTAL  # the server is going away: 421, try again later
        if refusal is not None:
            return Refusal(refusal)
        _RATE_ADMITTED.set(bool(rate_ok))
        held = _Token(bool(token))
        _MESSAGE_TOKEN.set(held)
        return _RemoteSlot(self.channel, ident, held)


class Worker:
    """The worker's state: its channel, contexts and listeners."""

    def __init__(self, channel_socket: socket.socket) -> None:
        self.channel_socket = channel_socket
        self.channel: Channel | None = None
        self.spec: WorkerSpec | None = None
        self.contexts: dict[str, Any] = {}
        self.tls: dict[str, Any] = {}
        self.services: list[WorkerSMTPService] = []
        self.stopped = asyncio.Event()
        self._last_metrics: Any = None
        # Notes can arrive before ``init`` is done (they queue up while this process
        # imports): the newest domains.conf and log levels, and certificates sent before
        # the listeners accept, are kept here and applied by ``_start``.
        self.domains: Any = None
        self.levels: dict[str, str] | None = None
        self.pending_tls: dict[str, list[Any]] = {}
        self.accepting = False
        self._tls_lock = asyncio.Lock()  # certificate updates in the order they came

    async def run(self) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=self.channel_socket)
        self.channel = Channel(reader, writer, {
            "init": self._init, "stop": self._stop, "domains": self._domains,
            "tls": self._tls, "loglevels": self._loglevels, "snapshot": self._snapshot,
            "dkimkeys": self._dkim_keys,
        }, name="server")
        reading = asyncio.get_running_loop().create_task(self.channel.run())
        stopped = asyncio.get_running_loop().create_task(self.stopped.wait())
        await asyncio.wait([reading, stopped], return_when=asyncio.FIRST_COMPLETED)
        if not self.stopped.is_set():
            # The server is gone (killed): nothing can be delivered any more.
            logger.warning("smtp worker: the server process is gone, exiting")
            sys.stderr.flush()
            os._exit(0)
        await self.channel.drain()

    # --- from the server -------------------------------------------------------

    async def _init(self, spec: WorkerSpec) -> None:
        assert self.channel is not None
        self.spec = spec
        try:
            log.setup(level=spec.log_levels.get("", "info"),
                      packages={k: v for k, v in spec.log_levels.items() if k},
                      format=spec.log_format)
            if self.levels is not None:
                log.set_levels(self.levels)
            if self.domains is None:
                self.domains = spec.domains
            await self._start(spec)
        except Exception as exc:
            logger.error("smtp worker could not start", error=str(exc) or type(exc).__name__)
            self.channel.note("failed", f"{type(exc).__name__}: {exc}")
            await self.channel.drain()
            self.stopped.set()
            return
        asyncio.get_running_loop().create_task(self._ship_metrics())
        from kittiwake.server import heap

        heap.settle()  # start-up state out of the cyclic collector's way
        self.channel.note("ready", os.getpid())

    async def _start(self, spec: WorkerSpec) -> None:
        from kittiwake.server.tls import ServerTLS
        from kittiwake.smtpserver.context import ServerContext
        from kittiwake.smtpserver.metrics import preinit_zones
        from kittiwake.store import Store

        assert self.channel is not None
        # Never read here: the account writes and the AUTH credentials are the server's.
        store = Store(spec.data_dir)
        resolver = self._resolver(spec)
        spec.spool_dir.mkdir(parents=True, exist_ok=True)
        for ls in spec.listeners:  # one per (listener, kind): smtp, submission(s)
            if ls.name in self.contexts:
                continue
            tls = None
            if ls.certificates is not None:
                certificates = self.pending_tls.pop(ls.name, ls.certificates)
                tls = await asyncio.to_thread(ServerTLS, certificates, ls.min_version,
                                              name=ls.name)
            self.tls[ls.name] = tls
            ctx = ServerContext(
                limits=ls.limits, hostname=ls.hostname, store=store, domains=self.domains,
                resolver=resolver, tls_context=tls.context if tls else None,
                tls_ready=tls.has_certificates if tls else lambda: True,
                served_certificate=tls.served_certificate if tls else None,
                localserve=spec.localserve, postmaster_account=spec.postmaster_account,
                config_dir=spec.config_dir, listener=ls.listener, spool_dir=spec.spool_dir,
                account_writer=_RemoteWriter(self.channel, ls.name),
                message_gate=_RemoteRate(self.channel, ls.name),
                authenticator=_RemoteAuthenticator(self.channel, ls.name))
            ctx.connection_rate = _AdmittedRate()
            if not spec.localserve:
                ctx.dmarc_recorder = _RemoteRecorder(self.channel, ls.name)
            self.contexts[ls.name] = ctx
            preinit_zones(list(ls.listener.smtp.dnsbl_zones))
        if not spec.localserve and any(ls.kind == "smtp" for ls in spec.listeners):
            # DMARC's organizational domains (RFC 7489 §3.2): the list is parsed before
            # the first message, not in its time on the event loop.
            from kittiwake import publicsuffix

            await asyncio.to_thread(publicsuffix.load)
        # Certificates renewed while we started: served before the first connection.
        while self.pending_tls:
            listener, certificates = self.pending_tls.popitem()
            await self._update_tls(listener, certificates)
        self.accepting = True  # no await since the loop's check: nothing is left pending
        for ls in spec.listeners:
            for ip, port in ls.sockets:
                service = WorkerSMTPService(self.contexts[ls.name], ls.kind, ip, port,
                                            self.channel, ls.name)
                await service.start()
                self.services.append(service)

    @staticmethod
    def _resolver(spec: WorkerSpec) -> Any:
        if spec.localserve:
            from kittiwake.dns import MockResolver

            return MockResolver()
        from kittiwake.dns import default_resolver

        return default_resolver(spec.resolvers or None, cache=True)

    async def _stop(self, grace: float) -> None:
        """Stop accepting, let sessions finish within ``grace``, send the last counts."""
        await asyncio.gather(*(s.close(grace) for s in self.services), return_exceptions=True)
        self._send_metrics(force=True)
        self.stopped.set()

    def _domains(self, domains: Any) -> None:
        self.domains = domains
        for ctx in self.contexts.values():
            ctx.reload(domains)

    async def _tls(self, listener: str, certificates: list[Any]) -> None:
        if not self.accepting:
            self.pending_tls[listener] = certificates  # _start serves them
            return
        await self._update_tls(listener, certificates)

    async def _update_tls(self, listener: str, certificates: list[Any]) -> None:
        from kittiwake.server.tls import TLSConfigError

        async with self._tls_lock:
            tls = self.tls.get(listener)
            if tls is None:
                return
            try:
                await asyncio.to_thread(tls.update, certificates)
            except TLSConfigError as exc:
                logger.error("certificates not reloaded, keeping the previous ones",
                             listener=listener, error=str(exc))

    def _dkim_keys(self) -> None:
        """SIGHUP: read the DKIM private keys again at their next use."""
        for ctx in self.contexts.values():
            ctx.dkim_keys.clear()

    def _loglevels(self, levels: dict[str, str]) -> None:
        self.levels = levels
        if self.spec is not None:
            log.set_levels(levels)

    # --- metrics -----------------------------------------------------------------

    def _snapshot(self) -> tuple[Any, dict[str, int]]:
        """The server's /metrics asks: the counts as of now."""
        from kittiwake import metrics, metricsshare
        from kittiwake.smtpserver.metrics import TODAY

        return metricsshare.snapshot(metrics.REGISTRY), TODAY.today()

    def _send_metrics(self, force: bool = False) -> None:
        from kittiwake import metrics, metricsshare
        from kittiwake.smtpserver.metrics import TODAY

        assert self.channel is not None
        values = metricsshare.snapshot(metrics.REGISTRY)
        today = TODAY.today()
        if force or (values, today) != self._last_metrics:
            self._last_metrics = (values, today)
            with contextlib.suppress(ChannelClosed):
                self.channel.note("metrics", values, today)

    async def _ship_metrics(self) -> None:
        while not self.stopped.is_set():
            await asyncio.sleep(METRICS_INTERVAL)
            self._send_metrics()


def main(argv: list[str]) -> int:
    """Entry point: ``python -m kittiwake.server.smtpworker FD``."""
    from kittiwake.server import eventloop

    # SIGINT (a ^C at the terminal reaches the whole process group), SIGTERM (systemd
    # may signal every process of the unit) and SIGHUP are the server's to handle: it
    # tells us over the channel, and stops us gracefully after its own signal.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    channel_socket = socket.socket(fileno=int(argv[1]))
    channel_socket.setblocking(False)
    eventloop.run(Worker(channel_socket).run())
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
