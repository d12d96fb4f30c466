"""DMARC policy discovery (RFC 7489 §6.6.3).

Look up TXT at ``_dmarc.<From domain>``; keep the records that start with
``v=DMARC1``; if none remain, do the same at ``_dmarc.<Organizational
Domain>`` (when different). Exactly one record must remain; zero or several
mean no DMARC (§6.6.3 step 5). A temporary DNS failure gives ``temperror``:
§6.6.3 leaves the handling to the receiver, and a later try may find the
policy. ``authentic`` is true only when every answer the outcome rests on
(including a non-existence at the From domain before falling back) was
DNSSEC-authentic.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from kittiwake.dmarc.record import (
    InvalidRecord,
    Policy,
    is_dmarc_record,
    parse_record,
)
from kittiwake.dns.names import to_ascii
from kittiwake.dns.resolver import Resolver
from kittiwake.dns.types import DNSTemporaryError, InvalidName
from kittiwake.publicsuffix import organizational_domain

__all__ = ["Discovery", "LookupStatus", "lookup"]


class LookupStatus(enum.StrEnum):
    FOUND = "found"  # one valid DMARC record
    NONE = "none"  # no record, or several (§6.6.3 step 5)
    TEMPERROR = "temperror"  # SERVFAIL, timeout
    PERMERROR = "permerror"  # a v=DMARC1 record without usable policy, or a bad domain


@dataclass(frozen=True)
class Discovery:
    """What policy discovery found for a From domain."""

    status: LookupStatus
    domain: str  # the From domain, lower-case A-labels ("" when unusable)
    org_domain: str | None = None
    policy_domain: str | None = None  # the domain whose _dmarc record was used
    record: str | None = None  # the TXT text
    policy: Policy | None = None
    authentic: bool = False
    reason: str = ""
    queried: tuple[str, ...] = ()  # the _dmarc names looked up, in order

    @property
    def subdomain(self) -> bool:
        """Whether the record came from the Organizational Domain for a subdomain,
        so that ``sp`` applies (§6.3 "sp")."""
        return self.policy_domain is not None and self.policy_domain != self.domain

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "domain": self.domain,
            "org_domain": self.org_domain,
            "policy_domain": self.policy_domain,
            "record": self.record,
            "policy": self.policy.to_json() if self.policy else None,
            "authentic": self.authentic,
            "reason": self.reason,
            "queried": list(self.queried),
        }


async def lookup(resolver: Resolver, domain: str) -> Discovery:
    """Find the DMARC policy for the From domain ``domain`` (§6.6.3). Never raises
    for bad names or DNS failures: those are statuses."""
    try:
        name = to_ascii(domain).lower()
        org = organizational_domain(name)
    except InvalidName as exc:
        return Discovery(LookupStatus.PERMERROR, "", reason=f"invalid From domain: {exc}")

    authentic = True
    queried: list[str] = []
    # §6.6.3 steps 1 and 3: the From domain, then the Organizational Domain if different.
    for candidate in [name] if org == name else [name, org]:
        qname = "_dmarc." + candidate
        try:
            answer = await resolver.txt(qname)
        except InvalidName:
            # "_dmarc." made the name too long: no record can exist there.
            continue
        except DNSTemporaryError as exc:
            queried.append(qname)
            return Discovery(LookupStatus.TEMPERROR, name, org, candidate, authentic=False,
                             reason=f"DNS lookup of {qname} failed: {exc.reason}",
                             queried=tuple(queried))
        queried.append(qname)
        authentic = authentic and answer.authentic
        # §6.6.3 steps 2 and 4: discard records that are not DMARC records.
        records = [r for r in answer.records if is_dmarc_record(r)]
        if not records:
            continue
        if len(records) > 1:
            return Discovery(LookupStatus.NONE, name, org, candidate, authentic=authentic,
                             reason=f"{qname} has {len(records)} DMARC records (§6.6.3 step 5)",
                             queried=tuple(queried))
        text = records[0]
        try:
            policy = parse_record(text)
        except InvalidRecord as exc:
            return Discovery(LookupStatus.PERMERROR, name, org, candidate, text,
                             authentic=authentic, reason=f"{qname}: invalid record: {exc}",
                             queried=tuple(queried))
        return Discovery(LookupStatus.FOUND, name, org, candidate, text, policy, authentic,
                         queried=tuple(queried))
    return Discovery(LookupStatus.NONE, name, org, authentic=authentic,
                     reason="no DMARC record at " + " or ".join(queried or ["_dmarc." + name]),
                     queried=tuple(queried))
