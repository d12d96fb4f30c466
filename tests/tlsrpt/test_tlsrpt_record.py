"""The TLSRPT policy record (RFC 8460 §3), with the RFC's own examples (§3.1)."""

from __future__ import annotations

import pytest

from kittiwake.tlsrpt import RecordError, is_tlsrpt_record, parse_record


def test_rfc_examples() -> None:
    mail = parse_record("v=TLSRPTv1;rua=mailto:reports@example.com")
    assert mail.rua == ("mailto:reports@example.com",)
    assert mail.addresses == ("reports@example.com",)
    web = parse_record("v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt")
    assert web.rua == ("https://reporting.example.com/v1/tlsrpt",) and web.addresses == ()


def test_several_uris_and_extensions() -> None:
    record = parse_record("v=TLSRPTv1; rua=mailto:a@example.org,mailto:B@Example.org; x=1;")
    assert record.addresses == ("a@example.org", "b@example.org")
    assert record.extensions == (("x", "1"),)


@pytest.mark.parametrize(("text", "why"), [
    ("v=TLSRPTv2; rua=mailto:a@example.org", "does not start with v=TLSRPTv1"),
    ("v=TLSRPTv1", "no rua"),
    ("v=TLSRPTv1; rua=ftp://example.org/", "neither mailto: nor https:"),
    ("v=TLSRPTv1; rua=mailto:a@example.org; rua=mailto:b@example.org", "more than one rua"),
    ("v=TLSRPTv1; rua", "not name=value"),
])
def test_invalid_records(text: str, why: str) -> None:
    with pytest.raises(RecordError, match=why):
        parse_record(text)


def test_other_txt_records_are_not_tlsrpt() -> None:
    assert is_tlsrpt_record("v=TLSRPTv1; rua=mailto:a@example.org")
    assert not is_tlsrpt_record("v=spf1 -all")
