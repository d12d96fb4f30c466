"""iprev: forward-confirmed reverse DNS of a connecting client (RFC 8601 §3).

The client's address I is looked up as PTR, giving names N; each name is
looked up as A (IPv4) or AAAA (IPv6); the check passes when I is among the
addresses. Only the record type of I's family is asked for: addresses of
the other family can never equal I, so the union L of RFC 8601 §3 contains
I exactly when that one lookup does. At most :data:`MAX_NAMES` names are
followed (RFC 8601 §3: the number MUST be limited; RFC 7208 §4.6.4's 10).

Results are named as in RFC 8601 §2.7.3; there is no ``none``.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
from dataclasses import dataclass
from typing import Any

from kittiwake.dns.resolver import Resolver
from kittiwake.dns.types import Answer, DNSTemporaryError, InvalidName, IPAddress

__all__ = ["MAX_NAMES", "Result", "Status", "check"]

MAX_NAMES = 10


class Status(enum.StrEnum):
    """The ``iprev`` results (RFC 8601 §2.7.3)."""

    PASS = "pass"  # reverse and forward lookups agree
    FAIL = "fail"  # they disagree, or the forward lookups found nothing
    TEMPERROR = "temperror"  # a temporary DNS error (SERVFAIL, timeout)
    PERMERROR = "permerror"  # no PTR data for the address (NXDOMAIN or no records)


@dataclass(frozen=True)
class Result:
    """The iprev verdict for one address, with the names that were checked."""

    status: Status
    ip: str
    names: tuple[str, ...] = ()  # PTR names, as many as were followed
    host: str | None = None  # the name that confirmed the address
    authentic: bool = False  # every DNS answer the verdict rests on was DNSSEC-authentic
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "ip": self.ip,
            "names": list(self.names),
            "host": self.host,
            "authentic": self.authentic,
            "reason": self.reason,
        }


async def _forward(resolver: Resolver, name: str, ip: IPAddress) -> Answer[Any] | Exception:
    try:
        if ip.version == 4:
            return await resolver.a(name)
        return await resolver.aaaa(name)
    except (DNSTemporaryError, InvalidName) as exc:
        return exc


async def check(resolver: Resolver, ip: str | IPAddress, *, max_names: int = MAX_NAMES) -> Result:
    """Check that ``ip`` has a PTR name whose A/AAAA records lead back to it.

    Never raises for DNS failures or odd names: those are statuses. An
    IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) is checked as IPv4.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return Result(Status.PERMERROR, str(ip), reason=f"{ip!r} is not an IP address")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    text = str(address)

    try:
        ptr = await resolver.ptr(address)
    except DNSTemporaryError as exc:
        return Result(Status.TEMPERROR, text, reason=f"PTR lookup failed: {exc.reason}")
    names: list[str] = []
    for record in ptr.records:
        name = str(record).rstrip(".").lower()
        if name and name not in names:
            names.append(name)
    if not names:
        # RFC 8601 §2.7.3 permerror: no PTR data (NXDOMAIN, or NOERROR without answers).
        what = "NXDOMAIN" if ptr.nxdomain else "no PTR records"
        return Result(Status.PERMERROR, text, authentic=ptr.authentic,
                      reason=f"PTR lookup of {text}: {what}")
    followed = tuple(names[:max_names])

    if len(followed) == 1:  # the usual case: no task to run one lookup concurrently with
        answers = [await _forward(resolver, followed[0], address)]
    else:
        answers = await asyncio.gather(*(_forward(resolver, n, address) for n in followed))
    temporary: list[str] = []
    authentic = ptr.authentic
    for name, answer in zip(followed, answers, strict=True):
        if isinstance(answer, DNSTemporaryError):
            temporary.append(name)
            continue
        if isinstance(answer, Exception):
            continue  # InvalidName: a PTR target that is no host name confirms nothing
        if address in answer.records:
            return Result(Status.PASS, text, followed, name, ptr.authentic and answer.authentic,
                          reason=f"{name} has address {text}")
        authentic = authentic and answer.authentic
    if temporary:
        return Result(Status.TEMPERROR, text, followed,
                      reason="forward lookup failed for " + ", ".join(temporary))
    return Result(Status.FAIL, text, followed, authentic=authentic,
                  reason=f"no PTR name of {text} has it as address: " + ", ".join(followed))
