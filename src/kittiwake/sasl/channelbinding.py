"""Channel binding data from a TLS connection (RFC 5929, RFC 9266) for SCRAM -PLUS.

- ``tls-exporter`` (RFC 9266): TLS exporter, label "EXPORTER-Channel-Binding",
  empty context, 32 bytes; the binding for TLS 1.3. Python's ``ssl`` module
  has no ``export_keying_material`` (CPython issue gh-82133, still open; not in
  3.11 which we run), so it is only produced when the TLS object offers that
  method.
- ``tls-unique`` (RFC 5929 §3): the first Finished message; only for TLS 1.2
  and earlier (RFC 8446 Appendix C.5 leaves it undefined for TLS 1.3, and
  Python returns an unsafe value there, gh-95341, so we never use it on 1.3).
- ``tls-server-end-point`` (RFC 5929 §4): a hash of the server certificate;
  the only binding Python can give on TLS 1.3 connections today.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Protocol

from kittiwake import certinfo
from kittiwake.sasl.base import ChannelBinding

__all__ = ["connection_channel_bindings", "tls_server_end_point"]

TLS_EXPORTER_LABEL = b"EXPORTER-Channel-Binding"


class _TLSObject(Protocol):
    def version(self) -> str | None: ...
    def get_channel_binding(self, cb_type: str = ...) -> bytes | None: ...
    def getpeercert(self, binary_form: bool = ...) -> object: ...


def tls_server_end_point(certificate_der: bytes) -> bytes:
    """RFC 5929 §4.1: hash of the DER certificate with its signature's hash.

    MD5 and SHA-1 are replaced by SHA-256; certificates whose signature has no
    single hash (Ed25519, Ed448) also use SHA-256, as RFC 5929 errata 5436 says.
    The usual signature algorithms are read with :mod:`kittiwake.certinfo`; others
    (RSASSA-PSS names its hash in parameters) with the crypto library.
    """
    try:
        algorithm = certinfo.read_der(certificate_der).signature_algorithm
    except ValueError:
        algorithm = ""
    name = SIGNATURE_HASHES.get(algorithm)
    if name is None:
        return _end_point_by_library(certificate_der)
    return hashlib.new(name, certificate_der).digest()


# signatureAlgorithm OID -> the hash RFC 5929 §4.1 uses (RFC 4055 §5, RFC 5758 §3.2,
# RFC 8410 §3 with errata 5436; MD5 and SHA-1 become SHA-256).
SIGNATURE_HASHES = {
    "1.2.840.113549.1.1.4": "sha256", "1.2.840.113549.1.1.5": "sha256",  # md5/sha1 + RSA
    "1.2.840.113549.1.1.14": "sha224", "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384", "1.2.840.113549.1.1.13": "sha512",
    "1.2.840.10045.4.1": "sha256",  # ecdsa-with-SHA1
    "1.2.840.10045.4.3.1": "sha224", "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384", "1.2.840.10045.4.3.4": "sha512",
    "1.3.101.112": "sha256", "1.3.101.113": "sha256",  # Ed25519, Ed448
}


def _end_point_by_library(certificate_der: bytes) -> bytes:
    from cryptography import x509  # only for signature algorithms not in the table
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_der_x509_certificate(certificate_der)
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate_der)
    return digest.finalize()


def connection_channel_bindings(
    tls: _TLSObject, *, server_certificate_der: bytes | None = None
) -> tuple[ChannelBinding, ...]:
    """The bindings available on a TLS connection, best first.

    ``tls`` is an ``ssl.SSLObject``/``SSLSocket`` after the handshake. A server
    passes its own certificate (Python cannot read it back from the
    connection); a client's comes from the peer certificate.
    """
    out: list[ChannelBinding] = []
    version = tls.version()
    exporter = getattr(tls, "export_keying_material", None)
    if version == "TLSv1.3" and exporter is not None:
        out.append(ChannelBinding("tls-exporter", exporter(TLS_EXPORTER_LABEL, 32, b"")))
    if version in ("TLSv1.2", "TLSv1.1", "TLSv1"):
        unique = tls.get_channel_binding("tls-unique")
        if unique:
            out.append(ChannelBinding("tls-unique", unique))
    cert = server_certificate_der
    if cert is None:
        try:
            peer = tls.getpeercert(binary_form=True)
        except (ValueError, ssl.SSLError):
            peer = None
        cert = peer if isinstance(peer, bytes) else None
    if cert:
        out.append(ChannelBinding("tls-server-end-point", tls_server_end_point(cert)))
    return tuple(out)
