"""A streaming SMTP sink on 127.0.0.1 for tests: keeps digests, not messages.

It answers 250 to everything (PIPELINING, CHUNKING, SIZE), reads DATA and BDAT
bodies in blocks without holding them, undoes the dot-stuffing (RFC 5321
§4.5.2) while reading, and records per message the SHA-256 and size of what
arrived, plus the commands of each connection. Memory stays small whatever
the message size, so a test can measure the client's memory with tracemalloc.
``greeting`` other than 220 makes it refuse every session (a failing
destination), counting the attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass, field

READ = 65536


@dataclass
class Received:
    sha256: str
    size: int
    mail_from: str
    recipients: list[str]


@dataclass
class SinkServer:
    extensions: tuple[str, ...] = ("PIPELINING", "CHUNKING", "SIZE 1000000000", "8BITMIME")
    greeting: str = "220 sink.test ESMTP"
    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0
    messages: list[Received] = field(default_factory=list)
    sessions: list[list[str]] = field(default_factory=list)  # commands per connection
    _server: asyncio.base_events.Server | None = None

    async def start(self) -> SinkServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        commands: list[str] = []
        self.sessions.append(commands)
        try:
            writer.write(self.greeting.encode() + b"\r\n")
            if not self.greeting.startswith("220"):
                await writer.drain()
                return
            mail_from, rcpts = "", []
            while True:
                raw = await reader.readline()
                if not raw:
                    return
                line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                commands.append(line)
                verb = line.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    ext = ["sink.test", *self.extensions]
                    writer.write("".join(f"250{'-' if i < len(ext) - 1 else ' '}{e}\r\n"
                                         for i, e in enumerate(ext)).encode())
                elif verb == "MAIL":
                    mail_from, rcpts = line[10:].split(">", 1)[0].lstrip("<"), []
                    writer.write(b"250 ok\r\n")
                elif verb == "RCPT":
                    rcpts.append(line[8:].split(">", 1)[0].lstrip("<"))
                    writer.write(b"250 ok\r\n")
                elif verb == "DATA":
                    writer.write(b"354 go\r\n")
                    await writer.drain()
                    digest, size = await _read_data(reader)
                    self.messages.append(Received(digest, size, mail_from, rcpts))
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == "BDAT":
                    size = int(line.split()[1])
                    digest = await _read_chunk(reader, size)
                    self.messages.append(Received(digest, size, mail_from, rcpts))
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == "QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    return
                else:  # RSET, NOOP
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


async def _read_chunk(reader: asyncio.StreamReader, size: int) -> str:
    digest = hashlib.sha256()
    left = size
    while left:
        block = await reader.read(min(READ, left))
        if not block:
            raise asyncio.IncompleteReadError(b"", left)
        digest.update(block)
        left -= len(block)
    return digest.hexdigest()


async def _read_data(reader: asyncio.StreamReader) -> tuple[str, int]:
    """Read up to the "." line, unstuffing line by line; (sha256, size) of the message."""
    digest = hashlib.sha256()
    size = 0
    while True:
        line = await reader.readuntil(b"\n")
        if line == b".\r\n":
            return digest.hexdigest(), size
        if line.startswith(b"."):
            line = line[1:]
        digest.update(line)
        size += len(line)
