"""Scripted fake SMTP peers on 127.0.0.1, and an in-process kittiwake SMTP server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from tests.recording_outbox import RecordingOutbox

from kittiwake.config import DomainsConfig
from kittiwake.dns import MockResolver
from kittiwake.sasl import derive_credentials
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import AccountStore, Store
from kittiwake.store.store import account_dir

PASSWORD = "correct horse battery"
STEP = 5.0  # seconds a fake peer waits for the client's next line


class Peer:
    """The server side of one connection, driven by a test's script."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received: list[bytes] = []  # every line read, without CRLF

    async def send(self, *lines: str) -> None:
        self.writer.write("".join(line + "\r\n" for line in lines).encode())
        await self.writer.drain()

    async def line(self) -> bytes:
        raw = await asyncio.wait_for(self.reader.readline(), STEP)
        if not raw:
            raise EOFError("client closed the connection")
        line = raw.rstrip(b"\r\n")
        self.received.append(line)
        return line

    async def expect(self, prefix: str) -> str:
        line = (await self.line()).decode()
        assert line.upper().startswith(prefix.upper()), f"expected {prefix!r}, got {line!r}"
        return line

    async def greet_ehlo(self, *extensions: str, greeting: str = "220 fake.example ESMTP") \
            -> None:
        await self.send(greeting)
        await self.expect("EHLO ")
        await self.send(*[f"250-{e}" for e in ("fake.example", *extensions[:-1])],
                        f"250 {extensions[-1]}" if extensions else "250 fake.example")

    async def read_data(self) -> bytes:
        """Lines after 354 up to the "." line, raw (still dot-stuffed), CRLF-joined."""
        lines = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), STEP)
            if raw in (b".\r\n", b""):
                return b"".join(lines)
            lines.append(raw)

    async def read_exactly(self, n: int) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(n), STEP)

    async def starttls(self, ctx: ssl.SSLContext) -> None:
        await self.writer.start_tls(ctx)

    async def quit(self) -> None:
        with contextlib.suppress(EOFError, TimeoutError, ConnectionError):
            await self.expect("QUIT")
            await self.send("221 bye")

    def close(self) -> None:
        self.writer.close()


Script = Callable[[Peer], Awaitable[None]]


@dataclass
class FakeServers:
    servers: list[asyncio.Server] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    peers: list[Peer] = field(default_factory=list)
    done: list[asyncio.Event] = field(default_factory=list)

    async def start(self, script: Script) -> int:
        """Serve connections with ``script``; returns the port."""
        finished = asyncio.Event()
        self.done.append(finished)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = Peer(reader, writer)
            self.peers.append(peer)
            try:
                await script(peer)
            except asyncio.CancelledError:
                pass  # the test ended before the script did
            except Exception as exc:  # reported at teardown: the script's assertion failed
                self.errors.append(exc)
            finally:
                with contextlib.suppress(Exception):
                    writer.close()
                finished.set()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def finished(self) -> None:
        """Wait until every script ran to its end."""
        for event in self.done:
            await asyncio.wait_for(event.wait(), STEP)


@pytest.fixture
async def fake() -> AsyncIterator[FakeServers]:
    servers = FakeServers()
    yield servers
    for server in servers.servers:
        server.close()
    for error in servers.errors:
        raise error


@dataclass
class CA:
    ca: trustme.CA
    server: ssl.SSLContext  # serves a leaf issued by an intermediate (chain of 2)
    client: ssl.SSLContext  # trusts the root
    chain_pem: list[bytes]  # what the server sends: leaf, intermediate


@pytest.fixture(scope="session")
def ca() -> CA:
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert("mx.example.org", "127.0.0.1")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(server)
    client = ssl.create_default_context()
    root.configure_trust(client)
    return CA(root, server, client, [blob.bytes() for blob in leaf.cert_chain_pems])


@dataclass
class Running:
    ctx: ServerContext
    ports: dict[str, int]
    data_dir: Path

    def messages(self, account: str, mailbox: str = "Inbox") -> list[bytes]:
        store = AccountStore(account, account_dir(self.data_dir, account))
        try:
            return [store.read(m.id) for m in store.messages(mailbox)]
        finally:
            store.close()



@pytest.fixture
async def kittiwake_server(tmp_path: Path, ca: CA) -> AsyncIterator[Running]:
    """The real kittiwake SMTP server (smtp, submission, submissions) on 127.0.0.1."""
    domains = DomainsConfig.model_validate({
        "domains": {"example.org": {}},
        "accounts": {"alice": {"domain": "example.org",
                               "destinations": {"alice@example.org": {}}},
                     "bob": {"domain": "example.org", "destinations": {"bob@example.org": {}}}},
    })
    data_dir = tmp_path / "data"
    for name in ("alice", "bob"):
        store = AccountStore(name, account_dir(data_dir, name))
        store.set_credentials(json.dumps(derive_credentials(PASSWORD).to_dict()))
        store.close()
    ctx = ServerContext(hostname="mx.example.org", store=Store(data_dir), domains=domains,
                        resolver=MockResolver(), tls_context=ca.server, config_dir=tmp_path,
                        outbox=RecordingOutbox())
    ctx.limits.command_timeout = 10
    services = [SMTPService(ctx, kind, ["127.0.0.1"], 0)
                for kind in ("smtp", "submission", "submissions")]
    for service in services:
        await service.start()
    ports = {s.kind: int(s.addresses()[0].rsplit(":", 1)[1]) for s in services}
    yield Running(ctx, ports, data_dir)
    for service in services:
        await service.close(1)
    ctx.store.close()
