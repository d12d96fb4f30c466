"""``kittiwake spf`` against real DNS: bind9 serving signed and unsigned zones, unbound validating.

The CLI runs as a subprocess with KITTIWAKE_DNS pointing at the world's unbound, as
a user would run it; the result's ``authentic`` must follow DNSSEC (RFC 4035 §3.2.3)
through includes, and a bogus zone (expired signatures) must give temperror.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.dnsworld import DNSWorld, add_default_records

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world() -> Iterator[DNSWorld]:
    world = add_default_records(DNSWorld())
    world.add("inc.signed.test", "TXT", "v=spf1 include:unsigned.test -all")
    world.add("ptr.signed.test", "TXT", "v=spf1 ptr:signed.test -all")
    world.add("exp.signed.test", "TXT", "v=spf1 -all exp=why.signed.test")
    world.add("why.signed.test", "TXT", "%{i} is not a sender for %{d}")
    with world:
        yield world


def kittiwake(world: DNSWorld, *args: str) -> tuple[int, Any, str]:
    script = Path(sys.executable).parent / "kittiwake"
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from kittiwake.cli.main import main; sys.exit(main())"]
    proc = subprocess.run([*command, "spf", *args], env=world.env, capture_output=True,
                          text=True, timeout=60, check=False)
    out: Any = proc.stdout
    if "--json" in args and proc.stdout.strip():
        out = json.loads(proc.stdout)
    return proc.returncode, out, proc.stderr


def check(world: DNSWorld, ip: str, mailfrom: str) -> dict[str, Any]:
    code, out, err = kittiwake(world, "check", "--json", "--ip", ip, "--mailfrom", mailfrom)
    assert code == 0, err
    return out


def test_signed_pass_is_authentic(world: DNSWorld) -> None:
    out = check(world, "127.0.0.1", "alice@signed.test")
    assert (out["result"], out["domain"], out["authentic"]) == ("pass", "signed.test", True)
    assert check(world, "127.0.0.2", "alice@signed.test")["result"] == "fail"


def test_unsigned_pass_is_not_authentic(world: DNSWorld) -> None:
    out = check(world, "127.0.0.1", "alice@unsigned.test")
    assert (out["result"], out["authentic"]) == ("pass", False)


def test_include_of_an_unsigned_zone_taints_authentic(world: DNSWorld) -> None:
    out = check(world, "127.0.0.1", "alice@inc.signed.test")
    assert (out["result"], out["mechanism"], out["authentic"]) == (
        "pass", "include:unsigned.test", False)


def test_ptr_validated_through_signed_reverse_zone(world: DNSWorld) -> None:
    out = check(world, "127.0.0.1", "alice@ptr.signed.test")
    assert (out["result"], out["authentic"]) == ("pass", True)
    assert check(world, "127.0.0.9", "alice@ptr.signed.test")["result"] == "fail"


def test_explanation_from_dns(world: DNSWorld) -> None:
    out = check(world, "127.0.0.5", "alice@exp.signed.test")
    assert out["result"] == "fail"
    assert out["explanation"] == "127.0.0.5 is not a sender for exp.signed.test"


def test_bogus_zone_is_temperror(world: DNSWorld) -> None:
    out = check(world, "127.0.0.1", "alice@bogus.test")
    assert (out["result"], out["authentic"]) == ("temperror", False)
    assert "SERVFAIL" in out["problem"]


def test_nxdomain_is_none(world: DNSWorld) -> None:
    out = check(world, "127.0.0.1", "alice@nothing.signed.test")
    assert (out["result"], out["authentic"]) == ("none", True)


def test_lookup(world: DNSWorld) -> None:
    code, out, _ = kittiwake(world, "lookup", "--json", "signed.test")
    assert code == 0
    assert out["record"] == "v=spf1 ip4:127.0.0.1 -all"
    assert out["authentic"] is True
    assert [t["text"] for t in out["terms"]] == ["ip4:127.0.0.1", "-all"]
    code, text, _ = kittiwake(world, "lookup", "bogus.test")
    assert code == 3 and "temperror" in text
