"""localserve's failure addresses as a sender sees them (item: timeouts really time out).

"timeout" means the server does not answer that command: the client's own
timeout fires; the server ends the session when the client gives up, or
after its own command/data timeout with the usual idle 421.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kittiwake.config import DomainsConfig
from kittiwake.sasl import derive_credentials
from kittiwake.smtpserver.context import ServerContext
from kittiwake.smtpserver.localserve_rules import trigger
from kittiwake.smtpserver.service import SMTPService
from kittiwake.store import AccountStore, Store
from kittiwake.store.store import account_dir

SERVER_TIMEOUT = 1.5  # the server's command/data timeout in these tests


class Localserve:
    def __init__(self, ctx: ServerContext, service: SMTPService) -> None:
        self.ctx = ctx
        self.service = service
        self.port = int(service.addresses()[0].rsplit(":", 1)[1])

    async def session(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert (await reader.readline()).startswith(b"220 ")
        writer.write(b"EHLO client.example\r\n")
        while not (await reader.readline()).startswith(b"250 "):
            pass
        return reader, writer

    async def closed(self) -> None:
        """Wait until the server has ended every session."""
        while self.service.open_sessions():
            await asyncio.sleep(0.01)


@pytest.fixture
async def localserve(tmp_path: Path) -> AsyncIterator[Localserve]:
    domains = DomainsConfig.model_validate({
        "domains": {"localhost": {}},
        "accounts": {"kittiwake": {"domain": "localhost", "destinations": {
            "kittiwake@localhost": {}, "@localhost": {}}}}})
    data_dir = tmp_path / "data"
    store = AccountStore("kittiwake", account_dir(data_dir, "kittiwake"))
    store.set_credentials(json.dumps(derive_credentials("kittiwake").to_dict()))
    store.close()
    ctx = ServerContext(hostname="localhost", store=Store(data_dir), domains=domains,
                        localserve=True)
    ctx.limits.command_timeout = SERVER_TIMEOUT
    ctx.limits.data_timeout = SERVER_TIMEOUT
    service = SMTPService(ctx, "smtp", ["127.0.0.1"], 0)
    await service.start()
    yield Localserve(ctx, service)
    await service.close(1)
    ctx.store.close()


async def _reply_after(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    line = await asyncio.wait_for(reader.readline(), SERVER_TIMEOUT * 4)
    return line, loop.time() - start


@pytest.mark.parametrize("commands", [
    [b"MAIL FROM:<mailfromtimeout@example.com>"],
    [b"MAIL FROM:<a@example.com>", b"RCPT TO:<rcpttotimeout@localhost>"],
])
async def test_timeout_address_gets_no_answer(localserve: Localserve,
                                              commands: list[bytes]) -> None:
    reader, writer = await localserve.session()
    for command in commands[:-1]:
        writer.write(command + b"\r\n")
        assert (await reader.readline()).startswith(b"250 ")
    writer.write(commands[-1] + b"\r\n")
    line, waited = await _reply_after(reader)
    # Nothing until the server's own idle timeout; then the ordinary 421.
    assert line == b"421 4.4.2 timeout, closing connection\r\n"
    assert waited >= SERVER_TIMEOUT * 0.9
    assert await reader.read() == b""
    writer.close()


async def test_timeout_after_data_gets_no_answer(localserve: Localserve) -> None:
    reader, writer = await localserve.session()
    writer.write(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<timeout@localhost>\r\nDATA\r\n")
    for expected in (b"250 ", b"250 ", b"354 "):
        assert (await reader.readline()).startswith(expected)
    writer.write(b"Subject: hi\r\n\r\nhello\r\n.\r\n")
    line, waited = await _reply_after(reader)
    assert line == b"421 4.4.2 timeout, closing connection\r\n"
    assert waited >= SERVER_TIMEOUT * 0.9
    writer.close()


async def test_client_giving_up_ends_the_session(localserve: Localserve) -> None:
    _reader, writer = await localserve.session()
    writer.write(b"MAIL FROM:<mailfromtimeout@example.com>\r\n")
    await writer.drain()
    while not localserve.service.open_sessions():
        await asyncio.sleep(0.01)
    writer.close()  # the client's timeout fired
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.wait_for(localserve.closed(), SERVER_TIMEOUT * 4)
    assert loop.time() - start < SERVER_TIMEOUT  # did not wait for its own timeout


async def test_mailfrom_failures_name_the_sender_address(localserve: Localserve) -> None:
    reader, writer = await localserve.session()
    writer.write(b"MAIL FROM:<mailfromtemperror@example.com>\r\n")
    assert await reader.readline() == (b"451 4.3.0 temporary error requested by sender"
                                       b" address (MAIL FROM) (localserve)\r\n")
    writer.write(b"MAIL FROM:<mailfrom552@example.com>\r\n")
    assert await reader.readline() == (b"552 5.0.0 error 552 requested by sender address"
                                       b" (MAIL FROM) (localserve)\r\n")
    writer.write(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<rcpttopermerror@localhost>\r\n")
    assert (await reader.readline()).startswith(b"250 ")
    assert await reader.readline() == (b"550 5.1.1 permanent error requested by recipient"
                                       b" address (localserve)\r\n")
    writer.close()


def test_which_address_triggers_where() -> None:
    assert trigger("mailfromtimeout") is not None and trigger("mailfromtimeout").stage == \
        "mailfrom"
    assert trigger("rcptto550").stage == "rcptto"  # type: ignore[union-attr]
    assert trigger("timeout").stage == "data"  # type: ignore[union-attr]
    assert trigger("alice") is None
