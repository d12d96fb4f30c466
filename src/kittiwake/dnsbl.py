"""DNS block lists (RFC 5782): is a connecting IP listed in a DNSBL zone?

An IPv4 address 192.0.2.99 is looked up as ``99.2.0.192.ZONE`` (RFC 5782
§2.1), an IPv6 address by its nibbles (§2.4). A listed address has an A
record in 127.0.0.0/8; the TXT record at the same name, if any, says why.
DNS failures mean "unknown", never "listed".
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
from dataclasses import dataclass

from kittiwake.dns import DNSTemporaryError, InvalidName, Resolver


class Status(enum.StrEnum):
    PASS = "pass"  # not listed
    FAIL = "fail"  # listed
    TEMPERROR = "temperror"


@dataclass(frozen=True)
class Result:
    zone: str
    status: Status
    reason: str = ""


def query_name(ip: str, zone: str) -> str:
    """The name to look up for ``ip`` in ``zone`` (RFC 5782 §2.1, §2.4)."""
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        labels = str(address).split(".")[::-1]
    else:
        labels = list(address.exploded.replace(":", ""))[::-1]
    return ".".join([*labels, zone.rstrip(".")])


async def check(resolver: Resolver, ip: str, zone: str) -> Result:
    name = query_name(ip, zone)
    try:
        answer = await resolver.a(name)
    except (DNSTemporaryError, InvalidName) as exc:
        return Result(zone, Status.TEMPERROR, str(exc))
    listed = [a for a in answer.records if a in ipaddress.ip_network("127.0.0.0/8")]
    if not listed:
        return Result(zone, Status.PASS)
    reason = ""
    try:
        txt = await resolver.txt(name)
        reason = " ".join(txt.records)
    except (DNSTemporaryError, InvalidName):
        pass
    return Result(zone, Status.FAIL, reason or f"listed ({listed[0]})")


async def check_all(resolver: Resolver, ip: str, zones: list[str]) -> list[Result]:
    return list(await asyncio.gather(*(check(resolver, ip, z) for z in zones)))
