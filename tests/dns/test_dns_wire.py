"""The stub's own DNS message codec (:mod:`kittiwake.dns.wire`) against dnspython as oracle.

Queries must be what dnspython reads as a DO+AD+RD query with one question;
answers built by dnspython (name compression, mixed case, RRSIGs, SOA,
EDE options, extended RCODEs) must give the records dnspython reads from
them; mutated and random messages must never raise.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.dns import CAA, MX, SRV, TLSA, InvalidName, RRType, wire
from kittiwake.dns.stub import _follow


def oracle(rdtype: RRType, rd: Any) -> Any:
    """A record value as kittiwake gives it, from dnspython's rdata."""
    def name(n: dns.name.Name) -> str:
        return n.to_text(omit_final_dot=True) if n != dns.name.root else ""

    match rdtype:
        case RRType.A | RRType.AAAA:
            return ipaddress.ip_address(rd.address)
        case RRType.MX:
            return MX(rd.preference, name(rd.exchange))
        case RRType.TXT:
            return b"".join(rd.strings).decode("utf-8", errors="replace")
        case RRType.PTR | RRType.CNAME | RRType.NS:
            return name(rd.target)
        case RRType.TLSA:
            return TLSA(rd.usage, rd.selector, rd.mtype, bytes(rd.cert))
        case RRType.SRV:
            return SRV(rd.priority, rd.weight, rd.port, name(rd.target))
        case RRType.CAA:
            return CAA(rd.flags, rd.tag.decode("ascii", "replace"),
                       rd.value.decode("utf-8", "replace"))
    raise AssertionError(rdtype)


def oracle_follow(message: dns.message.Message, qname: dns.name.Name,
                  rdtype: RRType) -> tuple[list[str], list[Any] | None, int]:
    """CNAME chain, records and TTL as the dnspython-based stub read them (records of
    class IN only: another class in the answer to an IN question answers nothing)."""
    wanted = dns.rdatatype.from_text(rdtype.value)
    chain: list[str] = []
    current = qname
    for _ in range(9):
        rrset = next((r for r in message.answer if r.name == current and r.rdtype == wanted
                      and r.rdclass == dns.rdataclass.IN), None)
        if rrset is not None:
            return chain, [oracle(rdtype, rd) for rd in rrset], rrset.ttl
        if wanted == dns.rdatatype.CNAME:
            return chain, None, 0
        cname = next((r for r in message.answer
                      if r.name == current and r.rdtype == dns.rdatatype.CNAME
                      and r.rdclass == dns.rdataclass.IN), None)
        if cname is None:
            return chain, None, 0
        current = cname[0].target
        chain.append(current.to_text(omit_final_dot=True))
    return chain, None, 0


def check_against_oracle(data: bytes, qname: str, rdtype: RRType) -> None:
    ours = wire.parse(data)
    theirs = dns.message.from_wire(data)
    assert ours is not None
    assert ours.ident == theirs.id and ours.rcode == theirs.rcode()
    assert ours.authentic == bool(theirs.flags & dns.flags.AD)
    assert ours.extended == [(o.code, o.text or "") for o in theirs.options
                             if o.otype == dns.edns.EDE]
    chain: list[str] = []
    _next, records, ttl = _follow(ours, wire.encode_name(qname), rdtype, chain)
    want_chain, want_records, want_ttl = oracle_follow(theirs, dns.name.from_text(qname), rdtype)
    assert chain == want_chain
    assert records == want_records
    assert ttl == want_ttl


def response(qname: str, rdtype: str, *rrsets: dns.rrset.RRset, rcode: int = 0,
             ad: bool = False, ede: list[tuple[int, str]] | None = None,
             authority: list[dns.rrset.RRset] | None = None) -> dns.message.Message:
    query = dns.message.make_query(qname, rdtype, want_dnssec=True)
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    reply.answer.extend(rrsets)
    reply.authority.extend(authority or [])
    if ad:
        reply.flags |= dns.flags.AD
    if ede:
        reply.use_edns(0, ednsflags=dns.flags.DO,
                       options=[dns.edns.EDEOption(c, t) for c, t in ede])
    return reply


def rr(name: str, rdtype: str, *values: str, ttl: int = 300) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, ttl, "IN", rdtype, *values)


def test_query_is_a_dnssec_query_with_one_question() -> None:
    query = wire.Query(wire.encode_name("Sel._domainkey.Example.ORG"), wire.TYPES[RRType.TXT])
    message = dns.message.from_wire(query.wire)
    assert message.id == query.ident
    assert message.flags & dns.flags.RD and message.flags & dns.flags.AD
    assert not message.flags & dns.flags.QR
    assert message.edns == 0 and message.payload == 1232
    assert message.ednsflags & dns.flags.DO
    assert [(q.name.to_text(), q.rdtype) for q in message.question] == [
        ("Sel._domainkey.Example.ORG.", dns.rdatatype.TXT)]
    assert message.question[0].name.labels[0] == b"Sel"  # the case as asked


def test_query_ids_differ() -> None:
    ids = {wire.Query(b"\x00", 1).ident for _ in range(64)}
    assert len(ids) > 50


@pytest.mark.parametrize("name", ["a..example", "x" * 64 + ".example", "☃.example",
                                  ".".join(["abcdefghi"] * 26), "example.", "."])
def test_names_that_cannot_be_asked(name: str) -> None:
    with pytest.raises(InvalidName):
        wire.encode_name(name)


def test_odd_octets_are_labels() -> None:
    assert wire.encode_name("a\\b.example") == b"\x03a\\b\x07example\x00"
    assert wire.encode_name("") == b"\x00"


CASES: list[tuple[str, RRType, list[dns.rrset.RRset]]] = [
    ("example.org.", RRType.A, [rr("example.org.", "A", "192.0.2.1", "192.0.2.2")]),
    ("Example.ORG.", RRType.A, [rr("example.org.", "A", "192.0.2.1")]),
    ("example.org.", RRType.AAAA, [rr("example.org.", "AAAA", "2001:db8::1", "::ffff:1.2.3.4")]),
    ("example.org.", RRType.TXT, [rr("example.org.", "TXT", '"v=spf1 " "-all"',
                                     '"\\195\\169t\\195\\169"', '"bad \\255 utf8"', '""')]),
    ("example.org.", RRType.MX, [rr("example.org.", "MX", "10 mx1.example.org.", "0 .",
                                    "20 MX2.Example.net.")]),
    ("1.2.0.192.in-addr.arpa.", RRType.PTR, [rr("1.2.0.192.in-addr.arpa.", "PTR",
                                                 "host.example.org.", "odd\\.dot\\032x.example.")]),
    ("www.example.org.", RRType.AAAA, [
        rr("www.example.org.", "CNAME", "web.example.org."),
        rr("web.example.org.", "CNAME", "host.example.net."),
        rr("host.example.net.", "AAAA", "2001:db8::1", ttl=30),
        rr("unrelated.example.", "AAAA", "2001:db8::2")]),
    ("alias.example.org.", RRType.A, [rr("alias.example.org.", "CNAME", "target.example.")]),
    ("alias.example.org.", RRType.CNAME, [rr("alias.example.org.", "CNAME", "target.example.")]),
    ("_25._tcp.mx.example.", RRType.TLSA, [rr("_25._tcp.mx.example.", "TLSA",
                                              "3 1 1 " + "ab" * 32, "3 1 0 0123")]),
    ("_imaps._tcp.example.", RRType.SRV, [rr("_imaps._tcp.example.", "SRV",
                                             "0 1 993 imap.example.", "10 0 0 .")]),
    ("example.", RRType.CAA, [rr("example.", "CAA", '0 issue "letsencrypt.org"',
                                 '128 iodef "mailto:x@example"')]),
    ("example.", RRType.NS, [rr("example.", "NS", "ns1.example.", "ns2.example.net.")]),
    ("example.", RRType.TXT, [rr("example.", "TXT", '"a"', ttl=100),
                              rr("example.", "RRSIG", "TXT 13 1 300 20300101000000 "
                                 "20200101000000 1234 example. dGVzdA==")]),
]


@pytest.mark.parametrize(("qname", "rdtype", "rrsets"), CASES)
def test_answers_read_as_dnspython_reads_them(qname: str, rdtype: RRType,
                                              rrsets: list[dns.rrset.RRset]) -> None:
    message = response(qname, rdtype.value, *rrsets, ad=True,
                       ede=[(3, "stale"), (18, "")])
    check_against_oracle(message.to_wire(), qname.rstrip("."), rdtype)


def test_lowest_ttl_of_the_rrset() -> None:
    message = response("example.org.", "A", rr("example.org.", "A", "192.0.2.1"))
    message.use_edns(False)  # no OPT record: the answer section ends the message
    data = bytearray(message.to_wire())
    # Append a second A record with a lower TTL, pointing at the question name.
    data += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 42, 4) + bytes([192, 0, 2, 9])
    struct.pack_into("!H", data, 6, 2)
    parsed = wire.parse(bytes(data))
    assert parsed is not None
    _n, records, ttl = _follow(parsed, wire.encode_name("example.org"), RRType.A, [])
    assert records == [ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.9")]
    assert ttl == 42


def test_negative_answer_ttl_from_the_soa() -> None:
    """RFC 2308 §5: the lower of the SOA's TTL and its MINIMUM."""
    soa = rr("example.org.", "SOA", "ns.example.org. host.example.org. 1 3600 600 86400 45",
             ttl=120)
    nsec = rr("example.org.", "NSEC", "a.example.org. A NS SOA RRSIG NSEC", ttl=45)
    message = response("nx.example.org.", "TXT", rcode=dns.rcode.NXDOMAIN,
                       authority=[nsec, soa])
    parsed = wire.parse(message.to_wire())
    assert parsed is not None and parsed.rcode == wire.NXDOMAIN and parsed.negative_ttl == 45
    soa_low = rr("example.org.", "SOA", "ns.example.org. host.example.org. 1 3600 600 86400 900",
                 ttl=20)
    parsed = wire.parse(response("x.example.org.", "A", authority=[soa_low]).to_wire())
    assert parsed is not None and parsed.negative_ttl == 20
    parsed = wire.parse(response("x.example.org.", "A").to_wire())
    assert parsed is not None and parsed.negative_ttl is None


def test_extended_rcode_from_opt() -> None:
    message = response("example.org.", "A", ede=[(0, "x")])
    message.set_rcode(16)  # BADVERS: 4 bits in the header, 8 in the OPT TTL
    parsed = wire.parse(message.to_wire())
    assert parsed is not None and parsed.rcode == 16 == message.rcode()


def test_response_matching() -> None:
    query = wire.Query(wire.encode_name("Example.org"), wire.TYPES[RRType.A])
    theirs = dns.message.from_wire(query.wire)
    reply = dns.message.make_response(theirs)
    reply.question[0].name = dns.name.from_text("EXAMPLE.org.")
    ok = wire.parse(reply.to_wire())
    assert ok is not None and query.is_response(ok)
    other = dns.message.make_response(theirs)
    other.question[0].name = dns.name.from_text("other.org.")
    parsed = wire.parse(other.to_wire())
    assert parsed is not None and not query.is_response(parsed)
    wrong_id = dns.message.make_response(theirs)
    wrong_id.id ^= 1
    parsed = wire.parse(wrong_id.to_wire())
    assert parsed is not None and not query.is_response(parsed)
    refused = dns.message.make_response(theirs)
    refused.question = []
    refused.set_rcode(dns.rcode.REFUSED)
    parsed = wire.parse(refused.to_wire())
    assert parsed is not None and query.is_response(parsed)
    assert not query.is_response(wire.parse(query.wire))  # type: ignore[arg-type]  # no QR


def test_broken_structure_is_unreadable() -> None:
    good = response("example.org.", "A", rr("example.org.", "A", "192.0.2.1")).to_wire()
    assert wire.parse(good[:11]) is None  # short header
    assert wire.parse(good[:-2]) is None  # the record's data runs past the end
    looped = bytearray(good)
    question_end = 12 + len(b"\x07example\x03org\x00") + 4
    looped[question_end:question_end + 2] = b"\xc0" + bytes([question_end])  # points at itself
    assert wire.parse(bytes(looped)) is None


def test_bad_records_are_left_out() -> None:
    message = response("example.org.", "TXT", rr("example.org.", "TXT", '"v=spf1 -all"'))
    message.use_edns(False)
    data = bytearray(message.to_wire())
    # RFC 1035 §3.3.14: a TXT without strings; an A of 3 octets in a TXT answer.
    data += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, 0)
    data += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, 3) + b"\x05ab"  # string too long
    struct.pack_into("!H", data, 6, 3)
    parsed = wire.parse(bytes(data))
    assert parsed is not None and len(parsed.answer) == 3
    _n, records, _ttl = _follow(parsed, wire.encode_name("example.org"), RRType.TXT, [])
    assert records == ["v=spf1 -all"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    parsed = wire.parse(data)
    if parsed is not None:
        for rdtype in RRType:
            _follow(parsed, wire.encode_name("example.org"), rdtype, [])


GOOD = [response(q, t.value, *r, ad=True, ede=[(3, "stale")]).to_wire() for q, t, r in CASES]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(range(len(CASES))), st.integers(min_value=0), st.integers(0, 255),
       st.integers(0, 3))
def test_mutated_answers_never_raise_and_agree_when_dnspython_reads_them(
        case: int, where: int, octet: int, cut: int) -> None:
    qname, rdtype, _rrsets = CASES[case]
    data = bytearray(GOOD[case])
    data[where % len(data)] = octet
    mutated = bytes(data[:len(data) - cut])
    parsed = wire.parse(mutated)
    if parsed is not None:
        for kind in RRType:
            _follow(parsed, wire.encode_name(qname.rstrip(".")), kind, [])
    try:
        theirs = dns.message.from_wire(mutated)
    except Exception:
        return  # dnspython refuses it (we may read more: a record it finds bad)
    if theirs.question and theirs.question[0].name == dns.name.from_text(qname) and \
            not theirs.had_tsig:
        check_against_oracle(mutated, qname.rstrip("."), rdtype)
