"""iprev: forward-confirmed reverse DNS (RFC 8601 §3, §2.7.3)."""

from __future__ import annotations

from kittiwake.dns import MockResolver
from kittiwake.iprev import MAX_NAMES, Status, check

V4 = "192.0.2.10"
V4_PTR = "10.2.0.192.in-addr.arpa"
V6 = "2001:db8::25"
V6_PTR = "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"


async def test_pass_ipv4() -> None:
    r = MockResolver()
    r.add("PTR", V4_PTR, "mail.example.com.")
    r.add("A", "mail.example.com", "192.0.2.9", V4)
    res = await check(r, V4)
    assert res.status is Status.PASS
    assert (res.host, res.names, res.ip) == ("mail.example.com", ("mail.example.com",), V4)
    assert not res.authentic
    assert res.to_json()["status"] == "pass"


async def test_pass_ipv6_and_mapped_ipv4() -> None:
    r = MockResolver()
    r.add("PTR", V6_PTR, "mx.example.net")
    r.add("AAAA", "mx.example.net", V6)
    assert (await check(r, V6)).status is Status.PASS
    r.add("PTR", V4_PTR, "mail.example.com")
    r.add("A", "mail.example.com", V4)
    res = await check(r, "::ffff:" + V4)
    assert res.status is Status.PASS and res.ip == V4


async def test_pass_with_second_name() -> None:
    r = MockResolver()
    r.add("PTR", V4_PTR, "first.example.com", "second.example.com")
    r.add("A", "first.example.com", "198.51.100.1")
    r.add("A", "second.example.com", V4)
    res = await check(r, V4)
    assert res.status is Status.PASS and res.host == "second.example.com"
    assert res.names == ("first.example.com", "second.example.com")


async def test_fail_mismatch_and_missing_forward() -> None:
    r = MockResolver()
    r.add("PTR", V4_PTR, "a.example.com", "b.example.com", "c.example.com")
    r.add("A", "a.example.com", "198.51.100.1")
    r.add("AAAA", "b.example.com", "2001:db8::1")  # exists, but no A: NODATA
    # c.example.com: NXDOMAIN
    res = await check(r, V4)
    assert res.status is Status.FAIL
    assert res.host is None
    assert res.names == ("a.example.com", "b.example.com", "c.example.com")
    assert "no PTR name" in res.reason


async def test_permerror_without_ptr() -> None:
    r = MockResolver()
    res = await check(r, V4)
    assert res.status is Status.PERMERROR and "NXDOMAIN" in res.reason
    r.add("TXT", V4_PTR, "exists")  # the name exists, no PTR: NODATA
    res = await check(r, V4)
    assert res.status is Status.PERMERROR and "no PTR records" in res.reason
    assert (await check(r, "not-an-ip")).status is Status.PERMERROR


async def test_temperror() -> None:
    r = MockResolver()
    r.fail("PTR", V4_PTR, "servfail")
    assert (await check(r, V4)).status is Status.TEMPERROR
    r2 = MockResolver()
    r2.add("PTR", V4_PTR, "a.example.com", "b.example.com")
    r2.add("A", "a.example.com", "198.51.100.1")
    r2.fail("A", "b.example.com", "timeout")
    res = await check(r2, V4)
    assert res.status is Status.TEMPERROR and "b.example.com" in res.reason
    # ... but a confirmed name wins over another's temporary failure.
    r2.add("A", "a.example.com", V4)
    assert (await check(r2, V4)).status is Status.PASS


async def test_name_limit() -> None:
    r = MockResolver()
    names = [f"h{i:02}.example.com" for i in range(15)]
    r.add("PTR", V4_PTR, *names)
    r.add("A", names[-1], V4)  # only the 15th name would confirm
    res = await check(r, V4)
    assert res.status is Status.FAIL
    assert len(res.names) == MAX_NAMES
    forward = [name for rdtype, name in r.queries if rdtype == "A"]
    assert len(forward) == MAX_NAMES
    assert (await check(r, V4, max_names=15)).status is Status.PASS


async def test_invalid_ptr_target_is_skipped() -> None:
    r = MockResolver()
    r.add("PTR", V4_PTR, "bad..name", "x" * 70 + ".example.com", "ok.example.com")
    r.add("A", "ok.example.com", V4)
    res = await check(r, V4)
    assert res.status is Status.PASS and res.host == "ok.example.com"


async def test_authentic() -> None:
    r = MockResolver()
    r.add("PTR", V4_PTR, "mail.example.com", authentic=True)
    r.add("A", "mail.example.com", V4, authentic=True)
    assert (await check(r, V4)).authentic
    r.set_authentic("mail.example.com", False)
    res = await check(r, V4)
    assert res.status is Status.PASS and not res.authentic
    r.set_authentic("mail.example.com", True)
    r.set_authentic(V4_PTR, False)
    assert not (await check(r, V4)).authentic
    # fail: authentic only when every forward answer was
    r2 = MockResolver()
    r2.all_authentic = True
    r2.add("PTR", V4_PTR, "a.example.com", "b.example.com")
    r2.add("A", "a.example.com", "198.51.100.1")
    r2.add("A", "b.example.com", "198.51.100.2")
    res = await check(r2, V4)
    assert res.status is Status.FAIL and res.authentic
    r2.all_authentic = False
    r2.set_authentic(V4_PTR)
    r2.set_authentic("a.example.com")
    assert not (await check(r2, V4)).authentic
