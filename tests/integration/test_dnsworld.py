"""kittiwake's DNS layer against a real validating resolver (unbound) and bind9.

The CLI runs as a subprocess, as a user would run it, with KITTIWAKE_DNS
pointing at the world's unbound: DNSSEC status (RFC 4035 §3.2.3 AD bit),
extended DNS errors (RFC 8914), NXDOMAIN vs NODATA (RFC 2308), null MX
(RFC 7505), CNAME chains and the typed record formats.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kittiwake.dns import (
    DNSTemporaryError,
    Nameserver,
    Status,
    StubResolver,
    resolver_validates,
)

from . import dnsworld
from .dnsworld import DEFAULT_TLSA_DATA, DNSWorld, DNSWorldError, MakeDNSWorld

pytestmark = pytest.mark.integration


def kittiwake_command() -> list[str]:
    """The installed ``kittiwake`` script next to this Python, else the same via ``-c``."""
    script = Path(sys.executable).parent / "kittiwake"
    if script.exists():
        return [str(script)]
    # As the console script does; `python -m kittiwake.cli.main` drops the exit status.
    return [sys.executable, "-c", "import sys; from kittiwake.cli.main import main; "
            "sys.exit(main())"]


def lookup(world: DNSWorld, rdtype: str, name: str, *, as_json: bool = True
           ) -> tuple[int, Any, str]:
    """Run ``kittiwake dns lookup``; returns (exit status, parsed JSON or stdout, stderr)."""
    args = [*kittiwake_command(), "dns", "lookup", *(["--json"] if as_json else []),
            rdtype, name]
    proc = subprocess.run(args, env=world.env, capture_output=True, text=True, timeout=30)
    out: Any = proc.stdout
    if as_json and proc.stdout.strip():
        out = json.loads(proc.stdout)
    return proc.returncode, out, proc.stderr


def test_signed_zone_txt_is_authentic(dns_world: DNSWorld) -> None:
    code, out, _ = lookup(dns_world, "txt", "_dmarc.signed.test")
    assert code == 0
    assert out["status"] == "found"
    assert out["authentic"] is True
    assert out["records"] == ["v=DMARC1; p=reject"]
    assert out["ttl"] == dnsworld.DEFAULT_TTL


def test_unsigned_zone_txt_is_not_authentic(dns_world: DNSWorld) -> None:
    code, out, _ = lookup(dns_world, "txt", "_dmarc.unsigned.test")
    assert code == 0
    assert out["records"] == ["v=DMARC1; p=none"]
    assert out["authentic"] is False


def test_bogus_zone_is_a_temporary_error_with_extended_error(dns_world: DNSWorld) -> None:
    # A name nobody else asks: a repeated question is answered from unbound's
    # cache with EDE 6 "DNSSEC Bogus" instead (see the stub resolver test).
    code, out, _ = lookup(dns_world, "txt", "ede-json.bogus.test")
    assert code == 3
    assert out["status"] == "temperror"
    assert out["authentic"] is False
    assert "SERVFAIL" in out["error"]
    # unbound sends RFC 8914 EDE 7 for RRSIGs past their expiration.
    codes = {(e["code"], e["name"]) for e in out["extended_errors"]}
    assert codes == {(7, "Signature Expired")}
    assert "signature expired" in out["extended_errors"][0]["text"]


def test_bogus_zone_human_output_names_the_extended_error(dns_world: DNSWorld) -> None:
    code, out, err = lookup(dns_world, "mx", "ede-text.bogus.test", as_json=False)
    assert code == 3
    assert out == ""
    assert err.startswith("temporary error: MX ede-text.bogus.test: ")
    assert "EDE 7 (Signature Expired)" in err


def test_nxdomain_and_nodata_are_distinguished(dns_world: DNSWorld) -> None:
    code, nx, _ = lookup(dns_world, "txt", "no-such-name.signed.test")
    assert code == 2
    assert nx["status"] == "nxdomain"
    assert nx["records"] == []
    # The denial of existence is signed (NSEC), so it is authentic too.
    assert nx["authentic"] is True

    code, nodata, _ = lookup(dns_world, "txt", "mx.signed.test")  # has A/AAAA, no TXT
    assert code == 2
    assert nodata["status"] == "nodata"
    assert nodata["authentic"] is True

    code, insecure_nx, _ = lookup(dns_world, "a", "no-such-name.unsigned.test")
    assert (code, insecure_nx["status"], insecure_nx["authentic"]) == (2, "nxdomain", False)


def test_empty_non_terminal_is_nodata(dns_world: DNSWorld) -> None:
    # _tcp.signed.test exists only as the parent of SRV records (RFC 8020).
    code, out, _ = lookup(dns_world, "txt", "_tcp.signed.test")
    assert (code, out["status"]) == (2, "nodata")


def test_mx_and_null_mx(dns_world: DNSWorld) -> None:
    code, out, _ = lookup(dns_world, "mx", "signed.test")
    assert code == 0
    assert out["records"] == [{"preference": 10, "exchange": "mx.signed.test", "null": False}]
    assert out["authentic"] is True

    code, out, _ = lookup(dns_world, "mx", "nullmx.signed.test")
    assert code == 0
    assert out["records"] == [{"preference": 0, "exchange": "", "null": True}]

    code, text, _ = lookup(dns_world, "mx", "nullmx.signed.test", as_json=False)
    assert code == 0
    assert text.splitlines() == ["MX nullmx.signed.test: found (DNSSEC-authentic)", "  0 ."]


def test_cname_chain_is_followed_and_reported(dns_world: DNSWorld) -> None:
    code, out, _ = lookup(dns_world, "a", "alias.signed.test")
    assert code == 0
    assert out["name"] == "alias.signed.test"
    assert out["cname_chain"] == ["alias2.signed.test", "mx.signed.test"]
    assert out["records"] == ["127.0.0.1"]
    assert out["authentic"] is True

    code, text, _ = lookup(dns_world, "aaaa", "alias.signed.test", as_json=False)
    assert code == 0
    assert text.splitlines()[0] == (
        "AAAA alias.signed.test: found (DNSSEC-authentic)"
        " via CNAME alias2.signed.test -> mx.signed.test"
    )
    assert text.splitlines()[1:] == ["  ::1"]

    code, out, _ = lookup(dns_world, "cname", "alias.signed.test")
    assert (code, out["records"], out["cname_chain"]) == (0, ["alias2.signed.test"], [])


def test_typed_records_are_parsed(dns_world: DNSWorld) -> None:
    code, tlsa, _ = lookup(dns_world, "tlsa", "_25._tcp.mx.signed.test")
    assert code == 0
    assert tlsa["records"] == [{"usage": 3, "selector": 1, "mtype": 1,
                                "data": DEFAULT_TLSA_DATA}]
    assert tlsa["authentic"] is True

    code, srv, _ = lookup(dns_world, "srv", "_submissions._tcp.signed.test")
    assert srv["records"] == [{"priority": 0, "weight": 1, "port": 465,
                               "target": "mx.signed.test"}]

    code, caa, _ = lookup(dns_world, "caa", "signed.test")
    assert caa["records"] == [{"flags": 0, "tag": "issue", "value": "ca.test"}]

    code, ns, _ = lookup(dns_world, "ns", "signed.test")
    assert ns["records"] == ["ns.signed.test"]

    code, aaaa, _ = lookup(dns_world, "aaaa", "mx.signed.test")
    assert (code, aaaa["records"], aaaa["authentic"]) == (0, ["::1"], True)


def test_ptr_of_an_address(dns_world: DNSWorld) -> None:
    code, out, _ = lookup(dns_world, "ptr", "127.0.0.1")
    assert code == 0
    assert out["name"] == "1.0.0.127.in-addr.arpa"
    assert out["records"] == ["mx.signed.test"]
    assert out["authentic"] is True  # the reverse zone has its own trust anchor

    code, out, _ = lookup(dns_world, "ptr", "127.0.0.2")
    assert (code, out["status"]) == (2, "nxdomain")


def test_authentic_agrees_with_dig_ad_flag(dns_world: DNSWorld) -> None:
    for name, expect in (("signed.test", True), ("unsigned.test", False)):
        output = dns_world.dig("+dnssec", name, "TXT")
        flags_line = next(line for line in output.splitlines() if ";; flags:" in line)
        flags = flags_line.split(";; flags:")[1].split(";")[0].split()
        assert "status: NOERROR" in output
        _, out, _ = lookup(dns_world, "txt", name)
        assert ("ad" in flags) is expect
        assert out["authentic"] is expect


def test_unknown_name_outside_the_world_is_refused_not_sent_out(dns_world: DNSWorld) -> None:
    # The world never asks the Internet: unbound refuses names outside it.
    code, out, _ = lookup(dns_world, "a", "example.com")
    assert code == 3
    assert "REFUSED" in out["error"]


# -- the stub resolver in-process -------------------------------------------


async def test_stub_resolver_ips_merges_a_and_aaaa(dns_world: DNSWorld) -> None:
    answer = await dns_world.stub_resolver().ips("mx.signed.test")
    assert answer.records == (ipaddress.ip_address("::1"), ipaddress.ip_address("127.0.0.1"))
    assert answer.authentic is True
    answer = await dns_world.stub_resolver().ips("mx.unsigned.test")
    assert answer.records == (ipaddress.ip_address("127.0.0.1"),)
    assert answer.authentic is False


async def test_stub_resolver_bogus_raises_with_ede(dns_world: DNSWorld) -> None:
    resolver = dns_world.stub_resolver()
    with pytest.raises(DNSTemporaryError) as info:
        await resolver.a("ede-stub.bogus.test")  # asked nowhere else: not in unbound's cache
    assert [e.code for e in info.value.extended_errors] == [7]
    assert "EDE 7 (Signature Expired)" in str(info.value)
    # Asked again, unbound answers from its cache of bogus data: EDE 6 "DNSSEC Bogus".
    with pytest.raises(DNSTemporaryError) as info:
        await resolver.a("ede-stub.bogus.test")
    assert [(e.code, e.name) for e in info.value.extended_errors] == [(6, "DNSSEC Bogus")]


async def test_stub_resolver_uses_second_resolver_when_first_is_down(
        dns_world: DNSWorld) -> None:
    host, port = dns_world.resolver
    dead = dnsworld.free_port()
    resolver = StubResolver([Nameserver("127.0.0.1", dead), Nameserver(host, port)],
                            timeout=1.0)
    answer = await resolver.txt("signed.test")
    assert answer.records == ("v=spf1 ip4:127.0.0.1 -all",)
    assert answer.authentic


async def test_resolver_validates(dns_world: DNSWorld) -> None:
    assert await resolver_validates(dns_world.stub_resolver(), probe="test.") is True
    host, port = dns_world.authoritative  # named itself: answers, but validates nothing
    assert await resolver_validates(StubResolver([Nameserver(host, port)]), "test.") is False
    # The root is outside the world: unbound refuses it, which tells nothing.
    assert await resolver_validates(dns_world.stub_resolver()) is None


# -- building worlds ----------------------------------------------------------


async def test_own_world_with_extra_zones_and_large_txt(make_dns_world: MakeDNSWorld) -> None:
    key = "v=DKIM1; k=rsa; p=" + "A" * 2000  # > 255 octets: split into strings
    world = make_dns_world(
        [
            ("sel._domainkey.signed.test", "TXT", key),
            ("other.test", "www", "CNAME", "signed.test."),
            ("big.signed.test", "TXT", "x" * 1500),  # answer beyond 1232 octets: TCP
            ("spam.other.test", "TXT", '"a" "b"'),
            ("quote.signed.test", "TXT", 'say "hi" \\ grüß'),  # quoted for the zone file
        ],
        zones={"other.test": "signed", "expired.test": "bogus",
               "deep.signed.test": "signed", "insecure.signed.test": "unsigned"},
    )
    resolver = world.stub_resolver()
    assert (await resolver.txt("sel._domainkey.signed.test")).records == (key,)
    big = await resolver.txt("big.signed.test")
    assert big.records == ("x" * 1500,) and big.authentic
    www = await resolver.txt("www.other.test")
    assert www.cname_chain == ("signed.test",)
    assert www.authentic
    assert (await resolver.txt("spam.other.test")).records == ("ab",)
    assert (await resolver.txt("quote.signed.test")).records == ('say "hi" \\ grüß',)
    with pytest.raises(DNSTemporaryError) as info:
        await resolver.a("ns.expired.test")
    assert [e.code for e in info.value.extended_errors] == [7]
    # Zones below signed.test: DS chain two levels deep, and an insecure delegation.
    deep = await resolver.a("ns.deep.signed.test")
    assert ([str(ip) for ip in deep], deep.authentic) == (["127.0.0.1"], True)
    insecure = await resolver.a("ns.insecure.signed.test")
    assert ([str(ip) for ip in insecure], insecure.authentic) == (["127.0.0.1"], False)
    # The default records are not there unless asked for.
    assert (await resolver.mx("signed.test")).status is Status.NODATA


def test_records_cannot_be_added_after_start(make_dns_world: MakeDNSWorld) -> None:
    world = make_dns_world()
    with pytest.raises(RuntimeError, match="before start"):
        world.add("x.signed.test", "A", "127.0.0.1")


def test_add_checks_zone_and_owner() -> None:
    world = DNSWorld()
    with pytest.raises(ValueError, match=r"no zone 'nope\.test'"):
        world.add("nope.test", "x", "A", "127.0.0.1")
    with pytest.raises(ValueError, match=r"child zone 'signed\.test'"):
        world.add("test", "x.signed", "A", "127.0.0.1")
    with pytest.raises(ValueError, match="in no zone"):
        world.add("example.org", "A", "127.0.0.1")
    with pytest.raises(ValueError, match="apex"):
        world.add("signed.test", "CNAME", "x.test.")
    world.add("signed.test", "@", "TXT", "apex")
    world.add("signed.test", "deep.er", "TXT", '"x"')
    assert world.zones["signed.test"].records == [
        ("signed.test", dnsworld.DEFAULT_TTL, "TXT", '"apex"'),
        ("deep.er.signed.test", dnsworld.DEFAULT_TTL, "TXT", '"x"'),
    ]


def test_bad_record_fails_start_with_signer_message(make_dns_world: MakeDNSWorld) -> None:
    world = make_dns_world([("x.signed.test", "MX", "not-a-number mx.test.")], start=False)
    with pytest.raises(DNSWorldError, match=r"dnssec-signzone .* failed"):
        world.start()
    assert world.dir is not None and not world.dir.exists()


def test_missing_server_program_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dnsworld, "TOOLS", (*dnsworld.TOOLS, "kittiwake-no-such-named"))
    with pytest.raises(DNSWorldError, match="needs kittiwake-no-such-named"):
        DNSWorld().start()


def test_stop_ends_servers_and_removes_files(make_dns_world: MakeDNSWorld) -> None:
    world = make_dns_world()
    procs = list(world._procs.values())
    assert world.dir is not None
    directory = world.dir
    assert all(p.poll() is None for p in procs)
    world.stop()
    assert all(p.poll() is not None for p in procs)
    assert not directory.exists()
    with pytest.raises(RuntimeError, match="not running"):
        _ = world.resolver
