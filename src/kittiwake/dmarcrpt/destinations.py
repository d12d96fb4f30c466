"""Whether a report destination outside the policy domain agreed to take reports (RFC 7489 §7.1).

When a ``rua`` URI's host is not within the Organizational Domain of the
domain that published it, the destination's owner must have published TXT
``<policy-domain>._report._dmarc.<destination-host>`` starting with
``v=DMARC1`` (§7.1 step 3). Otherwise reports must not go there. A DNS
failure means "not verified now": the caller skips the destination for this
report and logs it.
"""

from __future__ import annotations

import enum
from typing import Protocol

from kittiwake.dns.types import DNSTemporaryError, InvalidName
from kittiwake.publicsuffix import organizational_domain

__all__ = ["Verification", "needs_verification", "verify_destination"]


class _TXTResolver(Protocol):
    async def txt(self, name: str) -> object: ...


class Verification(enum.StrEnum):
    SAME_ORGANIZATION = "same-organization"  # no check needed (§7.1 step 1)
    VERIFIED = "verified"
    REFUSED = "refused"  # no v=DMARC1 record at the verification name
    TEMPERROR = "temperror"


def needs_verification(policy_domain: str, destination_domain: str) -> bool:
    """§7.1: only destinations outside the policy domain's Organizational Domain."""
    return organizational_domain(policy_domain.lower().rstrip(".")) != \
        organizational_domain(destination_domain.lower().rstrip("."))


async def verify_destination(resolver: _TXTResolver, policy_domain: str,
                             destination_domain: str) -> Verification:
    """Check an external report destination (§7.1 steps 2-4)."""
    if not needs_verification(policy_domain, destination_domain):
        return Verification.SAME_ORGANIZATION
    name = f"{policy_domain.rstrip('.')}._report._dmarc.{destination_domain.rstrip('.')}"
    try:
        answer = await resolver.txt(name)
    except InvalidName:
        return Verification.REFUSED
    except DNSTemporaryError:
        return Verification.TEMPERROR
    records = getattr(answer, "records", ())
    # §7.1 step 3: records that do not start with "v=DMARC1" are discarded.
    if any(str(r).replace(" ", "").startswith("v=DMARC1") for r in records):
        return Verification.VERIFIED
    return Verification.REFUSED
