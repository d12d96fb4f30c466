"""An SMTP load client for the benchmarks: many sessions, many source addresses.

Postfix's ``smtp-source`` connects from one address only, which the per-IP
rate limits of an MX (rightly) throttle; real MX traffic comes from many
networks. This client sends each message on its own connection (EHLO, MAIL,
RCPT, DATA, QUIT), ``concurrency`` connections at a time, each bound to the
next of ``sources`` (loopback addresses in distinct /21 networks), and fails
loudly on any reply other than the expected one. It runs on uvloop when
installed, so the client costs little of the machine the servers share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from kittiwake.smtpclient.stream import DotStuffer


class LoadError(Exception):
    """A server answered something unexpected; the benchmark result is void."""


def loopback_sources(count: int) -> list[str]:
    """``count`` loopback addresses, each in its own IPv4 /21 (and never 127.0.0.x)."""
    out = []
    for k in range(count):
        second, third = divmod(k + 1, 32)
        out.append(f"127.{second}.{third * 8}.1")
    return out


async def _reply(reader: asyncio.StreamReader) -> bytes:
    line = await reader.readline()
    while line[3:4] == b"-":
        line = await reader.readline()
    if not line:
        raise LoadError("connection closed before a reply")
    return line


async def _expect(reader: asyncio.StreamReader, code: bytes, what: str) -> None:
    line = await _reply(reader)
    if not line.startswith(code):
        raise LoadError(f"{what}: expected {code.decode()}, got {line.decode(errors='replace')!r}")


def _dot_stuff(message: bytes) -> bytes:
    """The DATA form of ``message`` (RFC 5321 §4.5.2), as kittiwake's client sends it."""
    stuffer = DotStuffer()
    return stuffer.feed(message) + stuffer.finish()


async def _send(host: str, port: int, source: str, helo: str, mailfrom: str, rcpt: str,
                message: bytes) -> None:
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    try:
        await _expect(reader, b"220", "greeting")
        writer.write(f"EHLO {helo}\r\n".encode())
        await _expect(reader, b"250", "EHLO")
        writer.write(f"MAIL FROM:<{mailfrom}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        await _expect(reader, b"250", "MAIL")
        await _expect(reader, b"250", "RCPT")
        await _expect(reader, b"354", "DATA")
        writer.write(_dot_stuff(message))
        await _expect(reader, b"250", "end of data")
        writer.write(b"QUIT\r\n")
        await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def _run(host: str, port: int, messages: Sequence[bytes], *, mailfrom: str, rcpt: str,
               concurrency: int, sources: Sequence[str], helo: str) -> float:
    queue = list(range(len(messages)))[::-1]
    started = time.perf_counter()

    async def worker(n: int) -> None:
        while queue:
            i = queue.pop()
            await _send(host, port, sources[i % len(sources)], helo, mailfrom, rcpt,
                        messages[i])

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return time.perf_counter() - started


def send_all(host: str, port: int, messages: Sequence[bytes], *, mailfrom: str, rcpt: str,
             concurrency: int, sources: Sequence[str], helo: str = "client.bench.test"
             ) -> float:
    """Send every message (one per connection); the seconds it took."""
    try:
        import uvloop
        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_run(host, port, messages, mailfrom=mailfrom, rcpt=rcpt,
                               concurrency=concurrency, sources=sources, helo=helo))
