"""DMARC aggregate reports (RFC 7489 §7.2, Appendix C): model, parser, composer, extraction.

A leaf package: bytes in, typed values out, and back; no server, store or
queue. :func:`parse_report` reads report XML safely (no DTDs or entities,
bounded size and depth), :func:`compose_report` writes it in the RFC's
schema, and :func:`report_from_message` finds and parses the report in a
report message (gzip, zip or XML, with decompression-bomb limits). Every
refusal is a :class:`ReportError` whose :attr:`~ReportError.problem` says
why, and whether the input was hostile.
"""

from kittiwake.dmarcrpt.compose import VERSION, compose_report, disposition_of
from kittiwake.dmarcrpt.errors import Problem, ReportError
from kittiwake.dmarcrpt.extract import extract_report_xml, gunzip, unzip
from kittiwake.dmarcrpt.model import (
    AlignmentType,
    AuthResult,
    DateRange,
    DispositionType,
    DKIMAuthResult,
    DKIMResult,
    DMARCResult,
    Feedback,
    Identifiers,
    PolicyEvaluated,
    PolicyOverride,
    PolicyOverrideReason,
    PolicyPublished,
    Record,
    ReportMetadata,
    Row,
    SPFAuthResult,
    SPFDomainScope,
    SPFResult,
)
from kittiwake.dmarcrpt.parse import parse_report


def report_from_message(message: bytes) -> Feedback:
    """The aggregate report carried by a report message; raises :class:`ReportError`."""
    return parse_report(extract_report_xml(message))


__all__ = [
    "VERSION", "AlignmentType", "AuthResult", "DKIMAuthResult", "DKIMResult", "DMARCResult",
    "DateRange", "DispositionType", "Feedback", "Identifiers", "PolicyEvaluated",
    "PolicyOverride", "PolicyOverrideReason", "PolicyPublished", "Problem", "Record",
    "ReportError", "ReportMetadata", "Row", "SPFAuthResult", "SPFDomainScope", "SPFResult",
    "compose_report", "disposition_of", "extract_report_xml", "gunzip", "parse_report",
    "report_from_message", "unzip",
]
