"""A malformed record in an answer costs only that record, not the lookup.

The RFC 7208 suite's "null-text" case has a TXT record with no strings at
all (RDLENGTH 0; RFC 1035 §3.3.14 wants at least one) beside the SPF record.
Served over the wire by a small authoritative server, it used to make the
whole TXT lookup fail (dnspython refuses the message), so SPF said temperror;
the mock resolver never showed it. These tests put the real bytes on a
loopback socket.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable

import dns.flags
import dns.message
import dns.rrset
import pytest

from kittiwake import spf
from kittiwake.dns import Nameserver, StubResolver


def null_text_answer(query: dns.message.Message) -> bytes:
    """The suite's null.example.com: the SPF record in two strings, plus a TXT of 0 octets."""
    response = dns.message.make_response(query)
    response.use_edns(False)  # no OPT record: the answer section ends the message
    response.flags |= dns.flags.AA
    question = query.question[0]
    if question.rdtype != dns.rdatatype.TXT:
        return response.to_wire()
    response.answer.append(dns.rrset.from_text(
        question.name, 60, "IN", "TXT", '"v=spf1 ip4:" "192.0.2.5 -all"'))
    wire = bytearray(response.to_wire())
    struct.pack_into("!H", wire, 6, 2)  # ANCOUNT: one more record ...
    # ... owner = the question name (pointer to offset 12), TXT, IN, TTL 60, RDLENGTH 0.
    wire += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, 0)
    return bytes(wire)


class _Server(asyncio.DatagramProtocol):
    def __init__(self, answer: Callable[[dns.message.Message], bytes]) -> None:
        self.answer = answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(self.answer(dns.message.from_wire(data)), addr)  # type: ignore[attr-defined]


@pytest.fixture
async def resolver() -> AsyncIterator[StubResolver]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Server(null_text_answer),
                                                       local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    yield StubResolver([Nameserver("127.0.0.1", port)], timeout=1.0)
    transport.close()


def test_the_test_answer_really_is_malformed() -> None:
    wire = null_text_answer(dns.message.make_query("null.example.com", "TXT"))
    with pytest.raises(dns.exception.FormError, match="strings must not be empty"):
        dns.message.from_wire(wire)


async def test_txt_keeps_the_good_records(resolver: StubResolver) -> None:
    answer = await resolver.txt("null.example.com")
    assert answer.records == ("v=spf1 ip4:192.0.2.5 -all",)


async def test_spf_null_text_passes_over_the_wire(resolver: StubResolver) -> None:
    result = await spf.verify(resolver, "192.0.2.5", "silly@null.example.com", "hosed")
    assert result.status is spf.Status.PASS, result.problem
