"""The start-up DNSSEC probe against real servers: unbound validates, named does not."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from kittiwake.dns import DNSSECSupport, Nameserver, StubResolver, probe_dnssec

from .dnsworld import DNSWorld

KITTIWAKE = [sys.executable, "-m", "kittiwake.cli.main"]


async def test_probe_against_unbound_and_named(dns_world: DNSWorld) -> None:
    validating = await probe_dnssec(dns_world.stub_resolver(), "test.")
    assert validating.support is DNSSECSupport.VALIDATES, validating
    host, port = dns_world.authoritative  # answers authoritatively, validates nothing
    plain = await probe_dnssec(StubResolver([Nameserver(host, port)]), "test.")
    assert plain.support is DNSSECSupport.NOT_VALIDATING, plain
    # The real root is outside the world: unbound refuses it, which tells nothing.
    refused = await probe_dnssec(dns_world.stub_resolver(), ".")
    assert refused.support is DNSSECSupport.UNKNOWN
    assert refused.detail.endswith("REFUSED")


def test_serve_logs_that_the_resolver_validates(dns_world: DNSWorld, tmp_path: Path) -> None:
    conf = tmp_path / "c"
    conf.mkdir()
    (conf / "kittiwake.conf").write_text('hostname = "mail.example.org"\ndata_dir = "../d"\n'
                                         '[dns]\ndnssec_probe = "test."\n')
    (conf / "domains.conf").write_text('[domains."example.org"]\n')
    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*KITTIWAKE, "--config", str(conf), "serve"],
                                stdout=subprocess.DEVNULL, stderr=out, env=dns_world.env)
    try:
        deadline = time.monotonic() + 20
        while "kittiwake started" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    [line] = [x for x in log.read_text().splitlines() if "DNS resolver" in x]
    assert "level=info" in line and 'msg="DNS resolver validates DNSSEC"' in line
    assert f"resolvers={dns_world.dns_spec}" in line
