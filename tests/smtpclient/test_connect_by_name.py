"""Client.connect resolves names with kittiwake's resolver, never the system's (issue 13)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from kittiwake.dns import MockResolver
from kittiwake.smtpclient import Client, ConnectError


@pytest.fixture
async def server() -> AsyncIterator[int]:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 only.mock.example ESMTP\r\n")
        await writer.drain()
        while line := await reader.readline():
            if line.upper().startswith(b"QUIT"):
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
        writer.close()

    srv = await asyncio.start_server(greet, "127.0.0.1", 0)
    yield int(srv.sockets[0].getsockname()[1])
    srv.close()
    await srv.wait_closed()


def closed_port_v6() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


async def test_a_name_only_the_resolver_knows(server: int) -> None:
    resolver = MockResolver()
    resolver.add("A", "relay.only.mock.example", "127.0.0.1")
    client = await Client.connect("relay.only.mock.example", server, local_hostname="c.example",
                                  timeouts=5, ehlo=False, resolver=resolver)
    assert client.remote == "relay.only.mock.example"
    assert client.writer.get_extra_info("peername")[0] == "127.0.0.1"
    await client.quit()
    assert (resolver.queries[0][0], resolver.queries[1][0]) == ("AAAA", "A")  # IPv6 first


async def test_ipv6_then_ipv4(server: int) -> None:
    """AAAA first; when nothing answers there, the A address (RFC 5321 §5.1)."""
    resolver = MockResolver()
    resolver.add("AAAA", "relay.only.mock.example", "::1")
    resolver.add("A", "relay.only.mock.example", "127.0.0.1")
    with socket.socket(socket.AF_INET6) as blocker:
        # [::1]:port bound but not listening: the IPv6 attempt is refused, surely.
        blocker.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        blocker.bind(("::1", server))
        client = await Client.connect("relay.only.mock.example", server,
                                      local_hostname="c.example", timeouts=5, ehlo=False,
                                      resolver=resolver)
    assert client.writer.get_extra_info("peername")[0] == "127.0.0.1"
    await client.quit()


async def test_unknown_name_and_unreachable_addresses_say_so() -> None:
    resolver = MockResolver()
    with pytest.raises(ConnectError, match=r"nowhere\.mock\.example has no address"):
        await Client.connect("nowhere.mock.example", 25, local_hostname="c.example",
                             timeouts=5, resolver=resolver)
    port = closed_port_v6()
    resolver.add("AAAA", "down.mock.example", "::1")
    resolver.add("A", "down.mock.example", "127.0.0.1")
    with pytest.raises(ConnectError) as caught:
        await Client.connect("down.mock.example", port, local_hostname="c.example",
                             timeouts=5, resolver=resolver)
    assert "[::1]" in str(caught.value) and "[127.0.0.1]" in str(caught.value)


async def test_localhost_is_loopback_without_dns(server: int) -> None:
    resolver = MockResolver()  # knows nothing; RFC 6761 §6.3 needs no lookup
    client = await Client.connect("localhost", server, local_hostname="c.example", timeouts=5,
                                  ehlo=False, resolver=resolver)
    await client.quit()
    assert resolver.queries == []
