"""Parsing the aggregate reports real receivers send (RFC 7489 Appendix C and its deviations)."""

from __future__ import annotations

import pytest

from conftest import fixture
from kittiwake.dmarcrpt import (
    AlignmentType,
    DispositionType,
    DKIMResult,
    DMARCResult,
    PolicyOverride,
    Problem,
    ReportError,
    SPFDomainScope,
    SPFResult,
    parse_report,
)


def test_google_layout() -> None:
    report = parse_report(fixture("google.xml"))
    m = report.report_metadata
    assert (m.org_name, m.report_id) == ("google.com", "4871238456723984512")
    assert (m.date_range.begin, m.date_range.end) == (1764460800, 1764547199)
    assert m.extra_contact_info == "https://support.google.com/a/answer/2466580"
    assert report.version is None  # Google sends none
    p = report.policy_published
    assert (p.domain, p.p, p.sp, p.pct, p.adkim, p.fo) == (
        "example.org", DispositionType.NONE, DispositionType.NONE, 100, AlignmentType.RELAXED,
        None)
    assert [r.row.count for r in report.records] == [3, 1]
    first, second = report.records
    assert first.auth_results.dkim[0].selector == "sel2025"  # after <result>, as Google writes
    assert first.auth_results.spf[0].scope is None  # Google leaves scope out
    assert second.row.policy_evaluated.dkim is DMARCResult.FAIL
    assert second.auth_results.dkim == ()
    assert second.auth_results.spf[0].result is SPFResult.SOFTFAIL
    assert report.message_count == 4


def test_microsoft_layout() -> None:
    report = parse_report(fixture("microsoft.xml"))
    assert report.version == "1.0"
    assert report.policy_published.p is DispositionType.REJECT
    [record] = report.records
    assert record.row.source_ip == "2a01:111:f403:2412::700"
    assert record.identifiers.envelope_to == "contoso.com"
    assert record.identifiers.envelope_from == "lists.example.net"
    assert record.auth_results.spf[0].scope is SPFDomainScope.MFROM
    assert record.row.policy_evaluated.spf is DMARCResult.FAIL


def test_yahoo_layout_without_sp_and_fo() -> None:
    report = parse_report(fixture("yahoo.xml"))
    p = report.policy_published
    assert p.sp is None and p.fo is None and p.p is DispositionType.QUARANTINE
    [record] = report.records
    assert record.row.policy_evaluated.disposition is DispositionType.QUARANTINE
    assert record.auth_results.dkim[0].result is DKIMResult.NEUTRAL


def test_namespace_01_version_in_metadata_and_odd_values() -> None:
    report = parse_report(fixture("namespaced-0.1.xml"))
    assert report.version == "0.1"
    assert report.report_metadata.org_name == "Mail Receiver & Co"
    assert report.report_metadata.errors == ("one DKIM key could not be fetched",)
    assert report.policy_published.domain == "example.org"  # lower-cased
    assert report.policy_published.p is DispositionType.REJECT  # from "REJECT"
    [record] = report.records
    [reason] = record.row.policy_evaluated.reasons
    assert (reason.type, reason.comment) == (PolicyOverride.FORWARDED, "known list")
    assert record.auth_results.spf[0].result is SPFResult.PERMERROR  # written "error"
    assert record.auth_results.spf[0].scope is SPFDomainScope.HELO


def _minimal(body: str) -> bytes:
    return ("<feedback><report_metadata><org_name>o</org_name><email>e@o</email>"
            "<report_id>r1</report_id><date_range><begin>1</begin><end>2</end></date_range>"
            "</report_metadata><policy_published><domain>d.example</domain><p>none</p>"
            "</policy_published>" + body + "</feedback>").encode()


def test_report_without_records_parses() -> None:
    assert parse_report(_minimal("")).records == ()


@pytest.mark.parametrize("data, problem, words", [
    (b"<feedback><report_metadata>", Problem.MALFORMED, "not well-formed"),
    (b"<html><body>hi</body></html>", Problem.NOT_A_REPORT, "<html>"),
    (_minimal("<record><row><source_ip>999.1.1.1</source_ip><count>1</count>"
              "</row></record>"), Problem.MALFORMED, "source_ip"),
    (_minimal("<record><row><source_ip>192.0.2.1</source_ip><count>x</count>"
              "</row></record>"), Problem.MALFORMED, "not a number"),
    (b"<feedback><policy_published><domain>d</domain><p>none</p></policy_published>"
     b"</feedback>", Problem.MALFORMED, "report_metadata"),
    (_minimal("").replace(b"<p>none</p>", b""), Problem.MALFORMED, "<p>"),
    (b"", Problem.MALFORMED, "not well-formed"),
    (b'<?xml version="1.0" encoding="bogus"?><feedback/>', Problem.MALFORMED, "unreadable"),
    (_minimal("<record><row><source_ip>192.0.2.1</source_ip><count>99999999999999999999"
              "</count></row></record>"), Problem.MALFORMED, "out of range"),
    (_minimal("<record><row><source_ip>192.0.2.1</source_ip><count>-3</count>"
              "</row></record>"), Problem.MALFORMED, "out of range"),
])
def test_broken_reports_are_refused_with_the_reason(data: bytes, problem: Problem,
                                                   words: str) -> None:
    with pytest.raises(ReportError) as caught:
        parse_report(data)
    assert caught.value.problem is problem
    assert words in str(caught.value)
    assert not problem.hostile
