"""What the server needs to know about its own certificates: names, key type, expiry.

The server picks a certificate by the TLS client's SNI name and key type and
reports when each expires; for that it reads the leaf's subject alternative
names (else its common name), its public key algorithm and its notAfter time
(RFC 5280 §4.1). Those fields are read here with :mod:`kittiwake.der` instead of
a crypto library, so that a server that only receives mail does not load one
(the ``cryptography`` package adds about 6 MiB to a process). The TLS library
itself checks the certificate and its key when it loads them; this module is
not a validator and reads only files the administrator configured.
"""

from __future__ import annotations

import binascii
import calendar
import ipaddress
from dataclasses import dataclass

from kittiwake.der import (
    BOOLEAN,
    EXPLICIT_0,
    EXPLICIT_3,
    INTEGER,
    OBJECT_IDENTIFIER,
    OCTET_STRING,
    SEQUENCE,
    SET,
    DERError,
    children,
    element,
    inner,
    oid,
    time_value,
)

BEGIN = b"-----BEGIN CERTIFICATE-----"
END = b"-----END CERTIFICATE-----"

COMMON_NAME = "2.5.4.3"  # RFC 5280 §4.1.2.4 (id-at-commonName, X.520)
SUBJECT_ALT_NAME = "2.5.29.17"  # RFC 5280 §4.2.1.6
DNS_NAME = 0x82  # GeneralName dNSName [2] IA5String, implicitly tagged
IP_ADDRESS = 0x87  # GeneralName iPAddress [7] OCTET STRING, implicitly tagged
KEY_TYPES = {"1.2.840.113549.1.1.1": "rsa",  # rsaEncryption, RFC 3279 §2.3.1
             "1.2.840.10045.2.1": "ecdsa",  # id-ecPublicKey, RFC 5480 §2.1.1
             "1.3.101.112": "ed25519", "1.3.101.113": "ed448"}  # RFC 8410 §3
# DirectoryString choices (RFC 5280 §4.1.2.4) and how their bytes read as text.
STRING_CODECS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1",
                 0x1E: "utf-16-be", 0x1C: "utf-32-be"}


class CertificateError(ValueError):
    """The file or bytes hold no certificate this module can read."""


@dataclass(frozen=True)
class CertificateInfo:
    """The fields of one X.509 certificate that the server uses."""

    der: bytes
    dns_names: tuple[str, ...]  # subjectAltName dNSName entries, lower case
    ip_addresses: tuple[str, ...]  # subjectAltName iPAddress entries, as text
    has_alt_names: bool  # the certificate has a subjectAltName extension
    common_name: str | None  # the subject's first CN
    key_type: str  # "rsa", "ecdsa", "ed25519", "ed448", or the algorithm's OID
    not_after: float  # Unix time
    signature_algorithm: str  # the issuer's signatureAlgorithm OID (§4.1.1.2)

    def host_names(self, with_ips: bool = False) -> list[str]:
        """The names the certificate is for (RFC 6125 §6.4.4): its subjectAltName
        entries when it has the extension, else its common name."""
        if self.has_alt_names:
            return list(self.dns_names) + (list(self.ip_addresses) if with_ips else [])
        return [self.common_name.lower()] if self.common_name else []


def first_pem_certificate(pem: bytes) -> bytes:
    """The DER of the first ``CERTIFICATE`` block of a PEM file (RFC 7468 §5): the
    leaf of a chain file."""
    begin = pem.find(BEGIN)
    end = pem.find(END, begin + len(BEGIN)) if begin >= 0 else -1
    if end < 0:
        raise CertificateError("no PEM CERTIFICATE block")
    body = b"".join(pem[begin + len(BEGIN):end].split())
    try:
        der = binascii.a2b_base64(body, strict_mode=True)
    except binascii.Error as exc:
        raise CertificateError(f"bad base64 in the PEM CERTIFICATE block ({exc})") from None
    return der


def read_pem(pem: bytes) -> CertificateInfo:
    """The first certificate of a PEM file, read."""
    return read_der(first_pem_certificate(pem))


def read_der(der: bytes) -> CertificateInfo:
    """Read a DER certificate (RFC 5280 §4.1)."""
    try:
        return _read(der)
    except DERError as exc:
        raise CertificateError(f"not an X.509 certificate ({exc})") from None


def _read(der: bytes) -> CertificateInfo:
    tag, start, end = element(der, 0)
    if tag != SEQUENCE or end != len(der):
        raise DERError("not a single DER SEQUENCE")
    top = children(der, start, end)
    if [t for t, _s, _e in top] != [SEQUENCE, SEQUENCE, 0x03]:
        raise DERError("not tbsCertificate, signatureAlgorithm, signatureValue")
    signature_algorithm = _algorithm(der, top[1][1])
    tbs_start, tbs_end = inner(der, top[0][1], SEQUENCE)
    fields = children(der, tbs_start, tbs_end)
    if fields and fields[0][0] == EXPLICIT_0:  # version [0] EXPLICIT, absent for v1
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    if len(fields) < 6 or fields[0][0] != INTEGER or \
            any(f[0] != SEQUENCE for f in fields[1:6]):
        raise DERError("tbsCertificate fields are not where RFC 5280 §4.1 puts them")
    not_after = _not_after(der, fields[3][1])
    common_name = _common_name(der, fields[4][1])
    key_type = _key_type(der, fields[5][1])
    alt = None
    for tag, pos, _end in fields[6:]:
        if tag == EXPLICIT_3:  # extensions [3] EXPLICIT (§4.1.2.9)
            alt = _alt_names(der, pos)
    dns_names, ips = alt if alt is not None else ((), ())
    return CertificateInfo(der, dns_names, ips, alt is not None, common_name, key_type,
                           not_after, signature_algorithm)


def _algorithm(der: bytes, pos: int) -> str:
    """The OID of an AlgorithmIdentifier ::= SEQUENCE { algorithm, parameters }."""
    start, end = inner(der, pos, SEQUENCE)
    parts = children(der, start, end)
    if not parts or parts[0][0] != OBJECT_IDENTIFIER:
        raise DERError("bad AlgorithmIdentifier")
    ostart, oend = inner(der, parts[0][1], OBJECT_IDENTIFIER)
    return oid(der[ostart:oend])


def _not_after(der: bytes, pos: int) -> float:
    """Validity ::= SEQUENCE { notBefore Time, notAfter Time } (§4.1.2.5)."""
    start, end = inner(der, pos, SEQUENCE)
    times = children(der, start, end)
    if len(times) != 2:
        raise DERError("validity is not two times")
    tag, vstart, vend = element(der, times[1][1])
    fields = time_value(tag, der[vstart:vend])
    return float(calendar.timegm((*fields, 0, 0, 0)))


def _common_name(der: bytes, pos: int) -> str | None:
    """The first commonName of a Name (§4.1.2.4: SEQUENCE OF SET OF AttributeTypeAndValue)."""
    start, end = inner(der, pos, SEQUENCE)
    for _tag, rdn, _rend in children(der, start, end):
        rstart, rend = inner(der, rdn, SET)
        for _t, atv, _aend in children(der, rstart, rend):
            astart, aend = inner(der, atv, SEQUENCE)
            parts = children(der, astart, aend)
            if len(parts) != 2 or parts[0][0] != OBJECT_IDENTIFIER:
                raise DERError("bad AttributeTypeAndValue")
            ostart, oend = inner(der, parts[0][1], OBJECT_IDENTIFIER)
            if oid(der[ostart:oend]) != COMMON_NAME:
                continue
            tag, vstart, vend = element(der, parts[1][1])
            codec = STRING_CODECS.get(tag)
            if codec is None:
                raise DERError(f"commonName of string type {tag:#04x}")
            try:
                return der[vstart:vend].decode(codec)
            except UnicodeDecodeError:
                raise DERError("commonName does not decode") from None
    return None


def _key_type(der: bytes, pos: int) -> str:
    """SubjectPublicKeyInfo's algorithm (§4.1.2.7)."""
    start, end = inner(der, pos, SEQUENCE)
    parts = children(der, start, end)
    if not parts or parts[0][0] != SEQUENCE:
        raise DERError("bad SubjectPublicKeyInfo")
    name = _algorithm(der, parts[0][1])
    return KEY_TYPES.get(name, name)


def _alt_names(der: bytes, pos: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The dNSName and iPAddress entries of the subjectAltName extension (§4.2.1.6),
    or None when there is none. Extension ::= SEQUENCE { extnID, critical BOOLEAN
    DEFAULT FALSE, extnValue OCTET STRING }."""
    start, end = inner(der, pos, EXPLICIT_3)
    lstart, lend = inner(der, start, SEQUENCE)
    if lend != end:
        raise DERError("trailing bytes after Extensions")
    for _tag, ext, _eend in children(der, lstart, lend):
        estart, eend = inner(der, ext, SEQUENCE)
        parts = children(der, estart, eend)
        if parts and parts[0][0] == OBJECT_IDENTIFIER and len(parts) > 1 \
                and parts[1][0] == BOOLEAN:
            parts = [parts[0], *parts[2:]]
        if len(parts) != 2 or parts[0][0] != OBJECT_IDENTIFIER or parts[1][0] != OCTET_STRING:
            raise DERError("bad Extension")
        ostart, oend = inner(der, parts[0][1], OBJECT_IDENTIFIER)
        if oid(der[ostart:oend]) != SUBJECT_ALT_NAME:
            continue
        vstart, vend = inner(der, parts[1][1], OCTET_STRING)
        gstart, gend = inner(der, vstart, SEQUENCE)
        if gend != vend:
            raise DERError("trailing bytes after GeneralNames")
        dns: list[str] = []
        ips: list[str] = []
        for tag, name, _nend in children(der, gstart, gend):
            nstart, nend = inner(der, name, tag)
            if tag == DNS_NAME:
                try:
                    dns.append(der[nstart:nend].decode("ascii").lower())
                except UnicodeDecodeError:
                    raise DERError("dNSName is not IA5String") from None
            elif tag == IP_ADDRESS:
                if nend - nstart not in (4, 16):
                    raise DERError("iPAddress is neither 4 nor 16 bytes")
                ips.append(str(ipaddress.ip_address(der[nstart:nend])))
        return tuple(dns), tuple(ips)
    return None
