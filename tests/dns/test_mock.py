"""MockResolver: the in-memory resolver unit tests of SPF, DKIM, DMARC... build on."""

import ipaddress
import time

import pytest

from kittiwake.dns import (
    MX,
    DNSTemporaryError,
    ExtendedError,
    InvalidName,
    MockResolver,
    RRType,
    Status,
)


async def test_records_and_authentic_flag(mock_resolver: MockResolver) -> None:
    mock_resolver.add("TXT", "example.org", "v=spf1 -all", authentic=True)
    mock_resolver.add("txt", "insecure.example", "hello")
    answer = await mock_resolver.txt("Example.ORG.")
    assert answer.records == ("v=spf1 -all",)
    assert answer.status is Status.FOUND
    assert answer.authentic is True
    assert (await mock_resolver.txt("insecure.example")).authentic is False
    assert mock_resolver.queries == [(RRType.TXT, "Example.ORG"), (RRType.TXT, "insecure.example")]


async def test_nodata_versus_nxdomain(mock_resolver: MockResolver) -> None:
    mock_resolver.add("A", "mx.example.org", "192.0.2.1")
    mock_resolver.add("TXT", "sel._domainkey.example.org", "v=DKIM1; p=")
    nodata = await mock_resolver.mx("mx.example.org")
    assert (nodata.status, nodata.records, nodata.nodata, nodata.nxdomain) == (
        Status.NODATA, (), True, False)
    nx = await mock_resolver.mx("nope.example.org")
    assert (nx.status, nx.nxdomain, bool(nx)) == (Status.NXDOMAIN, True, False)
    # RFC 8020: a name with names below it exists (an empty non-terminal).
    assert (await mock_resolver.txt("_domainkey.example.org")).status is Status.NODATA


async def test_cname_chain_is_followed(mock_resolver: MockResolver) -> None:
    mock_resolver.cname("www.example.org", "web.example.org", authentic=True)
    mock_resolver.cname("web.example.org", "host.example.net", authentic=True)
    mock_resolver.add("A", "host.example.net", "192.0.2.7", authentic=True)
    answer = await mock_resolver.a("www.example.org")
    assert answer.records == (ipaddress.IPv4Address("192.0.2.7"),)
    assert answer.cname_chain == ("web.example.org", "host.example.net")
    assert answer.canonical_name == "host.example.net"
    assert answer.authentic is True
    # One insecure step makes the whole answer not authentic.
    mock_resolver.set_authentic("web.example.org", False)
    assert (await mock_resolver.a("www.example.org")).authentic is False
    # A CNAME query returns the alias itself.
    own = await mock_resolver.cname("www.example.org")
    assert own.records == ("web.example.org",) and own.cname_chain == ()
    # add("CNAME", ...) is the same as cname(...).
    mock_resolver.add("CNAME", "mail.example.org", "host.example.net.")
    assert (await mock_resolver.a("mail.example.org")).cname_chain == ("host.example.net",)
    # A CNAME to nowhere: NXDOMAIN for the target, chain reported.
    mock_resolver.cname("dangling.example.org", "gone.example.org")
    dangling = await mock_resolver.txt("dangling.example.org")
    assert dangling.status is Status.NXDOMAIN
    assert dangling.cname_chain == ("gone.example.org",)


async def test_cname_loop_is_a_temporary_error(mock_resolver: MockResolver) -> None:
    mock_resolver.cname("a.example", "b.example")
    mock_resolver.cname("b.example", "a.example")
    with pytest.raises(DNSTemporaryError, match="CNAME loop"):
        await mock_resolver.a("a.example")


async def test_injected_servfail_and_timeout(mock_resolver: MockResolver) -> None:
    expired = (ExtendedError(7, "signature expired"),)
    mock_resolver.add("TXT", "broken.example", "unreachable")
    mock_resolver.fail("TXT", "broken.example", "servfail", extended=expired)
    mock_resolver.fail(None, "slow.example", "timeout")
    with pytest.raises(DNSTemporaryError) as info:
        await mock_resolver.txt("broken.example")
    assert info.value.reason == "SERVFAIL"
    assert info.value.extended_errors == expired
    assert str(info.value) == (
        "TXT broken.example: SERVFAIL (EDE 7 (Signature Expired): signature expired)")
    assert info.value.to_json()["status"] == "temperror"
    # Only the failing type fails.
    assert (await mock_resolver.a("broken.example")).status is Status.NODATA
    for lookup in (mock_resolver.a, mock_resolver.mx, mock_resolver.tlsa):
        with pytest.raises(DNSTemporaryError, match="timeout"):
            await lookup("slow.example")


async def test_failure_behind_a_cname(mock_resolver: MockResolver) -> None:
    mock_resolver.cname("alias.example", "target.example")
    mock_resolver.fail("A", "target.example")
    with pytest.raises(DNSTemporaryError):
        await mock_resolver.a("alias.example")


async def test_ips_merges_aaaa_then_a(mock_resolver: MockResolver) -> None:
    mock_resolver.add("A", "mx.example", "192.0.2.1", "192.0.2.2", authentic=True)
    mock_resolver.add("AAAA", "mx.example", "2001:db8::1", authentic=True)
    answer = await mock_resolver.ips("mx.example")
    assert [str(ip) for ip in answer.records] == ["2001:db8::1", "192.0.2.1", "192.0.2.2"]
    assert answer.authentic is True and answer.status is Status.FOUND
    mock_resolver.add("A", "v4only.example", "192.0.2.9")
    assert [str(ip) for ip in await mock_resolver.ips("v4only.example")] == ["192.0.2.9"]
    mock_resolver.add("TXT", "noaddr.example", "x")
    assert (await mock_resolver.ips("noaddr.example")).status is Status.NODATA
    assert (await mock_resolver.ips("none.example")).status is Status.NXDOMAIN
    mock_resolver.add("AAAA", "v6.example", "2001:db8::3", authentic=True)
    assert (await mock_resolver.ips("v6.example")).authentic is True
    mock_resolver.fail("AAAA", "half.example")
    mock_resolver.add("A", "half.example", "192.0.2.4")
    with pytest.raises(DNSTemporaryError):
        await mock_resolver.ips("half.example")


async def test_typed_values_and_mx_order(mock_resolver: MockResolver) -> None:
    mock_resolver.add("MX", "example.org", "20 mx2.example.org.", "10 mx1.example.org")
    mock_resolver.add("MX", "null.example", "0 .")
    mock_resolver.add("TLSA", "_25._tcp.mx1.example.org", "3 1 1 ab cd")
    mock_resolver.add("SRV", "_imaps._tcp.example.org", "0 1 993 imap.example.org.")
    mock_resolver.add("CAA", "example.org", '0 issue "ca.example"')
    mock_resolver.add("PTR", "1.2.0.192.in-addr.arpa", "mx1.example.org.")
    mx = await mock_resolver.mx("example.org")
    assert [str(r) for r in mx] == ["10 mx1.example.org", "20 mx2.example.org"]
    null = (await mock_resolver.mx("null.example")).records
    assert null == (MX(0, ""),) and null[0].is_null and str(null[0]) == "0 ."
    tlsa = (await mock_resolver.tlsa("_25._tcp.mx1.example.org")).records[0]
    assert (tlsa.usage, tlsa.selector, tlsa.mtype, tlsa.data) == (3, 1, 1, b"\xab\xcd")
    srv = (await mock_resolver.srv("_imaps._tcp.example.org")).records[0]
    assert (srv.port, srv.target) == (993, "imap.example.org")
    caa = (await mock_resolver.caa("example.org")).records[0]
    assert (caa.tag, caa.value) == ("issue", "ca.example")
    assert (await mock_resolver.ptr("192.0.2.1")).records == ("mx1.example.org",)
    assert (await mock_resolver.lookup("ptr", "192.0.2.1")).records == ("mx1.example.org",)
    assert (await mock_resolver.lookup("MX", "example.org")).records == mx.records


async def test_bad_names_raise_invalid_name_before_any_query(
        mock_resolver: MockResolver) -> None:
    for bad in ("a..example", "x" * 64 + ".example", "☃.example"):
        with pytest.raises(InvalidName):
            await mock_resolver.txt(bad)
    with pytest.raises(InvalidName):
        await mock_resolver.ptr("not-an-ip")
    with pytest.raises(ValueError, match="unknown record type 'SOA'"):
        await mock_resolver.lookup("SOA", "example.org")
    assert mock_resolver.queries == []


async def test_answer_json_shape(mock_resolver: MockResolver) -> None:
    mock_resolver.add("MX", "example.org", "0 .", authentic=True)
    start = time.monotonic()
    data = (await mock_resolver.mx("example.org")).to_json()
    assert time.monotonic() - start < 1
    assert data == {
        "name": "example.org", "type": "MX", "status": "found", "authentic": True,
        "records": [{"preference": 0, "exchange": "", "null": True}],
        "cname_chain": [], "extended_errors": [], "ttl": 0,
    }
