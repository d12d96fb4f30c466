"""StubResolver on the wire, against a scripted DNS server on loopback.

The server answers each query with whatever the test's handler returns, so
the resolver's reading of responses can be checked case by case: the AD bit
(RFC 4035 §3.2.3), extended DNS errors (RFC 8914), CNAME chains (RFC 1034
§3.6.2), truncation and TCP fallback (RFC 7766), and broken responses.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest

from kittiwake.dns import (
    DNSTemporaryError,
    InvalidName,
    Nameserver,
    Status,
    StubResolver,
    resolver_validates,
)

Handler = Callable[[dns.message.Message, str], "dns.message.Message | bytes | None"]


@dataclass
class FakeDNS:
    """A UDP+TCP DNS server on 127.0.0.1 whose answers come from ``handler``."""

    handler: Handler
    port: int = 0
    queries: list[tuple[str, dns.message.Message]] = field(default_factory=list)

    def respond(self, wire: bytes, transport: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        self.queries.append((transport, query))
        reply = self.handler(query, transport)
        if reply is None or isinstance(reply, bytes):
            return reply
        return reply.to_wire(max_size=65535 if transport == "tcp" else 0)

    @property
    def resolver(self) -> StubResolver:
        return StubResolver([Nameserver("127.0.0.1", self.port)], timeout=0.5)


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, fake: FakeDNS) -> None:
        self.fake = fake

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.fake.respond(data, "udp")
        if reply is not None:
            self.transport.sendto(reply, addr)  # type: ignore[attr-defined]


StartFake = Callable[[Handler], Awaitable[FakeDNS]]


@pytest.fixture
async def fake_dns() -> AsyncIterator[StartFake]:
    """``await fake_dns(handler)`` starts a scripted server; all are closed after the test."""
    closers: list[Callable[[], None]] = []
    loop = asyncio.get_running_loop()

    async def tcp_client(fake: FakeDNS, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            reply = fake.respond(await reader.readexactly(size), "tcp")
            if reply is not None:
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        finally:
            writer.close()

    async def start(handler: Handler) -> FakeDNS:
        fake = FakeDNS(handler)
        tcp_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp_sock.bind(("127.0.0.1", 0))
        fake.port = tcp_sock.getsockname()[1]
        server = await asyncio.start_server(
            lambda r, w: tcp_client(fake, r, w), sock=tcp_sock)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UDP(fake), local_addr=("127.0.0.1", fake.port))
        closers.extend([server.close, transport.close])
        return fake

    yield start
    for close in closers:
        close()


def reply_to(query: dns.message.Message, *rrsets: dns.rrset.RRset, rcode: int = 0,
              ad: bool = False, ede: tuple[int, str] | None = None) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    for rrset in rrsets:
        response.answer.append(rrset)
    if ad:
        response.flags |= dns.flags.AD
    if ede is not None:
        response.use_edns(0, options=[dns.edns.EDEOption(ede[0], ede[1])])
    return response


def rr(name: str, rdtype: str, *values: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(name + ".", 300, "IN", rdtype, *values)


def qname(query: dns.message.Message) -> str:
    return query.question[0].name.to_text(omit_final_dot=True)


async def test_query_asks_for_dnssec_and_reads_ad_bit(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(q, rr(qname(q), "TXT", '"v=spf1" " -all"'),
                                                 ad=True))
    answer = await fake.resolver.txt("example.org")
    assert answer.records == ("v=spf1 -all",)  # RFC 7208 §3.3: strings joined
    assert answer.authentic is True
    assert answer.ttl == 300
    _, query = fake.queries[0]
    assert query.ednsflags & dns.flags.DO  # RFC 4035 §3.2.1
    assert query.flags & dns.flags.AD  # RFC 6840 §5.7
    assert query.flags & dns.flags.RD


async def test_no_ad_bit_is_not_authentic(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(q, rr(qname(q), "A", "192.0.2.1")))
    answer = await fake.resolver.a("example.org")
    assert [str(ip) for ip in answer] == ["192.0.2.1"]
    assert answer.authentic is False


async def test_servfail_with_extended_error_is_asked_once(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(q, rcode=dns.rcode.SERVFAIL,
                                                 ede=(9, "no DNSKEY for example.org")))
    with pytest.raises(DNSTemporaryError) as info:
        await fake.resolver.mx("example.org")
    assert [(e.code, e.name, e.text) for e in info.value.extended_errors] == [
        (9, "DNSKEY Missing", "no DNSKEY for example.org")]
    assert info.value.reason == f"127.0.0.1:{fake.port}: SERVFAIL"
    assert len(fake.queries) == 1  # the resolver explained itself: no retry


async def test_servfail_without_explanation_is_retried(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(q, rcode=dns.rcode.SERVFAIL))
    with pytest.raises(DNSTemporaryError, match="SERVFAIL"):
        await fake.resolver.a("example.org")
    assert len(fake.queries) == 2  # attempts=2


async def test_refused_is_temporary(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(q, rcode=dns.rcode.REFUSED))
    with pytest.raises(DNSTemporaryError, match="REFUSED"):
        await fake.resolver.a("example.org")


async def test_extended_error_on_an_answer_is_kept(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(q, rr(qname(q), "A", "192.0.2.1"),
                                                 ede=(3, "stale")))
    answer = await fake.resolver.a("example.org")
    assert [(e.code, e.name) for e in answer.extended_errors] == [(3, "Stale Answer")]
    assert answer.to_json()["extended_errors"] == [
        {"code": 3, "name": "Stale Answer", "text": "stale"}]


async def test_nxdomain_and_nodata(fake_dns: StartFake) -> None:
    def handler(q: dns.message.Message, _t: str) -> dns.message.Message:
        if qname(q).startswith("nx."):
            return reply_to(q, rcode=dns.rcode.NXDOMAIN, ad=True)
        return reply_to(q, ad=True)

    fake = await fake_dns(handler)
    nx = await fake.resolver.txt("nx.example.org")
    assert (nx.status, nx.authentic, nx.records) == (Status.NXDOMAIN, True, ())
    nodata = await fake.resolver.txt("there.example.org")
    assert (nodata.status, nodata.authentic) == (Status.NODATA, True)


async def test_cname_chain_in_one_response(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(
        q,
        rr("www.example.org", "CNAME", "web.example.org."),
        rr("web.example.org", "CNAME", "host.example.net."),
        rr("host.example.net", "AAAA", "2001:db8::1"),
        rr("unrelated.example", "AAAA", "2001:db8::2"),
        ad=True))
    answer = await fake.resolver.aaaa("www.example.org")
    assert [str(ip) for ip in answer] == ["2001:db8::1"]
    assert answer.cname_chain == ("web.example.org", "host.example.net")
    assert answer.canonical_name == "host.example.net"
    assert len(fake.queries) == 1


async def test_cname_target_asked_separately_and_authentic_only_if_all(fake_dns: StartFake) -> None:
    def handler(q: dns.message.Message, _t: str) -> dns.message.Message:
        if qname(q) == "alias.example.org":  # a resolver that stops at the CNAME
            return reply_to(q, rr("alias.example.org", "CNAME", "target.example.net."), ad=True)
        return reply_to(q, rr(qname(q), "A", "192.0.2.5"), ad=False)

    fake = await fake_dns(handler)
    answer = await fake.resolver.a("alias.example.org")
    assert [str(ip) for ip in answer] == ["192.0.2.5"]
    assert answer.cname_chain == ("target.example.net",)
    assert answer.authentic is False  # the second step was not validated
    assert [qname(q) for _t, q in fake.queries] == ["alias.example.org", "target.example.net"]


async def test_cname_to_nxdomain(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(
        q, rr(qname(q), "CNAME", "gone.example.net."), rcode=dns.rcode.NXDOMAIN))
    answer = await fake.resolver.txt("alias.example.org")
    assert answer.status is Status.NXDOMAIN
    assert answer.cname_chain == ("gone.example.net",)


async def test_cname_loop_is_a_temporary_error(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(
        q, rr("a.example", "CNAME", "b.example."), rr("b.example", "CNAME", "a.example.")))
    with pytest.raises(DNSTemporaryError, match="CNAME chain longer than"):
        await fake.resolver.a("a.example")


async def test_truncated_answer_is_asked_again_over_tcp(fake_dns: StartFake) -> None:
    big = " ".join(['"' + "k" * 250 + '"'] * 8)

    def handler(q: dns.message.Message, transport: str) -> dns.message.Message:
        if transport == "udp":
            response = reply_to(q)
            response.flags |= dns.flags.TC
            return response
        return reply_to(q, rr(qname(q), "TXT", big), ad=True)

    fake = await fake_dns(handler)
    answer = await fake.resolver.txt("sel._domainkey.example.org")
    assert answer.records == ("k" * 2000,)
    assert answer.authentic is True
    assert [t for t, _q in fake.queries] == ["udp", "tcp"]


async def test_tcp_closed_without_answer_is_a_temporary_error(fake_dns: StartFake) -> None:
    def handler(q: dns.message.Message, transport: str) -> dns.message.Message | None:
        if transport == "udp":
            response = reply_to(q)
            response.flags |= dns.flags.TC
            return response
        return None  # closes the TCP connection without a word

    fake = await fake_dns(handler)
    with pytest.raises(DNSTemporaryError, match="connection closed before an answer"):
        await fake.resolver.txt("example.org")


async def test_garbage_response_is_a_temporary_error(fake_dns: StartFake) -> None:
    def handler(q: dns.message.Message, _t: str) -> bytes:
        return q.to_wire()[:2] + b"\x81\x80\x00\x01\x00\x05"  # truncated header, lies

    fake = await fake_dns(handler)
    with pytest.raises(DNSTemporaryError):
        await fake.resolver.txt("example.org")


async def test_silent_server_times_out(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda _q, _t: None)
    resolver = StubResolver([Nameserver("127.0.0.1", fake.port)], timeout=0.2, attempts=2)
    start = time.monotonic()
    with pytest.raises(DNSTemporaryError) as info:
        await resolver.a("example.org")
    elapsed = time.monotonic() - start
    assert info.value.reason == f"127.0.0.1:{fake.port}: timeout"
    assert 0.35 < elapsed < 2
    assert len(fake.queries) == 2


async def test_odd_octets_are_sent_as_they_are(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(q, rcode=dns.rcode.NXDOMAIN))
    # A backslash from e.g. an SPF macro expansion is a label octet, not an escape.
    answer = await fake.resolver.txt("a\\b.example")
    assert answer.status is Status.NXDOMAIN
    _, query = fake.queries[0]
    assert query.question[0].name.labels == (b"a\\b", b"example", b"")


async def test_invalid_names_never_reach_the_wire(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(q))
    for bad in ("a..example", "x" * 64 + ".example", "☃.example", ""):
        with pytest.raises(InvalidName):
            await fake.resolver.txt(bad)
    assert fake.queries == []


def unused_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on (just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_resolver_fails_fast() -> None:
    port = unused_port()
    resolver = StubResolver([Nameserver("127.0.0.1", port)], timeout=3.0)
    start = time.monotonic()
    with pytest.raises(DNSTemporaryError) as info:
        await resolver.txt("example.org")
    # The ICMP port-unreachable is seen at once, long before the 3 s timeout.
    assert time.monotonic() - start < 1.0
    assert f"127.0.0.1:{port}: " in info.value.reason
    assert "refused" in info.value.reason.lower()


async def test_second_resolver_answers_when_first_is_down(fake_dns: StartFake) -> None:
    fake = await fake_dns(lambda q, _t: reply_to(q, rr(qname(q), "A", "192.0.2.1")))
    resolver = StubResolver([Nameserver("127.0.0.1", unused_port()),
                             Nameserver("127.0.0.1", fake.port)], timeout=3.0)
    start = time.monotonic()
    assert [str(ip) for ip in await resolver.a("example.org")] == ["192.0.2.1"]
    assert time.monotonic() - start < 1.0


async def test_resolver_validates(fake_dns: StartFake) -> None:
    validating = await fake_dns(lambda q, _t: reply_to(q, ad=True))
    plain = await fake_dns(lambda q, _t: reply_to(q))
    failing = await fake_dns(lambda q, _t: reply_to(q, rcode=dns.rcode.SERVFAIL))
    assert await resolver_validates(validating.resolver) is True
    assert await resolver_validates(plain.resolver) is False
    assert await resolver_validates(failing.resolver) is None  # says nothing either way
    down = StubResolver([Nameserver("127.0.0.1", unused_port())])
    assert await resolver_validates(down) is None
    _, probe = validating.queries[0]
    assert probe.question[0].name == dns.name.root


async def test_queries_are_counted_by_type_and_result(fake_dns: StartFake) -> None:
    """kittiwake_dns_queries_total{type,result}: one per exchange with a resolver."""
    from kittiwake import metrics

    def count(rdtype: str, result: str) -> float:
        return metrics.REGISTRY.get_sample_value(
            "kittiwake_dns_queries_total", {"type": rdtype, "result": result}) or 0.0

    def handler(q: dns.message.Message, _t: str) -> dns.message.Message | None:
        name = qname(q)
        if name.startswith("nx."):
            return reply_to(q, rcode=dns.rcode.NXDOMAIN)
        if name.startswith("fail."):
            return reply_to(q, rcode=dns.rcode.SERVFAIL)
        if name.startswith("silent."):
            return None
        return reply_to(q, rr(name, "TXT", '"v=spf1 -all"'))

    fake = await fake_dns(handler)
    fake.resolver.timeout = 0.1
    before = {(t, r): count(t, r) for t in ("TXT", "A", "MX")
              for r in ("NOERROR", "NXDOMAIN", "SERVFAIL", "timeout")}
    latency_before = metrics.REGISTRY.get_sample_value(
        "kittiwake_dns_query_duration_seconds_count", {"type": "TXT"}) or 0.0
    await fake.resolver.txt("ok.example.org")
    await fake.resolver.txt("nx.example.org")
    with pytest.raises(DNSTemporaryError):
        await fake.resolver.a("fail.example.org")  # retried once: attempts=2
    with pytest.raises(DNSTemporaryError):
        await fake.resolver.mx("silent.example.org")
    changed = {key: count(*key) - value for key, value in before.items()
               if count(*key) != value}
    assert changed == {("TXT", "NOERROR"): 1, ("TXT", "NXDOMAIN"): 1, ("A", "SERVFAIL"): 2,
                       ("MX", "timeout"): 2}
    assert metrics.REGISTRY.get_sample_value(
        "kittiwake_dns_query_duration_seconds_count", {"type": "TXT"}) == latency_before + 2
