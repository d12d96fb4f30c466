"""What every SMTP connection of a server shares: config, store, resolver, limits."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kittiwake.config.domains import DomainsConfig
from kittiwake.config.lookup import AddressIndex
from kittiwake.junk import JunkFilter
from kittiwake.limits import ConnectionSlots, LoginLimiter
from kittiwake.smtpserver.ratelimit import Limiter
from kittiwake.smtpserver.spool import SpooledMessage
from kittiwake.store import Store

if TYPE_CHECKING:
    from kittiwake.smtp import Reply
    from kittiwake.smtpserver.auth import Authenticator
    from kittiwake.smtpserver.pipeline import AccountWrites


class Outbox(Protocol):
    """Where submitted mail for remote recipients goes (the outgoing queue)."""

    async def enqueue(self, *, account: str | None, mailfrom: str, recipients: list[str],
                      data: bytes, smtputf8: bool, requiretls: bool | None,
                      **dsn: Any) -> list[int]:
        """Store durably; return queue ids. Raises on failure (nothing stored)."""
        ...

    async def enqueue_spooled(self, *, account: str | None, mailfrom: str,
                              recipients: list[str], message: SpooledMessage, smtputf8: bool,
                              requiretls: bool | None, **dsn: Any) -> list[int]:
        """:meth:`enqueue` for a received message: the spool file is taken by hard
        link (its owner removes it after), ``message.prefix`` kept beside it."""
        ...


class DMARCRecorder(Protocol):
    """Takes the DMARC verdict of each incoming message for the aggregate reports we send
    (RFC 7489 §7.2; :class:`kittiwake.reports.dmarc_outgoing.EvaluationRecorder`).
    Called on the event loop: it must only buffer, never block."""

    def record(self, result: Any, spf_result: Any, dkim_results: list[Any], *, ip: str,
               mailfrom: str, recipient_domain: str) -> bool: ...


class AccountWriter(Protocol):
    """Does the account writes of a checked message somewhere else: an SMTP worker
    process hands them to the main process (:mod:`kittiwake.server.smtpworkers`),
    which runs :func:`kittiwake.smtpserver.pipeline.write_accounts` and answers
    with the reply to send, after everything is committed."""

    async def write(self, writes: AccountWrites) -> Reply: ...


class RateGate(Protocol):
    """Decides a rate limit elsewhere (the main process, for an SMTP worker)."""

    async def take(self, ip: str) -> bool: ...


class RateLimit(Protocol):
    """What a listener's connection and message rates offer (:class:`.ratelimit.Limiter`)."""

    def take(self, ip: str, n: int = 1) -> bool: ...


@dataclass
class Limits:
    """Message and session limits of one listener."""

    max_message_size: int = 100 * 1024 * 1024
    max_recipients: int = 1000
    max_received_headers: int = 50  # loop detection (RFC 5321 §6.3)
    command_timeout: float = 300.0  # RFC 5321 §4.5.3.2: at least 5 minutes
    data_timeout: float = 600.0
    listen_backlog: int = 1024  # kittiwake.conf [limits]; the kernel caps it at somaxconn
    connections_per_minute: tuple[int, int, int] = (120, 600, 3000)
    messages_per_minute: tuple[int, int, int] = (60, 300, 1500)


@dataclass
class ServerContext:
    """Shared state of all SMTP listeners of one process."""

    hostname: str
    store: Store
    domains: DomainsConfig
    resolver: Any = None
    outbox: Outbox | None = None
    tls_context: ssl.SSLContext | None = None
    # Whether tls_context has a certificate yet (an ACME listener before its first
    # certificate has none): STARTTLS is offered only then.
    tls_ready: Callable[[], bool] = lambda: True
    # DER of the certificate a connection was served, for tls-server-end-point (RFC 5929).
    served_certificate: Callable[[ssl.SSLObject], bytes | None] | None = None
    limits: Limits = field(default_factory=Limits)
    localserve: bool = False
    postmaster_account: str = ""
    config_dir: Any = None
    listener: Any = None  # the listener's config (STARTTLS options, DNSBL zones)
    index: AddressIndex = field(init=False)
    connection_rate: RateLimit = field(init=False)
    message_rate: RateLimit = field(init=False)
    # Shared by every listener of the process (server/app.py hands in the same objects).
    connections: ConnectionSlots = field(default_factory=ConnectionSlots)
    login_limiter: LoginLimiter = field(default_factory=LoginLimiter)
    clock: Callable[[], float] = time.monotonic  # for the connection and message rates
    dkim_keys: dict[str, Any] = field(default_factory=dict)
    junk: JunkFilter | None = None  # judges MX mail per account (server/app.py builds it)
    spool_dir: Path | None = None  # where messages arrive; default: the data dir's spool/
    dmarc_recorder: DMARCRecorder | None = None  # DMARC verdicts for outgoing rua reports
    # Set in an SMTP worker process (kittiwake.server.smtpworkers): the account writes
    # and the message rate are the main process's, shared by every worker.
    account_writer: AccountWriter | None = None
    message_gate: RateGate | None = None
    # AUTH exchanges (kittiwake.smtpserver.auth): None is this process's store and
    # login limiter; an SMTP worker's are the main process's.
    authenticator: Authenticator | None = None

    def __post_init__(self) -> None:
        self.index = AddressIndex(self.domains)
        self.connection_rate = Limiter(60.0, self.limits.connections_per_minute, self.clock)
        self.message_rate = Limiter(60.0, self.limits.messages_per_minute, self.clock)

    @property
    def spool_directory(self) -> Path:
        """Where incoming messages are spooled: on the store's file system, so the
        store and the queue can take the files by link or rename."""
        return self.spool_dir if self.spool_dir is not None else \
            Path(self.store.data_dir) / "spool"

    async def message_allowed(self, ip: str) -> bool:
        """Whether one more message from ``ip`` fits the message rate (and count it)."""
        if self.message_gate is not None:
            return await self.message_gate.take(ip)
        return self.message_rate.take(ip)

    def reload(self, domains: DomainsConfig) -> None:
        """Take a new domains.conf (called by the reload watcher)."""
        self.domains = domains
        self.index = AddressIndex(domains)
        self.dkim_keys.clear()

    def auth_exchange(self, ip: str, mechanism: str, channel_bindings: tuple[Any, ...]
                      ) -> Any:
        """A new AUTH exchange (:class:`kittiwake.smtpserver.auth.Exchange`)."""
        if self.authenticator is not None:
            return self.authenticator.exchange(ip, mechanism, channel_bindings)
        from kittiwake.smtpserver.auth import LocalExchange

        return LocalExchange(self, ip, mechanism, channel_bindings)

    def account_for_login(self, username: str) -> str | None:
        """Account of a login name: one of its addresses, or the account name itself."""
        return self.index.account_for_login(username)
