"""A certificate's SubjectPublicKeyInfo bytes, exactly as they were sent.

DANE selector 1 (RFC 6698 §2.1.2) matches the exact DER bytes of the
SubjectPublicKeyInfo as the server sent them. Reading them straight from the
certificate (RFC 5280 §4.1) instead of re-encoding a parsed key keeps the
bytes exact and works for key types the crypto library does not know, and
for bare public keys (RFC 7250). The DER reading is :mod:`kittiwake.der`.
"""

from __future__ import annotations

from kittiwake.der import BIT_STRING, EXPLICIT_0, INTEGER, SEQUENCE, DERError, children, element

__all__ = ["DERError", "spki_of"]


def spki_of(der: bytes) -> bytes:
    """The SubjectPublicKeyInfo DER inside a certificate, or ``der`` itself if it is one."""
    tag, start, end = element(der, 0)
    if tag != SEQUENCE or end != len(der):
        raise DERError("not a single DER SEQUENCE")
    top = children(der, start, end)
    tags = [t for t, _s, _e in top]
    if tags == [SEQUENCE, BIT_STRING]:
        return der  # RFC 5280 §4.1.2.7: already a SubjectPublicKeyInfo
    if tags != [SEQUENCE, SEQUENCE, BIT_STRING]:
        raise DERError("not an X.509 certificate or SubjectPublicKeyInfo")
    # RFC 5280 §4.1: TBSCertificate ::= SEQUENCE { [0] version OPTIONAL,
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...}
    _t, tbs_start, _tbs_end = top[0]
    _tag, vstart, vend = element(der, tbs_start)
    fields = children(der, vstart, vend)
    if fields and fields[0][0] == EXPLICIT_0:
        fields = fields[1:]
    if len(fields) < 6 or fields[0][0] != INTEGER or fields[5][0] != SEQUENCE:
        raise DERError("certificate has no SubjectPublicKeyInfo where RFC 5280 puts it")
    _t, s, e = fields[5]
    return der[s:e]
