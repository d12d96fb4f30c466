"""Through the real listener: a message cut off, reset or rejected leaves no spool file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.smtpserver.conftest import Running

from kittiwake.smtpserver.spool import RESERVE_DIR


async def dialog(port: int, lines: list[bytes], close_after: bytes = b"") -> list[bytes]:
    """Send each line and read its reply (the last line of a multi-line reply)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = [await reader.readline()]
    for line in lines:
        writer.write(line)
        await writer.drain()
        reply = await reader.readline()
        while reply[3:4] == b"-":
            reply = await reader.readline()
        replies.append(reply)
    if close_after:
        writer.write(close_after)
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    return replies


def spool_files(spool: Path) -> list[str]:
    """The spool files (messages) in ``spool``; the reserve of empty files made ahead
    of need (``spool/reserve/``) is no message."""
    if not spool.is_dir():
        return []
    return sorted(p.name for p in spool.iterdir() if p.name != RESERVE_DIR)


async def wait_empty(running: Running) -> list[str]:
    spool = running.ctx.spool_directory
    for _ in range(200):
        left = spool_files(spool)
        if not left:
            return left
        await asyncio.sleep(0.01)
    return left


async def test_connection_lost_in_data_removes_the_spool_file(smtp_server: Running) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp_server.ports["smtp"])
    await reader.readline()
    writer.write(b"EHLO client.example.net\r\nMAIL FROM:<a@sender.example>\r\n"
                 b"RCPT TO:<alice@example.org>\r\nDATA\r\n")
    replies = []
    while not replies or not replies[-1].startswith(b"354"):
        replies.append(await reader.readline())
    # More than the spool keeps in memory: the message goes to a spool file.
    writer.write(b"Subject: half\r\n\r\n" + b"body that never ends\r\n" * 20000)
    await writer.drain()
    spool = smtp_server.ctx.spool_directory
    for _ in range(500):
        if spool_files(spool):
            break
        await asyncio.sleep(0.01)
    assert spool_files(spool)  # the message was being spooled
    writer.close()
    await writer.wait_closed()
    assert await wait_empty(smtp_server) == []
    assert smtp_server.messages("alice") == []


async def test_rset_during_bdat_removes_the_spool_file(smtp_server: Running) -> None:
    chunk = b"Subject: x\r\n\r\nfirst part\r\n"
    replies = await dialog(smtp_server.ports["smtp"], [
        b"EHLO client.example.net\r\n", b"MAIL FROM:<a@sender.example>\r\n",
        b"RCPT TO:<alice@example.org>\r\n", b"BDAT %d\r\n" % len(chunk) + chunk,
        b"RSET\r\n", b"QUIT\r\n"])
    assert replies[-3].startswith(b"250") and replies[-2].startswith(b"250"), replies
    assert await wait_empty(smtp_server) == []
    assert smtp_server.messages("alice") == []


async def test_delivered_message_leaves_no_spool_file(smtp_server: Running) -> None:
    replies = await dialog(smtp_server.ports["smtp"], [
        b"EHLO client.example.net\r\n", b"MAIL FROM:<a@sender.example>\r\n",
        b"RCPT TO:<alice@example.org>\r\n", b"DATA\r\n",
        b"Subject: whole\r\n\r\nbody\r\n.\r\n", b"QUIT\r\n"])
    assert replies[-2].startswith(b"250"), replies
    assert await wait_empty(smtp_server) == []
    [stored] = smtp_server.messages("alice")
    assert stored.endswith(b"Subject: whole\r\n\r\nbody\r\n")
    # The reserve holds only empty files, none of them this message.
    reserve = smtp_server.ctx.spool_directory / RESERVE_DIR
    assert all(p.stat().st_size == 0 for p in reserve.iterdir())
