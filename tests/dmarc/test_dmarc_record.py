"""DMARC record parsing (RFC 7489 §6.3, §6.4, §6.6.3 step 6)."""

from __future__ import annotations

import pytest

from kittiwake.dmarc import (
    Alignment,
    Disposition,
    InvalidRecord,
    NotDMARCRecord,
    ReportURI,
    is_dmarc_record,
    parse_record,
)


def test_full_record() -> None:
    p = parse_record(
        "v=DMARC1; p=quarantine; sp=reject; rua=mailto:agg@example.com!10m,"
        "mailto:other@example.net; ruf=mailto:fail@example.com; adkim=s; aspf=s;"
        " pct=25; fo=1:d; rf=afrf; ri=3600"
    )
    assert p.policy is Disposition.QUARANTINE
    assert p.subdomain_policy is Disposition.REJECT
    assert p.percentage == 25
    assert p.adkim is Alignment.STRICT and p.aspf is Alignment.STRICT
    assert p.aggregate_uris == (
        ReportURI("mailto:agg@example.com", 10 * 2**20, "10m"),
        ReportURI("mailto:other@example.net"),
    )
    assert p.aggregate_uris[0].address == "agg@example.com"
    assert p.failure_uris[0].uri == "mailto:fail@example.com"
    assert p.failure_options == ("1", "d")
    assert p.report_interval == 3600
    assert p.warnings == ()


def test_defaults() -> None:
    p = parse_record("v=DMARC1; p=none")
    assert (p.policy, p.subdomain_policy, p.percentage) == (Disposition.NONE, None, 100)
    assert (p.adkim, p.aspf) == (Alignment.RELAXED, Alignment.RELAXED)
    assert (p.failure_options, p.report_formats, p.report_interval) == (("0",), ("afrf",), 86400)
    assert p.aggregate_uris == () and p.failure_uris == ()


def test_rfc_example_and_case_rules() -> None:
    # Tag names and p/sp/adkim values are ABNF quoted strings: case-insensitive.
    p = parse_record("v=DMARC1;P=Reject;SP=NONE;ADKIM=S;  pct = 50 ;")
    assert p.policy is Disposition.REJECT
    assert p.subdomain_policy is Disposition.NONE
    assert p.adkim is Alignment.STRICT
    assert p.percentage == 50


@pytest.mark.parametrize(
    "text",
    [
        "",
        "p=reject; v=DMARC1",  # v must be first
        "v=DMARC2; p=reject",
        "v=dmarc1; p=reject",  # %x44 %x4d ...: the version is case-sensitive
        "v=DMARC1p=reject",
        "v=spf1 -all",
        "DMARC1; p=reject",
    ],
)
def test_not_dmarc(text: str) -> None:
    assert not is_dmarc_record(text)
    with pytest.raises(NotDMARCRecord):
        parse_record(text)


@pytest.mark.parametrize(
    "text",
    [
        "v=DMARC1",
        "v=DMARC1;",
        "v=DMARC1; p=block",
        "v=DMARC1; sp=reject",  # p missing
        "v=DMARC1; p=reject; sp=bogus",  # invalid sp, no rua
        "v=DMARC1; p=reject; p=none",  # RFC 6376 §3.2: duplicate tag invalidates
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidRecord):
        parse_record(text)


def test_bad_rua_with_good_p_is_a_warning() -> None:
    p = parse_record("v=DMARC1; p=none; rua=not a uri")
    assert p.policy is Disposition.NONE
    assert p.aggregate_uris == ()
    assert p.warnings == ("rua: 'not a uri' is not a URI; ignored",)


@pytest.mark.parametrize(
    "text",
    ["v=DMARC1; rua=mailto:r@example.com", "v=DMARC1; p=drop; rua=mailto:r@example.com",
     "v=DMARC1; p=reject; sp=drop; rua=mailto:r@example.com"],
)
def test_bad_policy_with_rua_acts_as_none(text: str) -> None:
    # §6.6.3 step 6.1
    p = parse_record(text)
    assert p.policy is Disposition.NONE and p.subdomain_policy is None
    assert p.substituted
    assert any("p=none" in w for w in p.warnings)


@pytest.mark.parametrize(
    ("tag", "attr", "default"),
    [
        ("pct=101", "percentage", 100),
        ("pct=-1", "percentage", 100),
        ("pct=1000", "percentage", 100),
        ("pct=", "percentage", 100),
        ("adkim=x", "adkim", Alignment.RELAXED),
        ("aspf=strict", "aspf", Alignment.RELAXED),
        ("ri=4294967296", "report_interval", 86400),
        ("ri=1h", "report_interval", 86400),
        ("fo=2", "failure_options", ("0",)),
        ("rf=iodef", "report_formats", ("afrf",)),
    ],
)
def test_bad_optional_tags_fall_back_to_defaults(tag: str, attr: str, default: object) -> None:
    # §6.3: syntax errors in the remainder are discarded in favour of defaults.
    p = parse_record(f"v=DMARC1; p=reject; {tag}")
    assert getattr(p, attr) == default
    assert p.policy is Disposition.REJECT
    assert p.warnings


def test_edge_percentages() -> None:
    assert parse_record("v=DMARC1; p=reject; pct=0").percentage == 0
    assert parse_record("v=DMARC1; p=reject; pct=100").percentage == 100
    assert parse_record("v=DMARC1; p=reject; pct=007").percentage == 7


def test_unknown_tags_and_junk_ignored() -> None:
    p = parse_record("v=DMARC1; p=reject; np=none; t=y; psd=n; junk; x-y=z")
    assert p.policy is Disposition.REJECT
    assert any("junk" in w for w in p.warnings)


def test_uri_sizes_and_bad_uris() -> None:
    p = parse_record(
        "v=DMARC1; p=none; rua=mailto:a@example.com!1k , mailto:b@example.com!2G,"
        " https://r.example/x!5, mailto:c@example.com!5x, nouri, mailto:d@example.com!"
        "99999999999999999999999"
    )
    assert [(u.uri, u.max_size) for u in p.aggregate_uris] == [
        ("mailto:a@example.com", 1024),
        ("mailto:b@example.com", 2 * 2**30),
        ("https://r.example/x", 5),
    ]
    assert len(p.warnings) == 3


def test_to_text_round_trip() -> None:
    text = ("v=DMARC1; p=reject; sp=quarantine; rua=mailto:a@example.com!10m; "
            "ruf=mailto:f@example.com; adkim=s; aspf=s; ri=3600; fo=1; pct=20")
    p = parse_record(text)
    assert p.to_text() == text
    assert parse_record(p.to_text()) == p
    assert parse_record("v=DMARC1;p=none").to_text() == "v=DMARC1; p=none"


def test_applicable_policy() -> None:
    p = parse_record("v=DMARC1; p=reject; sp=none")
    assert p.applicable(subdomain=False) is Disposition.REJECT
    assert p.applicable(subdomain=True) is Disposition.NONE
    q = parse_record("v=DMARC1; p=quarantine")
    assert q.applicable(subdomain=True) is Disposition.QUARANTINE
