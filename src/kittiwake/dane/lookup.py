"""Finding the TLSA records of an MX host for SMTP (RFC 7672 §2.2).

Only DNSSEC-authentic TLSA answers count: insecure ones are treated as no
TLSA at all (RFC 7672 §2.2). A lookup failure for a host whose address
records were secure must not fall back to unauthenticated delivery (RFC 7672
§2.2.1), so it is a temporary failure. With CNAMEs, the TLSA base domain is
the expanded name first, then the original name (RFC 7672 §2.2.2).

Call these only for MX hosts whose address records were DNSSEC-authentic:
for an insecure host DANE does not apply (RFC 7672 §2.2.2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from kittiwake.dane.records import tlsa_name, unusable_reason
from kittiwake.dns import (
    TLSA,
    Answer,
    DNSTemporaryError,
    ExtendedError,
    InvalidName,
    Resolver,
    Status,
)


class TLSAStatus(enum.StrEnum):
    """What the TLSA lookup of an MX host says the SMTP client must do."""

    # Authentic records, at least one usable: authenticate with DANE (RFC 7672 §2.2).
    FOUND = "found"
    # Authentic records, none usable: use TLS, but there is nothing to
    # authenticate with (RFC 7672 §2.2, §3.1.3).
    UNUSABLE = "unusable"
    # NXDOMAIN/NODATA, or an answer DNSSEC did not vouch for: no DANE.
    NONE = "none"
    # The lookup failed (SERVFAIL, timeout): defer, never fall back (RFC 7672 §2.2.1).
    TEMPERROR = "temperror"


@dataclass(frozen=True)
class TLSALookup:
    """The result of :func:`lookup_tlsa` / :func:`lookup_tlsa_for_host`.

    ``name`` is the TLSA owner name the result is about (``_25._tcp.mx...``);
    ``base_domain`` the host name it was derived from, which is also a
    reference identifier for DANE-TA name checks (RFC 7672 §3.2.2).
    """

    name: str
    base_domain: str
    status: TLSAStatus
    usable: tuple[TLSA, ...] = ()
    unusable: tuple[TLSA, ...] = ()
    authentic: bool = False
    reason: str = ""
    extended_errors: tuple[ExtendedError, ...] = field(default=())

    @property
    def dane_required(self) -> bool:
        """True when the server's certificate must be verified with DANE."""
        return self.status is TLSAStatus.FOUND

    @property
    def tls_required(self) -> bool:
        """True when the client must not deliver without TLS (RFC 7672 §2.2)."""
        return self.status in (TLSAStatus.FOUND, TLSAStatus.UNUSABLE)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base_domain": self.base_domain,
            "status": self.status.value,
            "authentic": self.authentic,
            "usable": [str(r) for r in self.usable],
            "unusable": [str(r) for r in self.unusable],
            "reason": self.reason,
            "extended_errors": [e.to_json() for e in self.extended_errors],
        }


async def lookup_tlsa(resolver: Resolver, host: str, port: int = 25) -> TLSALookup:
    """Look up and sort the TLSA records at ``_PORT._tcp.HOST`` (RFC 7672 §2.2).

    Never raises for DNS problems: a temporary failure is
    :attr:`TLSAStatus.TEMPERROR`, an invalid name :attr:`TLSAStatus.NONE`.
    """
    base = host.rstrip(".").lower()
    name = tlsa_name(base, port)
    try:
        answer: Answer[TLSA] = await resolver.tlsa(name)
    except InvalidName as exc:
        return TLSALookup(name, base, TLSAStatus.NONE, reason=f"invalid TLSA name: {exc}")
    except DNSTemporaryError as exc:
        # RFC 7672 §2.2.1: a failed TLSA lookup for a secure host must not
        # lead to delivery without DANE; the message waits.
        return TLSALookup(name, base, TLSAStatus.TEMPERROR,
                          reason=f"TLSA lookup of {name} failed: {exc.reason}",
                          extended_errors=exc.extended_errors)
    if answer.status is not Status.FOUND or not answer.records:
        what = "no such name" if answer.status is Status.NXDOMAIN else "no TLSA records"
        return TLSALookup(name, base, TLSAStatus.NONE, authentic=answer.authentic,
                          reason=f"{name}: {what}", extended_errors=answer.extended_errors)
    if not answer.authentic:
        # RFC 7672 §2.2: TLSA records that are not DNSSEC-validated are ignored.
        return TLSALookup(name, base, TLSAStatus.NONE, authentic=False,
                          reason=f"TLSA records at {name} are not DNSSEC-authentic; ignored"
                                 " (RFC 7672 §2.2)",
                          extended_errors=answer.extended_errors)
    usable = tuple(r for r in answer.records if unusable_reason(r) is None)
    unusable = tuple(r for r in answer.records if unusable_reason(r) is not None)
    if usable:
        return TLSALookup(name, base, TLSAStatus.FOUND, usable, unusable, True,
                          reason=f"{len(usable)} usable TLSA record(s) at {name}",
                          extended_errors=answer.extended_errors)
    why = "; ".join(sorted({unusable_reason(r) or "" for r in unusable}))
    return TLSALookup(name, base, TLSAStatus.UNUSABLE, (), unusable, True,
                      reason=f"no usable TLSA records at {name}: {why}",
                      extended_errors=answer.extended_errors)


def tlsa_base_domains(host: str, address: Answer[Any] | None = None) -> list[str]:
    """The TLSA base domains to try for MX host ``host``, in order (RFC 7672 §2.2.2).

    ``address`` is the A/AAAA answer for ``host``. When it is DNSSEC-authentic
    and reached its records through CNAMEs, the fully expanded name comes
    first, then ``host`` itself. An insecure address answer means DANE does
    not apply: the list is empty.
    """
    initial = host.rstrip(".").lower()
    if address is None:
        return [initial]
    if not address.authentic:
        return []
    expanded = address.canonical_name.rstrip(".").lower()
    if expanded != initial:
        return [expanded, initial]
    return [initial]


async def lookup_tlsa_for_host(resolver: Resolver, host: str, port: int = 25,
                               address: Answer[Any] | None = None) -> TLSALookup:
    """TLSA records of an MX host, trying each base domain of :func:`tlsa_base_domains`.

    The first name that has authentic TLSA records (or fails temporarily)
    decides; no (authentic) records at the expanded name moves on to the
    original name (RFC 7672 §2.2.2).
    """
    candidates = tlsa_base_domains(host, address)
    if not candidates:
        base = host.rstrip(".").lower()
        return TLSALookup(tlsa_name(base, port), base, TLSAStatus.NONE,
                          reason=f"address records of {base} are not DNSSEC-authentic;"
                                 " DANE does not apply (RFC 7672 §2.2.2)")
    results = []
    for base in candidates:
        result = await lookup_tlsa(resolver, base, port)
        if result.status is not TLSAStatus.NONE:
            return result
        results.append(result)
    return results[-1]


def reference_identifiers(mx_host: str, base_domain: str | None = None,
                          next_hop: str | None = None) -> list[str]:
    """The names a DANE-TA certificate must match (RFC 7672 §3.2.2).

    The MX host name, the TLSA base domain when CNAME expansion made it
    different, and the next-hop (recipient) domain when the caller allows it
    (RFC 7672 §3.2.2 lets clients include it, e.g. for MX hosts that share
    the domain's certificate).
    """
    names: list[str] = []
    for name in (base_domain, mx_host, next_hop):
        if name:
            clean = name.rstrip(".").lower()
            if clean not in names:
                names.append(clean)
    return names
