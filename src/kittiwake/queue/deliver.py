"""The queue's delivery callback: picks the transport for each batch and sends it.

Transports (static config, selected by routes, see ``routing``): ``direct``
(MX delivery with DANE and MTA-STS, see ``direct``), ``smtp`` (a smarthost,
STARTTLS unless disabled), ``submission``/``submissions`` (587 STARTTLS /
465 TLS with authentication), ``socks`` (direct delivery through a SOCKS5
proxy) and ``fail``. In localserve every message goes back to localserve's
own SMTP port, so its failure addresses exercise the queue too.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from kittiwake.queue.direct import (
    DirectOptions,
    HostFailed,
    _host_failed,
    deliver_direct,
    results_for,
)
from kittiwake.queue.model import Batch, DeliveryError, DeliveryResult, Outcome
from kittiwake.smtpclient import Client, SMTPClientError, TLSMode
from kittiwake.tlsrpt import TLSResults

logger = logging.getLogger("kittiwake.queue")


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


class Deliverer:
    """``Scheduler(queue, Deliverer(...))``: delivers one batch per call."""

    def __init__(self, *, resolver: Any, hostname: str, tls_results: TLSResults | None = None,
                 sts_cache: Any = None, select: Any = None, localserve_relay: Relay | None = None,
                 direct_options: DirectOptions | None = None) -> None:
        self.resolver = resolver
        self.hostname = hostname
        self.tls_results = tls_results
        self.sts_cache = sts_cache
        self.select = select  # (batch) -> Relay | DirectOptions | DeliveryError | None
        self.localserve_relay = localserve_relay
        self.direct_options = direct_options or DirectOptions(hostname=hostname)

    async def __call__(self, batch: Batch) -> list[DeliveryResult]:
        data = await asyncio.to_thread(batch.path.read_bytes)
        choice: Any = self.localserve_relay
        if choice is None and self.select is not None:
            choice = self.select(batch)
        if isinstance(choice, DeliveryError):  # the "fail" transport
            outcome = Outcome.PERMANENT if choice.code >= 500 else Outcome.TEMPORARY
            return [DeliveryResult(r.id, outcome, choice) for r in batch.recipients]
        if isinstance(choice, Relay):
            return await self.relay(batch, data, choice)
        options = choice if isinstance(choice, DirectOptions) else self.direct_options
        results, attempt = await deliver_direct(batch, data, self.resolver, options,
                                                self.sts_cache)
        if self.tls_results is not None:
            for tls_result in attempt.tls_results:
                await self.tls_results.add(tls_result)
        for r in results:
            if r.outcome is not Outcome.OK and r.error is not None:
                logger.info("delivery to %s failed: %s %s %s", batch.domain, r.error.code,
                            r.error.enhanced, r.error.text)
        return results

    async def relay(self, batch: Batch, data: bytes, relay: Relay) -> list[DeliveryResult]:
        message = batch.message
        rcpts = [r.address for r in batch.recipients]
        try:
            client = await Client.connect(relay.host, relay.port, local_hostname=self.hostname,
                                          tls=relay.tls, tls_context=relay.tls_context,
                                          tls_server_name=relay.host, remote_name=relay.host)
            async with client:
                if relay.username is not None:
                    await client.auth(relay.username, relay.password or "",
                                      relay.mechanisms or None)
                result = await client.deliver(
                    message.mail_from, rcpts, data, smtputf8=message.smtputf8,
                    eightbit=message.eightbit, requiretls=bool(message.requiretls),
                    ret=message.ret, envid=message.envid)
        except SMTPClientError as exc:
            failed: HostFailed = _host_failed(exc, relay.host)
            outcome = Outcome.PERMANENT if failed.permanent else Outcome.TEMPORARY
            return [DeliveryResult(r.id, outcome, failed.error) for r in batch.recipients]
        return results_for(batch, result, relay.host)
