"""TLSA lookups through a real validating resolver: unbound in front of bind9 with
signed, unsigned and bogus zones on loopback (tests/integration/dnsworld.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integration.dnsworld import DEFAULT_TLSA_DATA, DNSWorld, add_default_records
from kittiwake.dane import TLSAStatus, lookup_tlsa, lookup_tlsa_for_host, tlsa_base_domains
from kittiwake.dns import StubResolver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world() -> Iterator[DNSWorld]:
    w = add_default_records(DNSWorld())
    w.add("mx2.signed.test", "A", "127.0.0.2")
    w.add("_25._tcp.mx2.signed.test", "TLSA", f"1 1 1 {DEFAULT_TLSA_DATA}")
    w.add("_25._tcp.mx.unsigned.test", "TLSA", f"3 1 1 {DEFAULT_TLSA_DATA}")
    w.add("_25._tcp.mx.bogus.test", "TLSA", f"3 1 1 {DEFAULT_TLSA_DATA}")
    w.add("out.signed.test", "CNAME", "mx.unsigned.test.")
    with w:
        yield w


@pytest.fixture
def resolver(world: DNSWorld) -> StubResolver:
    return world.stub_resolver()


async def test_signed_zone(resolver: StubResolver) -> None:
    result = await lookup_tlsa(resolver, "mx.signed.test")
    assert result.status is TLSAStatus.FOUND and result.authentic
    assert [str(r) for r in result.usable] == [f"3 1 1 {DEFAULT_TLSA_DATA}"]


async def test_signed_zone_only_unusable(resolver: StubResolver) -> None:
    result = await lookup_tlsa(resolver, "mx2.signed.test")
    assert result.status is TLSAStatus.UNUSABLE and result.tls_required


async def test_signed_zone_no_tlsa(resolver: StubResolver) -> None:
    result = await lookup_tlsa(resolver, "signed.test")
    assert result.status is TLSAStatus.NONE and result.authentic


async def test_unsigned_zone_records_are_ignored(resolver: StubResolver) -> None:
    result = await lookup_tlsa(resolver, "mx.unsigned.test")
    assert result.status is TLSAStatus.NONE and not result.authentic
    assert "not DNSSEC-authentic" in result.reason


async def test_bogus_zone_is_a_temporary_failure(resolver: StubResolver) -> None:
    result = await lookup_tlsa(resolver, "mx.bogus.test")
    assert result.status is TLSAStatus.TEMPERROR and not result.usable


async def test_secure_cname_chain_expanded_first(resolver: StubResolver) -> None:
    address = await resolver.a("alias.signed.test")
    assert address.authentic
    assert tlsa_base_domains("alias.signed.test", address) == [
        "mx.signed.test", "alias.signed.test"]
    result = await lookup_tlsa_for_host(resolver, "alias.signed.test", 25, address)
    assert result.status is TLSAStatus.FOUND and result.base_domain == "mx.signed.test"


async def test_cname_into_unsigned_zone_means_no_dane(resolver: StubResolver) -> None:
    address = await resolver.a("out.signed.test")
    assert not address.authentic
    result = await lookup_tlsa_for_host(resolver, "out.signed.test", 25, address)
    assert result.status is TLSAStatus.NONE and "DANE does not apply" in result.reason
