"""The DMARC aggregate report, as the XML schema of RFC 7489 Appendix C names it.

Class and field names follow the schema's types and elements
(``feedback``, ``report_metadata``, ``policy_published``, ``record`` with
``row``, ``identifiers`` and ``auth_results``). Optional elements are
``None`` (or empty tuples) when a report left them out, so that a parsed
report says what its generator wrote.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AlignmentType", "AuthResult", "DKIMAuthResult", "DKIMResult", "DMARCResult", "DateRange",
    "DispositionType", "Feedback", "Identifiers", "PolicyEvaluated", "PolicyOverride",
    "PolicyOverrideReason", "PolicyPublished", "Record", "ReportMetadata", "Row",
    "SPFAuthResult", "SPFDomainScope", "SPFResult",
]

NAMESPACE = "http://dmarc.org/dmarc-xml/0.1"  # the schema's targetNamespace (Appendix C)


class AlignmentType(enum.StrEnum):
    """``AlignmentType``: relaxed or strict (RFC 7489 §3.1)."""

    RELAXED = "r"
    STRICT = "s"


class DispositionType(enum.StrEnum):
    """``DispositionType``: the p/sp values and the disposition applied."""

    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


class DMARCResult(enum.StrEnum):
    """``DMARCResultType``: whether an aligned identifier passed."""

    PASS = "pass"
    FAIL = "fail"


class PolicyOverride(enum.StrEnum):
    """``PolicyOverrideType``: why the disposition differs from the policy."""

    FORWARDED = "forwarded"
    SAMPLED_OUT = "sampled_out"
    TRUSTED_FORWARDER = "trusted_forwarder"
    MAILING_LIST = "mailing_list"
    LOCAL_POLICY = "local_policy"
    OTHER = "other"


class DKIMResult(enum.StrEnum):
    """``DKIMResultType`` (RFC 8601 §2.7.1 names)."""

    NONE = "none"
    PASS = "pass"
    FAIL = "fail"
    POLICY = "policy"
    NEUTRAL = "neutral"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class SPFDomainScope(enum.StrEnum):
    """``SPFDomainScope``: which identity SPF checked (RFC 7208 §2.3, §2.4)."""

    HELO = "helo"
    MFROM = "mfrom"


class SPFResult(enum.StrEnum):
    """``SPFResultType`` (RFC 7208 §2.6)."""

    NONE = "none"
    NEUTRAL = "neutral"
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True)
class DateRange:
    """``DateRangeType``: UTC seconds since the epoch."""

    begin: int
    end: int


@dataclass(frozen=True)
class ReportMetadata:
    """``ReportMetadataType``: who generated the report, and its id."""

    org_name: str
    email: str
    report_id: str
    date_range: DateRange
    extra_contact_info: str | None = None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyPublished:
    """``PolicyPublishedType``: the DMARC record the reporter found.

    The schema makes ``sp``, ``pct`` and ``fo`` required; generators often
    leave them out, so they are optional here and written by the composer
    (with the record's defaults) always.
    """

    domain: str
    p: DispositionType
    adkim: AlignmentType | None = None
    aspf: AlignmentType | None = None
    sp: DispositionType | None = None
    pct: int | None = None
    fo: str | None = None


@dataclass(frozen=True)
class PolicyOverrideReason:
    """``PolicyOverrideReason``."""

    type: PolicyOverride
    comment: str | None = None


@dataclass(frozen=True)
class PolicyEvaluated:
    """``PolicyEvaluatedType``: the outcome of applying DMARC."""

    disposition: DispositionType
    dkim: DMARCResult
    spf: DMARCResult
    reasons: tuple[PolicyOverrideReason, ...] = ()


@dataclass(frozen=True)
class Row:
    """``RowType``: one source IP with its message count."""

    source_ip: str
    count: int
    policy_evaluated: PolicyEvaluated


@dataclass(frozen=True)
class Identifiers:
    """``IdentifierType`` (``envelope_from`` is not in RFC 7489's schema but sent by
    Microsoft and others; kept when present, never composed)."""

    header_from: str
    envelope_to: str | None = None
    envelope_from: str | None = None


@dataclass(frozen=True)
class DKIMAuthResult:
    """``DKIMAuthResultType``: one signature's raw verdict."""

    domain: str
    result: DKIMResult
    selector: str | None = None
    human_result: str | None = None


@dataclass(frozen=True)
class SPFAuthResult:
    """``SPFAuthResultType``: the raw SPF verdict."""

    domain: str
    result: SPFResult
    scope: SPFDomainScope | None = None  # required by the schema; Yahoo and others omit it


@dataclass(frozen=True)
class AuthResult:
    """``AuthResultType``: DKIM and SPF results uninterpreted with respect to DMARC."""

    dkim: tuple[DKIMAuthResult, ...] = ()
    spf: tuple[SPFAuthResult, ...] = ()


@dataclass(frozen=True)
class Record:
    """``RecordType``."""

    row: Row
    identifiers: Identifiers
    auth_results: AuthResult


@dataclass(frozen=True)
class Feedback:
    """The ``feedback`` element: one aggregate report."""

    report_metadata: ReportMetadata
    policy_published: PolicyPublished
    records: tuple[Record, ...] = field(default=())
    version: str | None = None  # "1.0" in what we write; often absent in reports received

    @property
    def message_count(self) -> int:
        return sum(r.row.count for r in self.records)

    def to_json(self) -> dict[str, Any]:
        """Plain values for ``--json`` and the reports database."""
        from dataclasses import asdict

        def clean(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            if isinstance(value, enum.Enum):
                return value.value
            return value

        out: dict[str, Any] = clean(asdict(self))
        return out
