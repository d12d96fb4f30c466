"""The resolver interface and its typed lookups.

:class:`Resolver` turns raw answers into typed records. Concrete resolvers
(:class:`kittiwake.dns.stub.StubResolver` for the network,
:class:`kittiwake.dns.mock.MockResolver` for tests) implement one method,
:meth:`Resolver._query`, which returns the records as text in presentation
form or raises :class:`DNSTemporaryError`.
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Any

from kittiwake.dns.names import reverse_name, to_ascii
from kittiwake.dns.types import (
    CAA,
    MX,
    SRV,
    TLSA,
    Answer,
    IPAddress,
    RRType,
    Status,
)


class Resolver(ABC):
    """Asynchronous DNS lookups with DNSSEC status.

    Every method validates and IDNA-converts the name first
    (:func:`kittiwake.dns.names.to_ascii`), so callers may pass U-labels.
    """

    @abstractmethod
    async def _query(self, rdtype: RRType, name: str) -> Answer[Any]:
        """Look up ``name`` (already in A-label form) and return typed records."""

    async def lookup(self, rdtype: RRType | str, name: str) -> Answer[Any]:
        """Look up any supported type by name (``"txt"``, ``RRType.MX``, ...)."""
        kind = rdtype if isinstance(rdtype, RRType) else RRType.parse(rdtype)
        if kind is RRType.PTR and _is_ip(name):
            return await self.ptr(name)
        if kind is RRType.MX:
            return await self.mx(name)  # sorted by preference, as mx() promises
        return await self._query(kind, to_ascii(name))

    async def a(self, name: str) -> Answer[ipaddress.IPv4Address]:
        return await self._query(RRType.A, to_ascii(name))

    async def aaaa(self, name: str) -> Answer[ipaddress.IPv6Address]:
        return await self._query(RRType.AAAA, to_ascii(name))

    async def ips(self, name: str) -> Answer[IPAddress]:
        """A and AAAA records together (IPv6 first); NXDOMAIN if either says so.

        ``authentic`` only when both answers were authentic.
        """
        ascii_name = to_ascii(name)
        v6 = await self._query(RRType.AAAA, ascii_name)
        v4 = await self._query(RRType.A, ascii_name)
        records = tuple(v6.records) + tuple(v4.records)
        if records:
            status = Status.FOUND
        elif Status.NXDOMAIN in (v4.status, v6.status):
            status = Status.NXDOMAIN
        else:
            status = Status.NODATA
        return replace(
            v4,
            records=records,
            status=status,
            authentic=v4.authentic and v6.authentic,
            extended_errors=v6.extended_errors + v4.extended_errors,
            cname_chain=v6.cname_chain or v4.cname_chain,
        )

    async def mx(self, name: str) -> Answer[MX]:
        """MX records sorted by preference (RFC 5321 §5.1)."""
        answer = await self._query(RRType.MX, to_ascii(name))
        ordered = tuple(sorted(answer.records, key=lambda r: r.preference))
        return replace(answer, records=ordered)

    async def txt(self, name: str) -> Answer[str]:
        """TXT records, each record's strings joined (RFC 7208 §3.3)."""
        return await self._query(RRType.TXT, to_ascii(name))

    async def ptr(self, ip: str | IPAddress) -> Answer[str]:
        """Names for an address via in-addr.arpa / ip6.arpa."""
        return await self._query(RRType.PTR, reverse_name(ip))

    async def cname(self, name: str) -> Answer[str]:
        return await self._query(RRType.CNAME, to_ascii(name))

    async def tlsa(self, name: str) -> Answer[TLSA]:
        """TLSA records at e.g. ``_25._tcp.mx.example.org`` (RFC 6698 §3)."""
        return await self._query(RRType.TLSA, to_ascii(name))

    async def srv(self, name: str) -> Answer[SRV]:
        return await self._query(RRType.SRV, to_ascii(name))

    async def ns(self, name: str) -> Answer[str]:
        return await self._query(RRType.NS, to_ascii(name))

    async def caa(self, name: str) -> Answer[CAA]:
        return await self._query(RRType.CAA, to_ascii(name))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
