"""DNS block lists (RFC 5782): names, listing, failures, and the MX refusing listed IPs."""

from __future__ import annotations

from kittiwake import dnsbl
from kittiwake.dns import MockResolver


def test_query_names_rfc5782_examples() -> None:
    assert dnsbl.query_name("192.0.2.99", "bl.example") == "99.2.0.192.bl.example"
    assert dnsbl.query_name("2001:db8:1:2:3:4:567:89ab", "ugly.example").startswith(
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.")


async def test_listed_not_listed_and_temperror() -> None:
    r = MockResolver()
    r.add("A", "2.0.0.127.bl.example", "127.0.0.2")
    r.add("TXT", "2.0.0.127.bl.example", "see https://bl.example/127.0.0.2")
    r.fail("A", "2.0.0.127.broken.example", "servfail")
    listed, clean, broken = await dnsbl.check_all(
        r, "127.0.0.2", ["bl.example", "other.example", "broken.example"])
    assert (listed.status, listed.reason) == (dnsbl.Status.FAIL,
                                              "see https://bl.example/127.0.0.2")
    assert clean.status is dnsbl.Status.PASS
    assert broken.status is dnsbl.Status.TEMPERROR
