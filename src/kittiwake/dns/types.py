"""Typed DNS answers: the records, whether DNSSEC vouched for them, and why not.

Every lookup in kittiwake returns an :class:`Answer` that carries ``authentic``
(the AD bit of a DNSSEC-validating resolver, RFC 4035 §3.2.3) and any extended
DNS errors (RFC 8914). NXDOMAIN and NODATA are answers (``status``); only
temporary failures (SERVFAIL, timeouts, unreachable resolvers) raise
:class:`DNSTemporaryError`.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RRType(enum.StrEnum):
    """The record types kittiwake looks up."""

    A = "A"
    AAAA = "AAAA"
    MX = "MX"
    TXT = "TXT"
    PTR = "PTR"
    CNAME = "CNAME"
    TLSA = "TLSA"
    SRV = "SRV"
    NS = "NS"
    CAA = "CAA"

    @classmethod
    def parse(cls, text: str) -> RRType:
        """Case-insensitive lookup; ValueError names the known types."""
        try:
            return cls(text.upper())
        except ValueError:
            known = ", ".join(t.value.lower() for t in cls)
            raise ValueError(f"unknown record type {text!r} (known: {known})") from None


class Status(enum.StrEnum):
    """How a name answered: records, no records of this type, or no such name."""

    FOUND = "found"
    NODATA = "nodata"  # RFC 2308 §2.2: name exists, no records of the type
    NXDOMAIN = "nxdomain"  # RFC 2308 §2.1: name does not exist


# RFC 8914 §4: the registered INFO-CODEs.
EDE_NAMES: dict[int, str] = {
    0: "Other Error",
    1: "Unsupported DNSKEY Algorithm",
    2: "Unsupported DS Digest Type",
    3: "Stale Answer",
    4: "Forged Answer",
    5: "DNSSEC Indeterminate",
    6: "DNSSEC Bogus",
    7: "Signature Expired",
    8: "Signature Not Yet Valid",
    9: "DNSKEY Missing",
    10: "RRSIGs Missing",
    11: "No Zone Key Bit Set",
    12: "NSEC Missing",
    13: "Cached Error",
    14: "Not Ready",
    15: "Blocked",
    16: "Censored",
    17: "Filtered",
    18: "Prohibited",
    19: "Stale NXDOMAIN Answer",
    20: "Not Authoritative",
    21: "Not Supported",
    22: "No Reachable Authority",
    23: "Network Error",
    24: "Invalid Data",
    25: "Signature Expired before Valid",
    26: "Too Early",
    27: "Unsupported NSEC3 Iterations Value",
    28: "Unable to conform to policy",
    29: "Synthesized",
    30: "Invalid Query Type",
}


@dataclass(frozen=True)
class ExtendedError:
    """One Extended DNS Error option (RFC 8914 §2)."""

    code: int
    text: str = ""

    @property
    def name(self) -> str:
        return EDE_NAMES.get(self.code, f"Unknown ({self.code})")

    def __str__(self) -> str:
        extra = f": {self.text}" if self.text else ""
        return f"EDE {self.code} ({self.name}){extra}"

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "text": self.text}


@dataclass(frozen=True)
class MX:
    """An MX record (RFC 5321 §5.1)."""

    preference: int
    exchange: str  # no trailing dot; "" for the root (null MX)

    @property
    def is_null(self) -> bool:
        """RFC 7505 §3: a null MX has the root as exchange."""
        return self.exchange in ("", ".")

    def __str__(self) -> str:
        return f"{self.preference} {self.exchange or '.'}"


@dataclass(frozen=True)
class TLSA:
    """A TLSA record (RFC 6698 §2.1)."""

    usage: int
    selector: int
    mtype: int
    data: bytes

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"


@dataclass(frozen=True)
class SRV:
    """An SRV record (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str

    def __str__(self) -> str:
        return f"{self.priority} {self.weight} {self.port} {self.target or '.'}"


@dataclass(frozen=True)
class CAA:
    """A CAA record (RFC 8659 §4.1)."""

    flags: int
    tag: str
    value: str

    def __str__(self) -> str:
        return f'{self.flags} {self.tag} "{self.value}"'


@dataclass(frozen=True)
class Answer(Generic[T]):
    """The result of one lookup.

    ``records`` is empty for NODATA and NXDOMAIN. ``name`` is the name asked
    for; ``cname_chain`` lists the CNAME targets followed to reach the records,
    in order. ``authentic`` is true only when every step was DNSSEC-validated.
    """

    name: str
    rdtype: RRType
    records: tuple[T, ...]
    authentic: bool
    status: Status = Status.FOUND
    cname_chain: tuple[str, ...] = ()
    extended_errors: tuple[ExtendedError, ...] = ()
    ttl: int = 0

    @property
    def nxdomain(self) -> bool:
        return self.status is Status.NXDOMAIN

    @property
    def nodata(self) -> bool:
        return self.status is Status.NODATA

    @property
    def canonical_name(self) -> str:
        """The name the records belong to after following CNAMEs."""
        return self.cname_chain[-1] if self.cname_chain else self.name

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __bool__(self) -> bool:
        return bool(self.records)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.rdtype.value,
            "status": self.status.value,
            "authentic": self.authentic,
            "records": [record_to_json(r) for r in self.records],
            "cname_chain": list(self.cname_chain),
            "extended_errors": [e.to_json() for e in self.extended_errors],
            "ttl": self.ttl,
        }


def record_to_json(record: object) -> Any:
    """A JSON-friendly form of one record value."""
    match record:
        case MX():
            return {"preference": record.preference, "exchange": record.exchange,
                    "null": record.is_null}
        case TLSA():
            return {"usage": record.usage, "selector": record.selector,
                    "mtype": record.mtype, "data": record.data.hex()}
        case SRV():
            return {"priority": record.priority, "weight": record.weight,
                    "port": record.port, "target": record.target}
        case CAA():
            return {"flags": record.flags, "tag": record.tag, "value": record.value}
        case _:
            return str(record)


class DNSError(Exception):
    """Base of DNS lookup problems."""


class InvalidName(DNSError, ValueError):
    """The name cannot be looked up: empty label, too long, bad IDNA."""


@dataclass(eq=False)
class DNSTemporaryError(DNSError):
    """SERVFAIL, timeout, refused or unreachable resolver: try again later.

    Carries the extended DNS errors the resolver sent (RFC 8914), e.g. EDE 7
    "Signature Expired" for a bogus DNSSEC zone.
    """

    name: str
    rdtype: RRType
    reason: str
    extended_errors: tuple[ExtendedError, ...] = field(default=())

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        ede = "; ".join(str(e) for e in self.extended_errors)
        return f"{self.rdtype} {self.name}: {self.reason}" + (f" ({ede})" if ede else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.rdtype.value,
            "status": "temperror",
            "error": self.reason,
            "authentic": False,
            "extended_errors": [e.to_json() for e in self.extended_errors],
        }
