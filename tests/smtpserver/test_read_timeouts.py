"""Idle clients get 421 after the command or data timeout (RFC 5321 §4.5.3.2); a client
that keeps talking, each line within the timeout, is never cut off."""

from __future__ import annotations

import asyncio

from tests.smtpserver.conftest import Running

TIMEOUT = 0.6


async def reply(reader: asyncio.StreamReader) -> bytes:
    line = await reader.readline()
    while line[3:4] == b"-":
        line = await reader.readline()
    return line


async def test_idle_client_gets_421_after_the_command_timeout(smtp_server: Running) -> None:
    smtp_server.ctx.limits.command_timeout = TIMEOUT
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp_server.ports["smtp"])
    assert (await reply(reader)).startswith(b"220")
    writer.write(b"EHLO client.example.net\r\n")
    assert (await reply(reader)).startswith(b"250")
    start = loop.time()
    line = await asyncio.wait_for(reply(reader), 10)
    took = loop.time() - start
    assert line == b"421 4.4.2 timeout, closing connection\r\n"
    assert TIMEOUT * 0.9 <= took < TIMEOUT + 2
    assert await reader.read() == b""  # and the server closed the connection
    writer.close()


async def test_slow_but_steady_client_is_not_cut_off(smtp_server: Running) -> None:
    smtp_server.ctx.limits.command_timeout = TIMEOUT
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp_server.ports["smtp"])
    assert (await reply(reader)).startswith(b"220")
    # Five commands, each after 2/3 of the timeout: 3.3 timeouts in all.
    for _ in range(5):
        await asyncio.sleep(TIMEOUT * 2 / 3)
        writer.write(b"NOOP\r\n")
        assert (await reply(reader)).startswith(b"250")
    writer.write(b"QUIT\r\n")
    assert (await reply(reader)).startswith(b"221")
    writer.close()


async def test_idle_client_in_data_gets_421_after_the_data_timeout(smtp_server: Running
                                                                   ) -> None:
    limits = smtp_server.ctx.limits
    limits.command_timeout, limits.data_timeout = 30, TIMEOUT
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp_server.ports["smtp"])
    assert (await reply(reader)).startswith(b"220")
    writer.write(b"EHLO c.example.net\r\nMAIL FROM:<a@sender.example>\r\n")
    await reply(reader)
    assert (await reply(reader)).startswith(b"250")
    writer.write(b"RCPT TO:<alice@example.org>\r\n")
    assert (await reply(reader)).startswith(b"250")
    writer.write(b"DATA\r\n")
    assert (await reply(reader)).startswith(b"354")
    writer.write(b"Subject: half\r\n\r\nand then nothing")
    line = await asyncio.wait_for(reply(reader), 10)
    assert line == b"421 4.4.2 timeout, closing connection\r\n"
    writer.close()
    assert smtp_server.messages("alice") == []


async def test_shorter_timeout_after_a_longer_one_applies(smtp_server: Running) -> None:
    """Out of a transaction (data timeout) back to commands (command timeout): the
    shorter timeout counts, though the timer was set for the longer one."""
    limits = smtp_server.ctx.limits
    limits.command_timeout, limits.data_timeout = TIMEOUT, 30
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp_server.ports["smtp"])
    assert (await reply(reader)).startswith(b"220")
    writer.write(b"EHLO c.example.net\r\n")
    assert (await reply(reader)).startswith(b"250")
    writer.write(b"MAIL FROM:<a@sender.example>\r\n")
    assert (await reply(reader)).startswith(b"250")  # in a transaction: data timeout
    await asyncio.sleep(TIMEOUT * 1.5)  # longer than the command timeout: still there
    writer.write(b"RSET\r\n")
    assert (await reply(reader)).startswith(b"250")  # no transaction: command timeout
    start = loop.time()
    line = await asyncio.wait_for(reply(reader), 10)
    assert line == b"421 4.4.2 timeout, closing connection\r\n"
    assert loop.time() - start < TIMEOUT + 2
    writer.close()
