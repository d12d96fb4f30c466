"""DMARC: Domain-based Message Authentication, Reporting, and Conformance (RFC 7489).

A receiver learns from the Author Domain's DNS what to do with mail whose
From domain is not authenticated by an aligned SPF or DKIM pass. Modules:
:mod:`~kittiwake.dmarc.author` (the From domain, §6.6.1),
:mod:`~kittiwake.dmarc.record` (records, §6.3/§6.4),
:mod:`~kittiwake.dmarc.discovery` (§6.6.3),
:mod:`~kittiwake.dmarc.verify` (alignment and policy, §3.1, §6.6.2, §6.6.4).
Organizational domains come from :mod:`kittiwake.publicsuffix` (§3.2).
Indirect mail flows (RFC 7960) are left to the caller's local policy; see
:class:`Result`.

Typical use in the SMTP server, after SPF and DKIM::

    author = dmarc.from_domain(header_bytes)
    if not author.ok:
        ...  # author.dmarc_status(): "permerror" (reject) or "none"
    result = await dmarc.verify(resolver, author.domain, spf_result, dkim_results)
    if result.reject: ...  # 550 5.7.1
"""

from kittiwake.dmarc.author import AuthorDomain, FromProblem, from_domain, parse_addresses
from kittiwake.dmarc.discovery import Discovery, LookupStatus, lookup
from kittiwake.dmarc.record import (
    Alignment,
    Disposition,
    InvalidRecord,
    NotDMARCRecord,
    Policy,
    RecordError,
    ReportURI,
    is_dmarc_record,
    parse_record,
)
from kittiwake.dmarc.result import OverrideReason, Result, Status
from kittiwake.dmarc.verify import aligned, evaluate, verify

__all__ = [
    "Alignment", "AuthorDomain", "Discovery", "Disposition", "FromProblem", "InvalidRecord",
    "LookupStatus", "NotDMARCRecord", "OverrideReason", "Policy", "RecordError", "ReportURI",
    "Result", "Status", "aligned", "evaluate", "from_domain", "is_dmarc_record", "lookup",
    "parse_addresses", "parse_record", "verify",
]
