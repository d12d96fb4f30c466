"""``kittiwake dane dial`` against kittiwake's SMTP server with TLSA records from a mock
resolver (RFC 7672): matching, non-matching, insecure, failing, and no STARTTLS."""

from __future__ import annotations

import json

from kittiwake.dane import MatchingType, Selector, Usage, describe, record_for
from kittiwake.dns import MockResolver

from .conftest import Servers, invoke

HOST = "mx.example.org"


def world(port: int, *tlsa: object, authentic: bool = True,
          addresses_authentic: bool = True) -> MockResolver:
    r = MockResolver()
    r.add("A", HOST, "127.0.0.1", authentic=addresses_authentic)
    r.add("AAAA", HOST)  # NODATA, same authenticity as the A record
    if addresses_authentic:
        r.set_authentic(HOST)
    if tlsa:
        r.add("TLSA", f"_{port}._tcp.{HOST}", *tlsa, authentic=authentic)
    return r


async def test_dane_ee_record_matches(servers: Servers) -> None:
    record = record_for(servers.leaf_der)
    result = await invoke(["dane", "dial", f"{HOST}:{servers.tls_port}"],
                          world(servers.tls_port, record))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Addresses: 127.0.0.1 (DNSSEC-authentic)" in out
    assert f"TLSA _{servers.tls_port}._tcp.{HOST}: found (DNSSEC-authentic)" in out
    assert f"Matched: {describe(record)}" in out and "(DANE-EE SPKI SHA2-256)" in out
    assert "Connected to 127.0.0.1, STARTTLS" in out and "TLS: TLSv1.3" in out
    assert "DNSSEC: lookups were all DNSSEC-authentic" in out
    assert "VERIFIED: server certificate matches" in out


async def test_dane_ta_record_matches_with_name_check(servers: Servers) -> None:
    # The server sends only its own certificate: a "2 1 0" record carries the
    # anchor's whole public key (RFC 7672 §3.1.2).
    record = record_for(servers.ca_der, Usage.DANE_TA, Selector.SPKI, MatchingType.FULL)
    result = await invoke(["dane", "dial", "--json", f"{HOST}:{servers.tls_port}"],
                          world(servers.tls_port, record))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["verified"] is True and report["dnssec"] is True
    assert report["verification"]["usage"] == "DANE-TA"
    assert report["verification"]["name"] == HOST
    assert report["verification"]["matched_description"] == describe(record)
    assert report["tls"]["version"] == "TLSv1.3" and report["tls"]["cipher"]


async def test_non_matching_record(servers: Servers) -> None:
    wrong = record_for(servers.ca_der)  # the CA's key as if it were the server's (3 1 1)
    result = await invoke(["dane", "dial", f"{HOST}:{servers.tls_port}"],
                          world(servers.tls_port, wrong))
    assert result.exit_code == 2, result.output
    assert "Matched:" not in result.output
    assert "NOT verified: no TLSA record matched" in result.output


async def test_insecure_tlsa_is_ignored(servers: Servers) -> None:
    result = await invoke(["dane", "dial", "--json", f"{HOST}:{servers.tls_port}"],
                          world(servers.tls_port, record_for(servers.leaf_der),
                                authentic=False))
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert report["verified"] is False and report["dnssec"] is False
    assert report["tlsa"]["status"] == "none"
    assert "not DNSSEC-authentic" in report["reason"]


async def test_insecure_addresses_mean_no_dane(servers: Servers) -> None:
    result = await invoke(["dane", "dial", f"{HOST}:{servers.tls_port}"],
                          world(servers.tls_port, record_for(servers.leaf_der),
                                addresses_authentic=False))
    assert result.exit_code == 2
    assert "Addresses: 127.0.0.1 (NOT DNSSEC-authentic)" in result.output
    assert "NOT verified: address records of mx.example.org are not DNSSEC-authentic" \
        in result.output
    # The chain is still checked, so the operator sees it would match.
    assert "the chain does match" in result.output


async def test_no_tlsa_records(servers: Servers) -> None:
    result = await invoke(["dane", "dial", f"{HOST}:{servers.tls_port}"],
                          world(servers.tls_port))
    assert result.exit_code == 2
    assert "NOT verified: no DANE:" in result.output


async def test_tlsa_servfail_is_temporary(servers: Servers) -> None:
    r = world(servers.tls_port)
    r.fail("TLSA", f"_{servers.tls_port}._tcp.{HOST}")
    result = await invoke(["dane", "dial", f"{HOST}:{servers.tls_port}"], r)
    assert result.exit_code == 3
    assert "TLSA lookup of" in result.output and "SERVFAIL" in result.output
    assert "Connected" not in result.output


async def test_server_without_starttls(servers: Servers) -> None:
    result = await invoke(["dane", "dial", f"{HOST}:{servers.plain_port}"],
                          world(servers.plain_port, record_for(servers.leaf_der)))
    assert result.exit_code == 2
    assert "Connected to 127.0.0.1, no STARTTLS" in result.output
    assert "NOT verified: STARTTLS not offered by mx.example.org" in result.output


async def test_ip_address_is_a_user_error() -> None:
    result = await invoke(["dane", "dial", "127.0.0.1"], MockResolver())
    assert result.exit_code == 1
    assert "DANE needs a host name" in result.output
