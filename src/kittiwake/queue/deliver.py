"""The queue's delivery callback: picks the transport for each batch and sends it.

Transports (static config, selected by routes, see ``routing``): ``direct``
(MX delivery with DANE and MTA-STS, see ``direct``), ``smtp`` (a smarthost,
STARTTLS unless disabled), ``submission``/``submissions`` (587 STARTTLS /
465 TLS with authentication), ``socks`` (direct delivery through a SOCKS5
proxy) and ``fail``. In localserve every message goes back to localserve's
own SMTP port, so its failure addresses exercise the queue too.
"""

from __future__ import annotations

import ipaddress
import ssl
import time
from dataclasses import dataclass
from typing import Any

from kittiwake import dane
from kittiwake.dns import DNSTemporaryError, InvalidName, Resolver
from kittiwake.log import get_logger
from kittiwake.queue import metrics as queue_metrics
from kittiwake.queue.direct import (
    DirectOptions,
    HostFailed,
    _host_failed,
    dane_verifier,
    deliver_direct,
    results_for,
)
from kittiwake.queue.model import Batch, DeliveryError, DeliveryResult, Outcome
from kittiwake.smtpclient import (
    AuthError,
    Client,
    FileRange,
    MessageSource,
    SMTPClientError,
    TLSMode,
    TLSVerify,
    unverified_context,
)
from kittiwake.tlsrpt import TLSResults

logger = get_logger("queue")


@dataclass
class Relay:
    """Where and how to relay (smarthost or submission transports, localserve)."""

    host: str
    port: int
    tls: TLSMode = TLSMode.OPPORTUNISTIC
    tls_context: ssl.SSLContext | None = None
    username: str | None = None
    password: str | None = None
    mechanisms: list[str] | None = None


@dataclass
class RelayPlan:
    """How to reach a relay: its addresses (from kittiwake's resolver) and TLS check."""

    tls: TLSMode
    tls_context: ssl.SSLContext | None
    addresses: list[str] | None = None  # None: the host is an IP address
    authentic: bool = False  # the address answer was DNSSEC-authentic
    tls_verify: TLSVerify | None = None  # DANE, when the relay publishes TLSA records
    dane: bool = False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class Deliverer:
    """``Scheduler(queue, Deliverer(...))``: delivers one batch per call."""

    def __init__(self, *, resolver: Any, hostname: str, tls_results: TLSResults | None = None,
                 sts_cache: Any = None, select: Any = None, localserve_relay: Relay | None = None,
                 direct_options: DirectOptions | None = None, strict: bool = False) -> None:
        self.resolver = resolver
        self.hostname = hostname
        self.tls_results = tls_results
        self.sts_cache = sts_cache
        self.select = select  # (batch) -> Relay | DirectOptions | DeliveryError | None
        self.localserve_relay = localserve_relay
        from kittiwake.queue.pool import ConnectionPool

        self.pool = ConnectionPool()
        self.strict = strict
        self.direct_options = direct_options or DirectOptions(hostname=hostname,
                                                              strict_8bitmime=strict)

    async def __call__(self, batch: Batch) -> list[DeliveryResult]:
        data = message_source(batch)
        started = time.monotonic()
        choice: Any = self.localserve_relay
        if choice is None and self.select is not None:
            choice = self.select(batch)
        if isinstance(choice, DeliveryError):  # the "fail" transport, a routing problem
            outcome = Outcome.PERMANENT if choice.code >= 500 else Outcome.TEMPORARY
            # Our refusal, not a server's reply: reported as kittiwake's (code 0).
            error = DeliveryError.ours(choice.enhanced, choice.text)
            return queue_metrics.attempted(
                batch, "fail", [DeliveryResult(r.id, outcome, error) for r in batch.recipients],
                started)
        if isinstance(choice, Relay):
            return queue_metrics.attempted(batch, "relay", await self.relay(batch, data, choice),
                                           started)
        options = choice if isinstance(choice, DirectOptions) else self.direct_options
        if options.pool is None:
            options.pool = self.pool
        results, attempt = await deliver_direct(batch, data, self.resolver, options,
                                                self.sts_cache)
        queue_metrics.count_tls(attempt.tls_results)
        queue_metrics.attempted(batch, "direct", results, started)
        if self.tls_results is not None:
            for tls_result in attempt.tls_results:
                await self.tls_results.add(tls_result)
        for r in results:
            if r.outcome is not Outcome.OK and r.error is not None:
                logger.info("delivery failed", message=batch.message_id, domain=batch.domain,
                            code=r.error.code, enhanced=r.error.enhanced, error=r.error.text)
        return results

    async def relay(self, batch: Batch, data: MessageSource, relay: Relay
                    ) -> list[DeliveryResult]:
        message = batch.message
        rcpts = [r.address for r in batch.recipients]
        key = ("relay", relay.host, relay.port, str(relay.tls), relay.username)
        client = self.pool.take(key)
        try:
            if client is None:
                try:
                    plan = await self.relay_plan(relay)
                except HostFailed as exc:
                    return [DeliveryResult(r.id, Outcome.TEMPORARY, exc.error, destination=True)
                            for r in batch.recipients]
                client = await Client.connect(
                    relay.host, relay.port, local_hostname=self.hostname, tls=plan.tls,
                    tls_context=plan.tls_context, tls_server_name=relay.host,
                    tls_verify=plan.tls_verify, remote_name=relay.host,
                    addresses=plan.addresses)
                self.pool.opened()
                if relay.username is not None:
                    await client.auth(relay.username, relay.password or "",
                                      relay.mechanisms or None)
            result = await client.deliver(
                message.mail_from, rcpts, data, smtputf8=message.smtputf8,
                eightbit=message.eightbit, requiretls=bool(message.requiretls),
                strict=self.strict, ret=message.ret, envid=message.envid)
        except AuthError as exc:
            if client is not None:
                await client.close()
            # A refused login at our own relay is our configuration's problem (a wrong
            # password file), not the recipients': retry on the normal schedule, so
            # the admin can fix it before anything bounces (as Postfix does).
            error = _relay_auth_error(exc, relay)
            logger.warning("relay authentication failed; will retry", host=relay.host,
                           port=relay.port, error=error.text)
            return [DeliveryResult(r.id, Outcome.TEMPORARY, error, destination=True)
                    for r in batch.recipients]
        except SMTPClientError as exc:
            if client is not None:
                await client.close()
            failed: HostFailed = _host_failed(exc, relay.host)
            outcome = Outcome.PERMANENT if failed.permanent else Outcome.TEMPORARY
            return [DeliveryResult(r.id, outcome, failed.error,
                                   destination=outcome is Outcome.TEMPORARY)
                    for r in batch.recipients]
        if client.closed:
            await client.close()
        else:
            self.pool.give(key, client)
        return results_for(batch, result, relay.host)


    async def relay_plan(self, relay: Relay) -> RelayPlan:
        """Resolve the relay's name with kittiwake's resolver and pick its TLS check.

        The relay is a configured next hop, so there is no MX step: when its
        address answer is DNSSEC-authentic, its TLSA records (``_PORT._tcp.HOST``,
        RFC 7672 §2.2.2) are looked up; usable ones replace PKIX by DANE
        (RFC 7672 §3), a failed TLSA lookup defers (RFC 7672 §2.2.1). A relay
        whose TLS is not verified by configuration (``tls_verify = false``) or
        that has no TLS is left as configured. Raises :class:`HostFailed`.
        """
        plan = RelayPlan(relay.tls, relay.tls_context)
        if _is_ip(relay.host):
            return plan
        host = relay.host
        try:
            answer = await self.resolver.ips(host)
        except (DNSTemporaryError, InvalidName) as exc:
            raise HostFailed(DeliveryError.ours("4.4.3", f"address lookup of relay {host}"
                                                f" failed: {exc}", host)) from None
        if not answer.records:
            raise HostFailed(DeliveryError.ours("4.4.4", f"relay {host} has no address"
                                                f" ({answer.status})", host))
        plan.addresses = [str(a) for a in answer.records]
        plan.authentic = answer.authentic
        verifying = relay.tls is not TLSMode.NONE and (
            relay.tls_context is None or relay.tls_context.verify_mode == ssl.CERT_REQUIRED)
        if not (answer.authentic and verifying):
            return plan
        tlsa = await dane.lookup_tlsa_for_host(self.resolver, host, relay.port, answer)
        if tlsa.status is dane.TLSAStatus.TEMPERROR:
            raise HostFailed(DeliveryError.ours("4.7.5", f"TLSA lookup for relay {host} failed:"
                                                f" {tlsa.reason} (DANE, RFC 7672 §2.2.1)",
                                                host))
        if tlsa.dane_required:
            plan.tls_verify = dane_verifier(tlsa, host)
            plan.tls_context = unverified_context()  # DANE decides, not the WebPKI
            plan.dane = True
            if plan.tls is TLSMode.OPPORTUNISTIC:
                plan.tls = TLSMode.STARTTLS  # RFC 7672 §2.2: TLS is then mandatory
            logger.info("relay uses dane", host=host, records=len(tlsa.usable),
                        tlsa=tlsa.name)
        return plan

    async def close(self) -> None:
        """Close parked connections (QUIT)."""
        await self.pool.close()


def message_source(batch: Batch) -> MessageSource:
    """The batch's message as the SMTP client streams it: the prefix kept in the
    queue row (headers added at hand-over), then the message file."""
    message = batch.message
    return MessageSource(message.prefix, FileRange(message.path, 0, message.file_size))

def _relay_auth_error(exc: AuthError, relay: Relay) -> DeliveryError:
    """``relay authentication failed: 535 5.7.8 ...`` as kittiwake's own temporary error.

    RFC 4954 §6: 535 5.7.8 means the credentials are wrong; for a configured
    relay that is fixed by the admin, so the class becomes 4 (retry).
    """
    reply = exc.reply
    detail = "7.8" if reply is None or not reply.enhanced else reply.enhanced.split(".", 1)[1]
    said = f"{reply.code} {reply.enhanced + ' ' if reply.enhanced else ''}{' '.join(reply.lines)}" \
        if reply is not None else str(exc)
    who = f" as {relay.username}" if relay.username else ""
    return DeliveryError.ours(f"4.{detail}", f"relay authentication failed: {said}"
                                             f" (relay {relay.host} port {relay.port}{who})",
                              relay.host)


def make_selector(static: Any, domains: Any, config_dir: Any, hostname: str,
                  pkix_context: ssl.SSLContext | None = None,
                  resolver: Resolver | None = None) -> Any:
    """The route → transport decision for each batch (``Deliverer(select=...)``).

    ``domains`` is a callable returning the current domains.conf (it is
    reloaded while running). Returns a :class:`Relay`, :class:`DirectOptions`
    or, for the ``fail`` transport and configuration errors, a DeliveryError.
    ``resolver`` resolves a SOCKS proxy given by name (default: kittiwake's
    resolver with the config's ``dns.resolvers``).
    """
    from kittiwake.queue.routing import RoutingError, select_transport

    strict = bool(getattr(static, "pedantic", False))

    def select(batch: Batch) -> Any:
        attempts = min((r.attempts for r in batch.recipients), default=0)
        try:
            chosen = select_transport(static, domains(), account=batch.message.account,
                                      from_domain=batch.message.from_domain,
                                      to_domain=batch.domain, attempts=attempts)
        except RoutingError as exc:
            return DeliveryError(451, "4.3.5", f"routing: {exc}")
        settings = chosen.transport.settings
        kind = chosen.kind
        if chosen.route:
            logger.info("route selects transport", route=chosen.route, transport=chosen.name,
                        kind=kind, domain=batch.domain)
        if kind == "direct":
            return DirectOptions(hostname=hostname, disable_ipv4=settings.disable_ipv4,
                                 disable_ipv6=settings.disable_ipv6, pkix_context=pkix_context,
                                 strict_8bitmime=strict)
        if kind == "fail":
            enhanced = f"{settings.code // 100}.0.0"
            return DeliveryError(settings.code, enhanced, settings.message or
                                 f"delivery refused by transport {chosen.name}")
        if kind == "smtp":
            tls = TLSMode.NONE if settings.no_starttls else TLSMode.STARTTLS
            context = pkix_context or ssl.create_default_context()
            if not settings.tls_verify:
                from kittiwake.smtpclient import unverified_context

                context = unverified_context()
            return Relay(settings.host, settings.port, tls, context)
        if kind in ("submission", "submissions"):
            return Relay(settings.host, settings.port,
                         TLSMode.STARTTLS if kind == "submission" else TLSMode.IMPLICIT,
                         pkix_context or ssl.create_default_context(), settings.username,
                         settings.password(config_dir), list(settings.mechanisms) or None)
        if kind == "socks":
            return DirectOptions(hostname=settings.hostname or hostname,
                                 pkix_context=pkix_context, strict_8bitmime=strict,
                                 connect=socks_connector(settings, config_dir,
                                                         resolver or _static_resolver(static)))
        return DeliveryError(451, "4.3.5", f"transport kind {kind} not supported")

    return select


def _static_resolver(static: Any) -> Resolver:
    from kittiwake.dns import default_resolver

    dns_config = getattr(static, "dns", None)
    return default_resolver(list(getattr(dns_config, "resolvers", None) or []) or None)


def socks_connector(settings: Any, config_dir: Any, resolver: Resolver | None = None) -> Any:
    """A Client.connect replacement that tunnels through a SOCKS5 proxy (python-socks).

    A proxy given by name is resolved by kittiwake's ``resolver`` (python-socks
    would ask the system resolver), its first address taken (IPv6 first).
    """
    from python_socks.async_.asyncio import Proxy

    from kittiwake.smtpclient import ConnectError, Stage

    host, port = settings.proxy
    password = settings.password(config_dir) if settings.username else None

    async def proxy_address() -> str:
        if _is_ip(host):
            return host
        from kittiwake.dns import default_resolver

        try:
            answer = await (resolver or default_resolver()).ips(host)
        except (DNSTemporaryError, InvalidName) as exc:
            raise ConnectError(f"SOCKS proxy {host}:{port}: address lookup failed: {exc}",
                               stage=Stage.CONNECT) from None
        if not answer.records:
            raise ConnectError(f"SOCKS proxy {host}:{port}: {host} has no address"
                               f" ({answer.status})", stage=Stage.CONNECT)
        return str(answer.records[0])

    async def connect(ip: str, dest_port: int, **kwargs: Any) -> Client:
        address = await proxy_address()
        url_host = f"[{address}]" if ":" in address else address
        auth = ""
        if settings.username:
            from urllib.parse import quote

            auth = f"{quote(settings.username, safe='')}:{quote(password or '', safe='')}@"
        proxy = Proxy.from_url(f"socks5://{auth}{url_host}:{port}")
        try:
            sock = await proxy.connect(dest_host=ip, dest_port=dest_port, timeout=30)
        except Exception as exc:
            raise ConnectError(f"SOCKS proxy {host}:{port} to {ip}:{dest_port}: {exc}",
                               stage=Stage.CONNECT) from None
        return await Client.connect(ip, dest_port, sock=sock, **kwargs)

    return connect
