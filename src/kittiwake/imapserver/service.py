"""An IMAP listener: imap (143, STARTTLS) or imaps (993, implicit TLS, RFC 8314)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

from kittiwake import log
from kittiwake.imapserver import metrics as m
from kittiwake.imapserver.connection import IMAPConnection
from kittiwake.imapserver.context import IMAPContext
from kittiwake.limits import Refusal, Slot
from kittiwake.listener import Listener

_REFUSED = b"* BYE [UNAVAILABLE] too many connections, try again later\r\n"


class IMAPService(Listener):
    """Accepts connections on some IPs and runs each session in a task."""

    def __init__(self, ctx: IMAPContext, kind: str, ips: list[str], port: int,
                 backlog: int = 1024) -> None:
        super().__init__(kind, ips, port, backlog)
        self.ctx = ctx
        self.kind = kind

    async def start(self) -> None:
        tls: ssl.SSLContext | None = None
        if self.kind == "imaps":
            if self.ctx.tls_context is None:
                raise OSError("imaps needs TLS certificates on the listener")
            tls = self.ctx.tls_context
        await self.listen(tls)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ip = str((writer.get_extra_info("peername") or ("?",))[0])
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Replies are whole lines and literals already: send them at once (no Nagle),
            # or a client that writes a literal in two pieces waits for a delayed ACK.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        slot: Slot | None = None
        try:
            if self.ctx.connections is not None and not self.ctx.localserve:
                got = self.ctx.connections.acquire(ip)
                if isinstance(got, Refusal):
                    m.CONNECTIONS.labels(service=self.kind, result="refused").inc()
                    log.get_logger("imapserver").debug("connection refused", ip=ip,
                                                       limit=str(got), service=self.kind)
                    writer.write(_REFUSED)
                    with contextlib.suppress(ConnectionError, TimeoutError):
                        await asyncio.wait_for(writer.drain(), 10)
                    writer.close()
                    return
                slot = got
            m.CONNECTIONS.labels(service=self.kind, result="accepted").inc()
            gauge = m.OPEN_CONNECTIONS.labels(service=self.kind)
            gauge.inc()
            try:
                await IMAPConnection(self.ctx, self.kind, reader, writer).run()
            finally:
                gauge.dec()
        finally:
            if slot is not None:
                slot.release()
