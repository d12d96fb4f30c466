"""DMARC discovery and iprev through a real validating resolver (bind9 + unbound).

Checks that DNSSEC status reaches the verdicts: ``authentic`` from a signed
zone (including an authenticated NXDOMAIN before the Organizational Domain
fallback), not from an unsigned one, and ``temperror`` for a bogus zone.
Uses the DNS world of tests/integration; a missing bind9/unbound fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from integration.dnsworld import DNSWorld, add_default_records  # tests/ is on sys.path
from kittiwake import iprev
from kittiwake.dmarc import Disposition, LookupStatus, Status, lookup, verify

pytestmark = pytest.mark.integration


@dataclass
class Auth:
    status: str
    domain: str


@pytest.fixture(scope="module")
def world() -> Iterator[DNSWorld]:
    w = add_default_records(DNSWorld())
    w.add("_dmarc.multi.signed.test", "TXT", "v=DMARC1; p=reject")
    w.add("_dmarc.multi.signed.test", "TXT", "v=DMARC1; p=none")
    w.add("_dmarc.sub.signed.test", "TXT", "v=DMARC1; p=quarantine; pct=0")
    w.add_ptr("127.0.0.2", "mx.unsigned.test")  # mx.unsigned.test is 127.0.0.1: no match
    with w:
        yield w


async def test_dmarc_authentic_and_fallback(world: DNSWorld) -> None:
    resolver = world.stub_resolver()
    direct = await lookup(resolver, "signed.test")
    assert direct.status is LookupStatus.FOUND and direct.authentic
    fallback = await lookup(resolver, "mail.signed.test")
    assert fallback.status is LookupStatus.FOUND and fallback.policy_domain == "signed.test"
    assert fallback.authentic  # the NXDOMAIN at _dmarc.mail.signed.test was validated too
    res = await verify(resolver, "mail.signed.test", Auth("fail", "signed.test"), [])
    assert (res.status, res.policy, res.reject, res.authentic) == (
        Status.FAIL, Disposition.REJECT, True, True)
    res = await verify(resolver, "signed.test", Auth("pass", "bounce.signed.test"), [])
    assert res.status is Status.PASS and res.spf_aligned


async def test_dmarc_unsigned_bogus_multiple(world: DNSWorld) -> None:
    resolver = world.stub_resolver()
    plain = await lookup(resolver, "unsigned.test")
    assert plain.status is LookupStatus.FOUND and not plain.authentic
    assert plain.policy is not None and plain.policy.policy is Disposition.NONE
    bogus = await verify(resolver, "bogus.test", None, [])
    assert bogus.status is Status.TEMPERROR and not bogus.reject
    multi = await lookup(resolver, "multi.signed.test")
    assert multi.status is LookupStatus.NONE and "2 DMARC records" in multi.reason
    sampled = await verify(resolver, "sub.signed.test", None, [])
    assert sampled.status is Status.FAIL and not sampled.quarantine and sampled.override


async def test_iprev_real_dns(world: DNSWorld) -> None:
    resolver = world.stub_resolver()
    ok = await iprev.check(resolver, "127.0.0.1")
    assert (ok.status, ok.host, ok.authentic) == (iprev.Status.PASS, "mx.signed.test", True)
    mismatch = await iprev.check(resolver, "127.0.0.2")
    assert mismatch.status is iprev.Status.FAIL
    assert mismatch.names == ("mx.unsigned.test",) and not mismatch.authentic
    missing = await iprev.check(resolver, "127.0.0.3")
    assert missing.status is iprev.Status.PERMERROR and missing.authentic


def test_cli_lookup_with_kittiwake_dns(world: DNSWorld) -> None:
    env = {**os.environ, **world.env}
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from kittiwake.cli.main import main; sys.exit(main())",
         "dmarc", "lookup", "--json", "www.signed.test"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["policy_domain"] == "signed.test"
    assert doc["policy"]["p"] == "reject"
    assert doc["authentic"] is True
