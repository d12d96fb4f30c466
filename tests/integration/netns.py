"""Run a command in a private network namespace whose well-known ports lead outside.

Some peers cannot be told a port: ``mta-sts-query`` fetches
``https://mta-sts.DOMAIN/`` on port 443 and resolves names through
``/etc/resolv.conf`` on port 53. Rather than taking those ports on the
machine, the command runs under ``unshare --net --mount`` (a network
namespace with only its own loopback, and a private ``/etc/resolv.conf``
saying ``nameserver 127.0.0.1``), where this script, run as the namespace's
first process, listens on 127.0.0.1 and forwards:

- TCP port P (``--tcp P=SOCKET``) to the UNIX socket SOCKET, and on ::1
  (``--tcp6 P=SOCKET``) likewise;
- DNS on port 53, UDP and TCP (``--dns SOCKET``), to the UNIX socket SOCKET
  as DNS over TCP (RFC 1035 §4.2.2: a two-byte length, then the message).

UNIX sockets live in the file system, which the namespace shares, so the
test process serves them (:func:`serve_unix_to_tcp` forwards one to a TCP
server such as the DNS world's unbound). Nothing leaves loopback.

Used as: ``unshare --net --mount -- python netns.py --resolv FILE --dns SOCK
--tcp 443=SOCK -- COMMAND ARGS...``; exits with the command's status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

UNSHARE = "unshare"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                  upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    await asyncio.gather(_pipe(client[0], upstream[1]), _pipe(upstream[0], client[1]))


def tcp_to_unix(path: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                       Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_unix_connection(path)
        except OSError:
            writer.close()
            return
        await _splice((reader, writer), upstream)

    return handle


class UDPToDNSOverTCP(asyncio.DatagramProtocol):
    """Each UDP query goes over one stream connection (DNS over TCP framing)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport is no DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().create_task(self._answer(data, addr))

    async def _answer(self, query: bytes, addr: tuple[str, int]) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(self.path)
            writer.write(len(query).to_bytes(2, "big") + query)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            answer = await reader.readexactly(size)
            writer.close()
        except (OSError, asyncio.IncompleteReadError):
            return
        if self.transport is not None:
            self.transport.sendto(answer, addr)


async def serve_unix_to_tcp(path: str, host: str, port: int) -> asyncio.AbstractServer:
    """A UNIX socket at ``path`` whose connections are forwarded to ``host:port`` (TCP)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await _splice((reader, writer), upstream)

    return await asyncio.start_unix_server(handle, path)


def command_line(resolv: Path, dns_socket: str, tcp: dict[int, str],
                 command: list[str], tcp6: dict[int, str] | None = None) -> list[str]:
    """The ``unshare`` command line running ``command`` in a fresh namespace."""
    unshare = shutil.which(UNSHARE)
    if unshare is None:
        raise RuntimeError("unshare is missing: install the Debian package util-linux")
    forwards = [arg for port, path in tcp.items() for arg in ("--tcp", f"{port}={path}")]
    forwards += [arg for port, path in (tcp6 or {}).items()
                 for arg in ("--tcp6", f"{port}={path}")]
    return [unshare, "--net", "--mount", "--", sys.executable, __file__,
            "--resolv", str(resolv), "--dns", dns_socket, *forwards, "--", *command]


async def _main(args: argparse.Namespace) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["mount", "--bind", args.resolv, "/etc/resolv.conf"], check=True)
    loop = asyncio.get_running_loop()
    servers = [await asyncio.start_server(tcp_to_unix(args.dns), "127.0.0.1", 53)]
    await loop.create_datagram_endpoint(lambda: UDPToDNSOverTCP(args.dns),
                                        local_addr=("127.0.0.1", 53))
    for forward in args.tcp:
        port, _, path = forward.partition("=")
        servers.append(await asyncio.start_server(tcp_to_unix(path), "127.0.0.1", int(port)))
    for forward in args.tcp6:
        port, _, path = forward.partition("=")
        servers.append(await asyncio.start_server(tcp_to_unix(path), "::1", int(port)))
    process = await asyncio.create_subprocess_exec(*args.command)
    return await process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolv", required=True)
    parser.add_argument("--dns", required=True)
    parser.add_argument("--tcp", action="append", default=[])
    parser.add_argument("--tcp6", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("a command is needed")
    sys.exit(asyncio.run(_main(args)))


if __name__ == "__main__":
    main()
