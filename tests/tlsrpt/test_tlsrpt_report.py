"""The RFC 8460 §4.4 report: what we write validates, what others write parses, what
attackers write is refused with a reason."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import jsonschema
import pytest
from tests.tlsrpt.reportmail import fixture, google_message, microsoft_message

from kittiwake.tlsrpt.aggregate import build_report
from kittiwake.tlsrpt.mail import compose_message, report_from_message
from kittiwake.tlsrpt.report import (
    MAX_JSON,
    BadCompression,
    BadField,
    BadJSON,
    NoReport,
    ReportTooLarge,
    compose_gzip,
    compose_json,
    parse_report,
)
from kittiwake.tlsrpt.results import PolicyType, ResultType, TLSResult

SCHEMA = json.loads(fixture("rfc8460-report.schema.json"))
DAY = dt.date(2026, 11, 30)


def results() -> list[TLSResult]:
    t = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC).timestamp()
    return [
        TLSResult("example.net", PolicyType.STS, ResultType.SUCCESS, "mx1.example.net",
                  "192.0.2.1", time=t),
        TLSResult("example.net", PolicyType.STS, ResultType.SUCCESS, "mx1.example.net",
                  "192.0.2.1", time=t),
        TLSResult("example.net", PolicyType.STS, ResultType.CERTIFICATE_EXPIRED,
                  "mx2.example.net", "192.0.2.2", "certificate has expired", t),
        TLSResult("example.net", PolicyType.TLSA, ResultType.TLSA_INVALID, "mx3.example.net",
                  "2001:db8::3", "no TLSA record matches", t),
        TLSResult("example.net", PolicyType.NO_POLICY, ResultType.STARTTLS_NOT_SUPPORTED,
                  "mx4.example.net", "192.0.2.4", "no STARTTLS", t),
    ]


def our_report():  # type: ignore[no-untyped-def]
    return build_report("example.net", results(), day=DAY, organization="mail.example.org",
                        contact="postmaster@example.org", submitter="mail.example.org")


def test_our_json_validates_against_the_rfc_schema() -> None:
    document = json.loads(compose_json(our_report()))
    jsonschema.validate(document, SCHEMA)
    assert document["date-range"] == {"start-datetime": "2026-11-30T00:00:00Z",
                                      "end-datetime": "2026-12-01T00:00:00Z"}
    by_type = {p["policy"]["policy-type"]: p for p in document["policies"]}
    assert set(by_type) == {"sts", "tlsa", "no-policy-found"}
    assert by_type["sts"]["summary"] == {"total-successful-session-count": 2,
                                         "total-failure-session-count": 1}
    assert by_type["sts"]["policy"]["mx-host"] == ["mx1.example.net", "mx2.example.net"]
    [failure] = by_type["sts"]["failure-details"]
    assert failure == {"result-type": "certificate-expired",
                       "receiving-mx-hostname": "mx2.example.net", "receiving-ip": "192.0.2.2",
                       "failed-session-count": 1,
                       "additional-information": "certificate has expired"}


def test_the_schema_can_fail() -> None:
    """The schema is not vacuous: a count as text and an unknown policy type are refused."""
    document = json.loads(compose_json(our_report()))
    document["policies"][0]["summary"]["total-failure-session-count"] = "1"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)
    document = json.loads(compose_json(our_report()))
    document["policies"][0]["policy"]["policy-type"] = "dane"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)


def test_gzip_round_trip() -> None:
    report = our_report()
    assert parse_report(compose_gzip(report)) == parse_report(compose_json(report))
    assert parse_report(compose_gzip(report)).total_failure == 3


@pytest.mark.parametrize("name", ["google.json", "microsoft.json"])
def test_fixtures_follow_the_schema(name: str) -> None:
    """The fixtures themselves are valid RFC 8460 reports, as the real ones are."""
    jsonschema.validate(json.loads(fixture(name)), SCHEMA)


def test_google_report_parses() -> None:
    report = report_from_message(google_message())
    assert report.organization_name == "Google Inc."
    assert report.report_id == "2026-11-29T00:00:00Z_example.org"
    [policy] = report.policies
    assert policy.mx_host == ("mail.example.org", "*.mx.example.org")
    assert policy.policy_string[1] == "mode: enforce"
    assert (policy.total_successful, policy.total_failure) == (118, 3)
    assert policy.failure_details[0].result_type == "certificate-expired"


def test_microsoft_report_parses() -> None:
    report = report_from_message(microsoft_message())
    assert report.organization_name == "Microsoft Corporation"
    sts, none = report.policies
    assert sts.mx_host == () and none.policy_type == "no-policy-found"
    assert none.failure_details[0].additional_information == "MismatchedHostName"
    assert (report.total_successful, report.total_failure) == (45, 2)


def test_our_message_parses_back() -> None:
    report = our_report()
    now = dt.datetime(2026, 12, 1, 0, 15, tzinfo=dt.UTC)
    message = compose_message(report, policy_domain="example.net", submitter="mail.example.org",
                              mail_from="postmaster@example.org", to=["tlsrpt@example.net"],
                              now=now)
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    assert "\r\nTLS-Report-Domain: example.net\r\n" in head
    assert "\r\nTLS-Report-Submitter: mail.example.org\r\n" in head
    assert ("Subject: Report Domain: example.net Submitter: mail.example.org Report-ID:"
            " <2026-11-30.example.net@mail.example.org>") in head
    assert 'multipart/report; report-type="tlsrpt"' in head
    assert "\r\nAuto-Submitted: auto-generated\r\n" in head
    assert b"mail.example.org!example.net!1795996800!1796083200.json.gz" in message
    assert report_from_message(message) == report


# --- hostile and broken input ------------------------------------------------------------


def test_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip.compress(b"{" + b" " * (MAX_JSON * 3))
    assert len(bomb) < 200_000
    with pytest.raises(ReportTooLarge, match="decompresses to more than"):
        parse_report(bomb)
    with pytest.raises(ReportTooLarge):
        report_from_message(google_message(b"{" + b" " * (MAX_JSON * 3)))


def test_huge_json_is_refused() -> None:
    with pytest.raises(ReportTooLarge, match="limit"):
        parse_report(b" " * (MAX_JSON + 1), gzipped=False)


def test_truncated_gzip() -> None:
    data = compose_gzip(our_report())
    with pytest.raises(BadCompression, match="truncated"):
        parse_report(data[: len(data) // 2])
    with pytest.raises(BadCompression, match="corrupt"):
        parse_report(b"\x1f\x8b" + b"\x00" * 30)


@pytest.mark.parametrize("data, error, why", [
    (b"{not json", BadJSON, "not JSON"),
    (b"\xff\xfe{}", BadJSON, "not UTF-8"),
    (b"[" * 100_000, BadJSON, "not JSON"),
    (b"[]", BadField, "report: expected a JSON object, got an array"),
    (b'{"organization-name": "x"}', BadField, "date-range: expected a JSON object"),
])
def test_malformed(data: bytes, error: type[Exception], why: str) -> None:
    with pytest.raises(error, match=why):
        parse_report(data, gzipped=False)


def _google(**changes: object) -> bytes:
    document = json.loads(fixture("google.json"))
    for path, value in changes.items():
        target = document
        *parents, last = path.split("__")
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p.replace("_", "-")]
        target[last.replace("_", "-")] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize("changes, why", [
    ({"report_id": 7}, "report-id: expected a string, got a number"),
    ({"policies__0__summary__total_successful_session_count": "118"},
     r"policies\[0\].summary.total-successful-session-count: expected a whole number"),
    ({"policies__0__summary__total_failure_session_count": True}, "got a boolean"),
    ({"policies__0__summary__total_failure_session_count": -1}, "out of range"),
    ({"policies__0__policy__policy_type": "dane"}, "is not one of sts, tlsa"),
    ({"date_range__start_datetime": "yesterday"}, "not an RFC 3339 date-time"),
    ({"policies": {"a": 1}}, "policies: expected a JSON array, got an object"),
])
def test_wrong_types_say_where(changes: dict[str, object], why: str) -> None:
    with pytest.raises(BadField, match=why):
        parse_report(_google(**changes))


def test_message_without_report() -> None:
    with pytest.raises(NoReport):
        report_from_message(b"Subject: hello\r\n\r\nno report here\r\n")


def test_gzip_labelled_octet_stream_inside_a_tlsrpt_report() -> None:
    """Some senders label the attachment application/octet-stream; its .json.gz name inside
    a tlsrpt multipart/report still finds it, and only there."""
    relabelled = google_message().replace(b"application/tlsrpt+gzip",
                                          b"application/octet-stream")
    assert report_from_message(relabelled).organization_name == "Google Inc."
    mixed = relabelled.replace(b"multipart/report;", b"multipart/mixed;")
    with pytest.raises(NoReport):
        report_from_message(mixed)
