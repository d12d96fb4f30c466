"""Parsing and selecting SPF records (RFC 7208 §4.5, §4.6, §5, §6, §12)."""

from __future__ import annotations

import ipaddress
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kittiwake.spf import (
    Mechanism,
    Modifier,
    MultipleRecords,
    Qualifier,
    RecordSyntaxError,
    parse_record,
    select_record,
)


def test_terms_qualifiers_and_modifiers() -> None:
    record = parse_record(
        "v=spf1 +a -mx:mail.example.org/24 ~ptr ?include:_spf.example.net"
        " ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{ir}.bl.example.com"
        " redirect=_spf.example.com exp=explain.%{d} x-custom=%{d} -all"
    )
    kinds = [(m.qualifier, m.kind) for m in record.mechanisms]
    assert kinds == [
        (Qualifier.PASS, "a"), (Qualifier.FAIL, "mx"), (Qualifier.SOFTFAIL, "ptr"),
        (Qualifier.NEUTRAL, "include"), (Qualifier.PASS, "ip4"), (Qualifier.PASS, "ip6"),
        (Qualifier.PASS, "exists"), (Qualifier.FAIL, "all"),
    ]
    mx = record.mechanisms[1]
    assert mx.domain_spec is not None and mx.domain_spec.text == "mail.example.org"
    assert (mx.ip4_cidr, mx.ip6_cidr) == (24, 128)
    assert record.mechanisms[4].network == ipaddress.ip_network("192.0.2.0/24")
    assert record.mechanisms[5].network == ipaddress.ip_network("2001:db8::/32")
    assert record.redirect is not None and record.redirect.text == "_spf.example.com"
    assert record.exp is not None and record.exp.text == "explain.%{d}"
    unknown = [t for t in record.terms if isinstance(t, Modifier) and not t.known]
    assert [t.name for t in unknown] == ["x-custom"]
    assert record.dns_terms == 6  # a mx ptr include exists + redirect (§4.6.4)


@pytest.mark.parametrize(("term", "ip4", "ip6"), [
    ("a", 32, 128), ("a/24", 24, 128), ("a//64", 32, 64), ("a/24//64", 24, 64),
    ("a:example.com/0//0", 0, 0), ("mx:%{d}/30", 30, 128), ("MX//128", 32, 128),
])
def test_dual_cidr_lengths(term: str, ip4: int, ip6: int) -> None:
    mechanism = parse_record(f"v=spf1 {term}").mechanisms[0]
    assert (mechanism.ip4_cidr, mechanism.ip6_cidr) == (ip4, ip6)


def test_ip_networks_keep_host_bits_out() -> None:
    m = parse_record("v=spf1 ip4:192.0.2.77/24").mechanisms[0]
    assert m.network == ipaddress.ip_network("192.0.2.0/24")


@pytest.mark.parametrize("bad", [
    "v=spf1 a/33", "v=spf1 a//129", "v=spf1 a/024", "v=spf1 a/", "v=spf1 a:", "v=spf1 mx:",
    "v=spf1 ip4:192.0.2.1/33", "v=spf1 ip4:192.0.2", "v=spf1 ip4:192.0.2.01",
    "v=spf1 ip4:192.0.2.1//32", "v=spf1 ip4", "v=spf1 ip6:2001:db8::/129",
    "v=spf1 ip6:192.0.2.1", "v=spf1 ip6:fe80::1%eth0", "v=spf1 ip4:192.0.2.1:25",
    "v=spf1 include", "v=spf1 include:", "v=spf1 include:example.com/24", "v=spf1 exists",
    "v=spf1 exists:example.com/24", "v=spf1 ptr/24", "v=spf1 all.", "v=spf1 all:x",
    "v=spf1 all/8", "v=spf1 foo", "v=spf1 -redirect=x.example.com", "v=spf1 =x",
    "v=spf1 redirect=", "v=spf1 exp=", "v=spf1 redirect=a.example.com redirect=b.example.com",
    "v=spf1 exp=a.example.com Exp=b.example.com", "v=spf1 x-foo=%(d)", "v=spf1 a:foo",
    "v=spf1 a:example.com\rptr", "v=spf1 ip4:192.0.2.5\n", "v=spf1 \u0080a", "v=spf1 a:%{c}.x.com",
    "v=spf1 1x=y", "v=spf1 a:example.123",
])
def test_syntax_errors(bad: str) -> None:
    with pytest.raises(RecordSyntaxError):
        parse_record(bad)


def test_unknown_modifiers_are_ignored_and_names_are_case_insensitive() -> None:
    record = parse_record("V=SPF1 Redirect=_spf.example.com foo.bar-baz_1=whatever:%{d} ")
    assert record.redirect is not None
    assert record.mechanisms == ()


def test_select_record() -> None:
    # RFC 7208 §4.5: "v=spf10" is not a version "v=spf1" record; other TXT is ignored.
    assert select_record(["google-site-verification=x", "v=spf10 -all", "v=spf1 -all"]) == (
        "v=spf1 -all")
    assert select_record(["v=spf1"]) == "v=spf1"
    assert select_record(["v=spf1-all", "spf1 -all"]) is None
    assert select_record([]) is None
    with pytest.raises(MultipleRecords):
        select_record(["v=spf1 -all", "v=spf1 +all"])


def test_records_render_as_json() -> None:
    data = parse_record("v=spf1 mx/24 -all x=y").to_json()
    assert [t["text"] for t in data["terms"]] == ["mx/24", "-all", "x=y"]
    assert data["terms"][0]["ip4_cidr"] == 24


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("v=spf1 :/.%{}-+~?_axmiptrdlsh0123456789,"
                                             "\x00\u00e9")), max_size=80))
def test_parsing_random_text_raises_only_syntax_errors(tail: str) -> None:
    try:
        record = parse_record("v=spf1 " + tail)
    except RecordSyntaxError:
        return
    assert all(isinstance(t, Mechanism | Modifier) for t in record.terms)


def test_huge_records_parse_in_linear_time() -> None:
    record = "v=spf1 " + " ".join(f"ip4:192.0.{i % 256}.{i // 256 % 256}" for i in range(20000))
    started = time.perf_counter()
    assert len(parse_record(record).mechanisms) == 20000
    slashes = "v=spf1 a:" + "/1" * 50000
    with pytest.raises(RecordSyntaxError):
        parse_record(slashes)
    assert time.perf_counter() - started < 5
