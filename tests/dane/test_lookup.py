"""TLSA lookups for SMTP (RFC 7672 §2.2) with the mock resolver."""

from __future__ import annotations

from kittiwake.dane import (
    TLSAStatus,
    lookup_tlsa,
    lookup_tlsa_for_host,
    reference_identifiers,
    tlsa_base_domains,
    tlsa_name,
)
from kittiwake.dns import TLSA, MockResolver, RRType

EE = "3 1 1 " + "ab" * 32
TA = "2 0 1 " + "cd" * 32
PKIX = "1 1 1 " + "ef" * 32


def test_tlsa_name() -> None:
    assert tlsa_name("mx.example.org") == "_25._tcp.mx.example.org"
    assert tlsa_name("mx.example.org.", 465) == "_465._tcp.mx.example.org"


async def test_authentic_usable_records(mock_resolver: MockResolver) -> None:
    mock_resolver.add("TLSA", "_25._tcp.mx.example.org", EE, TA, PKIX, authentic=True)
    result = await lookup_tlsa(mock_resolver, "mx.example.org")
    assert result.status is TLSAStatus.FOUND and result.authentic
    assert [str(r) for r in result.usable] == [EE, TA]
    assert [str(r) for r in result.unusable] == [PKIX]
    assert result.dane_required and result.tls_required


async def test_non_authentic_records_are_ignored(mock_resolver: MockResolver) -> None:
    mock_resolver.add("TLSA", "_25._tcp.mx.example.org", EE, authentic=False)
    result = await lookup_tlsa(mock_resolver, "mx.example.org")
    assert result.status is TLSAStatus.NONE and not result.authentic
    assert result.usable == () and not result.dane_required and not result.tls_required
    assert "not DNSSEC-authentic" in result.reason


async def test_only_unusable_records_require_tls_without_dane(
        mock_resolver: MockResolver) -> None:
    mock_resolver.add("TLSA", "_25._tcp.mx.example.org", PKIX, "3 1 7 00", authentic=True)
    result = await lookup_tlsa(mock_resolver, "mx.example.org")
    assert result.status is TLSAStatus.UNUSABLE and result.tls_required
    assert not result.dane_required and len(result.unusable) == 2
    assert "PKIX-EE" in result.reason and "unknown matching type 7" in result.reason


async def test_nxdomain_and_nodata_mean_no_dane(mock_resolver: MockResolver) -> None:
    mock_resolver.add("A", "mx.example.org", "192.0.2.1", authentic=True)
    mock_resolver.add("TXT", "_25._tcp.mx2.example.org", "not tlsa", authentic=True)
    nx = await lookup_tlsa(mock_resolver, "mx.example.org")
    nodata = await lookup_tlsa(mock_resolver, "mx2.example.org")
    assert nx.status is nodata.status is TLSAStatus.NONE
    assert "no such name" in nx.reason and "no TLSA records" in nodata.reason


async def test_temporary_failure_does_not_fall_back(mock_resolver: MockResolver) -> None:
    mock_resolver.fail("TLSA", "_25._tcp.mx.example.org", "servfail")
    result = await lookup_tlsa(mock_resolver, "mx.example.org")
    assert result.status is TLSAStatus.TEMPERROR
    assert "SERVFAIL" in result.reason and not result.usable


async def test_invalid_host_is_no_dane(mock_resolver: MockResolver) -> None:
    result = await lookup_tlsa(mock_resolver, "bad..example")
    assert result.status is TLSAStatus.NONE and "invalid" in result.reason


def test_base_domains_follow_secure_cname() -> None:
    from kittiwake.dns import Answer

    secure = Answer("mx.example.org", RRType.A, (), True, cname_chain=("mx.hoster.net",))
    insecure = Answer("mx.example.org", RRType.A, (), False, cname_chain=("mx.hoster.net",))
    plain = Answer("mx.example.org", RRType.A, (), True)
    assert tlsa_base_domains("MX.example.org.", secure) == ["mx.hoster.net", "mx.example.org"]
    assert tlsa_base_domains("mx.example.org", plain) == ["mx.example.org"]
    assert tlsa_base_domains("mx.example.org", insecure) == []


async def test_expanded_name_first_then_original(mock_resolver: MockResolver) -> None:
    mock_resolver.cname("mx.example.org", "mx.hoster.net", authentic=True)
    mock_resolver.add("A", "mx.hoster.net", "192.0.2.1", authentic=True)
    mock_resolver.add("TLSA", "_25._tcp.mx.example.org", TA, authentic=True)
    address = await mock_resolver.a("mx.example.org")
    assert address.authentic
    result = await lookup_tlsa_for_host(mock_resolver, "mx.example.org", 25, address)
    assert result.base_domain == "mx.example.org" and result.status is TLSAStatus.FOUND
    assert [name for _t, name in mock_resolver.queries if _t is RRType.TLSA] == [
        "_25._tcp.mx.hoster.net", "_25._tcp.mx.example.org"]

    mock_resolver.add("TLSA", "_25._tcp.mx.hoster.net", EE, authentic=True)
    result = await lookup_tlsa_for_host(mock_resolver, "mx.example.org", 25, address)
    assert result.base_domain == "mx.hoster.net"
    assert result.usable == (TLSA(3, 1, 1, bytes.fromhex("ab" * 32)),)


async def test_expanded_name_failure_is_temporary(mock_resolver: MockResolver) -> None:
    mock_resolver.cname("mx.example.org", "mx.hoster.net", authentic=True)
    mock_resolver.add("A", "mx.hoster.net", "192.0.2.1", authentic=True)
    mock_resolver.add("TLSA", "_25._tcp.mx.example.org", TA, authentic=True)
    mock_resolver.fail("TLSA", "_25._tcp.mx.hoster.net", "timeout")
    address = await mock_resolver.a("mx.example.org")
    result = await lookup_tlsa_for_host(mock_resolver, "mx.example.org", 25, address)
    assert result.status is TLSAStatus.TEMPERROR


async def test_insecure_host_makes_no_tlsa_query(mock_resolver: MockResolver) -> None:
    mock_resolver.add("A", "mx.example.org", "192.0.2.1", authentic=False)
    mock_resolver.add("TLSA", "_25._tcp.mx.example.org", EE, authentic=True)
    address = await mock_resolver.a("mx.example.org")
    result = await lookup_tlsa_for_host(mock_resolver, "mx.example.org", 25, address)
    assert result.status is TLSAStatus.NONE and "DANE does not apply" in result.reason
    assert all(kind is not RRType.TLSA for kind, _n in mock_resolver.queries)


def test_reference_identifiers() -> None:
    assert reference_identifiers("MX.example.org.", "mx.hoster.net", "example.org") == [
        "mx.hoster.net", "mx.example.org", "example.org"]
    assert reference_identifiers("mx.example.org", "mx.example.org") == ["mx.example.org"]
