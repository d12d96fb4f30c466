"""Paths and addresses: RFC 5321 §4.1.2, SMTPUTF8 (RFC 6531), IDNA (RFC 5891)."""

from __future__ import annotations

import ipaddress

import pytest

from kittiwake.smtp import (
    Address,
    AddressSyntaxError,
    AddressTooLong,
    NonASCIIAddress,
    domain_forms,
    parse_address,
    parse_path,
)


def path(s: str, **kw: bool) -> Address | None:
    addr, end = parse_path(s, **kw)
    assert end == len(s)
    return addr


def test_simple_path() -> None:
    a = path("<Alice@Example.COM>")
    assert a == Address("Alice", "example.com", "example.com")
    assert str(a) == "Alice@example.com"


def test_null_path_only_where_allowed() -> None:
    assert path("<>", null_ok=True) is None
    with pytest.raises(AddressSyntaxError):
        path("<>")


def test_postmaster_without_domain() -> None:
    a = path("<PostMaster>", postmaster_ok=True)
    assert a is not None and a.is_postmaster and a.domain == ""
    with pytest.raises(AddressSyntaxError):
        path("<postmaster>")


def test_source_route_is_stripped() -> None:
    # RFC 5321 Appendix C: accept and ignore the route.
    a = path("<@relay1.example,@relay2.example:user@dest.example>")
    assert a == Address("user", "dest.example", "dest.example")


def test_quoted_localpart_decoded_and_requoted() -> None:
    a = path('<"john \\"jd\\" doe"@example.org>')
    assert a is not None
    assert a.localpart == 'john "jd" doe'
    assert str(a) == '"john \\"jd\\" doe"@example.org'
    # A quoted local-part that is a valid dot-string is written unquoted.
    assert str(path('<"plain"@example.org>')) == "plain@example.org"


@pytest.mark.parametrize(
    "text",
    ["<a..b@example.org>", "<.a@example.org>", "<a.@example.org>", "<a@>", "<@example.org>",
     "<a b@example.org>", "<a@exa_mple.org>", "<a@-example.org>", "<a@example.org",
     "<a@example.org.>", '<"unterminated@example.org>', "<a@[300.1.1.1]>",
     "<a@[IPv6:zz::1]>", "<a@[tag:foo]>"],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(AddressSyntaxError):
        parse_path(text)


def test_address_literals() -> None:
    a = path("<user@[192.0.2.1]>")
    assert a is not None and a.ip == ipaddress.IPv4Address("192.0.2.1")
    b = path("<user@[IPv6:2001:DB8:0:0::1]>")
    assert b is not None and b.domain == "[IPv6:2001:db8::1]"
    assert b.ip == ipaddress.IPv6Address("2001:db8::1")


def test_utf8_localpart_needs_smtputf8() -> None:
    with pytest.raises(NonASCIIAddress):
        parse_path("<jörg@example.org>")
    a = path("<jörg@example.org>", smtputf8=True)
    assert a is not None and a.localpart == "jörg" and not a.is_ascii


def test_idna_domain_both_forms() -> None:
    a = path("<user@bücher.example>", smtputf8=True)
    assert a is not None
    assert a.domain == "xn--bcher-kva.example"
    assert a.unicode_domain == "bücher.example"
    # The A-label spelling compares equal in canonical form.
    b = path("<user@XN--BCHER-KVA.example>")
    assert b is not None and b.unicode_domain == "bücher.example"
    assert a.canonical == b.canonical == "user@xn--bcher-kva.example"


def test_invalid_alabel_rejected() -> None:
    with pytest.raises(AddressSyntaxError):
        parse_path("<user@xn--zz-invalid.example>")


def test_unicode_domain_without_smtputf8() -> None:
    with pytest.raises(NonASCIIAddress):
        parse_path("<user@bücher.example>")


def test_length_limits() -> None:
    path("<" + "a" * 64 + "@example.org>")
    with pytest.raises(AddressTooLong):
        parse_path("<" + "a" * 65 + "@example.org>")
    # Domain of 4 labels of 63: 255 octets with dots is the maximum.
    long_domain = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(long_domain) == 253
    with pytest.raises(AddressTooLong):
        parse_path("<x@" + long_domain + ".cc>")
    # Path limit: 256 octets including brackets.
    with pytest.raises(AddressTooLong):
        parse_path("<" + "a" * 60 + "@" + long_domain + ">")


def test_utf8_localpart_length_in_octets() -> None:
    # 32 two-octet characters are 64 octets: allowed; 33 are 66: too long.
    path("<" + "é" * 32 + "@example.org>", smtputf8=True)
    with pytest.raises(AddressTooLong):
        parse_path("<" + "é" * 33 + "@example.org>", smtputf8=True)


def test_domain_forms() -> None:
    assert domain_forms("Münich.Example") == ("xn--mnich-kva.example", "münich.example")
    with pytest.raises(NonASCIIAddress):
        domain_forms("münich.example", utf8=False)


def test_parse_address_bare() -> None:
    assert parse_address("x@example.org") == Address("x", "example.org", "example.org")
    with pytest.raises(AddressSyntaxError):
        parse_address("x@example.org trailing")
