"""Helpers for start-up log tests: a scripted UDP DNS server, a server run in-process."""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import dns.message

from kittiwake import log
from kittiwake.config import load
from kittiwake.dns import Nameserver, StubResolver

Answer = Callable[[dns.message.Message], "dns.message.Message | None"]


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.answer(dns.message.from_wire(data))
        if reply is not None:
            self.transport.sendto(reply.to_wire(), addr)  # type: ignore[attr-defined]


async def tiny_dns(answer: Answer) -> tuple[asyncio.DatagramTransport, int]:
    """A UDP DNS server on 127.0.0.1; ``answer`` returns the reply or None (silence)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _UDP(answer),
                                                       local_addr=("127.0.0.1", 0))
    return transport, transport.get_extra_info("sockname")[1]


def stub(port: int, timeout: float = 0.5) -> StubResolver:
    return StubResolver([Nameserver("127.0.0.1", port)], timeout=timeout)


CREATED: list[Path] = []  # removed by remove_created() after each test


def remove_created() -> None:
    while CREATED:
        shutil.rmtree(CREATED.pop(), ignore_errors=True)


def write_config(static: str) -> Path:
    """A config directory (short path: the control socket lives below it)."""
    root = Path(tempfile.mkdtemp(prefix="kws"))
    CREATED.append(root)
    conf = root / "config"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text(static)
    (conf / "domains.conf").write_text('[domains."example.org"]\n')
    return conf


async def startup_log(conf: Path, resolver: StubResolver | None) -> str:
    """Start the server of ``conf`` in this process, stop it, return its log."""
    from kittiwake.server.app import Server

    stream = io.StringIO()
    log.setup("info", stream=stream)
    server = Server(load(conf), resolver=resolver)
    try:
        for service in server.services_from_config():
            server.add_service(service)
        await server.start()
        await server.close(0)
    finally:
        log.setup("info")
    return stream.getvalue()
