"""Peek at a TLS ClientHello: the server name (SNI) and the offered ALPN protocols.

Python's ``ssl`` module (3.11) has no ClientHello callback: the SNI callback
sees the server name but not the ALPN list. ACME's tls-alpn-01 challenge
(RFC 8737 §3) must be answered with a special certificate only to a client
that offers the ``acme-tls/1`` protocol, so the HTTPS listener reads the
ClientHello bytes *before* handing the connection to ``ssl`` (with
``MSG_PEEK``, so nothing is consumed) and parses them here.

Sans-I/O: bytes in, :class:`ClientHello` out, or ``None`` while more bytes
are needed. Formats:
- TLS record layer, RFC 8446 §5.1: ``type(1) version(2) length(2) fragment``;
  handshake messages may be split over several records.
- Handshake header, RFC 8446 §4: ``msg_type(1) length(3)``; ClientHello is 1.
- ClientHello, RFC 8446 §4.1.2: ``legacy_version(2) random(32)
  session_id<0..32> cipher_suites<2..2^16-2> compression<1..2^8-1>
  extensions<8..2^16-1>``.
- server_name extension (0), RFC 6066 §3: ``ServerNameList<1..2^16-1>`` of
  ``name_type(1) HostName<1..2^16-1>``; host_name is type 0.
- ALPN extension (16), RFC 7301 §3.1: ``ProtocolNameList<2..2^16-1>`` of
  ``ProtocolName<1..2^8-1>``.
"""

from __future__ import annotations

from dataclasses import dataclass

RECORD_HANDSHAKE = 0x16
HANDSHAKE_CLIENT_HELLO = 0x01
EXT_SERVER_NAME = 0
EXT_ALPN = 16
SERVER_NAME_HOST = 0
# A ClientHello larger than this is refused rather than buffered (a record
# carries at most 2^14 bytes, RFC 8446 §5.1; post-quantum key shares stay far below).
MAX_CLIENT_HELLO = 1 << 16
ACME_TLS_ALPN = "acme-tls/1"  # RFC 8737 §6.2


class NotClientHello(ValueError):
    """The bytes are not a well-formed TLS ClientHello."""


@dataclass(frozen=True)
class ClientHello:
    """What the client offered that decides how we answer."""

    server_name: str | None
    alpn_protocols: tuple[str, ...]

    @property
    def wants_acme_challenge(self) -> bool:
        """RFC 8737 §3: the client offers only (or at least) ``acme-tls/1``."""
        return ACME_TLS_ALPN in self.alpn_protocols


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise NotClientHello("truncated ClientHello")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> _Reader:
        return _Reader(self.take(self.number(length_bytes)))

    def done(self) -> bool:
        return self.pos == len(self.data)


def _handshake_bytes(data: bytes) -> bytes | None:
    """Concatenate the handshake records' fragments; None when the message is incomplete."""
    out = bytearray()
    pos = 0
    while True:
        if len(out) >= 4:
            needed = 4 + int.from_bytes(out[1:4], "big")
            if needed > MAX_CLIENT_HELLO:
                raise NotClientHello("ClientHello too large")
            if len(out) >= needed:
                return bytes(out[:needed])
        if len(data) - pos < 5:
            return None
        if data[pos] != RECORD_HANDSHAKE:
            raise NotClientHello("not a TLS handshake record")
        if data[pos + 1] != 3:
            raise NotClientHello("not a TLS record version")
        length = int.from_bytes(data[pos + 3:pos + 5], "big")
        if length == 0 or length > (1 << 14) + 256:
            raise NotClientHello("bad TLS record length")
        if len(data) - pos - 5 < length:
            return None
        out += data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if len(out) >= 1 and out[0] != HANDSHAKE_CLIENT_HELLO:
            raise NotClientHello("first handshake message is not a ClientHello")


def parse_client_hello(data: bytes) -> ClientHello | None:
    """Parse the start of a TLS connection; None while the ClientHello is incomplete.

    Raises :class:`NotClientHello` when the bytes cannot be the start of a TLS
    connection (plain HTTP on the HTTPS port, garbage, an oversized hello).
    """
    message = _handshake_bytes(data)
    if message is None:
        return None
    body = _Reader(message[4:])
    body.take(2 + 32)          # legacy_version, random
    body.vector(1)             # legacy_session_id
    body.vector(2)             # cipher_suites
    body.vector(1)             # legacy_compression_methods
    server_name: str | None = None
    alpn: tuple[str, ...] = ()
    if body.done():            # RFC 5246 §7.4.1.2: extensions may be absent (TLS 1.2)
        return ClientHello(None, ())
    extensions = body.vector(2)
    seen: set[int] = set()
    while not extensions.done():
        kind = extensions.number(2)
        data_ext = extensions.vector(2)
        if kind in seen:       # RFC 8446 §4.2: at most one extension of each type
            raise NotClientHello(f"duplicate extension {kind}")
        seen.add(kind)
        if kind == EXT_SERVER_NAME:
            server_name = _server_name(data_ext)
        elif kind == EXT_ALPN:
            alpn = _alpn(data_ext)
    return ClientHello(server_name, alpn)


def _server_name(ext: _Reader) -> str | None:
    names = ext.vector(2)
    while not names.done():
        kind = names.number(1)
        name = names.vector(2).data
        if kind == SERVER_NAME_HOST:
            try:
                text = name.decode("ascii")
            except UnicodeDecodeError:
                raise NotClientHello("server name is not ASCII") from None
            return text.rstrip(".").lower() or None
    return None


def _alpn(ext: _Reader) -> tuple[str, ...]:
    protocols = ext.vector(2)
    out = []
    while not protocols.done():
        name = protocols.vector(1).data
        if not name:
            raise NotClientHello("empty ALPN protocol name")
        out.append(name.decode("latin-1"))
    return tuple(out)
