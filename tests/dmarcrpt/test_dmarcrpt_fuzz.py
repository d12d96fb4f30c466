"""Whatever arrives, the parser and the extractor answer with a report or a ReportError."""

from __future__ import annotations

import gzip

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import fixture
from kittiwake.dmarcrpt import ReportError, parse_report, report_from_message

SAMPLES = [fixture(n) for n in ("google.xml", "microsoft.xml", "yahoo.xml",
                                "namespaced-0.1.xml")]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLES), st.sampled_from([b"bogus", b"utf-16", b"latin-1", b"x" * 300]))
def test_declared_encodings(sample: bytes, encoding: bytes) -> None:
    data = b'<?xml version="1.0" encoding="' + encoding + b'"?>' + sample.split(b"?>", 1)[1]
    try:
        parse_report(data)
    except ReportError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLES), st.integers(0, 4000), st.integers(0, 60), st.binary(max_size=40))
def test_mutated_reports_parse_or_are_refused(sample: bytes, at: int, cut: int,
                                              junk: bytes) -> None:
    at = at % (len(sample) + 1)
    data = sample[:at] + junk + sample[at + cut:]
    try:
        parse_report(data)
    except ReportError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(["application/gzip", "application/zip",
                                                 "text/xml", "application/octet-stream"]))
def test_arbitrary_attachments_never_crash(payload: bytes, ctype: str) -> None:
    for body in (payload, gzip.compress(payload)):
        message = (b"Content-Type: " + ctype.encode() + b'; name="r.xml.gz"\r\n\r\n' + body)
        try:
            report_from_message(message)
        except ReportError:
            pass
