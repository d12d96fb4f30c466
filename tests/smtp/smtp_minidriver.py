"""A minimal asyncio driver around ServerSession, only for interoperability tests
with real SMTP clients (Python's smtplib, swaks) over loopback."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from kittiwake.smtp import (
    Address,
    Auth,
    AuthResponse,
    BdatEnd,
    DataChunk,
    DataEnd,
    DataStart,
    MessageRejected,
    Reply,
    ServerConfig,
    ServerSession,
    StartTLS,
)


@dataclass
class Received:
    mail_from: Address | None
    recipients: list[Address]
    data: bytes
    tls: bool
    authenticated: bool


@dataclass
class MiniServer:
    config: ServerConfig
    tls_context: ssl.SSLContext | None = None
    password: bytes = b"secret"
    messages: list[Received] = field(default_factory=list)
    transcripts: list[bytes] = field(default_factory=list)

    def _auth_plain(self, s: ServerSession, response: bytes) -> None:
        parts = response.split(b"\x00")
        if len(parts) == 3 and parts[1] == b"alice" and parts[2] == self.password:
            s.accept()
        else:
            s.reject(Reply.auth_failed())

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = ServerSession(self.config)
        s.greet()
        out = bytearray(s.data_to_send())
        writer.write(bytes(out))
        body = bytearray()
        try:
            while not s.closed:
                data = await reader.read(65536)
                events = s.receive(data) if data else s.receive_eof()
                while events:
                    for ev in events:
                        if isinstance(ev, (DataStart, MessageRejected)):
                            body.clear()
                        if isinstance(ev, DataChunk):
                            body += ev.data
                        elif isinstance(ev, (DataEnd, BdatEnd)) and (
                                isinstance(ev, DataEnd) or ev.last):
                            self.messages.append(Received(s.mail_from, list(s.recipients),
                                                          bytes(body), s.tls, s.authenticated))
                            body.clear()
                            s.accept("queued")
                        elif isinstance(ev, Auth):
                            if ev.initial is None:
                                s.auth_challenge(b"")
                            else:
                                self._auth_plain(s, ev.initial)
                        elif isinstance(ev, AuthResponse):
                            self._auth_plain(s, ev.data)
                        elif isinstance(ev, StartTLS):
                            assert self.tls_context is not None
                            s.accept()
                            sent = s.data_to_send()
                            out += sent
                            writer.write(sent)
                            await writer.drain()
                            await writer.start_tls(self.tls_context)
                            s.tls_started()
                        elif ev.needs_reply:
                            s.accept()
                    events = s.receive()
                sent = s.data_to_send()
                out += sent
                writer.write(sent)
                await writer.drain()
        finally:
            self.transcripts.append(bytes(out))
            writer.close()

    async def start(self) -> tuple[asyncio.Server, int]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        return server, port
