"""An SMTP listener: accepts connections on its addresses and runs each in a task.

Before a connection gets its greeting it needs a slot from the process-wide
:class:`~kittiwake.limits.ConnectionSlots` (per-IP and total limits); without
one it gets a 421 instead (RFC 5321 §3.1: a server may refuse a session with
421 and close) and holds nothing. The listen backlog is configurable: a
burst of connections larger than the kernel's accept queue is answered with
SYN retransmissions, which cost the clients a second or more each.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Protocol

from kittiwake import log
from kittiwake.limits import Refusal
from kittiwake.listener import Listener
from kittiwake.smtpserver import metrics as smtp_metrics
from kittiwake.smtpserver.connection import SMTPConnection
from kittiwake.smtpserver.context import ServerContext

REFUSALS = {
    # RFC 3463: X.7.0 other security or policy status; X.3.2 system not accepting
    # network messages.
    Refusal.PER_IP: b"421 4.7.0 too many connections from your address, try again later\r\n",
    Refusal.TOTAL: b"421 4.3.2 too many connections, try again later\r\n",
}


class Held(Protocol):
    """A connection slot (:class:`kittiwake.limits.Slot`, or one held for a worker)."""

    def release(self) -> None: ...


class SMTPService(Listener):
    """smtp (25), submission (587) or submissions (465, implicit TLS) on some IPs."""

    def __init__(self, ctx: ServerContext, kind: str, ips: list[str], port: int) -> None:
        super().__init__(kind, ips, port)
        self.ctx = ctx
        self.kind = kind

    async def start(self) -> None:
        tls: ssl.SSLContext | None = None
        if self.kind == "submissions":
            if self.ctx.tls_context is None:
                raise OSError("submissions needs TLS certificates on the listener")
            tls = self.ctx.tls_context
        self.backlog = self.ctx.limits.listen_backlog
        await self.listen(tls)

    async def admit(self, ip: str) -> Held | Refusal | None:
        """A connection slot for ``ip`` (None: localserve counts none). An SMTP worker
        process asks the main process instead (:mod:`kittiwake.server.smtpworker`)."""
        if self.ctx.localserve:
            return None
        return self.ctx.connections.acquire(ip)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ip = str((writer.get_extra_info("peername") or ("?",))[0])
        slot: Held | None = None
        try:
            got = await self.admit(ip)
            if isinstance(got, Refusal):
                smtp_metrics.CONNECTIONS.labels(service=self.kind, result="refused").inc()
                smtp_metrics.RATE_LIMITED.labels(kind=f"{got}-connections").inc()
                await self._refuse(writer, ip, got)
                return
            slot = got
            smtp_metrics.OPEN_CONNECTIONS.labels(service=self.kind).inc()
            try:
                await SMTPConnection(self.ctx, self.kind, reader, writer).run()
            finally:
                smtp_metrics.OPEN_CONNECTIONS.labels(service=self.kind).dec()
        finally:
            if slot is not None:
                slot.release()

    async def _refuse(self, writer: asyncio.StreamWriter, ip: str, why: Refusal) -> None:
        log.get_logger("smtpserver").debug("connection refused", ip=ip, limit=str(why),
                                           service=self.kind)
        writer.write(REFUSALS[why])
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(writer.drain(), 10)
        writer.close()
