"""What a TLS connection to an SMTP server established: version, cipher, the peer's chain.

DANE (RFC 7672 §3) and MTA-STS (RFC 8461 §4.2) verify the server's whole
certificate chain themselves, so the client hands out the chain as the
server sent it, in DER, leaf first. Python 3.13 has the public
``SSLObject.get_unverified_chain()``; Python 3.10 to 3.12 have the same
method only on the private ``_ssl._SSLSocket`` (``ssl_object._sslobj``),
returning ``_ssl.Certificate`` objects with ``public_bytes(ENCODING_DER)``.
Both are tried; the last resort is the leaf alone from ``getpeercert(True)``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from kittiwake.sasl import ChannelBinding, connection_channel_bindings

__all__ = ["TLSInfo", "peer_chain", "tls_info"]

_ENCODING_DER = 2  # _ssl.ENCODING_DER


@dataclass(frozen=True)
class TLSInfo:
    """The TLS session of a connection, after the handshake.

    ``chain_der``: certificates the server sent, leaf first (unverified).
    ``verified_chain_der``: the chain the ssl module built to a trusted root
    when it verified (empty with ``CERT_NONE``). ``channel_bindings``: for
    SCRAM -PLUS, best first.
    """

    version: str
    cipher: str
    server_name: str | None
    chain_der: tuple[bytes, ...]
    verified_chain_der: tuple[bytes, ...]
    channel_bindings: tuple[ChannelBinding, ...]
    pkix_verified: bool  # the ssl context verified the chain (CERT_REQUIRED)

    @property
    def leaf_der(self) -> bytes | None:
        return self.chain_der[0] if self.chain_der else None


def _to_der(items: Any) -> tuple[bytes, ...]:
    out: list[bytes] = []
    for item in items or ():
        if isinstance(item, bytes | bytearray):
            out.append(bytes(item))
        else:
            out.append(item.public_bytes(_ENCODING_DER))
    return tuple(out)


def _chain(ssl_object: Any, name: str) -> tuple[bytes, ...] | None:
    for obj in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        method = getattr(obj, name, None)
        if method is None:
            continue
        try:
            return _to_der(method())
        except (ValueError, ssl.SSLError, AttributeError, TypeError):
            return None
    return None


def peer_chain(ssl_object: Any) -> tuple[bytes, ...]:
    """The peer's certificates as sent, DER, leaf first (empty when none)."""
    chain = _chain(ssl_object, "get_unverified_chain")
    if chain:
        return chain
    try:
        leaf = ssl_object.getpeercert(binary_form=True)
    except (ValueError, ssl.SSLError):
        leaf = None
    return (leaf,) if isinstance(leaf, bytes) else ()


def tls_info(ssl_object: Any, server_name: str | None, verified: bool) -> TLSInfo:
    """Collect :class:`TLSInfo` from an ``ssl.SSLObject`` after the handshake."""
    cipher = ssl_object.cipher()
    chain = peer_chain(ssl_object)
    vchain = (_chain(ssl_object, "get_verified_chain") or ()) if verified else ()
    try:
        bindings = connection_channel_bindings(ssl_object)
    except Exception:  # an unparsable peer certificate: no bindings, never a crash
        bindings = ()
    return TLSInfo(
        version=ssl_object.version() or "",
        cipher=cipher[0] if cipher else "",
        server_name=server_name,
        chain_der=chain,
        verified_chain_der=vchain,
        channel_bindings=bindings,
        pkix_verified=verified,
    )
