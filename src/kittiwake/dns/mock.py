"""An in-memory resolver for unit tests: records, DNSSEC flags, injected failures.

    r = MockResolver()
    r.add("TXT", "example.org", "v=spf1 -all")
    r.add("A", "mx.example.org", "192.0.2.1", authentic=True)
    r.cname("www.example.org", "example.org")
    r.fail("MX", "broken.example", "servfail")      # or "timeout"
    answer = await r.txt("example.org")

Names without records of a type answer NODATA when the name has any record
(or a CNAME), else NXDOMAIN. Every query is appended to ``r.queries`` so
tests can count lookups (RFC 7208 §4.6.4 limits).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import defaultdict
from typing import Any

from kittiwake.dns.names import to_ascii
from kittiwake.dns.resolver import Resolver
from kittiwake.dns.types import (
    CAA,
    MX,
    SRV,
    TLSA,
    Answer,
    DNSTemporaryError,
    ExtendedError,
    RRType,
    Status,
)


def _key(name: str) -> str:
    return to_ascii(name).lower()


class MockResolver(Resolver):
    """Serves records from memory. Values may be given as text or as record objects."""

    def __init__(self) -> None:
        self.records: dict[tuple[RRType, str], list[Any]] = defaultdict(list)
        self.cnames: dict[str, str] = {}
        self.authentic_names: set[str] = set()
        self.failures: dict[tuple[RRType | None, str], tuple[str, tuple[ExtendedError, ...]]] = {}
        self.queries: list[tuple[RRType, str]] = []
        self.all_authentic = False

    def add(self, rdtype: RRType | str, name: str, *values: Any, authentic: bool = False) -> None:
        """Add records; text values are parsed in presentation form."""
        kind = rdtype if isinstance(rdtype, RRType) else RRType.parse(rdtype)
        if kind is RRType.CNAME:
            if len(values) != 1:
                raise ValueError("a name has exactly one CNAME (RFC 2181 §10.1)")
            self.cname(name, values[0], authentic=authentic)
            return
        key = _key(name)
        self.records[(kind, key)].extend(_parse(kind, v) for v in values)
        if authentic:
            self.authentic_names.add(key)

    def cname(  # type: ignore[override]
        self, name: str, target: str | None = None, authentic: bool = False
    ) -> Any:
        """Add the alias ``name`` -> ``target`` (same as ``add("CNAME", name, target)``).

        Without ``target`` this is the CNAME lookup of :class:`Resolver`
        (``await r.cname(name)``), so code under test may call it as usual.
        """
        if target is None:
            return super().cname(name)
        self.cnames[_key(name)] = _key(target.rstrip("."))
        if authentic:
            self.authentic_names.add(_key(name))
        return None

    def fail(self, rdtype: RRType | str | None, name: str, kind: str = "servfail",
             extended: tuple[ExtendedError, ...] = ()) -> None:
        """Make lookups of ``name`` (of one type, or all when None) fail temporarily.

        ``kind`` is "servfail" or "timeout"; a timeout also takes a little
        real time so that callers' deadlines can be exercised.
        """
        parsed = None if rdtype is None else (
            rdtype if isinstance(rdtype, RRType) else RRType.parse(rdtype))
        self.failures[(parsed, _key(name))] = (kind, extended)

    def set_authentic(self, name: str, authentic: bool = True) -> None:
        key = _key(name)
        if authentic:
            self.authentic_names.add(key)
        else:
            self.authentic_names.discard(key)

    def _name_exists(self, key: str) -> bool:
        """A name exists when it owns records or has names below it (RFC 8020 §2)."""
        below = "." + key
        return any(k == key or k.endswith(below)
                   for k in (*self.cnames, *(k for (_t, k) in self.records)))

    async def _query(self, rdtype: RRType, name: str) -> Answer[Any]:
        self.queries.append((rdtype, name))
        key = name.lower()
        chain: list[str] = []
        authentic = self.all_authentic or key in self.authentic_names
        for _ in range(9):
            failure = self.failures.get((rdtype, key)) or self.failures.get((None, key))
            if failure:
                kind, extended = failure
                if kind == "timeout":
                    await asyncio.sleep(0.01)
                    raise DNSTemporaryError(name, rdtype, "timeout", extended)
                raise DNSTemporaryError(name, rdtype, "SERVFAIL", extended)
            values = self.records.get((rdtype, key))
            if values:
                return Answer(name, rdtype, tuple(values), authentic, Status.FOUND, tuple(chain))
            if rdtype is not RRType.CNAME and key in self.cnames:
                key = self.cnames[key]
                chain.append(key)
                authentic = authentic and (self.all_authentic or key in self.authentic_names)
                continue
            if rdtype is RRType.CNAME and key in self.cnames:
                return Answer(name, rdtype, (self.cnames[key],), authentic, Status.FOUND)
            status = Status.NODATA if self._name_exists(key) else Status.NXDOMAIN
            return Answer(name, rdtype, (), authentic, status, tuple(chain))
        raise DNSTemporaryError(name, rdtype, "CNAME loop")


def _parse(rdtype: RRType, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    match rdtype:
        case RRType.A | RRType.AAAA:
            return ipaddress.ip_address(value)
        case RRType.MX:
            pref, exchange = value.split(None, 1)
            return MX(int(pref), exchange.strip().rstrip("."))
        case RRType.TLSA:
            usage, selector, mtype, data = value.split(None, 3)
            return TLSA(int(usage), int(selector), int(mtype), bytes.fromhex(data.replace(" ", "")))
        case RRType.SRV:
            prio, weight, port, target = value.split()
            return SRV(int(prio), int(weight), int(port), target.rstrip("."))
        case RRType.CAA:
            flags, tag, rest = value.split(None, 2)
            return CAA(int(flags), tag, rest.strip('"'))
        case RRType.PTR | RRType.CNAME | RRType.NS:
            return value.rstrip(".")
    return value
