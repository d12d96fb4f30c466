"""Just enough DER to find a certificate's SubjectPublicKeyInfo bytes.

DANE selector 1 (RFC 6698 §2.1.2) matches the exact DER bytes of the
SubjectPublicKeyInfo as the server sent them. Reading them straight from the
certificate (RFC 5280 §4.1) instead of re-encoding a parsed key keeps the
bytes exact and works for key types the crypto library does not know, and
for bare public keys (RFC 7250).
"""

from __future__ import annotations

SEQUENCE = 0x30
BIT_STRING = 0x03
INTEGER = 0x02
EXPLICIT_0 = 0xA0


class DERError(ValueError):
    """The bytes are not the DER structure expected."""


def _read(data: bytes, pos: int) -> tuple[int, int, int]:
    """Read one TLV at ``pos``: (tag, start of value, end of value)."""
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
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DERError("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise DERError("DER element runs past the end of the data")
    return tag, pos, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """The (tag, element start, element end) of each element in data[start:end]."""
    out = []
    pos = start
    while pos < end:
        tag, _vstart, vend = _read(data, pos)
        if vend > end:
            raise DERError("DER element runs past its container")
        out.append((tag, pos, vend))
        pos = vend
    return out


def spki_of(der: bytes) -> bytes:
    """The SubjectPublicKeyInfo DER inside a certificate, or ``der`` itself if it is one."""
    tag, start, end = _read(der, 0)
    if tag != SEQUENCE or end != len(der):
        raise DERError("not a single DER SEQUENCE")
    top = _children(der, start, end)
    tags = [t for t, _s, _e in top]
    if tags == [SEQUENCE, BIT_STRING]:
        return der  # RFC 5280 §4.1.2.7: already a SubjectPublicKeyInfo
    if tags != [SEQUENCE, SEQUENCE, BIT_STRING]:
        raise DERError("not an X.509 certificate or SubjectPublicKeyInfo")
    # RFC 5280 §4.1: TBSCertificate ::= SEQUENCE { [0] version OPTIONAL,
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...}
    _t, tbs_start, _tbs_end = top[0]
    _tag, vstart, vend = _read(der, tbs_start)
    fields = _children(der, vstart, vend)
    if fields and fields[0][0] == EXPLICIT_0:
        fields = fields[1:]
    if len(fields) < 6 or fields[0][0] != INTEGER or fields[5][0] != SEQUENCE:
        raise DERError("certificate has no SubjectPublicKeyInfo where RFC 5280 puts it")
    _t, s, e = fields[5]
    return der[s:e]
