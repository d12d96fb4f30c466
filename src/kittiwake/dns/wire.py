"""DNS messages on the wire (RFC 1035 §4.1): the query a stub sends and what it reads back.

Written here rather than taken from dnspython's :class:`dns.message.Message`
for its cost: building a query and parsing the answer with dnspython takes
250-700 µs of CPU per lookup (a name object per label run, rdata, rrset and
enum objects for every record, the RRSIGs and NSECs that a DO query brings
included), and an MX meets a new client address on almost every message, two
lookups (PTR and A, RFC 8601 §3 iprev). A stub resolver reads little of an
answer: the header, the question (to match the query, RFC 5452 §9.1), the
records of the answer section, the SOA of the authority section (how long a
negative answer may be kept, RFC 2308 §5) and the OPT record (the extended
RCODE, RFC 6891 §6.1.3, and extended DNS errors, RFC 8914). Everything else
(signatures, NSEC/NSEC3 proofs, glue) is skipped by its RDLENGTH without a look.

Records are kept as offsets into the message and converted to kittiwake's
values (:mod:`kittiwake.dns.types`) only for the name and type asked for. A
record whose data cannot be read is left out and the others kept (the RFC 7208
suite's "null-text": a TXT record without strings beside the SPF record must not
turn the lookup into an error); a message whose structure is broken (a count
that runs past the end, a record longer than the message, a compression pointer
that does not point backwards) cannot be read at all: :func:`parse` returns None.
"""

from __future__ import annotations

import ipaddress
import secrets
import struct
from typing import Any

from kittiwake.dns.types import CAA, MX, SRV, TLSA, InvalidName, RRType

# RFC 1035 §3.2.2, RFC 3596 §2.1, RFC 6698 §7.1, RFC 2782, RFC 8659 §4.
TYPES: dict[RRType, int] = {
    RRType.A: 1, RRType.NS: 2, RRType.CNAME: 5, RRType.PTR: 12, RRType.MX: 15,
    RRType.TXT: 16, RRType.AAAA: 28, RRType.SRV: 33, RRType.TLSA: 52, RRType.CAA: 257,
}
CNAME = 5
SOA = 6
OPT = 41
DNSKEY = 48
CLASS_IN = 1
EDE = 15  # RFC 8914 §2: the EDNS option code

# Header flags (RFC 1035 §4.1.1; AD RFC 4035 §3.2.3).
QR = 0x8000
TC = 0x0200
RD = 0x0100
AD = 0x0020
OPCODE_MASK = 0x7800

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5

PAYLOAD = 1232  # the EDNS UDP size of DNS flag day 2020: no IP fragmentation
# RFC 6891 §6.1.2: the OPT pseudo-record, root owner, CLASS = payload size, TTL =
# extended RCODE 0, version 0, the DO bit (RFC 3225 §3: send the DNSSEC records, which
# some resolvers want before they set AD), no options.
_OPT_RR = b"\x00" + struct.pack("!HHIH", OPT, PAYLOAD, 0x00008000, 0)
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_U16 = struct.Struct("!H")

MAX_NAME_WIRE = 255  # RFC 1035 §2.3.4, octets on the wire with the length octets
MAX_LABEL = 63


class Malformed(Exception):
    """The message's structure cannot be read (not one record: the whole message)."""


def encode_name(name: str) -> bytes:
    """The wire form of ``name`` (A-labels, no trailing dot), label by label.

    Built from the labels rather than read as master-file text, so that a
    backslash or other odd octet in a name from the network is looked up as
    itself instead of being read as an escape (RFC 1035 §5.1). The root is "".
    """
    if name == "":
        return b"\x00"
    out = bytearray()
    try:
        for label in name.split("."):
            raw = label.encode("ascii")
            if not raw:
                raise ValueError("a DNS label is empty")
            if len(raw) > MAX_LABEL:
                raise ValueError(f"a DNS label is more than {MAX_LABEL} octets long")
            out.append(len(raw))
            out += raw
    except (UnicodeError, ValueError) as exc:
        raise InvalidName(f"domain name {name!r} cannot be looked up: {exc}") from None
    out.append(0)
    if len(out) > MAX_NAME_WIRE:
        raise InvalidName(f"domain name {name!r} cannot be looked up: a DNS name is more"
                          f" than {MAX_NAME_WIRE} octets long")
    return bytes(out)


class Query:
    """One query: its wire form and what an answer to it must repeat (RFC 5452 §9.1)."""

    __slots__ = ("ident", "qname", "qtype", "wire")

    def __init__(self, qname: bytes, qtype: int, ident: int | None = None) -> None:
        self.ident = secrets.randbits(16) if ident is None else ident
        self.qname = qname.lower()  # RFC 4343: names compare without case
        self.qtype = qtype
        # RFC 1035 §4.1.1: RD; RFC 6840 §5.7: AD asks a validating resolver for the AD bit.
        self.wire = (_HEADER.pack(self.ident, RD | AD, 1, 0, 0, 1) + qname
                     + struct.pack("!HH", qtype, CLASS_IN) + _OPT_RR)

    def is_response(self, response: Response) -> bool:
        """Whether ``response`` answers this query: QR set, same ID and opcode, the same
        question (an error reply may leave the question out)."""
        if not response.flags & QR or response.ident != self.ident or \
                response.flags & OPCODE_MASK:
            return False
        if not response.question and response.rcode in (FORMERR, SERVFAIL, NOTIMP, REFUSED):
            return True
        return response.question == [(self.qname, self.qtype, CLASS_IN)]


class Response:
    """What a stub reads of an answer; the records stay offsets into ``wire``."""

    __slots__ = ("answer", "extended", "flags", "ident", "negative_ttl", "question", "rcode",
                 "wire")

    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        self.ident = 0
        self.flags = 0
        self.rcode = 0
        self.question: list[tuple[bytes, int, int]] = []
        # (owner in lower case wire form, type, class, ttl, rdata start, rdata end)
        self.answer: list[tuple[bytes, int, int, int, int, int]] = []
        self.negative_ttl: int | None = None  # RFC 2308 §5, from the authority's SOA
        self.extended: list[tuple[int, str]] = []  # RFC 8914 (info-code, extra-text)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & TC)

    @property
    def authentic(self) -> bool:
        return bool(self.flags & AD)

    def records(self, owner: bytes, rdtype: int) -> tuple[list[tuple[int, int]], int] | None:
        """The (start, end) of the rdata of ``owner``'s records of ``rdtype`` in the answer
        section, and their TTL (the lowest, RFC 2181 §5.2); None when there are none."""
        found: list[tuple[int, int]] = []
        ttl = 0
        for name, kind, rdclass, rr_ttl, start, end in self.answer:
            if kind == rdtype and rdclass == CLASS_IN and name == owner:
                if rr_ttl > 0x7FFFFFFF:  # RFC 2181 §8: treated as zero
                    rr_ttl = 0
                ttl = rr_ttl if not found or rr_ttl < ttl else ttl
                found.append((start, end))
        return (found, ttl) if found else None


def read_name(wire: bytes, pos: int) -> tuple[list[bytes], int]:
    """The labels of the name at ``pos`` (without the root's empty label) and the offset
    after it, following compression pointers (RFC 1035 §4.1.4), each of which must point
    before the one followed last, so that a loop cannot be built."""
    labels: list[bytes] = []
    after = -1
    limit = pos
    size = 1
    end = len(wire)
    while True:
        if pos >= end:
            raise Malformed("name runs past the end")
        count = wire[pos]
        if count == 0:
            pos += 1
            break
        if count < 64:
            pos += 1
            if pos + count > end:
                raise Malformed("label runs past the end")
            labels.append(wire[pos:pos + count])
            pos += count
            size += count + 1
            if size > MAX_NAME_WIRE:
                raise Malformed("name longer than 255 octets")
        elif count >= 0xC0:
            if pos + 1 >= end:
                raise Malformed("pointer runs past the end")
            target = ((count & 0x3F) << 8) | wire[pos + 1]
            if target >= limit:
                raise Malformed("compression pointer does not point backwards")
            if after < 0:
                after = pos + 2
            limit = pos = target
        else:
            raise Malformed("unknown label type")
    return labels, (after if after >= 0 else pos)


def wire_name(labels: list[bytes]) -> bytes:
    """The name's uncompressed wire form (its case kept, for a query)."""
    return b"".join([bytes((len(label),)) + label for label in labels]) + b"\x00"


def name_key(labels: list[bytes]) -> bytes:
    """The name in lower case wire form, for comparing (RFC 4343)."""
    return wire_name(labels).lower()


_ESCAPED = frozenset(b'"().;\\@$')


def name_text(labels: list[bytes]) -> str:
    """Presentation form (RFC 1035 §5.1) without the trailing dot; "" for the root."""
    parts = []
    for label in labels:
        if label.isalnum() or (label.isascii() and label.replace(b"-", b"").replace(
                b"_", b"").isalnum()):
            parts.append(label.decode("ascii"))
            continue
        text = []
        for c in label:
            if c in _ESCAPED:
                text.append("\\" + chr(c))
            elif 0x20 < c < 0x7F:
                text.append(chr(c))
            else:
                text.append(f"\\{c:03d}")
        parts.append("".join(text))
    return ".".join(parts)


def parse(wire: bytes) -> Response | None:
    """The response in ``wire``, or None when its structure cannot be read."""
    try:
        return _parse(wire)
    except (Malformed, struct.error, IndexError):
        return None


def _parse(wire: bytes) -> Response:
    response = Response(wire)
    if len(wire) < 12:
        raise Malformed("short header")
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    response.ident, response.flags = ident, flags
    rcode = flags & 0x000F
    pos = 12
    end = len(wire)
    for _ in range(qdcount):
        labels, pos = read_name(wire, pos)
        if pos + 4 > end:
            raise Malformed("question runs past the end")
        qtype, qclass = struct.unpack_from("!HH", wire, pos)
        pos += 4
        response.question.append((name_key(labels), qtype, qclass))
    unpack = _RR.unpack_from
    owners: dict[int, bytes] = {}  # name offset -> key: most owners point at the question
    for section, count in ((1, ancount), (2, nscount), (3, arcount)):
        for _ in range(count):
            start = pos
            if wire[pos] >= 0xC0 and pos + 1 < end:
                target = ((wire[pos] & 0x3F) << 8) | wire[pos + 1]
                key = owners.get(target)
                if key is None:
                    if target >= pos:
                        raise Malformed("compression pointer does not point backwards")
                    labels, _after = read_name(wire, target)
                    key = owners[target] = name_key(labels)
                pos += 2
            else:
                labels, pos = read_name(wire, pos)
                key = owners[start] = name_key(labels)
            if pos + 10 > end:
                raise Malformed("record runs past the end")
            rdtype, rdclass, ttl, rdlength = unpack(wire, pos)
            pos += 10
            rdata = pos
            pos += rdlength
            if pos > end:
                raise Malformed("record data runs past the end")
            if section == 1:
                response.answer.append((key, rdtype, rdclass, ttl, rdata, pos))
            elif section == 2:
                if rdtype == SOA and response.negative_ttl is None:
                    response.negative_ttl = _negative_ttl(wire, rdata, pos, ttl)
            elif rdtype == OPT:
                # RFC 6891 §6.1.3: the TTL's top octet is the upper 8 bits of the RCODE.
                rcode |= (ttl >> 24) << 4
                response.extended += _ede(wire, rdata, pos)
    response.rcode = rcode
    return response


def _negative_ttl(wire: bytes, start: int, end: int, ttl: int) -> int | None:
    """RFC 2308 §5: a negative answer is kept for the lower of the SOA record's TTL and
    its MINIMUM field (the last of its five 32-bit numbers)."""
    try:
        _mname, pos = read_name(wire, start)
        _rname, pos = read_name(wire, pos)
    except Malformed:
        return None
    if pos + 20 != end:
        return None
    minimum = struct.unpack_from("!I", wire, pos + 16)[0]
    return min(ttl, minimum) if ttl <= 0x7FFFFFFF else 0


def _ede(wire: bytes, pos: int, end: int) -> list[tuple[int, str]]:
    """The extended DNS errors among the OPT record's options (RFC 8914 §2)."""
    out = []
    while pos + 4 <= end:
        code, length = struct.unpack_from("!HH", wire, pos)
        pos += 4
        if pos + length > end:
            break
        if code == EDE and length >= 2:
            text = wire[pos + 2:pos + length]
            if text.endswith(b"\x00"):  # RFC 8914 §2: not NUL-terminated, but some are
                text = text[:-1]
            out.append((_U16.unpack_from(wire, pos)[0], text.decode("utf-8", "replace")))
        pos += length
    return out


_DIGEST_SIZE = {1: 32, 2: 64}


def convert(rdtype: RRType, wire: bytes, start: int, end: int) -> Any:
    """The value of one record's data; Malformed when it cannot be read."""
    match rdtype:
        case RRType.A:
            if end - start != 4:
                raise Malformed("A record not 4 octets")
            return ipaddress.IPv4Address(wire[start:end])
        case RRType.AAAA:
            if end - start != 16:
                raise Malformed("AAAA record not 16 octets")
            return ipaddress.IPv6Address(wire[start:end])
        case RRType.TXT:
            # RFC 1035 §3.3.14: one or more <character-string>s; RFC 7208 §3.3 joins them.
            if start == end:
                raise Malformed("TXT record without strings")
            strings = []
            pos = start
            while pos < end:
                length = wire[pos]
                pos += 1
                if pos + length > end:
                    raise Malformed("TXT string runs past the record")
                strings.append(wire[pos:pos + length])
                pos += length
            return b"".join(strings).decode("utf-8", errors="replace")
        case RRType.PTR | RRType.CNAME | RRType.NS:
            return name_text(rdata_name(wire, start, end))
        case RRType.MX:
            if end - start < 3:
                raise Malformed("MX record too short")
            return MX(_U16.unpack_from(wire, start)[0],
                      name_text(rdata_name(wire, start + 2, end)))
        case RRType.TLSA:
            if end - start < 3:
                raise Malformed("TLSA record too short")
            # RFC 6698 §2.1.3: a SHA-256 (1) or SHA-512 (2) digest has its length.
            if _DIGEST_SIZE.get(wire[start + 2], end - start - 3) != end - start - 3:
                raise Malformed("TLSA data length does not match its matching type")
            return TLSA(wire[start], wire[start + 1], wire[start + 2], wire[start + 3:end])
        case RRType.SRV:
            if end - start < 7:
                raise Malformed("SRV record too short")
            priority, weight, port = struct.unpack_from("!HHH", wire, start)
            return SRV(priority, weight, port, name_text(rdata_name(wire, start + 6, end)))
        case RRType.CAA:
            # RFC 8659 §4.1: flags, tag length, tag (letters and digits), value.
            if end - start < 2 or start + 2 + wire[start + 1] > end:
                raise Malformed("CAA record too short")
            tag = wire[start + 2:start + 2 + wire[start + 1]]
            if not tag.isalnum():
                raise Malformed("CAA tag not alphanumeric")
            return CAA(wire[start], tag.decode("ascii", "replace"),
                       wire[start + 2 + len(tag):end].decode("utf-8", "replace"))
    raise AssertionError(rdtype)


def rdata_name(wire: bytes, start: int, end: int) -> list[bytes]:
    """The labels of the name that is the whole of a record's data (CNAME, PTR, NS)."""
    labels, after = read_name(wire, start)
    if after != end:
        raise Malformed("record data longer or shorter than its name")
    return labels
