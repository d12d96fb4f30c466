"""Our aggregate XML: valid against the RFC 7489 schema, read back by us and by an
independent parser (the ``dmarc-report`` package from PyPI)."""

from __future__ import annotations

import gzip

import pytest

from conftest import fixture
from kittiwake.dmarcrpt import (
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
    compose_report,
    parse_report,
    report_from_message,
)
from kittiwake.dmarcrpt.message import report_filename, report_message, report_subject

REPORT = Feedback(
    report_metadata=ReportMetadata(org_name="example.org", email="postmaster@example.org",
                                   report_id="20251130.sender.example.mx.example.org",
                                   date_range=DateRange(1764460800, 1764547199)),
    policy_published=PolicyPublished(domain="sender.example", p=DispositionType.REJECT,
                                      adkim=AlignmentType.RELAXED,
                                      aspf=AlignmentType.STRICT),
    records=(
        Record(Row("192.0.2.10", 5, PolicyEvaluated(DispositionType.NONE, DMARCResult.PASS,
                                                    DMARCResult.PASS)),
               Identifiers(header_from="sender.example", envelope_to="example.org"),
               AuthResult(dkim=(DKIMAuthResult("sender.example", DKIMResult.PASS, "sel"),),
                          spf=(SPFAuthResult("sender.example", SPFResult.PASS,
                                             SPFDomainScope.MFROM),))),
        Record(Row("2001:db8::25", 2, PolicyEvaluated(
            DispositionType.QUARANTINE, DMARCResult.FAIL, DMARCResult.FAIL,
            (PolicyOverrideReason(PolicyOverride.SAMPLED_OUT, "pct=50 <&>"),))),
               Identifiers(header_from="sender.example"),
               AuthResult()),  # no SPF result known: the composer still writes one
    ),
    version="1.0")


def test_composed_report_validates_against_rfc7489_schema(schema) -> None:  # type: ignore[no-untyped-def]
    xml = compose_report(REPORT)
    schema.validate(xml.decode())  # raises with the reason when invalid
    assert xml.index(b"<version>1.0</version>") < xml.index(b"<report_metadata>")
    assert b"<source_ip>2001:0db8:0000:0000:0000:0000:0000:0025</source_ip>" in xml
    assert b"<sp>reject</sp>" in xml and b"<pct>100</pct>" in xml and b"<fo>0</fo>" in xml


def test_fixtures_recomposed_validate(schema) -> None:  # type: ignore[no-untyped-def]
    for name in ("google.xml", "microsoft.xml", "yahoo.xml", "namespaced-0.1.xml"):
        schema.validate(compose_report(parse_report(fixture(name))).decode())


def test_fixtures_as_sent_are_not_schema_valid_which_is_why_we_are_tolerant(schema) -> None:  # type: ignore[no-untyped-def]
    # Google leaves out version and scope; Yahoo sp and fo: the RFC's schema refuses them.
    for name in ("google.xml", "yahoo.xml"):
        assert not schema.is_valid(fixture(name).decode())


def test_round_trip() -> None:
    back = parse_report(compose_report(REPORT))
    assert back.report_metadata == REPORT.report_metadata
    assert back.records[0] == REPORT.records[0]
    second = back.records[1]
    assert second.row.source_ip == "2001:db8::25"
    assert second.row.policy_evaluated == REPORT.records[1].row.policy_evaluated
    assert second.auth_results.spf[0].result is SPFResult.NONE
    assert back.policy_published.sp is DispositionType.REJECT


def test_independent_parser_reads_our_xml() -> None:
    """dmarc-report (PyPI, defusedxml-based) as the independent reader."""
    from dmarc_report.parser import DMARCParser

    parsed = DMARCParser.parse_bytes(compose_report(REPORT))
    assert parsed.report_metadata.org_name == "example.org"
    assert parsed.report_metadata.report_id == REPORT.report_metadata.report_id
    assert parsed.version == "1.0"
    assert parsed.policy_published.domain == "sender.example"
    assert str(parsed.policy_published.p) == "reject"
    import ipaddress

    counts = {str(ipaddress.ip_address(r.source_ip)): r.count for r in parsed.records}
    assert counts == {"192.0.2.10": 5, "2001:db8::25": 2}
    first = next(r for r in parsed.records if r.count == 5)
    assert str(first.policy_evaluated.dkim) == "pass"
    assert first.auth_results.dkim[0].selector == "sel"
    second = next(r for r in parsed.records if r.count == 2)
    assert [str(x.type) for x in second.policy_evaluated.reasons] == ["sampled_out"]
    assert second.policy_evaluated.reasons[0].comment == "pct=50 <&>"


# namespaced-0.1.xml is left out: its upper-case "REJECT" (which we accept) is refused by
# dmarc-report.
@pytest.mark.parametrize("name", ["google.xml", "microsoft.xml", "yahoo.xml"])
def test_independent_parser_agrees_with_us_on_the_fixtures(name: str) -> None:
    from dmarc_report.parser import DMARCParser

    ours = parse_report(fixture(name))
    theirs = DMARCParser.parse_bytes(fixture(name))
    assert theirs.report_metadata.report_id == ours.report_metadata.report_id
    assert sum(r.count for r in theirs.records) == ours.message_count
    assert str(theirs.policy_published.p).lower() == str(ours.policy_published.p)
    assert [r.source_ip for r in theirs.records] == [r.row.source_ip for r in ours.records]


def test_report_message_per_rfc7489_7_2_1_1() -> None:
    import datetime as dt

    message = report_message(REPORT, from_address="postmaster@example.org",
                             to_addresses=["dmarc@sender.example"], receiver="example.org",
                             submitter="example.org", message_id="dmarc.1@mx.example.org",
                             date=dt.datetime(2025, 12, 1, 0, 10, tzinfo=dt.UTC))
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    assert ("Subject: Report Domain: sender.example Submitter: example.org"
            " Report-ID: <20251130.sender.example.mx.example.org>") in head
    name = "example.org!sender.example!1764460800!1764547199.xml.gz"
    assert report_filename("example.org", REPORT) == name
    assert f'filename="{name}"' in message.decode()
    assert report_subject("example.org", REPORT) in head
    assert report_from_message(message) == parse_report(compose_report(REPORT))
    # the attachment is gzip of the XML
    import email

    part = next(p for p in email.message_from_bytes(message).walk()
            if p.get_content_type() == "application/gzip")
    assert gzip.decompress(part.get_payload(decode=True)) == compose_report(REPORT)
