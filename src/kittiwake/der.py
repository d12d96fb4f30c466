"""Just enough DER (ITU-T X.690 §8, §10) to read the fields of X.509 certificates we need.

A reader, not a decoder: :func:`element` finds one TLV (tag, where its value
starts and ends) and :func:`children` the TLVs inside a constructed one, with
every length checked against its container. Callers pick the fields RFC 5280
places where they expect them. Used for DANE's exact SubjectPublicKeyInfo bytes
(:mod:`kittiwake.dane.der`) and for what the server must know about its own
certificates (:mod:`kittiwake.certinfo`) without loading a crypto library.
"""

from __future__ import annotations

SEQUENCE = 0x30
SET = 0x31
BIT_STRING = 0x03
BOOLEAN = 0x01
INTEGER = 0x02
OCTET_STRING = 0x04
OBJECT_IDENTIFIER = 0x06
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
EXPLICIT_0 = 0xA0
EXPLICIT_3 = 0xA3


class DERError(ValueError):
    """The bytes are not the DER structure expected."""


def element(data: bytes, pos: int) -> tuple[int, int, int]:
    """The TLV at ``pos`` (X.690 §8.1): (tag, start of value, end of value)."""
    if pos + 2 > len(data):
        raise DERError("truncated DER element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DERError("multi-byte DER tags are not expected here")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F  # §8.1.3.5: the long form; DER (§10.1) has no indefinite form
        if count == 0 or count > 4 or pos + count > len(data):
            raise DERError("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise DERError("DER element runs past the end of the data")
    return tag, pos, end


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """The (tag, element start, element end) of each element in data[start:end]."""
    out = []
    pos = start
    while pos < end:
        tag, _vstart, vend = element(data, pos)
        if vend > end:
            raise DERError("DER element runs past its container")
        out.append((tag, pos, vend))
        pos = vend
    return out


def inner(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    """The value span of the element at ``pos``, which must have ``tag``."""
    found, start, end = element(data, pos)
    if found != tag:
        raise DERError(f"DER tag {found:#04x} where {tag:#04x} was expected")
    return start, end


def oid(value: bytes) -> str:
    """An OBJECT IDENTIFIER's value as dotted text (X.690 §8.19)."""
    if not value or value[-1] & 0x80:
        raise DERError("bad OBJECT IDENTIFIER")
    arcs: list[int] = []
    current = 0
    for byte in value:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(current)
            current = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def time_value(tag: int, value: bytes) -> tuple[int, int, int, int, int, int]:
    """(year, month, day, hour, minute, second) of an X.509 Time (RFC 5280 §4.1.2.5).

    UTCTime is YYMMDDHHMMSSZ, its year 19YY when YY >= 50 and 20YY otherwise
    (§4.1.2.5.1); GeneralizedTime is YYYYMMDDHHMMSSZ (§4.1.2.5.2). Both in UTC."""
    text = value.decode("ascii", "replace")
    size = {UTC_TIME: 13, GENERALIZED_TIME: 15}.get(tag)
    if size is None or len(text) != size or not text.endswith("Z") or not text[:-1].isdigit():
        raise DERError(f"bad certificate time {text!r}")
    if tag == UTC_TIME:
        year = int(text[:2])
        year += 1900 if year >= 50 else 2000
        rest = text[2:-1]
    else:
        year = int(text[:4])
        rest = text[4:-1]
    month, day, hour, minute, second = (int(rest[i:i + 2]) for i in range(0, 10, 2))
    return year, month, day, hour, minute, second
