"""Entry points: which identity to check (RFC 7208 §2.3, §2.4) and record lookups.

:func:`verify` is what an SMTP server calls after MAIL FROM: it checks the
MAIL FROM identity, or the HELO identity when the reverse-path is null, and
returns a :class:`~kittiwake.spf.result.Result`. :func:`lookup_record` fetches
and parses a domain's record for display (``kittiwake spf lookup``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kittiwake.dns import DNSTemporaryError, InvalidName, Resolver
from kittiwake.spf.check import (
    DEFAULT_TIMEOUT,
    IPAddress,
    check_host,
    domain_problem,
    split_sender,
)
from kittiwake.spf.record import Record, parse_record, select_record
from kittiwake.spf.result import Result
from kittiwake.spf.status import SPFError, Status


def mailfrom_domain(mailfrom: str) -> tuple[str, str]:
    """(sender, domain) for a MAIL FROM address (RFC 7208 §2.4, §4.3).

    Angle brackets are removed; a missing local-part becomes "postmaster".
    """
    address = mailfrom.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    local, domain = split_sender(address)
    return f"{local}@{domain}", domain


async def verify(
    resolver: Resolver,
    ip: str | IPAddress,
    mailfrom: str | None,
    helo: str | None,
    *,
    receiver: str = "unknown",
    clock: Callable[[], float] = time.time,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Result:
    """Check the SMTP client ``ip`` for the MAIL FROM identity, or HELO when it is null.

    RFC 7208 §2.4: "check_host() is called with the <sender> being the MAIL FROM
    identity"; when "the reverse-path is null, this document defines the "MAIL FROM"
    identity to be the mailbox composed of the local-part "postmaster" and the "HELO"
    identity" (§2.4), which is the HELO check of §2.3. Never raises for bad input.
    """
    helo_name = (helo or "").strip()
    address = (mailfrom or "").strip()
    if address in ("", "<>"):
        sender = f"postmaster@{helo_name}"
        return await check_host(resolver, ip, helo_name, sender, helo_name,
                                receiver=receiver, identity="helo", mailfrom="", clock=clock,
                                timeout=timeout)
    sender, domain = mailfrom_domain(address)
    return await check_host(resolver, ip, domain, sender, helo_name, receiver=receiver,
                            identity="mailfrom", mailfrom=address, clock=clock,
                            timeout=timeout)


@dataclass(frozen=True)
class LookupResult:
    """A domain's SPF record as found in DNS, parsed when possible.

    ``status`` is None when a record was found and parsed, else "none",
    "permerror" (several records, syntax error) or "temperror", with ``problem``.
    """

    domain: str
    text: str = ""
    record: Record | None = None
    authentic: bool = False
    status: Status | None = None
    problem: str = ""
    txt: tuple[str, ...] = ()  # every TXT record at the name

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "record": self.text,
            "terms": self.record.to_json()["terms"] if self.record else [],
            "authentic": self.authentic,
            "status": str(self.status) if self.status else "found",
            "problem": self.problem,
            "dns_terms": self.record.dns_terms if self.record else 0,
        }


async def lookup_record(resolver: Resolver, domain: str) -> LookupResult:
    """Fetch, select and parse the SPF record of ``domain`` (RFC 7208 §4.4-§4.6)."""
    name = domain.strip()
    if name.endswith("."):
        name = name[:-1]
    problem = domain_problem(name)
    if problem:
        return LookupResult(name, status=Status.NONE, problem=problem)
    try:
        answer = await resolver.txt(name)
    except DNSTemporaryError as exc:
        return LookupResult(name, status=Status.TEMPERROR, problem=f"DNS lookup failed: {exc}")
    except InvalidName as exc:
        return LookupResult(name, status=Status.NONE, problem=str(exc))
    texts = tuple(answer.records)
    try:
        text = select_record(texts)
    except SPFError as exc:
        return LookupResult(name, authentic=answer.authentic, status=exc.status,
                            problem=str(exc), txt=texts)
    if text is None:
        why = "domain does not exist" if answer.nxdomain else "no SPF record"
        return LookupResult(name, authentic=answer.authentic, status=Status.NONE,
                            problem=why, txt=texts)
    try:
        record = parse_record(text)
    except SPFError as exc:
        return LookupResult(name, text, authentic=answer.authentic, status=exc.status,
                            problem=str(exc), txt=texts)
    return LookupResult(name, text, record, answer.authentic, txt=texts)
